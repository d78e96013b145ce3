"""The stock Keras training path: callbacks that enforce a budget, inference timing."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from evokeras.training.records import Budget, EvaluationTimeout

__all__ = ["budget_callbacks", "time_inference"]


def budget_callbacks(budget: Budget, start: float, *, early_stopping: bool = True) -> list[Any]:
    """Keras callbacks enforcing ``budget`` for a ``fit`` whose evaluation began at
    ``start`` (``time.perf_counter()``): NaN termination, the soft time limit (stop and
    score), the hard limit (:class:`EvaluationTimeout`), and early stopping on
    validation loss with the best weights restored (``budget.patience``)."""
    import keras  # the training layer's Keras-free modules stay importable without it

    class _Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            elapsed = time.perf_counter() - start
            if elapsed > budget.timeout:
                raise EvaluationTimeout(f"training passed the {budget.timeout:g} s limit")
            if elapsed > budget.seconds:
                self.model.stop_training = True

    callbacks: list[Any] = [keras.callbacks.TerminateOnNaN(), _Clock()]
    if early_stopping and budget.patience > 0 and budget.epochs > 1:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=budget.patience, restore_best_weights=True)
        )
    return callbacks


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
