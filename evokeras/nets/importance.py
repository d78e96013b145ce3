"""Data-driven importance of the units a squeeze can remove (the ``activation`` and
``taylor`` criteria of :class:`~evokeras.genomes.edits.EditProgram`).

:func:`unit_scores` measures, on a sample of the target task's training data, a
``(batches, units)`` matrix of per-unit *contributions* for every weighted layer of a
model (a Conv/Dense/LSTM/Embedding whose outputs a squeeze can slice);
:func:`evokeras.nets.surgery.apply_program` ranks a unit by the mean over batches of
its absolute contribution, summed over the tensors of a residual stream first.

* ``activation``: the mean ``|output|`` of the unit per batch, read after the
  per-channel layers that directly follow the layer (batch norm, activation), i.e. what
  the next layer reads.
* ``taylor``: the first-order Taylor estimate of the change of the loss when the unit's
  output is set to zero (Molchanov et al., "Pruning convolutional neural networks for
  resource efficient inference", ICLR 2017; "Importance estimation for neural network
  pruning", CVPR 2019): per batch, ``sum over samples and positions of a * dL/da`` where
  ``a`` is the unit's output. It is computed from weight gradients, which every backend
  gives: for a unit whose output is a linear function of its parameters ``p`` (a
  convolution's filter and bias; a batch norm's ``gamma``, ``beta`` after it, taken when
  present, so ``a`` is what the next layer reads -- through a ReLU ``a * dL/da`` is the
  same), ``sum(p * dL/dp) = sum(a * dL/da)``; for an LSTM unit the sum runs over its
  four gates' parameters. The sum is kept signed per batch, so a stream's contributions
  add before the absolute value is taken. The loss is the cross-entropy of the target
  labels through ``model`` (a classifier producing logits, or probabilities when it ends
  in a softmax).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from evokeras.nets.surgery import weighted_layers

__all__ = ["outputs_probabilities", "unit_scores"]

_FOLLOW = {"BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU"}


def unit_scores(model: Any, criterion: str, x: np.ndarray, y: np.ndarray | None = None, *,
                batch_size: int = 32) -> dict[str, np.ndarray]:
    """``{layer name: (batches, units) contributions}`` of ``criterion`` (``activation``
    or ``taylor``; ``weight_norm`` gives ``{}``: surgery's own criterion) for the weighted
    layers of ``model`` on the examples ``x`` (labels ``y`` for ``taylor``: ``model``
    must output logits), in batches of ``batch_size``."""
    if criterion == "weight_norm":
        return {}
    pairs = weighted_layers(model)
    batches = [slice(i, i + batch_size) for i in range(0, len(x), batch_size)]
    if criterion == "activation":
        return _activation(model, pairs, x, batches)
    if criterion == "taylor":
        if y is None:
            raise ValueError("importance 'taylor' needs labels")
        return _taylor(model, pairs, x, np.asarray(y), batches)
    raise ValueError(f"importance: unknown criterion {criterion!r}")


def _tap(layer: Any) -> Any:
    """The tensor the next layer reads from ``layer``: its output after the per-channel
    layers that directly (and only) follow it."""
    while len(layer._outbound_nodes) == 1:  # noqa: SLF001 - Keras keeps the graph on the layers
        nxt = layer._outbound_nodes[0].operation  # noqa: SLF001
        if type(nxt).__name__ not in _FOLLOW:
            break
        layer = nxt
    return layer.output


def _activation(model: Any, pairs: list[tuple[Any, Any]], x: np.ndarray, batches: list[slice]) -> dict[str, np.ndarray]:
    import keras

    taps = keras.Model(model.inputs, [_tap(layer) for layer, _ in pairs])
    rows: dict[str, list[np.ndarray]] = {layer.name: [] for layer, _ in pairs}
    for b in batches:
        outs = taps.predict_on_batch(x[b])
        outs = outs if isinstance(outs, list | tuple) else [outs]
        for (layer, _), out in zip(pairs, outs, strict=True):
            a = np.abs(np.asarray(out, dtype=np.float64))
            rows[layer.name].append(a.reshape(-1, a.shape[-1]).mean(axis=0))
    return {name: np.stack(r) for name, r in rows.items()}


def outputs_probabilities(model: Any) -> bool:
    """Whether ``model`` ends in a softmax (its outputs are probabilities, not logits)."""
    last = model.layers[-1]
    return type(last).__name__ == "Softmax" or last.get_config().get("activation") == "softmax"


def _gradients(model: Any, x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    """``{id(variable): dL/dvariable}`` for every variable of ``model`` (trainable or
    not), ``L`` the summed cross-entropy of ``y`` on ``model``'s logits (inference mode)."""

    with warnings.catch_warnings():  # a functional model named its input: a bare array is fine
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        return _backend_gradients(model, x, y)


def _backend_gradients(model: Any, x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    import keras

    backend = keras.backend.backend()
    from_logits = not outputs_probabilities(model)
    if backend == "tensorflow":
        import tensorflow as tf

        variables = list(model.weights)
        with tf.GradientTape() as tape:
            for v in variables:
                tape.watch(v.value)
            logits = model(x, training=False)
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=from_logits))
        # an embedding's gradient is sparse (IndexedSlices): made dense
        grads = [None if g is None else tf.convert_to_tensor(g)
                 for g in tape.gradient(loss, [v.value for v in variables])]
        return {id(v): (np.zeros(v.shape) if g is None else np.asarray(g, dtype=np.float64))
                for v, g in zip(variables, grads, strict=True)}
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable, frozen = list(model.trainable_variables), list(model.non_trainable_variables)
        # non-trainable floats (batch-norm statistics) are differentiated too; integer
        # state (a recurrent layer's seed generator) is passed through
        real = [i for i, v in enumerate(frozen) if jnp.issubdtype(v.value.dtype, jnp.inexact)]

        def loss(tv: list[Any], real_values: list[Any]) -> Any:
            ntv = [v.value for v in frozen]
            for i, value in zip(real, real_values, strict=True):
                ntv[i] = value
            logits, _ = model.stateless_call(tv, ntv, x, training=False)
            return jnp.sum(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=from_logits))

        gt, gn = jax.grad(loss, argnums=(0, 1))([v.value for v in trainable], [frozen[i].value for i in real])
        grads = {id(v): np.asarray(g, dtype=np.float64) for v, g in zip(trainable, gt, strict=True)}
        grads.update({id(frozen[i]): np.asarray(g, dtype=np.float64) for i, g in zip(real, gn, strict=True)})
        return grads
    raise NotImplementedError(f"importance 'taylor' needs the TensorFlow or JAX backend, not {backend!r}")


def _taylor(model: Any, pairs: list[tuple[Any, Any]], x: np.ndarray, y: np.ndarray,
            batches: list[slice]) -> dict[str, np.ndarray]:
    rows: dict[str, list[np.ndarray]] = {layer.name: [] for layer, _ in pairs}
    for b in batches:
        grads = _gradients(model, x[b], y[b])
        for layer, bn in pairs:
            rows[layer.name].append(_unit_sum(layer, bn, grads))
    return {name: np.stack(r) for name, r in rows.items()}


def _unit_sum(layer: Any, bn: Any, grads: dict[int, np.ndarray]) -> np.ndarray:
    """Per output unit of ``layer``: ``sum(p * dL/dp)`` over the parameters that make
    the unit's output (a following batch norm's ``gamma`` and ``beta`` when it has both)."""
    if bn is not None:
        cfg = bn.get_config()
        if cfg.get("scale", True) and cfg.get("center", True):
            gamma, beta = bn.weights[0], bn.weights[1]
            return (np.asarray(gamma.numpy(), np.float64) * grads[id(gamma)]
                    + np.asarray(beta.numpy(), np.float64) * grads[id(beta)])
    cls = type(layer).__name__
    wg = [(np.asarray(v.numpy(), np.float64) * grads[id(v)]) for v in layer.weights]
    if cls == "LSTM":
        units = int(layer.get_config()["units"])
        total = np.zeros(units)
        for g in range(4):
            cols = slice(g * units, (g + 1) * units)
            total += wg[0][:, cols].sum(axis=0) + wg[1][:, cols].sum(axis=0)
            if len(wg) > 2:
                total += wg[2][cols]
        return total
    if cls == "Embedding":
        return wg[0].sum(axis=0)
    total = wg[0].reshape(-1, wg[0].shape[-1]).sum(axis=0)
    return total + wg[1] if len(wg) > 1 else total
