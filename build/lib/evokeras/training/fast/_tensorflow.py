"""The TensorFlow trainer of :func:`~evokeras.training.fast.fit_fast`.

A ``tf.function`` (``jit_compile`` optional) runs a ``tf.while_loop`` over batches of
``GradientTape`` + ``optimizer.apply`` on the model's variables, a second one the
validation pass. They close over the model's variables, so they are built per model and
cached on the model object (traced once per input signature).

This module is imported only on the TensorFlow backend, so it imports TensorFlow at the top.
"""

from __future__ import annotations

import json
import time
from typing import Any

import tensorflow as tf

from evokeras.training.fast._common import FastHistory, _Limits, _Plan, _ValData
from evokeras.training.fast._model import (
    _correct,
    _extra_loss,
    _model_cache,
    _per_sample_loss,
    _PerSampleLoss,
    _training_kwargs,
)


def _token(optimizer: Any, loss_obj: Any) -> tuple[Any, str]:
    """What a per-model cache entry depends on besides the model: its compile arguments."""
    return optimizer, json.dumps(loss_obj.config, sort_keys=True, default=repr)


# -- the backend interface --------------------------------------------------------------


def to_device(a: Any) -> Any:
    return tf.identity(tf.constant(a))  # identity places it on the default device (GPU if any)


def masks_last_batch(model: Any) -> bool:
    """The short last batch is always a separate step of its own shape."""
    return False


def default_steps_per_call(model: Any) -> int | None:
    """Whole epochs per call when no ``steps_per_call`` is given."""
    return None


# -- the tf.functions -------------------------------------------------------------------


def _train_fn(model: Any, optimizer: Any, loss_obj: _PerSampleLoss) -> Any:
    """``train(x, y, perm, start, stop, batch)``: the batches ``start .. stop-1`` of
    ``perm``; the training loss summed over their samples."""
    train_kw = _training_kwargs(model, True)

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

    return train


def _evaluate_fn(model: Any, loss_obj: _PerSampleLoss) -> Any:
    """``evaluate(xv, yv, mv, batch)``: ``(loss sum, correct count)`` over the unmasked
    samples (inference mode)."""
    infer_kw = _training_kwargs(model, False)

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

    return evaluate


def _tf_functions(model: Any, optimizer: Any, loss_obj: Any, jit_compile: bool) -> dict[str, Any]:
    """``train(x, y, perm, start, stop, batch)`` and ``evaluate(xv, yv, mv, batch)`` for ``model``."""
    cache = _model_cache(model)
    key = f"tf_functions_{bool(jit_compile)}"
    token = _token(optimizer, loss_obj)
    if key in cache and cache[key]["token"][0] is optimizer and cache[key]["token"][1] == token[1]:
        return cache[key]
    train = _train_fn(model, optimizer, loss_obj)
    evaluate = _evaluate_fn(model, loss_obj)
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
    sig = (name, *((tuple(a.shape), a.dtype.name) if tf.is_tensor(a) else a for a in args))
    if sig not in fns["traced"]:
        t0 = time.perf_counter()
        fns[name].get_concrete_function(*args)
        hist.compile_seconds += time.perf_counter() - t0
        hist.programs_compiled += 1
        fns["traced"].add(sig)
    return fns[name](*args)


# -- the trainer ---------------------------------------------------------------------------


class Trainer:
    """Trains one model through its cached ``tf.function``\\ s, which update the model's
    and optimizer's variables in place."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_obj: _PerSampleLoss,
        plan: _Plan,
        data: tuple[Any, Any, _ValData],
        hist: FastHistory,
        limits: _Limits,
        jit_compile: bool,
    ) -> None:
        self.model = model
        self.x, self.y, self.val = data
        self.plan, self.hist, self.limits = plan, hist, limits
        self.fns = _tf_functions(model, optimizer, loss_obj, jit_compile)

    def _train(self, perm: Any, start: int, stop: int, batch: int) -> float:
        args = (self.x, self.y, perm, tf.constant(start), tf.constant(stop), batch)
        return float(_tf_call(self.fns, "train", args, self.hist))

    def run_epoch(self, perm: Any) -> tuple[Any, Any, Any]:
        full, chunk, B, tail = self.plan.full, self.plan.chunk, self.plan.batch, self.plan.tail
        loss_sum = 0.0
        stops = list(range(0, full, chunk))[1:] + [full] if full else []
        begin = 0
        for stop in stops:
            loss_sum += self._train(perm, begin, stop, B)
            begin = stop
            self.limits.check_timeout()
        if tail:
            loss_sum += self._train(perm[full * B :], 0, 1, tail)
        vl = vc = 0.0
        if self.val.present:
            val = self.val
            vl, vc = _tf_call(self.fns, "evaluate", (val.x, val.y, val.mask, val.batch), self.hist)
        return loss_sum, vl, vc

    def snapshot(self) -> list[Any]:
        return [tf.identity(v.value) for v in self.model.weights]

    def finish(self) -> None:
        pass  # the variables already hold the trained state

    def restore(self, weights: list[Any]) -> None:
        for v, a in zip(self.model.weights, weights, strict=True):
            v.assign(a)


def evaluate(
    model: Any, loss_obj: _PerSampleLoss, val: _ValData, hist: FastHistory, jit_compile: bool
) -> tuple[Any, Any]:
    """``(loss sum, correct count)`` of ``model`` on ``val`` in one ``tf.function`` call."""
    fns = _tf_functions(model, getattr(model, "optimizer", None), loss_obj, jit_compile)
    return _tf_call(fns, "evaluate", (val.x, val.y, val.mask, val.batch), hist)
