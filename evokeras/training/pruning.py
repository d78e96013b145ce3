"""Structured pruning of a trained Keras 3 model: :func:`prune`.

Structured (channel) pruning removes whole filters, units and LSTM cells, so the result is
an ordinary, smaller dense model that runs faster on any device -- unlike unstructured
(weight) pruning, which zeroes single weights and needs sparse kernels to gain speed. No
maintained tool does it for Keras 3 today: Sony's Model Compression Toolkit prunes
tf.keras models up to TensorFlow 2.15, the TensorFlow Model Optimization toolkit needs
Keras 2 and prunes single weights, kerassurgeon targets TensorFlow 2's Keras.

:func:`prune` is the squeeze of evokeras's network surgery
(:func:`evokeras.nets.surgery.apply_program`) applied to a whole model, its head kept:

1. **ratios** -- every squeezable layer (each Conv/Dense/LSTM/Embedding before the
   head; a residual stream as one) keeps a share of its units: the same share everywhere
   (``"uniform"``, Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017), or
   shares set by one global threshold on the units' importance, each layer's scores
   divided by their mean (``"global"``; every layer keeps at least
   :data:`MIN_KEEP` of its units, against layer collapse). The largest shares whose
   model meets ``target`` are found by bisection on the resource measured on the built
   model: its parameters, its multiply-accumulates (:func:`~evokeras.nets.surgery.count_flops`
   / 2) or its measured inference time per sample;
2. **criterion** -- which units a layer keeps: those of largest ``l1`` norm of their
   trained incoming weights (times the following batch norm's scale), mean
   ``activation`` or first-order ``taylor`` estimate of the loss change on ``data``
   (:mod:`evokeras.nets.importance`);
3. **fine-tuning** (optional) -- ``epochs`` and/or ``seconds`` of Adam on ``data`` with
   a warm-up and cosine decay of ``learning_rate``, on the labels, or distilled
   (``distill``: the weight of the original model's softened outputs,
   :func:`~evokeras.training.stock.distillation_loss`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import numpy as np

from evokeras.genomes.edits import EditProgram
from evokeras.nets.importance import outputs_probabilities, unit_scores
from evokeras.nets.surgery import (
    SurgeryError,
    apply_program,
    count_flops,
    squeeze_scores,
    structure,
)
from evokeras.training.stock import (
    distillation_loss,
    distillation_targets,
    predict,
    time_inference,
    timed_schedule,
    warmup_cosine,
)

__all__ = ["CRITERIA", "MIN_KEEP", "RATIOS", "RESOURCES", "PruningError", "UnreachableTarget", "prune", "resource_of"]

log = logging.getLogger(__name__)

#: What a target can bound.
RESOURCES = ("params", "macs", "latency")
#: Importance criteria (``l1``: the surgery's ``weight_norm``).
CRITERIA = {"l1": "weight_norm", "activation": "activation", "taylor": "taylor"}
#: How the per-layer shares are set.
RATIOS = ("uniform", "global")
#: The smallest share of its units a layer keeps under ``global`` ratios.
MIN_KEEP = 0.1


class PruningError(ValueError):
    """Bad arguments, or a model :func:`prune` cannot edit (the message says which)."""


class UnreachableTarget(PruningError):
    """The target is below what the model costs with one unit left in every prunable layer."""


def resource_of(model: Any, resource: str, x: np.ndarray | None = None, *, batch_size: int = 64,
                repeats: int = 5) -> float:
    """``model``'s ``resource``: parameters, multiply-accumulates per sample, or seconds
    of inference per sample on ``x`` (:func:`~evokeras.training.stock.time_inference`)."""
    if resource == "params":
        return float(model.count_params())
    if resource == "macs":
        return count_flops(model) / 2.0
    if x is None:
        raise PruningError("resource 'latency' needs data to time the model on")
    return time_inference(model, x, batch_size, repeats)


def _check(target: float, resource: str, criterion: str, ratios: str, data: Any, epochs: int,
           seconds: float | None, distill: float, tolerance: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise PruningError(f"target: the share of the resource to keep, in (0, 1), got {target!r}")
    for name, value, allowed in (("resource", resource, RESOURCES), ("criterion", criterion, tuple(CRITERIA)),
                                 ("ratios", ratios, RATIOS)):
        if value not in allowed:
            raise PruningError(f"{name}: one of {', '.join(allowed)}, got {value!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise PruningError(f"epochs: an integer >= 0, got {epochs!r}")
    if seconds is not None and not (isinstance(seconds, int | float) and seconds > 0):
        raise PruningError(f"seconds: a number > 0, got {seconds!r}")
    if not 0 <= distill <= 1:
        raise PruningError(f"distill: a weight in [0, 1], got {distill!r}")
    if not 0 < tolerance < 1:
        raise PruningError(f"tolerance: a number in (0, 1), got {tolerance!r}")
    if data is None:
        if criterion != "l1" or resource == "latency" or epochs or seconds:
            need = [w for w, on in (("criterion " + repr(criterion), criterion != "l1"),
                                    ("resource 'latency'", resource == "latency"),
                                    ("fine-tuning", bool(epochs or seconds))) if on]
            raise PruningError(f"data: {need[0]} needs data=(x, y)")
        return None, None
    try:
        x, y = data
    except (TypeError, ValueError):
        raise PruningError("data: a pair (x, y) of arrays") from None
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or not len(x):
        raise PruningError(f"data: x and y need the same, non-zero number of samples ({len(x)} and {len(y)})")
    if (epochs or seconds or criterion == "taylor") and not np.issubdtype(y.dtype, np.integer):
        raise PruningError(f"data: y must be integer class labels (fine-tuning and 'taylor' use them), got {y.dtype}")
    if distill and y.ndim != 1:
        raise PruningError(f"distill: needs one integer label per sample, got labels of shape {y.shape}")
    return x, y


def _head_index(units: Any) -> int:
    """The base's head: its last weighted unit."""
    weighted = [i for i, u in enumerate(units) if u.role == "weighted"]
    if not weighted or weighted[-1] == 0:
        raise PruningError("model: it has no weighted layer before its output layer to prune")
    return weighted[-1]


def _importance(model: Any, criterion: str, x: np.ndarray | None, y: np.ndarray | None,
                samples: int) -> tuple[EditProgram, Any, dict[str, np.ndarray]]:
    """The squeeze program of ``model`` up to its head (no shares yet), the data-driven
    unit scores of ``criterion`` (``None`` for ``l1``) and each prunable layer's unit
    importance (:func:`~evokeras.nets.surgery.squeeze_scores`)."""
    try:
        base = structure(model)
        program = EditProgram(cut=base.units[_head_index(base.units) - 1].name, importance=CRITERIA[criterion])
        scores = None
        if CRITERIA[criterion] != "weight_norm":
            n = min(len(x), samples)  # type: ignore[arg-type]
            scores = unit_scores(model, CRITERIA[criterion], x[:n], y[:n])  # type: ignore[index]
        importance = squeeze_scores(model, program, scores)
    except SurgeryError as exc:
        raise PruningError(f"model: {exc}") from exc
    if not importance:
        raise PruningError("model: it has no layer whose units can be pruned")
    return program, scores, importance


def _shares(scores: dict[str, np.ndarray], ratios: str, level: float) -> dict[str, float]:
    """Per squeezable layer, the share of units to keep at ``level``: the level itself
    (``uniform``), or the share whose mean-normalised importance ``scores`` is at least
    ``level`` (``global``; at least :data:`MIN_KEEP`)."""
    out = {}
    for name, score in scores.items():
        width = len(score)
        if ratios == "uniform":
            n = max(1, int(round(level * width)))
        else:
            n = max(int(math.ceil(MIN_KEEP * width)), int((score >= level).sum()), 1)
        if n < width:
            out[name] = n / width
    return out


def _bisect(build: Any, normalised: dict[str, np.ndarray], ratios: str, target: float, tolerance: float) -> Any:
    """The built model of the largest shares whose resource share meets ``target`` (the
    smallest shares' when none does): bisection on the level -- a larger uniform share, a
    lower global threshold on the ``normalised`` importance, keeps more."""
    if ratios == "uniform":
        lo, hi = 0.0, 1.0  # a level of 0 keeps one unit per layer
    else:
        lo, hi = max(float(s.max()) for s in normalised.values()) + 1.0, 0.0
    best = build(lo)
    if best[2] > target:
        return best
    while abs(hi - lo) > tolerance * (1.0 if ratios == "uniform" else max(abs(lo), 1.0)):
        mid = (lo + hi) / 2.0
        trial = build(mid)
        if trial[2] <= target:
            lo, best = mid, trial
        else:
            hi = mid
    return best


def prune(model: Any, target: float, *, resource: str = "params", criterion: str = "l1",
          ratios: str = "uniform", data: Any = None, epochs: int = 0, seconds: float | None = None,
          learning_rate: float = 1e-3, distill: float = 0.0, temperature: float = 4.0, batch_size: int = 64,
          importance_samples: int = 512, tolerance: float = 0.01) -> Any:
    """A structurally pruned copy of ``model`` whose ``resource`` is at most ``target``
    times the original's (see the module docstring).

    Args:
        model: a trained Keras 3 model (or the path of a ``.keras`` file): a
            ``Sequential`` model or a functional chain of layers and residual blocks with
            one input and one output (CNNs, ResNets, stacked LSTMs), ending in its head
            (the last Conv/Dense layer, whose outputs are kept).
        target: the share of the resource to keep, in (0, 1).
        resource: ``"params"``, ``"macs"`` or ``"latency"`` (measured on ``data``'s inputs).
        criterion: ``"l1"``, ``"activation"`` or ``"taylor"`` (the last two measured on the
            first ``importance_samples`` of ``data``; ``taylor`` needs integer labels and a
            classifier).
        ratios: ``"uniform"`` or ``"global"``.
        data: ``(x, y)``: training examples for the data-driven criteria, latency and
            fine-tuning.
        epochs, seconds: fine-tuning on ``data`` for this many epochs, and/or until this
            many seconds are spent (0 and ``None``: no fine-tuning).
        learning_rate: the peak fine-tuning learning rate.
        distill: the weight of the original model's softened outputs in the fine-tuning
            loss (0: labels only); ``temperature`` softens them.
        batch_size: of fine-tuning and timing.
        tolerance: the bisection stops when the uniform share (``global``: the threshold,
            relative to its size) is known this closely, in (0, 1).

    Returns:
        A new functional Keras model of standard layers with the kept trained weights
        (fine-tuned if asked), compiled with the labels' loss when fine-tuned. Its
        ``pruning`` attribute holds what was done: the shares kept per layer, the
        resource before and after, the fine-tuning seconds. Save it with ``model.save``.

    Raises:
        PruningError: bad arguments, or a model graph the surgery cannot edit;
            :class:`UnreachableTarget` for a target no pruning reaches.
    """
    import keras

    x, y = _check(target, resource, criterion, ratios, data, epochs, seconds, distill, tolerance)
    if isinstance(model, str | os.PathLike):
        model = keras.saving.load_model(model, compile=False, safe_mode=True)
    program, scores, importance = _importance(model, criterion, x, y, importance_samples)
    # each layer's importance over its mean: one scale for a global threshold
    normalised = {name: s / max(float(s.mean()), 1e-12) for name, s in importance.items()}
    sample = x[:batch_size] if x is not None else None
    full = resource_of(model, resource, sample, batch_size=batch_size)

    built: dict[tuple[tuple[str, float], ...], tuple[Any, dict[str, float], float]] = {}

    def build(level: float) -> tuple[Any, dict[str, float], float]:
        shares = _shares(normalised, ratios, level)
        key = tuple(sorted(shares.items()))  # levels that round to the same units build once
        if key not in built:
            try:
                pruned = apply_program(model, program.replace(squeeze=shares), scores, whole=True)
            except SurgeryError as exc:
                raise PruningError(f"model: {exc}") from exc
            built[key] = pruned, shares, resource_of(pruned, resource, sample, batch_size=batch_size) / full
        return built[key]

    best = _bisect(build, normalised, ratios, target, tolerance)
    if best[2] > target:
        raise UnreachableTarget(f"target: {resource} can go down to {best[2]:.3g} of the original's, not {target:g}")
    pruned, shares, achieved = best
    info: dict[str, Any] = {"resource": resource, "target": float(target), "achieved": float(achieved),
                            "criterion": criterion, "ratios": ratios, "shares": shares,
                            "params": [int(model.count_params()), int(pruned.count_params())],
                            "macs": [count_flops(model) // 2, count_flops(pruned) // 2]}
    if epochs or seconds:
        info["finetune_seconds"] = _finetune(pruned, model, x, y, epochs=epochs, seconds=seconds,  # type: ignore[arg-type]
                                             learning_rate=learning_rate, distill=distill,
                                             temperature=temperature, batch_size=batch_size)
    pruned.pruning = info
    log.info("pruned %s to %.3g of its %s (%s, %s): %s", model.name, achieved, resource, criterion, ratios, shares)
    return pruned


def _finetune(pruned: Any, original: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, seconds: float | None,
              learning_rate: float, distill: float, temperature: float, batch_size: int) -> float:
    """Fine-tune ``pruned`` in place on ``(x, y)`` (see :func:`prune`); its seconds."""
    import keras

    probabilities = outputs_probabilities(pruned)
    label_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)
    target: Any = y
    loss: Any = label_loss
    if distill > 0:
        teacher = predict(original, x)
        if probabilities:
            teacher = np.log(np.clip(teacher, 1e-7, 1.0))
        target = distillation_targets(y, teacher)
        loss = distillation_loss(distill, temperature, from_logits=not probabilities)
    steps = math.ceil(len(x) / batch_size)
    callbacks = []
    if seconds:
        rate: Any = learning_rate
        callbacks.append(timed_schedule(float(seconds), learning_rate, steps=epochs * steps if epochs else None))
    else:
        rate = warmup_cosine(learning_rate, epochs * steps)
    pruned.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
    t0 = time.perf_counter()
    pruned.fit(x, target, batch_size=batch_size, epochs=epochs or 10_000, verbose=0,
               callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks])
    spent = time.perf_counter() - t0
    # a plain loss in the saved model (the distillation loss is a closure)
    pruned.compile(optimizer="adam", loss=label_loss, metrics=["accuracy"])
    return spent
