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
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .evaluate import EvaluationTimeout

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

_ATTR = "_evokeras_fasttrain"  # per-model cache attribute (TensorFlow functions, keys)


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


# -- caches ---------------------------------------------------------------------------

_PROGRAMS: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_UIDS = itertools.count()


def clear_cache() -> None:
    """Drop every compiled JAX program (per-model TensorFlow functions go with their model)."""
    _PROGRAMS.clear()


def _model_cache(model: Any) -> dict[str, Any]:
    cache = model.__dict__.get(_ATTR)
    if cache is None:
        cache = {}
        object.__setattr__(model, _ATTR, cache)  # bypass Keras attribute tracking
    return cache


def _token(optimizer: Any, loss_obj: Any) -> tuple[Any, str]:
    """What a per-model cache entry depends on besides the model: its compile arguments."""
    return optimizer, json.dumps(loss_obj.config, sort_keys=True, default=repr)


def _structure_key(model: Any, optimizer: Any, loss_obj: Any) -> Any:
    """A key equal for models that compute the same function of the same state layout.

    Functional and Sequential models are described by their config (recomputed on every
    call, so a changed ``trainable`` flag or recompilation gives a new key); anything
    else, or a config that cannot be serialised, is keyed by the model's identity.
    """
    import keras

    opt_config = None
    if optimizer is not None:
        opt_config = dict(optimizer.get_config())
        opt_config.pop("name", None)
        if isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable):
            opt_config.pop("learning_rate", None)  # a variable: an input, not a constant
    compiled = [type(optimizer).__qualname__, opt_config, loss_obj.config]
    functional = type(model).__name__ in ("Functional", "Sequential")
    if functional and type(model).__module__.startswith("keras."):
        try:
            config = dict(model.get_config())
            config.pop("name", None)
            parts = [keras.backend.backend(), keras.config.floatx(), type(model).__name__, config]
            return json.dumps(parts + compiled, sort_keys=True, default=repr)
        except Exception:  # pragma: no cover - unusual layers: fall back to identity
            pass
    cache = _model_cache(model)
    if "uid" not in cache:
        cache["uid"] = next(_UIDS)
    return ("model", cache["uid"], json.dumps(compiled, sort_keys=True, default=repr))


# -- loss and accuracy (backend-neutral, keras.ops) -----------------------------------


class _PerSampleLoss(NamedTuple):
    """The model's compiled loss, unreduced: ``fn(y_true, y_pred)`` -> per-sample values."""

    fn: Any
    dtype: str
    config: Any  # for the cache key


def _loss_object(model: Any) -> _PerSampleLoss:
    """The model's compiled loss, resolved as ``model.compile`` resolves it."""
    import keras

    identifier = getattr(model, "loss", None)
    if identifier is None:
        raise ValueError("fit_fast: the model must be compiled with a loss")
    if isinstance(identifier, list | tuple | dict):
        raise ValueError("fit_fast: only a single loss is supported")
    loss = keras.losses.get(identifier)
    config = keras.saving.serialize_keras_object(loss)
    if isinstance(loss, keras.losses.Loss):  # its ``call`` is the unreduced loss
        return _PerSampleLoss(loss.call, loss.dtype, config)
    return _PerSampleLoss(loss, keras.config.floatx(), config)


def _per_sample_loss(loss_obj: _PerSampleLoss, y: Any, y_pred: Any) -> Any:
    """Unreduced loss, one value per sample (trailing axes averaged, as Keras reduces)."""
    from keras import ops

    y_pred = ops.convert_to_tensor(y_pred, dtype=loss_obj.dtype)
    y = ops.convert_to_tensor(y, dtype=loss_obj.dtype)
    values = loss_obj.fn(y, y_pred)
    if len(values.shape) > 1:
        values = ops.mean(ops.reshape(values, (values.shape[0], -1)), axis=1)
    return values


def _extra_loss(losses: Any) -> Any:
    """Sum of forward-pass / regularisation losses (0.0 when there are none)."""
    import keras
    from keras import ops

    if not losses:
        return 0.0
    return ops.sum(ops.stack([ops.cast(ops.sum(v), keras.config.floatx()) for v in losses]))


def _correct(y: Any, y_pred: Any) -> Any:
    """1.0 where ``argmax(y_pred)`` equals the integer label (sparse categorical accuracy)."""
    from keras import ops

    y = ops.reshape(y, (-1,))
    return ops.cast(
        ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), ops.cast(y, "int32")), "float32"
    )


def _has_batch_coupling(model: Any) -> bool:
    """Whether a layer couples the samples of a training batch (BatchNormalization)."""
    import keras

    for layer in model._flatten_layers(include_self=False):
        if (
            isinstance(layer, keras.layers.BatchNormalization)
            or "BatchNorm" in type(layer).__name__
        ):
            return True
    return False


def _auto_steps_per_call(model: Any) -> int | None:
    """``1`` for a convolutional model on JAX's CPU backend, else ``None`` (whole epochs).

    XLA:CPU runs the gradient of a convolution 5-8x slower inside a loop body than in a
    loop-free program (jax-ml/jax#12868; measured here on MNIST CNNs: 0.76 s vs 0.10 s
    per batch of 128), which makes a scanned epoch slower than stock ``fit``. There
    one compiled step per batch is dispatched from Python instead (asynchronously, data
    still on the device). GPUs and TPUs, and models without convolutions, scan.
    """
    import jax

    if jax.default_backend() != "cpu":
        return None
    for layer in model._flatten_layers(include_self=False):
        if "Conv" in type(layer).__name__:
            return 1
    return None


def _training_kwargs(model: Any, training: bool) -> dict[str, Any]:
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


# -- layout -----------------------------------------------------------------------------


class _Layout(NamedTuple):
    """The static shape of one compiled program (part of the cache key)."""

    batch: int  # training batch size
    n: int  # training samples (for the mask of a padded last batch)
    scan_steps: int  # batches in this call's scan
    total_steps: int  # batches of the scan part of one epoch (guard for the last chunk)
    masked: bool  # the last scan batch is padded and masked
    tail: int  # size of a separate last step (0: none)
    val_batch: int  # validation batch size (0: no validation in this program)
    val_batches: int


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


# -- JAX ---------------------------------------------------------------------------------


def _jax_program(model: Any, optimizer: Any, loss_obj: Any, lay: _Layout) -> Any:
    """The (uncompiled) JAX function of one call: train ``scan_steps`` (+ tail), then validate."""
    import jax
    import jax.numpy as jnp
    import keras

    train_kw = _training_kwargs(model, True)
    infer_kw = _training_kwargs(model, False)
    B = lay.batch

    def step(state: Any, xb: Any, yb: Any, mask: Any, count: Any) -> tuple[Any, Any]:
        tv, ntv, ov = state

        def loss_fn(tv: Any, ntv: Any) -> Any:
            y_pred, ntv, losses = model.stateless_call(tv, ntv, xb, return_losses=True, **train_kw)
            per = _per_sample_loss(loss_obj, yb, y_pred)
            total = jnp.sum(per) if mask is None else jnp.sum(per * mask)
            loss = total / count + _extra_loss(losses)
            with keras.StatelessScope(
                state_mapping=list(zip(optimizer.variables, ov, strict=True))
            ):
                scaled = optimizer.scale_loss(loss)
            return scaled, (loss, ntv)

        (_, (loss, ntv)), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return (list(tv), list(ntv), list(ov)), loss

    def program(
        state: Any, x: Any, y: Any, perm: Any, xv: Any, yv: Any, mv: Any, start: Any
    ) -> Any:
        loss_sum = jnp.zeros((), jnp.float32)
        if lay.scan_steps:

            def body(state: Any, i: Any) -> Any:
                g = start + i
                idx = jax.lax.dynamic_slice(perm, (g * B,), (B,))
                xb, yb = (
                    jnp.take(x, idx, axis=0, mode="clip"),
                    jnp.take(y, idx, axis=0, mode="clip"),
                )
                if lay.masked:
                    valid = jnp.clip(lay.n - g * B, 0, B)
                    mask = (jnp.arange(B) < valid).astype(jnp.float32)
                    count = valid.astype(jnp.float32)
                else:
                    mask, count = None, jnp.float32(B)

                def run(state: Any) -> Any:
                    state, loss = step(state, xb, yb, mask, count)
                    return state, (loss * count).astype(jnp.float32)

                if lay.total_steps % lay.scan_steps:  # the last chunk runs past the epoch
                    return jax.lax.cond(
                        g < lay.total_steps, run, lambda s: (s, jnp.zeros((), jnp.float32)), state
                    )
                return run(state)

            if lay.scan_steps == 1:  # no loop at all (see _auto_steps_per_call)
                state, loss = body(state, jnp.int32(0))
                loss_sum = loss_sum + loss
            else:
                steps = jnp.arange(lay.scan_steps, dtype=jnp.int32)
                state, losses = jax.lax.scan(body, state, steps)
                loss_sum = loss_sum + jnp.sum(losses)
        if lay.tail:
            idx = jax.lax.dynamic_slice(perm, (lay.total_steps * B,), (lay.tail,))
            state, loss = step(
                state,
                jnp.take(x, idx, axis=0, mode="clip"),
                jnp.take(y, idx, axis=0, mode="clip"),
                None,
                jnp.float32(lay.tail),
            )
            loss_sum = loss_sum + loss * lay.tail
        val_loss = val_correct = jnp.zeros((), jnp.float32)
        if lay.val_batch:
            tv, ntv = state[0], state[1]
            VB = lay.val_batch

            def val_body(acc: Any, j: Any) -> Any:
                xb = jax.lax.dynamic_slice_in_dim(xv, j * VB, VB)
                yb = jax.lax.dynamic_slice_in_dim(yv, j * VB, VB)
                mb = jax.lax.dynamic_slice_in_dim(mv, j * VB, VB)
                y_pred, _, losses = model.stateless_call(
                    tv, ntv, xb, return_losses=True, **infer_kw
                )
                per = _per_sample_loss(loss_obj, yb, y_pred) + _extra_loss(losses)
                return (
                    acc[0] + jnp.sum(per * mb),
                    acc[1] + jnp.sum(_correct(yb, y_pred) * mb),
                ), None

            zero = jnp.zeros((), jnp.float32)
            (val_loss, val_correct), _ = jax.lax.scan(
                val_body, (zero, zero), jnp.arange(lay.val_batches, dtype=jnp.int32)
            )
        return state, loss_sum, val_loss, val_correct

    return program


def _signature(args: Any) -> Any:
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(args)
    return str(treedef), tuple(
        (tuple(a.shape), str(a.dtype), bool(getattr(a, "weak_type", False))) for a in leaves
    )


def _jax_compiled(
    model: Any,
    optimizer: Any,
    loss_obj: Any,
    structure: Any,
    lay: _Layout,
    args: tuple,
    hist: FastHistory,
) -> Any:
    """The compiled program for ``lay`` and these argument shapes (from the cache if possible)."""
    import jax

    key = (structure, lay, _signature(args))
    entry = _PROGRAMS.get(key)
    if entry is not None:
        _PROGRAMS.move_to_end(key)
        hist.programs_reused += 1
        return entry
    t0 = time.perf_counter()
    compiled = jax.jit(_jax_program(model, optimizer, loss_obj, lay)).lower(*args).compile()
    hist.compile_seconds += time.perf_counter() - t0
    hist.programs_compiled += 1
    _PROGRAMS[key] = compiled
    while len(_PROGRAMS) > CACHE_SIZE:
        _PROGRAMS.popitem(last=False)
    return compiled


# -- TensorFlow ----------------------------------------------------------------------


def _tf_functions(model: Any, optimizer: Any, loss_obj: Any, jit_compile: bool) -> dict[str, Any]:
    """``train(x, y, perm, start, stop, batch)`` and ``evaluate(xv, yv, mv, batch)`` for ``model``."""
    cache = _model_cache(model)
    key = f"tf_functions_{bool(jit_compile)}"
    token = _token(optimizer, loss_obj)
    if key in cache and cache[key]["token"][0] is optimizer and cache[key]["token"][1] == token[1]:
        return cache[key]
    import tensorflow as tf

    train_kw = _training_kwargs(model, True)
    infer_kw = _training_kwargs(model, False)

    def train(x: Any, y: Any, perm: Any, start: Any, stop: Any, batch: int) -> Any:
        variables = model.trainable_variables

        def body(i: Any, total: Any) -> Any:
            idx = tf.slice(perm, [i * batch], [batch])
            xb, yb = tf.gather(x, idx), tf.gather(y, idx)
            with tf.GradientTape() as tape:
                y_pred = model(xb, **train_kw)
                loss = tf.reduce_sum(_per_sample_loss(loss_obj, yb, y_pred)) / batch
                loss = loss + _extra_loss(model.losses)
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, variables)
            optimizer.apply(grads, variables)
            return i + 1, total + tf.cast(loss, tf.float32) * batch

        _, total = tf.while_loop(
            lambda i, _: i < stop, body, (start, tf.zeros((), tf.float32)), parallel_iterations=1
        )
        return total

    def evaluate(xv: Any, yv: Any, mv: Any, batch: int) -> Any:
        count = xv.shape[0] // batch
        xr = tf.reshape(xv, [count, batch, *xv.shape[1:]])
        yr = tf.reshape(yv, [count, batch, *yv.shape[1:]])
        mr = tf.reshape(mv, [count, batch])

        def body(j: Any, loss_sum: Any, correct: Any) -> Any:
            xb, yb, mb = tf.gather(xr, j), tf.gather(yr, j), tf.gather(mr, j)
            y_pred = model(xb, **infer_kw)
            per = _per_sample_loss(loss_obj, yb, y_pred) + _extra_loss(model.losses)
            return (
                j + 1,
                loss_sum + tf.reduce_sum(tf.cast(per, tf.float32) * mb),
                correct + tf.reduce_sum(_correct(yb, y_pred) * mb),
            )

        zero = tf.zeros((), tf.float32)
        _, loss_sum, correct = tf.while_loop(
            lambda j, *_: j < count, body, (tf.constant(0), zero, zero), parallel_iterations=1
        )
        return loss_sum, correct

    fns = {
        "token": token,
        "train": tf.function(train, jit_compile=jit_compile, autograph=False),
        "evaluate": tf.function(evaluate, jit_compile=jit_compile, autograph=False),
        "traced": set(),
    }
    cache[key] = fns
    return fns


def _tf_call(fns: dict[str, Any], name: str, args: tuple, hist: FastHistory) -> Any:
    """Call ``fns[name]``, tracing it first (timed) for a new input signature."""
    import tensorflow as tf

    sig = (name, *((tuple(a.shape), a.dtype.name) if tf.is_tensor(a) else a for a in args))
    if sig not in fns["traced"]:
        t0 = time.perf_counter()
        fns[name].get_concrete_function(*args)
        hist.compile_seconds += time.perf_counter() - t0
        hist.programs_compiled += 1
        fns["traced"].add(sig)
    return fns[name](*args)


# -- the public functions -------------------------------------------------------------------


def _to_device(a: np.ndarray) -> Any:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.device_put(a)
    import tensorflow as tf

    return tf.identity(tf.constant(a))  # identity places it on the default device (GPU if any)


def _check_positive(name: str, value: Any) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"fit_fast: {name} must be positive, got {value!r}")


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
        timeout: hard limit: raise :class:`~evokeras.evaluate.EvaluationTimeout` when it
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
    import keras

    t_start = time.perf_counter() if start is None else float(start)
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
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if patience > 0 and not has_val:
        raise ValueError("fit_fast: patience needs validation data")
    optimizer = model.optimizer
    if optimizer is None:
        raise ValueError("fit_fast: the model must be compiled with an optimizer")
    loss_obj = _loss_object(model)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise NotImplementedError(f"fit_fast: backend {backend!r} is not supported")

    x_np, y_np = np.asarray(x_train), np.asarray(y_train)
    n = len(x_np)
    if n == 0:
        raise ValueError("fit_fast: no training samples")
    B = min(int(batch_size), n)
    full = n // B
    rest = 0 if drop_remainder else n % B
    steps = full + (1 if rest else 0)
    n_used = full * B + rest
    masked = backend == "jax" and rest > 0 and not _has_batch_coupling(model)
    scan_total = full + (1 if masked else 0)  # batches handled by the scan part
    tail = 0 if masked else rest
    perm_len = scan_total * B + tail

    hist = FastHistory(steps_per_epoch=steps)
    x_dev, y_dev = _to_device(x_np), _to_device(y_np)
    if has_val:
        xv, yv, mv, VB = _pad_val(np.asarray(x_val), np.asarray(y_val), int(val_batch_size))
        xv, yv, mv = _to_device(xv), _to_device(yv), _to_device(mv)
        n_val = len(x_val)
        val_batches = len(mv) // VB
    else:
        xv = yv = mv = None
        VB = val_batches = n_val = 0
    if steps_per_call is None and backend == "jax":
        steps_per_call = _auto_steps_per_call(model)
    chunk = scan_total if steps_per_call is None else min(int(steps_per_call), max(scan_total, 1))
    hist.steps_per_call = chunk

    def check_timeout() -> None:
        if timeout is not None and time.perf_counter() - t_start > timeout:
            raise EvaluationTimeout(f"training passed the {timeout:g} s limit")

    rng = np.random.default_rng(seed)

    def order(epoch: int) -> np.ndarray:
        idx = rng.permutation(n) if shuffle else np.arange(n)
        idx = idx.astype(np.int32)
        if perm_len > n:
            idx = np.concatenate([idx, np.zeros(perm_len - n, np.int32)])
        return idx[:perm_len]

    weights_ids = [id(v) for v in model.weights]
    best = math.inf
    best_weights: Any = None
    wait = 0

    if backend == "jax":
        import jax.numpy as jnp

        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
        )
        whole = chunk >= scan_total
        if whole:
            lay_epoch = _Layout(B, n, scan_total, scan_total, masked, tail, VB, val_batches)
        else:
            lay_chunk = _Layout(B, n, chunk, scan_total, masked, 0, 0, 0)
            lay_end = _Layout(B, n, 0, scan_total, masked, tail, VB, val_batches)
        var_ids = [id(v) for v in model.trainable_variables] + [
            id(v) for v in model.non_trainable_variables
        ]
        structure = _structure_key(model, optimizer, loss_obj)
        programs: dict[_Layout, Any] = {}  # the argument shapes do not change between calls

        def program(lay: _Layout, args: tuple) -> Any:
            if lay not in programs:
                programs[lay] = _jax_compiled(
                    model, optimizer, loss_obj, structure, lay, args, hist
                )
            return programs[lay]

        def snapshot(state: Any) -> dict[int, Any]:
            values = dict(zip(var_ids, list(state[0]) + list(state[1]), strict=True))
            return {i: values[i] for i in weights_ids}

        def run_epoch(state: Any, perm: Any) -> Any:
            if whole:
                args = (state, x_dev, y_dev, perm, xv, yv, mv, jnp.int32(0))
                prog = program(lay_epoch, args)
                check_timeout()
                return prog(*args)
            loss_sum = 0.0
            for c in range(-(-scan_total // chunk)):
                args = (state, x_dev, y_dev, perm, None, None, None, jnp.int32(c * chunk))
                state, part, _, _ = program(lay_chunk, args)(*args)
                loss_sum += float(part)
                check_timeout()
            args = (state, x_dev, y_dev, perm, xv, yv, mv, jnp.int32(0))
            state, part, vl, vc = program(lay_end, args)(*args)
            return state, loss_sum + float(part), vl, vc
    else:
        import tensorflow as tf

        fns = _tf_functions(model, optimizer, loss_obj, jit_compile)
        state = None

        def snapshot(state: Any) -> list[Any]:
            return [tf.identity(v.value) for v in model.weights]

        def run_epoch(state: Any, perm: Any) -> Any:
            loss_sum = 0.0
            stops = list(range(0, full, chunk))[1:] + [full] if full else []
            begin = 0
            for stop in stops:
                loss_sum += float(
                    _tf_call(
                        fns,
                        "train",
                        (x_dev, y_dev, perm, tf.constant(begin), tf.constant(stop), B),
                        hist,
                    )
                )
                begin = stop
                check_timeout()
            if tail:
                tail_perm = perm[full * B :]
                loss_sum += float(
                    _tf_call(
                        fns,
                        "train",
                        (x_dev, y_dev, tail_perm, tf.constant(0), tf.constant(1), tail),
                        hist,
                    )
                )
            vl = vc = 0.0
            if has_val:
                vl, vc = _tf_call(fns, "evaluate", (xv, yv, mv, VB), hist)
            return None, loss_sum, vl, vc

    for epoch in range(epochs):
        t0 = time.perf_counter()
        compile_before = hist.compile_seconds
        perm = order(epoch)
        perm = _to_device(perm)
        state, loss_sum, vl, vc = run_epoch(state, perm)
        loss = float(loss_sum) / n_used
        val_loss = float(vl) / n_val if has_val else math.nan
        val_acc = float(vc) / n_val if has_val else math.nan
        hist.loss.append(loss)
        hist.val_loss.append(val_loss)
        hist.val_accuracy.append(val_acc)
        hist.epochs = epoch + 1
        hist.epoch_seconds.append(
            time.perf_counter() - t0 - (hist.compile_seconds - compile_before)
        )
        check_timeout()
        if not math.isfinite(loss):
            hist.nan, hist.stop_reason = True, "nan"
            break
        if patience > 0:
            if best_weights is None:
                best_weights, hist.best_epoch = snapshot(state), epoch
            wait += 1
            if val_loss < best:
                best, wait = val_loss, 0
                best_weights, hist.best_epoch = snapshot(state), epoch
            elif wait >= patience and epoch > 0:
                hist.stop_reason = "patience"
                break
        if seconds is not None and time.perf_counter() - t_start > seconds and epoch + 1 < epochs:
            hist.stop_reason = "seconds"
            break
    hist.train_seconds = float(sum(hist.epoch_seconds))
    hist.stopped_early = hist.epochs < epochs
    if not hist.stopped_early and hist.stop_reason == "patience":
        hist.stop_reason = None  # patience ran out in the last epoch anyway

    if backend == "jax":
        for v, a in zip(model.trainable_variables, state[0], strict=True):
            v.assign(a)
        for v, a in zip(model.non_trainable_variables, state[1], strict=True):
            v.assign(a)
        for v, a in zip(optimizer.variables, state[2], strict=True):
            v.assign(a)
        if patience > 0 and best_weights is not None:
            for v in model.weights:
                v.assign(best_weights[id(v)])
    elif patience > 0 and best_weights is not None:
        for v, a in zip(model.weights, best_weights, strict=True):
            v.assign(a)
    if patience > 0 and best_weights is not None:
        hist.restored = True
    else:
        hist.best_epoch = hist.epochs - 1
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
    xv, yv, mv, VB = _pad_val(x_np, y_np, int(batch_size))
    xv, yv, mv = _to_device(xv), _to_device(yv), _to_device(mv)
    if keras.backend.backend() == "jax":
        import jax.numpy as jnp

        optimizer = getattr(model, "optimizer", None)
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [],
        )
        lay = _Layout(0, 0, 0, 0, False, 0, VB, len(mv) // VB)
        args = (state, None, None, None, xv, yv, mv, jnp.int32(0))
        structure = _structure_key(model, optimizer, loss_obj)
        prog = _jax_compiled(model, optimizer, loss_obj, structure, lay, args, hist)
        _, _, loss_sum, correct = prog(*args)
    else:
        fns = _tf_functions(model, getattr(model, "optimizer", None), loss_obj, jit_compile)
        loss_sum, correct = _tf_call(fns, "evaluate", (xv, yv, mv, VB), hist)
    return float(loss_sum) / n, float(correct) / n
