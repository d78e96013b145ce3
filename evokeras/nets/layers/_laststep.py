from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="evokeras")
class LastStep(keras.layers.Layer):
    """The last time step of a sequence: ``(batch, steps, channels) -> (batch, channels)``.

    Pools a recurrent layer's per-step outputs into the state after the whole sequence
    (a specialized model cut after a ``return_sequences`` layer).

    Example:
        >>> import numpy as np
        >>> LastStep()(np.arange(12.0).reshape(1, 4, 3)).tolist()
        [[9.0, 10.0, 11.0]]
    """

    def call(self, inputs: Any) -> Any:
        return inputs[:, -1, :]

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], input_shape[-1])
