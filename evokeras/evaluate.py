"""Evaluate one genome: train under a budget, score on the validation split, time it.

:class:`Evaluator` is a picklable callable ``genome -> EvalResult``. It never mutates
the genome; the result is a record. Every evaluation starts from
``keras.utils.clear_session(free_memory=True)`` (when its task builds Keras models)
and a seed derived from the run seed and the genome key, so that on CPU the deterministic objectives (validation error, parameters,
FLOPs) depend only on the genome and the seed.

Objectives a task of the image family offers (all minimised):

* ``val_error`` -- 1 - validation accuracy after training with early stopping;
* ``exec_time`` -- inference seconds per sample at ``Budget.time_batch``, the median
  of ``Budget.time_repeats`` calls after one warm-up call;
* ``params`` -- parameter count; ``flops`` -- FLOPs of one forward pass (analytic).

A failing candidate (invalid genome, shape error, NaN loss, out of memory, time
limit) gets ``status`` ``failed``/``nan``/``oom``/``timeout``, the reason in
``error``, and the worst objective values (:data:`WORST`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .genome import Genome
from .tasks import Task, make_task

__all__ = ["WORST", "Budget", "EvalResult", "EvaluationTimeout", "Evaluator", "NonFiniteError", "time_inference"]

log = logging.getLogger(__name__)

#: The magnitude of the worst value given to a failed candidate (finite, so that
#: NSGA-II's crowding distance stays defined).
WORST = 1e9

class EvaluationTimeout(RuntimeError):
    """Raised inside training when an evaluation passes its hard time limit."""


class NonFiniteError(ArithmeticError):
    """Raised by a task when a loss or score is NaN or infinite (status ``nan``)."""


@dataclass(frozen=True)
class Budget:
    """How much one evaluation may spend.

    Attributes:
        epochs: most training epochs.
        train_samples: training examples used (a prefix of the fixed train split).
        val_samples: validation examples used (a prefix of the validation split).
        patience: early-stopping patience in epochs (on validation loss; best weights kept).
        seconds: soft limit: training stops after this many seconds and the model is scored.
        timeout: hard limit for the whole evaluation: past it the candidate fails with
            status ``timeout``.
        time_batch: batch size at which inference time is measured.
        time_repeats: timed calls (after one warm-up); the median is reported.
        deterministic: ask the backend for deterministic ops (TensorFlow) -- slower, exact.
        episodes: episodes per evaluation of a reinforcement task (CartPole).
        fast: train with :func:`evokeras.fasttrain.fit_fast` (data on the device, many
            batches per compiled call) instead of ``model.fit`` where the task allows it.
    """

    epochs: int = 3
    train_samples: int | None = 10_000
    val_samples: int | None = 2_000
    patience: int = 2
    seconds: float = 60.0
    timeout: float = 300.0
    time_batch: int = 256
    time_repeats: int = 5
    deterministic: bool = True
    episodes: int = 5
    fast: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def scaled(self, fraction: float) -> Budget:
        """A lower-fidelity budget: ``fraction`` of the training samples (of the epochs
        when all samples are used), at least one of each."""
        if self.train_samples is not None:
            return dataclasses.replace(self, train_samples=max(1, int(round(self.train_samples * fraction))))
        return dataclasses.replace(self, epochs=max(1, int(round(self.epochs * fraction))))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "budget") -> Budget:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in fields:
                raise ValueError(f"{where}: unknown key {key!r} (known: {sorted(fields)})")
            if key in ("deterministic", "fast"):
                ok = isinstance(value, bool)
            elif key in ("train_samples", "val_samples"):
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
            elif key in ("seconds", "timeout"):
                ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "patience" else 1)
            if not ok:
                raise ValueError(f"{where}.{key}: invalid value {value!r}")
        return cls(**data)


@dataclass(frozen=True)
class EvalResult:
    """The record of one evaluation.

    Attributes:
        key: the genome's key.
        genome: the genome's dictionary form.
        status: one of ``ok``, ``failed``, ``nan``, ``oom``, ``timeout``.
        objectives: objective values, in the order of ``objective_names``.
        objective_names: the names of the objectives.
        metrics: every figure measured (val_error, val_loss, exec_time, params, flops, epochs, ...).
        error: the reason of a failure (``None`` when ok).
        times: seconds spent building, fitting, evaluating, timing and in total.
    """

    key: str
    genome: dict[str, Any]
    status: str
    objectives: tuple[float, ...]
    objective_names: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    times: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def full(self) -> bool:
        """Whether this is a full-fidelity evaluation (multi-fidelity also stores
        ``<key>@<fraction>`` records, which only rank each other)."""
        return float(self.metrics.get("fidelity", 1.0)) == 1.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["objectives"] = list(self.objectives)
        d["objective_names"] = list(self.objective_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResult:
        return cls(
            key=d["key"],
            genome=dict(d["genome"]),
            status=d["status"],
            objectives=tuple(float(v) for v in d["objectives"]),
            objective_names=tuple(d["objective_names"]),
            metrics=dict(d.get("metrics") or {}),
            error=d.get("error"),
            times=dict(d.get("times") or {}),
        )


def worst_values(weights: Sequence[float]) -> tuple[float, ...]:
    """The worst value of each objective (``+WORST`` when minimised, ``-WORST`` when maximised)."""
    return tuple(-WORST if w > 0 else WORST for w in weights)


def derive_seed(seed: int, key: str) -> int:
    """A 31-bit seed from the run seed and a genome key (stable across processes)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little") & 0x7FFFFFFF


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


def _classify_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "ResourceExhausted" in text or "out of memory" in text.lower():
        return "oom"
    if isinstance(exc, EvaluationTimeout):
        return "timeout"
    if isinstance(exc, NonFiniteError):
        return "nan"
    return "failed"


class Evaluator:
    """Train and score genomes for a task under a :class:`Budget`.

    Args:
        task: a task name or object.
        budget: the evaluation budget.
        objectives: objective names with weights (``{"val_error": -1, "exec_time": -1}``).
        seed: the run seed (mixed with each genome key).
        weight_dir: where trained weights are cached by genome key; when given, a genome
            that carries a ``parent`` key starts from that parent's trained weights where
            layers match (:meth:`inherit`).
        fidelity: the fraction of the full budget this evaluator trains with (recorded
            in every result's ``metrics["fidelity"]``; see :meth:`at_fidelity`).

    Example:
        >>> ev = Evaluator("mnist", Budget(epochs=1, train_samples=512, val_samples=256),
        ...                {"val_error": -1.0, "flops": -1.0})
        >>> from evokeras import Genome, LayerGene
        >>> r = ev(Genome((LayerGene("dense", units=16),)))
        >>> r.status, len(r.objectives)
        ('ok', 2)
    """

    def __init__(
        self,
        task: str | Task,
        budget: Budget | None = None,
        objectives: Mapping[str, float] | None = None,
        *,
        seed: int = 0,
        weight_dir: str | Path | None = None,
        fidelity: float = 1.0,
    ) -> None:
        self.task = make_task(task)
        self.budget = budget or Budget()
        self.objectives = dict(objectives or {"val_error": -1.0, "exec_time": -1.0})
        self.seed = int(seed)
        self.weight_dir = Path(weight_dir) if weight_dir is not None else None
        self.fidelity = float(fidelity)
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
                         seed=self.seed, weight_dir=self.weight_dir, fidelity=fraction)

    # -- weight inheritance --------------------------------------------------------------
    def inherit(self, model: Any, metrics: dict[str, Any], parent: str | None) -> None:
        """Start ``model``'s layers from the trained weights of the genome's parent where
        the layer (same name: same position and kind) has weights of the same shapes.

        Active when the evaluator has a ``weight_dir`` (config key ``inherit_weights``)
        and the genome came with a ``parent`` key; records ``metrics["parent"]``,
        ``metrics["inherited_layers"]`` and, when the parent's weights are not in the
        cache, ``metrics["parent_weights"] = "missing"``.
        """
        if self.weight_dir is None:
            return
        metrics["inherited_layers"] = 0
        if parent is None:
            return
        metrics["parent"] = parent
        path = self.weight_dir / f"{parent}.npz"
        if not path.is_file():
            metrics["parent_weights"] = "missing"
            return
        with np.load(path) as stored:
            arrays: dict[str, list[np.ndarray]] = {}
            for name in stored.files:
                layer, _, index = name.rpartition("/")
                arrays.setdefault(layer, []).append((int(index), stored[name]))
        count = 0
        for layer in model.layers:
            old = [a for _, a in sorted(arrays.get(layer.name, []), key=lambda t: t[0])]
            current = layer.get_weights()
            if current and len(old) == len(current) and all(a.shape == b.shape for a, b in zip(old, current, strict=True)):
                layer.set_weights(old)
                count += 1
        metrics["inherited_layers"] = count

    def save_weights(self, model: Any, key: str) -> None:
        """Cache ``model``'s trained weights as ``weight_dir/<key>.npz`` (layer/index arrays)."""
        if self.weight_dir is None:
            return
        from ._io import atomic_path

        self.weight_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
        with atomic_path(self.weight_dir / f"{key}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @property
    def objective_names(self) -> tuple[str, ...]:
        return tuple(self.objectives)

    def data(self) -> Any:
        """The (cached) data split at this budget's sizes."""
        if self._data is None:
            b = self.budget
            self._data = self.task.data(train_size=b.train_samples, val_limit=b.val_samples, test_limit=0)
        return self._data

    def failure(self, genome: Genome, status: str, error: str, **extra: Any) -> EvalResult:
        """A failed record for ``genome`` with the worst objective values."""
        return EvalResult(
            key=genome.key,
            genome=genome.to_dict(),
            status=status,
            objectives=worst_values(list(self.objectives.values())),
            objective_names=self.objective_names,
            error=error,
            **extra,
        )

    def __call__(self, genome: Genome) -> EvalResult:
        import keras

        start = time.perf_counter()
        times: dict[str, float] = {}
        parent = getattr(genome, "parent", None)
        genome = genome.as_genome()
        try:
            self.task.space.check(genome)
        except ValueError as exc:
            return self.failure(genome, "failed", f"invalid genome: {exc}")
        if self.task.builds_models or "exec_time" in self.objectives:
            keras.utils.clear_session(free_memory=True)
        _configure_backend(self.budget.deterministic)
        keras.utils.set_random_seed(derive_seed(self.seed, genome.key))
        metrics: dict[str, Any] = {"fidelity": self.fidelity}
        if self.task.needs_data:
            self.data()  # a missing data set is the run's error, not the candidate's
        try:
            self.task.score(genome, self, metrics, times, start, parent=parent)
            if time.perf_counter() - start > self.budget.timeout:
                raise EvaluationTimeout(f"evaluation took longer than the {self.budget.timeout:g} s limit")
        except Exception as exc:  # recorded as a failed candidate with its reason
            status = _classify_error(exc)
            if status == "nan":
                times["total"] = time.perf_counter() - start
                return self.failure(genome, "nan", str(exc), metrics=metrics, times=times)
            log.warning("candidate %s %s: %s", genome.key, status, exc)
            times["total"] = time.perf_counter() - start
            return self.failure(genome, status, f"{type(exc).__name__}: {exc}"[:2000], metrics=metrics, times=times)
        finally:
            keras.utils.clear_session(free_memory=False)  # the next evaluation frees memory first
        times["total"] = time.perf_counter() - start
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

    def callbacks(self, start: float) -> list[Any]:
        """Keras callbacks enforcing this budget for a ``fit`` that began at ``start``."""
        import keras

        budget = self.budget

        class _Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                elapsed = time.perf_counter() - start
                if elapsed > budget.timeout:
                    raise EvaluationTimeout(f"training passed the {budget.timeout:g} s limit")
                if elapsed > budget.seconds:
                    self.model.stop_training = True

        callbacks: list[Any] = [keras.callbacks.TerminateOnNaN(), _Clock()]
        if budget.patience > 0 and budget.epochs > 1:
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=budget.patience, restore_best_weights=True)
            )
        return callbacks

    def time_inference(self, model: Any, x: np.ndarray) -> float:
        """Median seconds per sample of ``model.predict_on_batch`` at ``time_batch``
        (:func:`time_inference`)."""
        return time_inference(model, x, self.budget.time_batch, self.budget.time_repeats)


def time_inference(model: Any, x: np.ndarray, batch_size: int = 256, repeats: int = 5) -> float:
    """Median seconds per sample of ``model.predict_on_batch`` on ``batch_size`` samples
    of ``x`` (repeated to fill the batch), over ``repeats`` timed calls after a warm-up."""
    batch = x[:batch_size]
    if len(batch) < batch_size:
        reps = -(-batch_size // max(len(batch), 1))
        batch = np.concatenate([batch] * reps)[:batch_size]
    model.predict_on_batch(batch)  # warm-up (and compilation)
    samples = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        model.predict_on_batch(batch)
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples)) / len(batch)
