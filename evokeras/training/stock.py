"""The stock Keras training path: callbacks that enforce a budget, inference timing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evokeras.training.records import Budget, EvaluationTimeout

__all__ = ["WARMUP_FRACTION", "annealed_rate", "budget_callbacks", "distillation_loss", "distillation_targets", "predict",
           "time_inference", "timed_schedule", "warmup_cosine"]

#: The share of a timed training spent warming the learning rate up (linearly from 0).
WARMUP_FRACTION = 0.05


def budget_callbacks(budget: Budget, start: float, *, early_stopping: bool = True,
                     learning_rate: float | None = None, steps: int | None = None) -> list[Any]:
    """Keras callbacks enforcing ``budget`` for a ``fit`` whose evaluation began at
    ``start`` (``time.perf_counter()``): NaN termination, the soft time limit (stop and
    score), the hard limit (:class:`EvaluationTimeout`), and early stopping on
    validation loss with the best weights restored (``budget.patience``).

    An annealed budget (:attr:`Budget.anneal`) given the genome's ``learning_rate``
    (and the ``steps`` its epochs allow) gets a :func:`timed_schedule` over the seconds
    left instead of the soft limit and early stopping."""
    import keras  # the training layer's Keras-free modules stay importable without it

    timed = budget.anneal and learning_rate is not None

    class _Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            elapsed = time.perf_counter() - start
            if elapsed > budget.timeout:
                raise EvaluationTimeout(f"training passed the {budget.timeout:g} s limit")
            if elapsed > budget.seconds and not timed:
                self.model.stop_training = True

    callbacks: list[Any] = [keras.callbacks.TerminateOnNaN(), _Clock()]
    if timed:
        left = max(budget.seconds - (time.perf_counter() - start), 1e-3)
        callbacks.append(timed_schedule(left, float(learning_rate), steps=steps))  # type: ignore[arg-type]
    elif early_stopping and budget.patience > 0 and budget.epochs > 1:
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


def timed_schedule(seconds: float, peak: float, *, steps: int | None = None, warmup: float = WARMUP_FRACTION,
                   every: int = 8) -> Any:
    """A Keras callback that trains for ``seconds`` of wall time: the learning rate follows
    :func:`annealed_rate` of the elapsed share, and training stops once the time is spent
    (``fit``'s ``epochs`` is then only a cap). With ``steps`` (the batches the epochs
    allow), the share is the larger of the time's and the steps', so that the rate still
    reaches 0 when the epochs run out first.

    The clock starts when the first batch ends, so that compiling the training step (a
    few seconds for a recurrent model, more under load) does not eat the training; the
    first batch runs at the warm-up's first rate. The rate is set before every batch of
    the warm-up, then before every ``every``-th, and to 0 when the time is spent. The
    callback can span several ``fit`` calls (one per epoch): ``done`` says whether the
    time is spent. On JAX the trainer's state is synced before the rate is set, so the
    next step reads it."""
    import keras

    class _TimedSchedule(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start: float | None = None
            self.done = False
            self.batches = 0

        def _fraction(self) -> float:
            if self.start is None:
                return 0.0
            share = (time.perf_counter() - self.start) / seconds
            return max(share, self.batches / steps) if steps else share

        def _set_rate(self, fraction: float) -> None:
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()
            self.model.optimizer.learning_rate = annealed_rate(fraction, peak, warmup)

        def on_train_begin(self, logs: Any = None) -> None:
            self._set_rate(1.0 if self.done else self._fraction())

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            fraction = self._fraction()
            if self.start is not None and (fraction < warmup or self.batches % every == 0):
                self._set_rate(fraction)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batches += 1
            if self.start is None:
                self.start = time.perf_counter()
            elif not self.done and self._fraction() >= 1.0:
                self.done = True
                self._set_rate(1.0)
            if self.done:
                self.model.stop_training = True

    return _TimedSchedule()


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``model``'s outputs for ``x``, batch by batch (``predict_on_batch``: no input pipeline)."""
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


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


def distillation_loss(weight: float, temperature: float, *, from_logits: bool = True) -> Callable[[Any, Any], Any]:
    """The knowledge-distillation loss (Hinton et al., 2015) on predictions ``s`` of
    targets ``[label, teacher logits t...]``: ``(1 - weight) * CE(label, s) + weight * T^2 *
    CE(softmax(t / T), softmax(s / T))``. Without ``from_logits`` the predictions are
    probabilities and their logarithms serve as logits (the softmax of ``log(p) / T``
    is that of ``s / T``)."""
    import keras
    from keras import ops

    def loss(y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(y_true[:, 0], "int32")
        teacher = y_true[:, 1:]
        logits = y_pred if from_logits else ops.log(ops.clip(y_pred, 1e-7, 1.0))
        hard = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        soft = -ops.sum(ops.softmax(teacher / temperature, axis=-1) * ops.log_softmax(logits / temperature, axis=-1),
                        axis=-1) * (temperature * temperature)
        return (1.0 - weight) * hard + weight * soft

    return loss


def distillation_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """The targets :func:`distillation_loss` reads: ``[label, teacher logits...]`` per sample."""
    return np.concatenate([np.asarray(labels, np.float32).reshape(len(labels), 1),
                           np.asarray(teacher_logits, np.float32).reshape(len(labels), -1)], axis=1)


def warmup_cosine(learning_rate: float, steps: int) -> Any:
    """A Keras schedule over ``steps``: a linear warm-up over the first tenth, then a
    cosine decay to 0."""
    import keras

    steps = max(1, steps)
    warm = max(1, steps // 10) if steps > 1 else 0
    return keras.optimizers.schedules.CosineDecay(0.0 if warm else learning_rate, max(1, steps - warm),
                                                  warmup_target=learning_rate if warm else None, warmup_steps=warm)
