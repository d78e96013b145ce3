"""What both backends of :func:`~evokeras.training.fast.fit_fast` share (no backend code).

The history record (:class:`FastHistory`), how an epoch is cut into batches and compiled
calls (:class:`_Plan`), the per-epoch sample orders (:func:`epoch_permutation`,
:func:`_epoch_orders`), the validation arrays (:class:`_ValData`), the time limits
(:class:`_Limits`), early stopping (:class:`_EarlyStopping`) and the epoch loop that
drives a backend's trainer (:func:`_run_epochs`, the interface :class:`_Trainer`).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from evokeras.training.records import EvaluationTimeout

#: The compiled JAX programs of the process, least recently used first (filled by
#: :mod:`._jax`, bounded by ``evokeras.training.fast.CACHE_SIZE``).
_PROGRAMS: collections.OrderedDict[Any, Any] = collections.OrderedDict()


@dataclass
class FastHistory:
    """What :func:`fit_fast` did.

    Attributes:
        loss: mean training loss of each epoch (over its samples, like ``model.fit``).
        val_loss: validation loss after each epoch (``nan`` without validation data).
        val_accuracy: validation (sparse categorical) accuracy after each epoch.
        epochs: epochs run.
        steps_per_epoch: optimizer steps per epoch.
        steps_per_call: training batches per compiled call (the scan length).
        compile_seconds: seconds spent compiling (JAX: lowering + XLA compilation of
            the programs not found in the cache; TensorFlow: tracing; a ``jit_compile``
            XLA compilation falls in the first epoch's time).
        train_seconds: seconds of the epochs themselves (training and validation).
        epoch_seconds: seconds of each epoch.
        stopped_early: training stopped before ``epochs`` (see ``stop_reason``).
        stop_reason: ``"patience"``, ``"seconds"``, ``"nan"`` or ``None``.
        nan: a training loss was NaN or infinite (the caller fails the candidate).
        best_epoch: the epoch (0-based) whose weights the model ends with.
        restored: the weights of ``best_epoch`` were restored (``patience > 0``).
        programs_compiled: programs compiled (JAX) or traced (TensorFlow) by this call.
        programs_reused: compiled programs this call found in the cache, compiled by an
            earlier call (JAX; possibly for another model of the same structure).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epochs: int = 0
    steps_per_epoch: int = 0
    steps_per_call: int = 0
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    stopped_early: bool = False
    stop_reason: str | None = None
    nan: bool = False
    best_epoch: int | None = None
    restored: bool = False
    programs_compiled: int = 0
    programs_reused: int = 0

    @property
    def history(self) -> dict[str, list[float]]:
        """The per-epoch figures in the form of ``keras.callbacks.History.history``."""
        return {
            "loss": list(self.loss),
            "val_loss": list(self.val_loss),
            "val_accuracy": list(self.val_accuracy),
        }

    @property
    def final_val_loss(self) -> float:
        """Validation loss of the weights the model ends with (``nan`` if none)."""
        return self.val_loss[self.best_epoch] if self.best_epoch is not None else math.nan

    @property
    def final_val_accuracy(self) -> float:
        """Validation accuracy of the weights the model ends with (``nan`` if none)."""
        return self.val_accuracy[self.best_epoch] if self.best_epoch is not None else math.nan


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of ``epoch`` (0-based) in :func:`fit_fast` with ``shuffle=True``:
    the ``epoch``-th permutation drawn from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    for _ in range(epoch):
        rng.permutation(n)
    return rng.permutation(n)


def _check_positive(name: str, value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"fit_fast: {name} must be positive, got {value!r}")


# -- batching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """How one epoch of ``n`` samples is cut into batches and compiled calls.

    ``full`` batches of ``batch`` samples and, unless dropped, one short batch of
    ``rest``; the first ``scan_total`` batches (the short one too when ``masked``: padded
    to ``batch`` with a 0/1 mask) are run ``chunk`` per compiled call, a short batch that
    is not masked is a separate ``tail`` step.
    """

    n: int
    batch: int
    full: int
    rest: int
    masked: bool
    chunk: int

    @classmethod
    def make(
        cls,
        n: int,
        batch_size: int,
        drop_remainder: bool,
        steps_per_call: int | None,
        can_mask: Callable[[], bool],
    ) -> _Plan:
        """The plan; ``can_mask()`` (asked only when there is a short batch) says whether
        the backend may pad and mask it."""
        B = min(int(batch_size), n)
        full = n // B
        rest = 0 if drop_remainder else n % B
        masked = rest > 0 and can_mask()
        scan_total = full + (1 if masked else 0)
        chunk = (
            scan_total if steps_per_call is None else min(int(steps_per_call), max(scan_total, 1))
        )
        return cls(n, B, full, rest, masked, chunk)

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch."""
        return self.full + (1 if self.rest else 0)

    @property
    def n_used(self) -> int:
        """Samples an epoch trains on."""
        return self.full * self.batch + self.rest

    @property
    def scan_total(self) -> int:
        """Batches handled by the scan part (in ``chunk``-sized compiled calls)."""
        return self.full + (1 if self.masked else 0)

    @property
    def tail(self) -> int:
        """Size of a separate last step (0: none)."""
        return 0 if self.masked else self.rest

    @property
    def perm_len(self) -> int:
        """Length of an epoch's order (padded with index 0 for a masked short batch)."""
        return self.scan_total * self.batch + self.tail


def _epoch_orders(plan: _Plan, seed: int, shuffle: bool) -> Iterator[np.ndarray]:
    """The ``int32`` sample order of each epoch in turn (:func:`epoch_permutation` when
    ``shuffle``, else the given order), padded or cut to ``plan.perm_len``."""
    rng = np.random.default_rng(seed)
    n, perm_len = plan.n, plan.perm_len
    while True:
        idx = rng.permutation(n) if shuffle else np.arange(n)
        idx = idx.astype(np.int32)
        if perm_len > n:
            idx = np.concatenate([idx, np.zeros(perm_len - n, np.int32)])
        yield idx[:perm_len]


def _pad_val(
    x: np.ndarray, y: np.ndarray, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = len(x)
    batch = max(1, min(batch, n))
    count = -(-n // batch)
    pad = count * batch - n
    mask = np.ones(count * batch, np.float32)
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        y = np.concatenate([y, np.zeros((pad, *y.shape[1:]), y.dtype)])
        mask[n:] = 0.0
    return x, y, mask, batch


class _ValData(NamedTuple):
    """Validation (or evaluation) arrays on the device, padded to whole batches."""

    x: Any
    y: Any
    mask: Any  # 1.0 for a real sample, 0.0 for padding
    batch: int
    batches: int
    n: int  # real samples (0: no validation)

    @classmethod
    def on_device(cls, x: Any, y: Any, batch: int, to_device: Callable[[Any], Any]) -> _ValData:
        xv, yv, mv, VB = _pad_val(np.asarray(x), np.asarray(y), int(batch))
        return cls(to_device(xv), to_device(yv), to_device(mv), VB, len(mv) // VB, len(x))

    @property
    def present(self) -> bool:
        return self.n > 0


_NO_VAL = _ValData(None, None, None, 0, 0, 0)


# -- limits and early stopping ------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    """The time limits of one :func:`fit_fast` call, counted from ``start``."""

    start: float
    seconds: float | None  # soft: stop after the epoch in which it passed
    timeout: float | None  # hard: raise

    def check_timeout(self) -> None:
        if self.timeout is not None and time.perf_counter() - self.start > self.timeout:
            raise EvaluationTimeout(f"training passed the {self.timeout:g} s limit")

    def past_seconds(self) -> bool:
        return self.seconds is not None and time.perf_counter() - self.start > self.seconds


class _EarlyStopping:
    """``keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True)``:
    ``weights`` are the trainer's snapshot of the best epoch so far (``None`` when
    ``patience`` is 0: no early stopping)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.wait = 0
        self.weights: Any = None

    def stops(
        self, epoch: int, val_loss: float, snapshot: Callable[[], Any], hist: FastHistory
    ) -> bool:
        """Record ``epoch``; whether patience ran out (then ``hist.stop_reason`` is set)."""
        if self.patience <= 0:
            return False
        if self.weights is None:
            self.weights, hist.best_epoch = snapshot(), epoch
        self.wait += 1
        if val_loss < self.best:
            self.best, self.wait = val_loss, 0
            self.weights, hist.best_epoch = snapshot(), epoch
        elif self.wait >= self.patience and epoch > 0:
            hist.stop_reason = "patience"
            return True
        return False


# -- the epoch loop -------------------------------------------------------------------------


class _Trainer(Protocol):
    """One model's training on one backend (``_jax.Trainer``, ``_tensorflow.Trainer``)."""

    def run_epoch(self, perm: Any) -> tuple[Any, Any, Any]:
        """Train one epoch in ``perm`` order, then validate: ``(training loss summed over
        the samples, validation loss sum, validation correct count)``."""
        ...

    def snapshot(self) -> Any:
        """A copy of the model's current weights, for :meth:`restore`."""
        ...

    def finish(self) -> None:
        """Leave the trained state in the model's (and optimizer's) variables."""
        ...

    def restore(self, weights: Any) -> None:
        """Set the model's weights to a :meth:`snapshot`."""
        ...


def _run_epochs(
    trainer: _Trainer,
    orders: Iterator[np.ndarray],
    to_device: Callable[[Any], Any],
    epochs: int,
    plan: _Plan,
    val: _ValData,
    hist: FastHistory,
    limits: _Limits,
    stopper: _EarlyStopping,
) -> None:
    """Up to ``epochs`` epochs, recorded in ``hist``; stops on a non-finite loss, patience
    or ``limits.seconds``; raises :class:`EvaluationTimeout` past ``limits.timeout``."""
    for epoch in range(epochs):
        t0 = time.perf_counter()
        compile_before = hist.compile_seconds
        perm = to_device(next(orders))
        loss_sum, vl, vc = trainer.run_epoch(perm)
        loss = float(loss_sum) / plan.n_used
        val_loss = float(vl) / val.n if val.present else math.nan
        val_acc = float(vc) / val.n if val.present else math.nan
        hist.loss.append(loss)
        hist.val_loss.append(val_loss)
        hist.val_accuracy.append(val_acc)
        hist.epochs = epoch + 1
        hist.epoch_seconds.append(
            time.perf_counter() - t0 - (hist.compile_seconds - compile_before)
        )
        limits.check_timeout()
        if not math.isfinite(loss):
            hist.nan, hist.stop_reason = True, "nan"
            break
        if stopper.stops(epoch, val_loss, trainer.snapshot, hist):
            break
        if limits.past_seconds() and epoch + 1 < epochs:
            hist.stop_reason = "seconds"
            break
    hist.train_seconds = float(sum(hist.epoch_seconds))
    hist.stopped_early = hist.epochs < epochs
    if not hist.stopped_early and hist.stop_reason == "patience":
        hist.stop_reason = None  # patience ran out in the last epoch anyway


def _finish(trainer: _Trainer, stopper: _EarlyStopping, hist: FastHistory) -> None:
    """Write the trained state back, then restore the best epoch's weights (if any)."""
    trainer.finish()
    if stopper.weights is not None:
        trainer.restore(stopper.weights)
        hist.restored = True
    else:
        hist.best_epoch = hist.epochs - 1
