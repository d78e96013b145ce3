"""The JAX trainer of :func:`~evokeras.training.fast.fit_fast`.

One call of a ``jax.jit``-ed, ahead-of-time compiled program trains ``scan_steps``
batches (a ``jax.lax.scan`` of ``model.stateless_call`` + ``jax.value_and_grad`` +
``optimizer.stateless_apply``), then runs a separate last step (``tail``) and the
validation pass (a second scan, inference mode) if its :class:`_Layout` says so. The
programs are cached process-wide, keyed by the model's structure (:func:`_structure_key`),
the layout and the argument shapes.

This module is imported only on the JAX backend, so it imports JAX and Keras at the top.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import keras

# ``CACHE_SIZE`` is read from the package at eviction time (it may be set there); this
# module is imported only after the package has been initialised.
import evokeras.training.fast as _package
from evokeras.training.fast._common import (
    _PROGRAMS,
    FastHistory,
    _Limits,
    _Plan,
    _ValData,
)
from evokeras.training.fast._model import (
    _correct,
    _extra_loss,
    _model_cache,
    _per_sample_loss,
    _PerSampleLoss,
    _training_kwargs,
)

_UIDS = itertools.count()


def _structure_key(model: Any, optimizer: Any, loss_obj: Any) -> Any:
    """A key equal for models that compute the same function of the same state layout.

    Functional and Sequential models are described by their config (recomputed on every
    call, so a changed ``trainable`` flag or recompilation gives a new key); anything
    else, or a config that cannot be serialised, is keyed by the model's identity.
    """
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


def _has_batch_coupling(model: Any) -> bool:
    """Whether a layer couples the samples of a training batch (BatchNormalization)."""
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
    if jax.default_backend() != "cpu":
        return None
    for layer in model._flatten_layers(include_self=False):
        if "Conv" in type(layer).__name__:
            return 1
    return None


# -- the backend interface --------------------------------------------------------------


def to_device(a: Any) -> Any:
    return jax.device_put(a)


def masks_last_batch(model: Any) -> bool:
    """Whether the short last batch may run padded and masked inside the scan (exact
    unless a layer couples the samples of a batch)."""
    return not _has_batch_coupling(model)


def default_steps_per_call(model: Any) -> int | None:
    """``steps_per_call`` when none is given (see :func:`_auto_steps_per_call`)."""
    return _auto_steps_per_call(model)


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


# -- the program ----------------------------------------------------------------------------


def _step_fn(model: Any, optimizer: Any, loss_obj: _PerSampleLoss) -> Any:
    """``step(state, xb, yb, mask, count) -> (state, loss)``: one optimizer step on a batch
    (``mask``: 0/1 per sample or ``None``; ``count``: the valid samples)."""
    train_kw = _training_kwargs(model, True)

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

    return step


def _batch(lay: _Layout, x: Any, y: Any, perm: Any, g: Any) -> tuple[Any, Any, Any, Any]:
    """Batch ``g`` of the epoch: ``(xb, yb, mask, count)`` (``mask`` is ``None`` unless the
    layout masks the short last batch)."""
    B = lay.batch
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
    return xb, yb, mask, count


def _train(step: Any, lay: _Layout, state: Any, x: Any, y: Any, perm: Any, start: Any) -> Any:
    """Train the scan batches ``start ..`` of the layout, then its tail step:
    ``(state, loss summed over the samples)``."""
    loss_sum = jnp.zeros((), jnp.float32)
    if lay.scan_steps:

        def body(state: Any, i: Any) -> Any:
            g = start + i
            xb, yb, mask, count = _batch(lay, x, y, perm, g)

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
        idx = jax.lax.dynamic_slice(perm, (lay.total_steps * lay.batch,), (lay.tail,))
        state, loss = step(
            state,
            jnp.take(x, idx, axis=0, mode="clip"),
            jnp.take(y, idx, axis=0, mode="clip"),
            None,
            jnp.float32(lay.tail),
        )
        loss_sum = loss_sum + loss * lay.tail
    return state, loss_sum


def _validate(
    model: Any, loss_obj: _PerSampleLoss, lay: _Layout, state: Any, xv: Any, yv: Any, mv: Any
) -> tuple[Any, Any]:
    """The validation pass (inference mode): ``(loss sum, correct count)`` over the
    unmasked samples."""
    infer_kw = _training_kwargs(model, False)
    tv, ntv = state[0], state[1]
    VB = lay.val_batch

    def val_body(acc: Any, j: Any) -> Any:
        xb = jax.lax.dynamic_slice_in_dim(xv, j * VB, VB)
        yb = jax.lax.dynamic_slice_in_dim(yv, j * VB, VB)
        mb = jax.lax.dynamic_slice_in_dim(mv, j * VB, VB)
        y_pred, _, losses = model.stateless_call(tv, ntv, xb, return_losses=True, **infer_kw)
        per = _per_sample_loss(loss_obj, yb, y_pred) + _extra_loss(losses)
        return (
            acc[0] + jnp.sum(per * mb),
            acc[1] + jnp.sum(_correct(yb, y_pred) * mb),
        ), None

    zero = jnp.zeros((), jnp.float32)
    (val_loss, val_correct), _ = jax.lax.scan(
        val_body, (zero, zero), jnp.arange(lay.val_batches, dtype=jnp.int32)
    )
    return val_loss, val_correct


def _jax_program(model: Any, optimizer: Any, loss_obj: Any, lay: _Layout) -> Any:
    """The (uncompiled) JAX function of one call: train ``scan_steps`` (+ tail), then validate."""
    step = _step_fn(model, optimizer, loss_obj)

    def program(
        state: Any, x: Any, y: Any, perm: Any, xv: Any, yv: Any, mv: Any, start: Any
    ) -> Any:
        state, loss_sum = _train(step, lay, state, x, y, perm, start)
        val_loss = val_correct = jnp.zeros((), jnp.float32)
        if lay.val_batch:
            val_loss, val_correct = _validate(model, loss_obj, lay, state, xv, yv, mv)
        return state, loss_sum, val_loss, val_correct

    return program


def _signature(args: Any) -> Any:
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
    while len(_PROGRAMS) > _package.CACHE_SIZE:
        _PROGRAMS.popitem(last=False)
    return compiled


# -- the trainer ---------------------------------------------------------------------------


class Trainer:
    """Trains one model: the programs of its layouts, and the state (trainable,
    non-trainable and optimizer variable values) carried from one call to the next."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_obj: _PerSampleLoss,
        plan: _Plan,
        data: tuple[Any, Any, _ValData],
        hist: FastHistory,
        limits: _Limits,
        jit_compile: bool,  # TensorFlow only
    ) -> None:
        self.model, self.optimizer, self.loss_obj = model, optimizer, loss_obj
        self.x, self.y, self.val = data
        self.plan, self.hist, self.limits = plan, hist, limits
        self.state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in optimizer.variables],
        )
        p, val = plan, self.val
        self.whole = p.chunk >= p.scan_total
        self.lay_epoch = _Layout(
            p.batch, p.n, p.scan_total, p.scan_total, p.masked, p.tail, val.batch, val.batches
        )
        self.lay_chunk = _Layout(p.batch, p.n, p.chunk, p.scan_total, p.masked, 0, 0, 0)
        self.lay_end = _Layout(
            p.batch, p.n, 0, p.scan_total, p.masked, p.tail, val.batch, val.batches
        )
        self.var_ids = [id(v) for v in model.trainable_variables] + [
            id(v) for v in model.non_trainable_variables
        ]
        self.weights_ids = [id(v) for v in model.weights]
        self.structure = _structure_key(model, optimizer, loss_obj)
        self.programs: dict[_Layout, Any] = {}  # the argument shapes do not change

    def _program(self, lay: _Layout, args: tuple) -> Any:
        if lay not in self.programs:
            self.programs[lay] = _jax_compiled(
                self.model, self.optimizer, self.loss_obj, self.structure, lay, args, self.hist
            )
        return self.programs[lay]

    def _args(self, perm: Any, validate: bool, start: int) -> tuple:
        val = (self.val.x, self.val.y, self.val.mask) if validate else (None, None, None)
        return (self.state, self.x, self.y, perm, *val, jnp.int32(start))

    def run_epoch(self, perm: Any) -> tuple[Any, Any, Any]:
        if self.whole:
            args = self._args(perm, True, 0)
            prog = self._program(self.lay_epoch, args)
            self.limits.check_timeout()
            self.state, loss_sum, vl, vc = prog(*args)
            return loss_sum, vl, vc
        loss_sum = 0.0
        chunk, scan_total = self.plan.chunk, self.plan.scan_total
        for c in range(-(-scan_total // chunk)):
            args = self._args(perm, False, c * chunk)
            self.state, part, _, _ = self._program(self.lay_chunk, args)(*args)
            loss_sum += float(part)
            self.limits.check_timeout()
        args = self._args(perm, True, 0)
        self.state, part, vl, vc = self._program(self.lay_end, args)(*args)
        return loss_sum + float(part), vl, vc

    def snapshot(self) -> dict[int, Any]:
        values = dict(zip(self.var_ids, list(self.state[0]) + list(self.state[1]), strict=True))
        return {i: values[i] for i in self.weights_ids}

    def finish(self) -> None:
        model, state = self.model, self.state
        for v, a in zip(model.trainable_variables, state[0], strict=True):
            v.assign(a)
        for v, a in zip(model.non_trainable_variables, state[1], strict=True):
            v.assign(a)
        for v, a in zip(self.optimizer.variables, state[2], strict=True):
            v.assign(a)

    def restore(self, weights: dict[int, Any]) -> None:
        for v in self.model.weights:
            v.assign(weights[id(v)])


def evaluate(
    model: Any, loss_obj: _PerSampleLoss, val: _ValData, hist: FastHistory, jit_compile: bool
) -> tuple[Any, Any]:
    """``(loss sum, correct count)`` of ``model`` on ``val`` in one compiled call."""
    optimizer = getattr(model, "optimizer", None)
    state: tuple[list[Any], list[Any], list[Any]] = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [],
    )
    lay = _Layout(0, 0, 0, 0, False, 0, val.batch, val.batches)
    args = (state, None, None, None, val.x, val.y, val.mask, jnp.int32(0))
    structure = _structure_key(model, optimizer, loss_obj)
    prog = _jax_compiled(model, optimizer, loss_obj, structure, lay, args, hist)
    _, _, loss_sum, correct = prog(*args)
    return loss_sum, correct
