"""Budgets and evaluation records: the bottom of the training layer (no Keras).

:class:`Budget` says how much one evaluation may spend; :class:`EvalResult` is the record
of one evaluation; :func:`derive_seed` mixes the run seed with a genome key; failures
raise :class:`EvaluationTimeout` or :class:`NonFiniteError`. The constants shared by the
engine (the default objectives, the evaluation batch) live here, once.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_OBJECTIVES", "EVAL_BATCH", "FINAL_SEED_OFFSET", "WORST", "TrainSettings", "Budget", "EvalResult", "EvaluationTimeout", "NonFiniteError", "derive_seed", "is_storage_error", "worst_values"]


#: The magnitude of the worst value given to a failed candidate (finite, so that
#: NSGA-II's crowding distance stays defined).
WORST = 1e9

#: Batch size of validation and test scoring (``model.evaluate``).
EVAL_BATCH = 512

#: The objectives of a search when none are configured (both minimised).
DEFAULT_OBJECTIVES: dict[str, float] = {"val_error": -1.0, "exec_time": -1.0}

#: Offset of the final models' seeds from the run seed (final training draws from its own
#: stream, different from every search evaluation's).
FINAL_SEED_OFFSET = 1

class EvaluationTimeout(RuntimeError):
    """Raised inside training when an evaluation passes its hard time limit."""


class NonFiniteError(ArithmeticError):
    """Raised by a task when a loss or score is NaN or infinite (status ``nan``)."""


@dataclass(frozen=True)
class Budget:
    """How much one evaluation may spend.

    Attributes:
        epochs: most training epochs.
        train_samples: training examples used (a prefix of the fixed train split; with
            ``evaluation.inherit_weights``, a seeded window of the whole split per evaluation).
        val_samples: validation examples used (a prefix of the validation split).
        patience: early-stopping patience in epochs (on validation loss; best weights kept).
        seconds: soft limit: training stops after this many seconds and the model is scored.
        timeout: hard limit for the whole evaluation: past it the candidate fails with
            status ``timeout``.
        time_batch: batch size at which inference time is measured.
        time_repeats: timed calls (after one warm-up); the median is reported.
        episodes: episodes per evaluation of a reinforcement task (CartPole): what such
            an evaluation spends instead of training samples.
        anneal: train for ``seconds`` with the learning rate warmed up and decayed over
            that time (:func:`evokeras.training.stock.timed_schedule`), as a timed final
            training does (config key ``final.seconds``), instead of at the constant
            rate of the genome's gene: the evaluation is then a short copy of the final
            training. Off by default.

    How an evaluation trains (the fast path, deterministic ops) is not a budget: see
    :class:`TrainSettings`.
    """

    # the bounds of each field (metadata): what the configuration checks
    # (evokeras.engine.fields) and its JSON Schema say
    epochs: int = field(default=3, metadata={"minimum": 1})
    train_samples: int | None = field(default=10_000, metadata={"minimum": 1})
    val_samples: int | None = field(default=2_000, metadata={"minimum": 1})
    patience: int = field(default=2, metadata={"minimum": 0})
    seconds: float = field(default=60.0, metadata={"exclusiveMinimum": 0})
    timeout: float = field(default=300.0, metadata={"exclusiveMinimum": 0})
    time_batch: int = field(default=256, metadata={"minimum": 1})
    time_repeats: int = field(default=5, metadata={"minimum": 1})
    episodes: int = field(default=5, metadata={"minimum": 1})
    anneal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def scaled(self, fraction: float) -> Budget:
        """A budget of another fidelity: ``fraction`` of the training samples (of the
        epochs when all samples are used), at least one of each; an annealed budget keeps
        its samples and gets ``fraction`` of its seconds (what bounds its training).
        ``fraction`` above 1 (config key ``evaluation.final_rung``) trains longer; the
        ``timeout`` stays."""
        if self.anneal:
            return dataclasses.replace(self, seconds=self.seconds * fraction)
        if self.train_samples is not None:
            return dataclasses.replace(self, train_samples=max(1, int(round(self.train_samples * fraction))))
        return dataclasses.replace(self, epochs=max(1, int(round(self.epochs * fraction))))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "budget") -> Budget:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in fields:
                raise ValueError(f"{where}: unknown key {key!r} (known: {sorted(fields)})")
            if key in ("train_samples", "val_samples"):
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
            elif key == "anneal":
                ok = isinstance(value, bool)
            elif key in ("seconds", "timeout"):
                ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= (0 if key == "patience" else 1)
            if not ok:
                raise ValueError(f"{where}.{key}: invalid value {value!r}")
        return cls(**data)


@dataclass(frozen=True)
class TrainSettings:
    """How candidates are trained, whatever the budget (config keys ``evaluation.fast_path``
    and ``evaluation.deterministic``).

    Attributes:
        fast: train with :func:`evokeras.training.fast.fit_fast` (data on the device, many
            batches per compiled call) instead of ``model.fit`` where the task allows it.
        deterministic: ask the backend for deterministic ops (TensorFlow) -- slower, exact.
    """

    fast: bool = False
    deterministic: bool = True


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


#: ``errno`` values of a disk that cannot take a write: full, over quota, read-only,
#: permission lost, failing.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the disk refusing a write (the run's error: it stops, and
    ``resume`` continues once the disk is fixed), not a candidate's."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def worst_values(weights: Sequence[float]) -> tuple[float, ...]:
    """The worst value of each objective (``+WORST`` when minimised, ``-WORST`` when maximised)."""
    return tuple(-WORST if w > 0 else WORST for w in weights)


def derive_seed(seed: int, key: str) -> int:
    """A 31-bit seed from the run seed and a genome key (stable across processes)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little") & 0x7FFFFFFF
