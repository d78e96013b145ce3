"""What the engine needs of an evaluate function: :class:`EvaluateFunction` (no Keras).

The engine's backends (:mod:`evokeras.engine.parallel`) run an evaluate function on
genomes in worker processes. Beyond ``fn(genome) -> EvalResult`` they need two things of
it, and this abstract base class is where they are declared rather than probed for:

* :meth:`EvaluateFunction.failure` -- the record of a candidate whose evaluation was lost
  (its worker hung past the backend's hard limit, or kept dying): the worst objective
  values, from :attr:`EvaluateFunction.objectives`;
* :meth:`EvaluateFunction.warm_up` -- prepare in a worker process that is starting up,
  ahead of its first evaluation (import Keras, load data); a no-op by default.

:class:`~evokeras.training.evaluator.Evaluator` is one. :class:`PlainEvaluate` adapts a
plain callable ``genome -> EvalResult`` (a user's own evaluate function) together with
the search's objectives. Any other callable given to a backend (DEAP's ``toolbox.map``,
``backend(len, items)``) has no failure record: a lost task raises
:class:`~evokeras.engine.parallel.BackendError` instead.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

from evokeras.training.records import EvalResult, worst_values

__all__ = ["EvaluateFunction", "PlainEvaluate"]


class EvaluateFunction(abc.ABC):
    """A picklable callable ``genome -> EvalResult`` with the search's objectives.

    Subclasses implement :meth:`__call__` and set :attr:`objectives`; :meth:`failure` and
    :meth:`warm_up` have defaults.

    Attributes:
        objectives: objective names with weights, in record order
            (``{"val_error": -1.0, "flops": -1.0}``; a negative weight is minimised).
    """

    objectives: dict[str, float]

    @abc.abstractmethod
    def __call__(self, genome: Any) -> EvalResult:
        """Evaluate ``genome`` (never mutating it) and return its record."""

    @property
    def objective_names(self) -> tuple[str, ...]:
        return tuple(self.objectives)

    def failure(self, genome: Any, status: str, error: str, **extra: Any) -> EvalResult:
        """A record of ``genome`` with status ``status`` (``failed``, ``timeout``, ...),
        the reason ``error`` and the worst value of every objective
        (:func:`~evokeras.training.records.worst_values`); ``extra`` are further
        :class:`~evokeras.training.records.EvalResult` fields (``metrics``, ``times``)."""
        return EvalResult(
            key=genome.key,
            genome=genome.to_dict(),
            status=status,
            objectives=worst_values(list(self.objectives.values())),
            objective_names=self.objective_names,
            error=error,
            **extra,
        )

    def warm_up(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Prepare in a worker process before its first evaluation (default: nothing)."""


class PlainEvaluate(EvaluateFunction):
    """A plain callable ``genome -> EvalResult`` as an :class:`EvaluateFunction`.

    Args:
        fn: the function (picklable where a process or Dask backend runs it).
        objectives: objective names with weights, as the search's configuration has them.

    >>> ev = PlainEvaluate(lambda g: None, {"val_error": -1.0, "accuracy": 1.0})
    >>> ev.objective_names
    ('val_error', 'accuracy')
    """

    def __init__(self, fn: Callable[[Any], EvalResult], objectives: Mapping[str, float]) -> None:
        if not callable(fn):
            raise TypeError(f"PlainEvaluate: expected a callable, got {fn!r}")
        self.fn = fn
        self.objectives = dict(objectives)

    def __call__(self, genome: Any) -> EvalResult:
        return self.fn(genome)

    def __repr__(self) -> str:
        return f"PlainEvaluate({self.fn!r}, {self.objectives!r})"
