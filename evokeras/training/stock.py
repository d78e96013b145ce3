"""The stock Keras training path: callbacks that enforce a budget, inference timing."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from evokeras.training.records import Budget, EvaluationTimeout

__all__ = ["WARMUP_FRACTION", "annealed_rate", "budget_callbacks", "time_inference", "timed_schedule"]

#: The share of a timed training spent warming the learning rate up (linearly from 0).
WARMUP_FRACTION = 0.05


def budget_callbacks(budget: Budget, start: float, *, early_stopping: bool = True) -> list[Any]:
    """Keras callbacks enforcing ``budget`` for a ``fit`` whose evaluation began at
    ``start`` (``time.perf_counter()``): NaN termination, the soft time limit (stop and
    score), the hard limit (:class:`EvaluationTimeout`), and early stopping on
    validation loss with the best weights restored (``budget.patience``). An annealed
    budget (:attr:`Budget.anneal`) leaves the soft limit to its :func:`timed_schedule`."""
    import keras  # the training layer's Keras-free modules stay importable without it

    class _Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            elapsed = time.perf_counter() - start
            if elapsed > budget.timeout:
                raise EvaluationTimeout(f"training passed the {budget.timeout:g} s limit")
            if elapsed > budget.seconds and not budget.anneal:
                self.model.stop_training = True

    callbacks: list[Any] = [keras.callbacks.TerminateOnNaN(), _Clock()]
    if early_stopping and budget.patience > 0 and budget.epochs > 1:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=budget.patience, restore_best_weights=True)
        )
    return callbacks


def annealed_rate(fraction: float, peak: float, warmup: float = WARMUP_FRACTION) -> float:
    """The learning rate ``fraction`` (0 to 1) of the way through a timed training: a
    linear warm-up to ``peak`` over the first ``warmup`` of the time, then a cosine decay
    to 0 at the end."""
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < warmup:
        return peak * max(fraction / warmup, 0.01)
    return peak * 0.5 * (1.0 + math.cos(math.pi * (fraction - warmup) / (1.0 - warmup)))


def timed_schedule(seconds: float, peak: float, *, warmup: float = WARMUP_FRACTION, every: int = 8) -> Any:
    """A Keras callback that trains for ``seconds`` of wall time: the learning rate follows
    :func:`annealed_rate` of the elapsed share (set before every ``every``-th batch), and
    training stops once the time is spent (``fit``'s ``epochs`` is then only a cap).

    The clock starts when the first batch ends, so that compiling the training step (a
    few seconds for a recurrent model, more under load) does not eat the training; the
    first batch runs at the warm-up's first rate. It can span several ``fit`` calls (one
    per epoch); ``done`` says whether the time is spent. On JAX the trainer's state is
    synced before the rate is set, so the next step reads it."""
    import keras

    class _TimedSchedule(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start: float | None = None
            self.done = False

        def _fraction(self) -> float:
            return 0.0 if self.start is None else (time.perf_counter() - self.start) / seconds

        def _set_rate(self) -> None:
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()
            self.model.optimizer.learning_rate = annealed_rate(self._fraction(), peak, warmup)

        def on_train_begin(self, logs: Any = None) -> None:
            self._set_rate()

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch % every == 0:
                self._set_rate()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.start is None:
                self.start = time.perf_counter()
            elif self._fraction() >= 1.0:
                self.done = True
            if self.done:
                self.model.stop_training = True

    return _TimedSchedule()


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
