from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="evokeras")
class SpatialResize(keras.layers.Layer):
    """Resize the spatial axes of a channels-last tensor to ``size`` (1 or 2 axes).

    Used to reconcile a skip link whose source has another spatial size than the
    gene it feeds. Bilinear interpolation; sequences ``(batch, steps, channels)`` are
    resized along the step axis.

    Args:
        size: the target spatial size, one integer per spatial axis.
        interpolation: ``"bilinear"`` or ``"nearest"``.

    Example:
        >>> import numpy as np
        >>> SpatialResize((7, 7))(np.zeros((2, 14, 14, 3))).shape
        (2, 7, 7, 3)
    """

    def __init__(self, size: Sequence[int], interpolation: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(size, int):
            size = (size,)
        if (
            not isinstance(size, Sequence)
            or len(size) not in (1, 2)
            or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in size)
        ):
            raise ValueError(f"SpatialResize: `size` must be 1 or 2 positive integers, got {size!r}")
        size = tuple(size)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"SpatialResize: `interpolation` must be 'bilinear' or 'nearest', got {interpolation!r}"
            )
        self.size = size
        self.interpolation = interpolation

    def call(self, inputs: Any) -> Any:
        if len(self.size) == 1:
            x = ops.expand_dims(inputs, 2)
            x = ops.image.resize(x, (self.size[0], 1), interpolation=self.interpolation)
            return ops.squeeze(x, 2)
        return ops.image.resize(inputs, self.size, interpolation=self.interpolation)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (input_shape[0], *self.size, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size), "interpolation": self.interpolation}
