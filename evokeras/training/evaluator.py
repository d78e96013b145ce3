"""Evaluate one genome: train under a budget, score on the validation split, time it.

:class:`Evaluator` is a picklable callable ``genome -> EvalResult``. It never mutates
the genome; the result is a record. Every evaluation starts from
``keras.utils.clear_session(free_memory=True)`` (when its task builds Keras models) and
a seed derived from the run seed and the genome key, so that on CPU the deterministic
objectives (validation error, parameters, FLOPs) depend only on the genome and the seed.
The task scores the genome through a :class:`~evokeras.training.context.ScoreContext`
and returns its figures; the evaluator turns them into the record.

Objectives a task of the image family offers (all minimised):

* ``val_error`` -- 1 - validation accuracy after training with early stopping;
* ``exec_time`` -- inference seconds per sample at ``Budget.time_batch``, the median
  of ``Budget.time_repeats`` calls after one warm-up call;
* ``params`` -- parameter count; ``flops`` -- FLOPs of one forward pass (analytic).

A failing candidate (invalid genome, shape error, NaN loss, out of memory, time
limit) gets ``status`` ``failed``/``nan``/``oom``/``timeout``, the reason in
``error``, and the worst objective values (:data:`~evokeras.training.records.WORST`).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from evokeras.training.context import ScoreContext
from evokeras.training.inheritance import WeightCache
from evokeras.training.protocol import EvaluateFunction
from evokeras.training.records import (
    DEFAULT_OBJECTIVES,
    Budget,
    EvalResult,
    EvaluationTimeout,
    NonFiniteError,
    TrainSettings,
    derive_seed,
    is_storage_error,
)

__all__ = ["Evaluator", "Scorer", "release_keras_seed", "seed_keras"]

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """What the evaluator needs of a task (every :class:`evokeras.tasks.Task` is one)."""

    name: str
    measures: tuple[str, ...]

    @property
    def space(self) -> Any: ...

    def score(self, genome: Any, ctx: ScoreContext) -> dict[str, Any]: ...

    def scaled_budget(self, budget: Budget, fraction: float) -> Budget: ...

    def data(self, *, train_size: int | None = ..., val_limit: int | None = ...,
             test_limit: int | None = ...) -> Any:
        """The split (loaded before the first candidate's clocks start); ``None``: no data set."""

    def builds_keras_models(self, objectives: tuple[str, ...]) -> bool:
        """Whether scoring builds Keras models (their memory is freed before each candidate)."""


_CONFIGURED: set[str] = set()


def _configure_backend(deterministic: bool) -> None:
    """Once per process: quiet TensorFlow's retracing warnings; ask for deterministic ops."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if "quiet" not in _CONFIGURED:
        tf.get_logger().setLevel("ERROR")
        _CONFIGURED.add("quiet")
    if deterministic and "deterministic" not in _CONFIGURED:
        tf.config.experimental.enable_op_determinism()
        _CONFIGURED.add("deterministic")


def seed_keras(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, and a random generator of Keras' own.

    Keras draws the seed of every layer built without one (initializers, dropout) from
    Python's global ``random`` generator. Other threads of the process may draw from it
    too while a model is built: on a Dask worker, Dask's own threads do (retry jitter,
    heartbeats), so the initial weights there depended on timing and Dask results
    differed from serial ones. Keras gets a ``random.Random`` of its own, seeded as the
    global one is here, so that it draws exactly what it drew before (when no other
    thread interferes) whatever other threads do.
    """
    import keras
    from keras.src.random import seed_generator

    keras.utils.set_random_seed(seed)
    if hasattr(seed_generator, "python_random"):  # where Keras' make_default_seed draws from
        seed_generator.python_random = random.Random(seed)


def release_keras_seed() -> None:
    """Give Keras back Python's global ``random`` after :func:`seed_keras` (so that
    ``keras.utils.set_random_seed`` governs models built outside an evaluation again)."""
    from keras.src.random import seed_generator

    if hasattr(seed_generator, "python_random"):
        seed_generator.python_random = random


def _classify_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "ResourceExhausted" in text or "out of memory" in text.lower():
        return "oom"
    if isinstance(exc, EvaluationTimeout):
        return "timeout"
    if isinstance(exc, NonFiniteError):
        return "nan"
    return "failed"


class Evaluator(EvaluateFunction):
    """Train and score genomes for a task under a :class:`~evokeras.training.records.Budget`.

    An :class:`~evokeras.training.protocol.EvaluateFunction`: its ``failure(genome, status,
    error)`` (inherited) is the record of a failed candidate, with the worst objective values.

    Args:
        task: the task object (:func:`evokeras.make_task` turns a name into one).
        budget: the evaluation budget.
        objectives: objective names with weights (``{"val_error": -1, "exec_time": -1}``).
        seed: the run seed (mixed with each genome key).
        weight_dir: where trained weights are cached by genome key; when given, a genome
            that carries a ``parent`` key starts from that parent's trained weights where
            layers match (:class:`~evokeras.training.inheritance.WeightCache`).
        fidelity: the fraction of the full budget this evaluator trains with (recorded
            in every result's ``metrics["fidelity"]``; see :meth:`at_fidelity`).
        settings: how candidates are trained (fast path, deterministic ops).

    Example:
        >>> from evokeras import Genome, LayerGene, make_task
        >>> ev = Evaluator(make_task("mnist"), Budget(epochs=1, train_samples=512, val_samples=256),
        ...                {"val_error": -1.0, "flops": -1.0})
        >>> r = ev(Genome((LayerGene("dense", units=16),)))
        >>> r.status, len(r.objectives)
        ('ok', 2)
    """

    def __init__(
        self,
        task: Scorer,
        budget: Budget | None = None,
        objectives: Mapping[str, float] | None = None,
        *,
        seed: int = 0,
        weight_dir: str | Path | None = None,
        fidelity: float = 1.0,
        settings: TrainSettings | None = None,
    ) -> None:
        if isinstance(task, str):
            raise TypeError(f"Evaluator: expected a task object, got the name {task!r} (use evokeras.make_task)")
        self.task = task
        self.budget = budget or Budget()
        self.objectives = dict(objectives or DEFAULT_OBJECTIVES)
        self.seed = int(seed)
        self.weight_dir = Path(weight_dir) if weight_dir is not None else None
        self.fidelity = float(fidelity)
        self.settings = settings or TrainSettings()
        self._data: Any = None
        unknown = [name for name in self.objectives if name not in self.task.measures]
        if unknown:
            raise ValueError(
                f"objective {unknown[0]!r} is not measured for task {self.task.name!r} (measured: {list(self.task.measures)})"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_data"] = None
        return state

    def at_fidelity(self, fraction: float) -> Evaluator:
        """This evaluator with the budget scaled by ``fraction`` (:meth:`Budget.scaled`);
        its results record ``metrics["fidelity"] = fraction``."""
        return Evaluator(self.task, self.task.scaled_budget(self.budget, fraction), self.objectives,
                         seed=self.seed, weight_dir=self.weight_dir, fidelity=fraction, settings=self.settings)

    @property
    def weights(self) -> WeightCache | None:
        """The trained-weight cache (``None`` when weights are not inherited)."""
        return WeightCache(self.weight_dir) if self.weight_dir is not None else None

    def warm_up(self) -> None:
        """Import Keras and load the data now (a worker process starting up ahead of its
        first evaluation calls this; see :class:`~evokeras.engine.parallel.ProcessBackend`)."""
        import keras  # noqa: F401

        self.data()

    def data(self) -> Any:
        """The (cached) data split at this budget's sizes (the whole training split with
        inheritance: each evaluation trains on its own window of it)."""
        if self._data is None:
            b = self.budget
            # with inheritance each evaluation trains on its own window of the whole split
            train_size = None if self.weight_dir is not None else b.train_samples
            self._data = self.task.data(train_size=train_size, val_limit=b.val_samples, test_limit=0)
        return self._data

    def __call__(self, genome: Any) -> EvalResult:
        start = time.perf_counter()
        parent = getattr(genome, "parent", None)  # set by the search on children (Individual)
        seed_key = getattr(genome, "seed_key", None)
        genome = genome.as_genome()
        try:
            self.task.space.check(genome)
        except ValueError as exc:
            return self.failure(genome, "failed", f"invalid genome: {exc}")
        uses_keras = self.task.builds_keras_models(self.objective_names)
        seed = derive_seed(self.seed, genome.key)
        if uses_keras:
            import keras

            keras.utils.clear_session(free_memory=True)
            _configure_backend(self.settings.deterministic)
            seed_keras(seed)
        else:  # no model to build (control rollouts): Keras is not even imported
            random.seed(seed)
            np.random.seed(seed % 2**32)
        try:
            self.data()  # a missing data set is the run's error, not the candidate's
        except BaseException:
            if uses_keras:
                release_keras_seed()
            raise
        # the budget's clocks start now: freeing the previous models' memory and loading
        # the data are not this candidate's training time (they count in ``total``)
        ctx = ScoreContext(budget=self.budget, seed=seed, run_seed=self.seed, objectives=self.objective_names,
                           data_fn=self.data, parent=parent, seed_key=seed_key, weights=self.weights, start=time.perf_counter(),
                           fast=self.settings.fast, fidelity=self.fidelity)
        metrics: dict[str, Any] = {"fidelity": self.fidelity}
        try:
            metrics.update(self.task.score(genome, ctx))
            if time.perf_counter() - start > self.budget.timeout:
                raise EvaluationTimeout(f"evaluation took longer than the {self.budget.timeout:g} s limit")
        except Exception as exc:  # recorded as a failed candidate with its reason
            if is_storage_error(exc):  # a full disk is the run's error, not the candidate's
                raise
            status = _classify_error(exc)
            metrics.update(ctx.notes)
            times = {**ctx.times, "total": time.perf_counter() - start}
            if status == "nan":
                return self.failure(genome, "nan", str(exc), metrics=metrics, times=times)
            log.warning("candidate %s %s: %s", genome.key, status, exc)
            return self.failure(genome, status, f"{type(exc).__name__}: {exc}"[:2000], metrics=metrics, times=times)
        finally:
            if uses_keras:
                import keras

                keras.utils.clear_session(free_memory=False)  # the next evaluation frees memory first
                release_keras_seed()
        times = {**ctx.times, "total": time.perf_counter() - start}
        missing = [name for name in self.objectives if name not in metrics]
        if missing:
            return self.failure(genome, "failed", f"task {self.task.name!r} did not report objective {missing[0]!r}",
                                metrics=metrics, times=times)
        objectives = tuple(float(metrics[name]) for name in self.objectives)
        if not all(math.isfinite(v) for v in objectives):
            return self.failure(genome, "nan", f"non-finite objectives {objectives}", metrics=metrics, times=times)
        return EvalResult(
            key=genome.key,
            genome=genome.to_dict(),
            status="ok",
            objectives=objectives,
            objective_names=self.objective_names,
            metrics=metrics,
            times=times,
        )
