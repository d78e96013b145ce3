"""The task interface: what a task owns (data split, input stem, output head, metric)."""

from __future__ import annotations

from typing import Any

from ..space import SearchSpace

__all__ = ["Task"]


class Task:
    """Base class of tasks. A task owns its input shape, output head, loss and metric,
    its search space and its data.

    Subclasses set :attr:`name`, :attr:`family`, :attr:`input_shape`, :attr:`n_outputs`
    and override :meth:`head` (and :meth:`stem`, :meth:`loss`, :meth:`data` as needed).
    """

    name: str = "task"
    family: str = "image"
    input_shape: tuple[int, ...] = ()
    n_outputs: int = 1
    #: Metrics the evaluator measures for this task (each may be an objective).
    measures: tuple[str, ...] = ("val_error", "val_loss", "exec_time", "params", "flops")

    def __init__(self, *, space: SearchSpace | None = None) -> None:
        from ..space import default_space

        base = space if space is not None else default_space(self.family)
        self.space = base.replace(input_shape=tuple(self.input_shape), n_outputs=int(self.n_outputs))

    # -- model pieces (Keras) -------------------------------------------------------
    def stem(self, inputs: Any) -> Any:
        """Map the model input to what the first gene reads (identity by default)."""
        return inputs

    def head(self, x: Any) -> Any:
        """Map the last (flat) features to the task's output."""
        raise NotImplementedError

    def loss(self) -> Any:
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        return []

    # -- data ------------------------------------------------------------------------
    def data(self, **limits: int | None) -> Any:
        """The task's fixed train/validation/test split (a :class:`evokeras.datasets.Split`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, n_outputs={self.n_outputs})"
