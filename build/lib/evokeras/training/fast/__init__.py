"""Fast training of candidate models: data on the device, many batches per compiled call.

Stock ``model.fit`` runs one compiled step per batch from a Python loop, with a data
adapter, callbacks and metric objects in between; for the small networks a search
trains, that loop costs far more than the arithmetic. :func:`fit_fast` trains the same
way (same loss, same optimizer update, same batch order as ``model.fit(shuffle=False)``
on pre-permuted data) but:

* the training and validation arrays are converted once per call to backend tensors
  (``jax.device_put`` / ``tf.identity(tf.constant(...))``) and stay on the device;
* each epoch's order is a seeded permutation (:func:`epoch_permutation`), and batches
  are gathered on the device from it;
* one compiled call runs a whole epoch (or ``steps_per_call`` batches; on JAX's CPU
  backend a convolutional model runs one compiled step per batch, as XLA:CPU is slow
  at convolution gradients inside loops -- see :func:`_auto_steps_per_call`):

  - **JAX**: a ``jax.jit``-ed, ahead-of-time compiled program whose body is a
    ``jax.lax.scan`` over batches of ``model.stateless_call`` + ``jax.value_and_grad``
    + ``optimizer.stateless_apply``; the validation pass (a second scan, inference
    mode) is fused into the same program, so a candidate costs one compilation;
  - **TensorFlow**: a ``tf.function`` (``jit_compile`` optional) with a
    ``tf.while_loop`` over batches of ``GradientTape`` + ``optimizer.apply`` on the
    model's variables, and a second ``tf.function`` for the validation pass.

Steps per epoch (``n`` training samples, batch size ``b = min(batch_size, n)``):
``ceil(n / b)`` optimizer steps, the last on the ``n % b`` remaining samples, as
``model.fit`` does; with ``drop_remainder=True`` it is ``n // b`` (the remaining
samples of that epoch's permutation are skipped). On JAX the short last batch is run
padded to ``b`` with a 0/1 mask inside the same scan (exact: the loss is the mean over
the valid samples) unless the model has a ``BatchNormalization`` layer, whose batch
statistics padding would change; then it is a separate step of its own shape in the
same program.

What is compiled and reused:

* JAX: programs are cached in a process-wide LRU (:data:`CACHE_SIZE` entries), keyed by
  the model's *structure* -- the functional/sequential config without the model name,
  the optimizer class and config (without the learning rate, which is an optimizer
  variable and so an input), the loss -- plus the program's static layout (batch size,
  steps, chunking, validation batches) and the shapes and dtypes of every input. Two
  candidates with the same architecture and batch size (e.g. differing only in learning
  rate or initial weights) share one compiled program, across calls and models.
  Subclassed models are keyed by identity only (their config need not describe their
  computation). Nothing is retraced per epoch or per chunk.
* TensorFlow: the ``tf.function``\\ s close over the model's variables, so they are
  built per model (cached on the model object: repeated :func:`fit_fast` /
  :func:`evaluate_fast` calls on one model trace once per input shape); a new model is
  traced anew, as ``model.fit`` does.

Random layers (dropout) draw from the model's own seed generators, whose state is
carried through the compiled calls as ``model.fit`` carries it; their masks need not
match those of a ``model.fit`` run.

Not supported (use ``model.fit``): sample or class weights, several outputs or losses,
metrics other than sparse categorical accuracy (reported as ``val_accuracy``), data
that does not fit on the device.

The package: this module holds the public functions; :mod:`._common` what the backends
share (the history record, batching and epoch orders, time limits, early stopping, the
epoch loop), :mod:`._model` the model's loss and accuracy in ``keras.ops``, and
:mod:`._jax` and :mod:`._tensorflow` one trainer each, selected by
``keras.backend.backend()``.
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any

import numpy as np

from evokeras.training.fast._common import (
    _NO_VAL,
    _PROGRAMS,
    FastHistory,
    _check_positive,
    _EarlyStopping,
    _epoch_orders,
    _finish,
    _Limits,
    _Plan,
    _run_epochs,
    _ValData,
    epoch_permutation,
)
from evokeras.training.fast._model import _loss_object, _PerSampleLoss

__all__ = [
    "CACHE_SIZE",
    "FastHistory",
    "clear_cache",
    "epoch_permutation",
    "evaluate_fast",
    "fit_fast",
]

#: How many compiled JAX programs the process keeps (least recently used are dropped).
CACHE_SIZE = 32


def clear_cache() -> None:
    """Drop every compiled JAX program (per-model TensorFlow functions go with their model)."""
    _PROGRAMS.clear()


def _implementation(backend: str) -> ModuleType:
    """The trainer module of ``backend``: ``to_device``, ``masks_last_batch``,
    ``default_steps_per_call``, ``Trainer`` (see :class:`._common._Trainer`) and
    ``evaluate``.

    Imported here, on first use: each imports its backend (and Keras) at its top, and the
    package must import without either backend installed.
    """
    return importlib.import_module(f"{__name__}._{'jax' if backend == 'jax' else 'tensorflow'}")


def _check_arguments(
    epochs: int, batch_size: int, seconds: Any, timeout: Any, steps_per_call: Any
) -> None:
    if epochs < 1 or batch_size < 1:
        raise ValueError(
            f"fit_fast: epochs and batch_size must be >= 1, got {epochs}, {batch_size}"
        )
    for name, value in (
        ("seconds", seconds),
        ("timeout", timeout),
        ("steps_per_call", steps_per_call),
    ):
        _check_positive(name, value)


def _compiled_parts(model: Any) -> tuple[Any, _PerSampleLoss, ModuleType]:
    """The model's (built) optimizer, its loss, and the trainer module of the backend."""
    import keras

    optimizer = model.optimizer
    if optimizer is None:
        raise ValueError("fit_fast: the model must be compiled with an optimizer")
    loss_obj = _loss_object(model)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise NotImplementedError(f"fit_fast: backend {backend!r} is not supported")
    return optimizer, loss_obj, _implementation(backend)


def _plan(
    model: Any,
    impl: ModuleType,
    n: int,
    batch_size: int,
    drop_remainder: bool,
    steps_per_call: int | None,
) -> _Plan:
    if n == 0:
        raise ValueError("fit_fast: no training samples")
    if steps_per_call is None:
        steps_per_call = impl.default_steps_per_call(model)
    return _Plan.make(
        n, batch_size, drop_remainder, steps_per_call, lambda: impl.masks_last_batch(model)
    )


def fit_fast(
    model: Any,
    x_train: Any,
    y_train: Any,
    x_val: Any = None,
    y_val: Any = None,
    *,
    batch_size: int,
    epochs: int,
    patience: int = 0,
    seconds: float | None = None,
    timeout: float | None = None,
    seed: int = 0,
    steps_per_call: int | None = None,
    shuffle: bool = True,
    drop_remainder: bool = False,
    val_batch_size: int = 512,
    start: float | None = None,
    jit_compile: bool = False,
) -> FastHistory:
    """Train a compiled Keras model like ``model.fit`` with validation and early stopping.

    Args:
        model: a built model compiled with an optimizer and a single per-sample loss
            (``"sparse_categorical_crossentropy"`` for the image tasks).
        x_train, y_train: training arrays (numpy or backend tensors); labels are integers.
        x_val, y_val: validation arrays (optional; needed for ``patience``).
        batch_size: training batch size (clipped to the number of samples).
        epochs: most epochs.
        patience: early stopping on validation loss as ``keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True)``: stop
            after ``patience`` epochs without improvement, and end with the weights of
            the best epoch (0: no early stopping, keep the last weights).
        seconds: soft limit: stop after the epoch in which it passed.
        timeout: hard limit: raise :class:`~evokeras.training.records.EvaluationTimeout` when it
            has passed (checked after every compiled call -- an epoch, or a chunk of
            ``steps_per_call`` batches -- and after compilation).
        seed: the seed of the per-epoch permutations (:func:`epoch_permutation`).
        steps_per_call: batches per compiled call (``None``: the whole epoch, with the
            validation pass in the same call -- except for convolutional models on JAX's
            CPU backend, where it is 1, see :func:`_auto_steps_per_call`). Smaller values
            bound the time between two ``timeout`` checks.
        shuffle: draw a new permutation each epoch; ``False`` keeps the given order.
        drop_remainder: skip the last short batch of each epoch (see the module doc).
        val_batch_size: batch size of the validation pass (inference mode; exact).
        start: the ``time.perf_counter()`` value the limits count from (default: now).
        jit_compile: TensorFlow only: compile the ``tf.function``\\ s with XLA
            (``model.fit`` does not on CPU-only TensorFlow). For GPUs: on CPU, XLA runs
            convolution gradients inside loops very slowly (an MNIST CNN epoch took 45 s
            instead of 1.6 s).

    Returns:
        A :class:`FastHistory`. On a non-finite training loss training stops at the end
        of that epoch and ``history.nan`` is set.

    Raises:
        EvaluationTimeout: past ``timeout``.
    """
    limits = _Limits(time.perf_counter() if start is None else float(start), seconds, timeout)
    _check_arguments(epochs, batch_size, seconds, timeout, steps_per_call)
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if patience > 0 and not has_val:
        raise ValueError("fit_fast: patience needs validation data")
    optimizer, loss_obj, impl = _compiled_parts(model)
    x_np, y_np = np.asarray(x_train), np.asarray(y_train)
    plan = _plan(model, impl, len(x_np), batch_size, drop_remainder, steps_per_call)
    hist = FastHistory(steps_per_epoch=plan.steps, steps_per_call=plan.chunk)
    x_dev, y_dev = impl.to_device(x_np), impl.to_device(y_np)
    val = _ValData.on_device(x_val, y_val, val_batch_size, impl.to_device) if has_val else _NO_VAL
    trainer = impl.Trainer(
        model, optimizer, loss_obj, plan, (x_dev, y_dev, val), hist, limits, jit_compile
    )
    stopper = _EarlyStopping(patience)
    orders = _epoch_orders(plan, seed, shuffle)
    _run_epochs(trainer, orders, impl.to_device, epochs, plan, val, hist, limits, stopper)
    _finish(trainer, stopper, hist)
    return hist


def evaluate_fast(
    model: Any, x: Any, y: Any, *, batch_size: int = 512, jit_compile: bool = False
) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``model`` on ``(x, y)`` in one compiled call (inference mode).

    The loss is the model's compiled loss averaged over the samples (as
    ``model.evaluate`` reports it), the accuracy is sparse categorical accuracy. The last
    short batch is padded and masked (exact: inference treats samples independently).
    ``jit_compile`` applies to TensorFlow only.
    """
    import keras

    x_np, y_np = np.asarray(x), np.asarray(y)
    n = len(x_np)
    if n == 0:
        raise ValueError("evaluate_fast: no samples")
    loss_obj = _loss_object(model)
    hist = FastHistory()
    impl = _implementation(keras.backend.backend())
    val = _ValData.on_device(x_np, y_np, batch_size, impl.to_device)
    loss_sum, correct = impl.evaluate(model, loss_obj, val, hist, jit_compile)
    return float(loss_sum) / n, float(correct) / n
