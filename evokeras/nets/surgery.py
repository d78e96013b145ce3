"""Network surgery: read a trained Keras model as units, apply an edit program to it.

:func:`structure` reads a base model -- a ``Sequential`` model or a functional model
that is a chain of layers and residual blocks (a fork whose two branches, one of them
possibly empty, join at an ``Add``) -- into a plain :class:`~evokeras.genomes.edits.BaseStructure`.
:func:`apply_program` rebuilds the model an :class:`~evokeras.genomes.edits.EditProgram` asks
for, up to its cut and pool, as a new functional model of fresh standard layers whose
weights are the base's trained weights, sliced where units were squeezed:

* a squeezed ``Conv1D``/``Conv2D``/``Dense`` keeps the output filters/units of largest
  importance (:func:`importance`, or the data-driven scores given to
  :func:`apply_program`, see :mod:`evokeras.nets.importance`); an ``LSTM`` keeps whole units (the matching columns of each of its
  four gates and the rows and columns of its recurrent kernel); an ``Embedding`` keeps
  output dimensions;
* the layers that read a squeezed output keep the matching input weights: batch norm
  statistics and scales, the next layer's input kernel rows, and after a ``Flatten``
  the rows of every position's kept channels;
* a dropped unit is skipped (it preserves shapes);
* a downsample inserts a 2x2 (sequences: 2-step) max pool, ``same`` padding, after its unit;
* a residual stream (:meth:`~evokeras.genomes.edits.BaseStructure.streams`) is squeezed
  as one: its producer (a layer, or a projection block's two branches) and the last
  weighted layer of every identity-shortcut block that adds into it keep the same
  channels, chosen by the importance summed over all of them; a block reading a squeezed
  input slices its first layers' input weights.

Equivalence anchors (tests): with no squeeze and no drop the rebuilt body computes
exactly the base's features; a squeezed model equals the base with the removed units'
outputs zeroed where that is exact (a ReLU conv chain).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evokeras.genomes.edits import BaseStructure, EditProgram, UnitInfo
from evokeras.nets import layers
from evokeras.nets.morph import kernel_importance

__all__ = ["SurgeryError", "apply_program", "count_flops", "importance", "kernel_importance", "squeeze_scores", "structure",
           "weighted_layers"]

_WEIGHTED = {"Conv1D", "Conv2D", "Dense", "LSTM", "Embedding"}
_PASS = {
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "GaussianNoise", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
    "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Flatten", "LastStep",
}
_WIDTH_KEY = {"Conv1D": "filters", "Conv2D": "filters", "Dense": "units", "LSTM": "units", "Embedding": "output_dim"}


class SurgeryError(ValueError):
    """The base model has a shape this module cannot edit (the message says where)."""


@dataclass
class _Unit:
    name: str
    kind: str  # "layer" | "block"
    layers: list[Any]  # a layer unit: [layer]; a block: its main branch
    shortcut: list[Any] = field(default_factory=list)
    add: Any = None


def _role(layer: Any) -> str:
    cls = type(layer).__name__
    if cls in _WEIGHTED and int(layer.get_config().get("groups", 1)) == 1:
        return "weighted"
    return "pass" if cls in _PASS else "other"


def _shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in tensor.shape[1:])


def _parse(model: Any) -> list[_Unit]:
    """The units of ``model``, input to output."""
    import keras

    if isinstance(model, keras.Sequential):
        return [_Unit(layer.name, "layer", [layer]) for layer in model.layers]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise SurgeryError("a base model needs exactly one input and one output")
    inputs_of: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    by_name = {layer.name: layer for layer in model.layers}
    for layer in model.layers:
        if not layer._inbound_nodes:  # noqa: SLF001 - Keras keeps the graph on the layers
            continue
        names = [t._keras_history[0].name for t in layer._inbound_nodes[0].input_tensors]  # noqa: SLF001
        inputs_of[layer.name] = names
        for n in names:
            consumers.setdefault(n, []).append(layer.name)
        if len(layer._inbound_nodes) > 1:  # noqa: SLF001
            raise SurgeryError(f"layer {layer.name!r} is used more than once (shared layers are not supported)")
    current = model.inputs[0]._keras_history[0].name  # noqa: SLF001
    units: list[_Unit] = []
    while consumers.get(current):
        nxt = consumers[current]
        if len(nxt) == 1:
            name = nxt[0]
            if len(inputs_of[name]) != 1:
                raise SurgeryError(f"layer {name!r} merges several inputs outside a residual block")
            units.append(_Unit(name, "layer", [by_name[name]]))
            current = name
            continue
        if len(nxt) != 2:
            raise SurgeryError(f"the output of {current!r} feeds {len(nxt)} layers (a block has two branches)")
        branches = []
        for start in nxt:
            path, x = [], start
            while len(inputs_of[x]) == 1:
                path.append(by_name[x])
                following = consumers.get(x, [])
                if len(following) != 1:
                    raise SurgeryError(f"branch layer {x!r} of the block after {current!r} does not lead to one Add")
                x = following[0]
            branches.append((path, x))
        (p1, j1), (p2, j2) = branches
        if j1 != j2 or type(by_name[j1]).__name__ != "Add" or len(inputs_of[j1]) != 2:
            raise SurgeryError(f"the branches after {current!r} do not join at one Add layer ({j1!r}, {j2!r})")
        main, shortcut = (p1, p2) if len(p1) >= len(p2) else (p2, p1)
        units.append(_Unit(j1, "block", main, shortcut, by_name[j1]))
        current = j1
    if current != model.outputs[0]._keras_history[0].name:  # noqa: SLF001
        raise SurgeryError("the model's output is not at the end of its chain of layers and blocks")
    return units


def _info(unit: _Unit) -> UnitInfo:
    first = unit.layers[0] if unit.layers else unit.shortcut[0] if unit.shortcut else unit.add
    in_shape = _shape(first.input if not isinstance(first.input, list) else first.input[0])
    last = unit.add if unit.kind == "block" else unit.layers[-1]
    out_shape = _shape(last.output)
    params = sum(int(layer.count_params()) for layer in [*unit.layers, *unit.shortcut] if layer.built)
    if unit.kind == "block":
        weighted = [layer for layer in unit.layers if _role(layer) == "weighted"]
        inner = tuple((layer.name, int(layer.get_config()[_WIDTH_KEY[type(layer).__name__]])) for layer in weighted[:-1])
        if any(_role(layer) == "other" for layer in [*unit.layers, *unit.shortcut]):
            inner = ()
        width = int(out_shape[-1] or 0) if out_shape else 0
        return UnitInfo(unit.name, "block", "block", width, in_shape, out_shape, params, inner,
                        projection=bool(unit.shortcut))
    layer = unit.layers[0]
    role = _role(layer)
    width = int(layer.get_config()[_WIDTH_KEY[type(layer).__name__]]) if role == "weighted" else 0
    return UnitInfo(unit.name, "layer", role, width, in_shape, out_shape, params)


def structure(model: Any) -> BaseStructure:
    """The :class:`~evokeras.genomes.edits.BaseStructure` of a trained ``model`` (its units, what
    each allows). Raises :class:`SurgeryError` for graphs other than chains of layers and
    residual blocks."""
    return _structure(_parse(model))


def _structure(units: list[_Unit]) -> BaseStructure:
    """The :class:`~evokeras.genomes.edits.BaseStructure` of the parsed ``units``."""
    return BaseStructure(tuple(_info(u) for u in units))


def _kept(units: list[_Unit], end: int, program: EditProgram) -> list[tuple[int, _Unit]]:
    """``(index, unit)`` of the units up to ``units[end]`` that ``program`` does not drop."""
    dropped = set(program.drop)
    return [(i, u) for i, u in enumerate(units[: end + 1]) if u.name not in dropped]


# --------------------------------------------------------------------------- #
# Importance and slicing                                                       #
# --------------------------------------------------------------------------- #
def importance(layer: Any, bn: Any = None) -> np.ndarray:
    """Importance of each output unit of a weighted ``layer``: the L1 norm of its trained
    incoming weights (a filter's kernel; a Dense unit's column; an LSTM unit's four gate
    columns of kernel and recurrent kernel; an Embedding dimension's column), times
    ``|gamma| / sqrt(variance + epsilon)`` of the BatchNormalization ``bn`` that follows
    it, if any (the scale its output is multiplied by; :func:`kernel_importance`)."""
    cls = type(layer).__name__
    weights = layer.get_weights()
    if cls == "LSTM":
        units = int(layer.get_config()["units"])
        kernel, recurrent = weights[0], weights[1]
        gates = [np.concatenate([kernel[:, g * units:(g + 1) * units], recurrent[:, g * units:(g + 1) * units]])
                 for g in range(4)]
        kernel = np.abs(np.stack(gates)).sum(axis=0)
    else:
        kernel = weights[0]
    if bn is not None and type(bn).__name__ == "BatchNormalization":
        cfg = bn.get_config()
        w = bn.get_weights()
        return kernel_importance(kernel, w if cfg.get("scale", True) else w[-3:], float(cfg.get("epsilon", 1e-3)))
    return kernel_importance(kernel)


def weighted_layers(model: Any) -> list[tuple[Any, Any]]:
    """``(layer, bn)`` for each weighted layer of ``model``'s units whose output a squeeze
    can slice: ``bn`` is the BatchNormalization that directly follows it (or ``None``)."""
    out = []
    units = _parse(model)
    for i, unit in enumerate(units):
        if unit.kind == "layer":
            if _role(unit.layers[0]) == "weighted":
                out.append((unit.layers[0], _unit_bn(units, i)))
            continue
        for branch in (unit.layers, unit.shortcut):
            out += [(layer, _next_bn(branch, j)) for j, layer in enumerate(branch) if _role(layer) == "weighted"]
    return out


def _contribution(layer: Any, bn: Any, scores: Any) -> np.ndarray:
    """Per-unit contributions of ``layer`` as a ``(rows, units)`` matrix: the data-driven
    rows of ``scores`` when it has the layer, else :func:`importance` as one row."""
    if scores is not None and layer.name in scores:
        return np.asarray(scores[layer.name], dtype=np.float64).reshape(-1, _width(layer))
    return importance(layer, bn)[None, :]


def _width(layer: Any) -> int:
    return int(layer.get_config()[_WIDTH_KEY[type(layer).__name__]])


def _score(parts: list[np.ndarray]) -> np.ndarray:
    """A unit's importance: the mean over rows of ``|sum of its contributions|`` (one part
    per tensor; several for a residual stream)."""
    return np.abs(np.sum(parts, axis=0)).mean(axis=0)


def _select(parts: list[np.ndarray], keep: float) -> np.ndarray:
    """The units to keep: the ``keep`` fraction of largest :func:`_score`."""
    score = _score(parts)
    n = max(1, int(round(keep * score.shape[-1])))
    return np.sort(np.argsort(-score, kind="stable")[:n])


def _slice_weighted(layer: Any, weights: list[np.ndarray], kept_in: np.ndarray | None,
                    kept_out: np.ndarray | None) -> list[np.ndarray]:
    cls = type(layer).__name__
    w = [np.array(a) for a in weights]
    if cls == "Embedding":
        if kept_out is not None:
            w[0] = w[0][:, kept_out]
        return w
    if cls == "LSTM":
        units = w[1].shape[0]
        if kept_in is not None:
            w[0] = w[0][kept_in, :]
        if kept_out is not None:
            cols = np.concatenate([g * units + kept_out for g in range(4)])
            w[0] = w[0][:, cols]
            w[1] = w[1][np.ix_(kept_out, cols)]
            if len(w) > 2:
                w[2] = w[2][cols]
        return w
    # Conv1D / Conv2D / Dense: kernel (..., in, out), bias (out,)
    if kept_in is not None:
        w[0] = np.take(w[0], kept_in, axis=-2)
    if kept_out is not None:
        w[0] = w[0][..., kept_out]
        if len(w) > 1:
            w[1] = w[1][kept_out]
    return w


def _clone(layer: Any, **changes: Any) -> Any:
    cfg = layer.get_config()
    cfg.update(changes)
    return type(layer).from_config(cfg)


def _built_with(layer: Any, x: Any, weights: list[np.ndarray]) -> Any:
    """``layer(x)`` with ``weights``: built with constant initializers (a random one is
    compiled per shape on JAX, a second or more each, for values overwritten at once), the
    layer's own initializers put back for its config."""
    import keras

    owner = getattr(layer, "cell", layer)  # a recurrent layer's initializers are its cell's
    keys = [k for k in vars(owner) if k.endswith("_initializer") and getattr(owner, k) is not None]
    own = {k: getattr(owner, k) for k in keys}
    for k in keys:
        setattr(owner, k, keras.initializers.Zeros())
    y = layer(x)
    for k, value in own.items():
        setattr(owner, k, value)
    layer.set_weights(weights)
    return y


def _apply_layer(layer: Any, x: Any, kept: np.ndarray | None, kept_out: np.ndarray | None,
                 trainable: bool) -> tuple[Any, np.ndarray | None]:
    """Call a copy of ``layer`` on ``x`` whose input channels ``kept`` survive (``None``:
    all); a weighted layer keeps the output units ``kept_out`` (``None``: all). Returns
    the output and its kept channels (indices into the base layer's output channels;
    ``None``: all)."""
    cls = type(layer).__name__
    role = _role(layer)
    weights = layer.get_weights()
    if role == "weighted":
        changes = {_WIDTH_KEY[cls]: len(kept_out)} if kept_out is not None else {}
        new = _clone(layer, **changes)
        weights = _slice_weighted(layer, weights, kept, kept_out)
        out_kept = kept_out
    elif role == "pass":
        new = _clone(layer)
        if kept is not None and weights:  # batch norm: per-channel vectors
            weights = [np.asarray(a)[kept] for a in weights]
        out_kept = kept
        if cls == "Flatten" and kept is not None:
            channels = int(layer.input.shape[-1])
            positions = int(np.prod(layer.input.shape[1:-1]))
            out_kept = (np.arange(positions)[:, None] * channels + kept[None, :]).reshape(-1)
    else:
        if kept is not None:
            raise SurgeryError(f"layer {layer.name!r} ({cls}) cannot read a squeezed input")
        new = _clone(layer)
        out_kept = None
    if weights:
        y = _built_with(new, x, weights)
    else:
        y = new(x)
    # batch norm stays in inference mode (its trained statistics) also when fine-tuning
    new.trainable = trainable and cls != "BatchNormalization"
    return y, out_kept


def _next_bn(layers: list[Any], i: int) -> Any:
    return layers[i + 1] if i + 1 < len(layers) and type(layers[i + 1]).__name__ == "BatchNormalization" else None


def _unit_bn(chain: list[_Unit], pos: int) -> Any:
    """The BatchNormalization layer unit directly after ``chain[pos]`` (or ``None``)."""
    nxt = chain[pos + 1] if pos + 1 < len(chain) else None
    layer = nxt.layers[0] if nxt is not None and nxt.kind == "layer" else None
    return layer if layer is not None and type(layer).__name__ == "BatchNormalization" else None


def _last_weighted(layers: list[Any]) -> int:
    return max((j for j, layer in enumerate(layers) if _role(layer) == "weighted"), default=-1)


def _stream_parts(unit: _Unit, by_name: dict[str, _Unit], chain: list[_Unit], streams: dict[str, list[str]],
                  scores: Any) -> list[np.ndarray]:
    """The contributions of every tensor of the residual stream ``unit`` starts (a layer or
    a projection block) or of a block: the producer's and each identity block's last
    weighted layer, broadcast to the same rows."""
    parts = []
    if unit.kind == "layer":
        parts.append(_contribution(unit.layers[0], _unit_bn(chain, chain.index(unit)), scores))
    for member in [unit] * (unit.kind == "block") + [by_name[b] for b in streams.get(unit.name, [])]:
        branches = [member.layers, member.shortcut] if member is unit else [member.layers]
        for branch in branches:
            j = _last_weighted(branch)
            if j < 0:
                raise SurgeryError(f"squeeze: a branch of block {member.name!r} has no weighted layer")
            parts.append(_contribution(branch[j], _next_bn(branch, j), scores))
    rows = max(p.shape[0] for p in parts)
    return [np.broadcast_to(p, (rows, p.shape[1])) for p in parts]


def _stream_kept(kept_units: list[tuple[int, _Unit]], streams: dict[str, list[str]],
                 squeeze: dict[str, float], scores: Any) -> dict[str, np.ndarray]:
    """``{unit name: kept channels}`` of the squeezed residual streams: the producer's
    and each of its identity blocks' (all the same channels)."""
    by_name = {u.name: u for _, u in kept_units}
    chain = [u for _, u in kept_units]
    out: dict[str, np.ndarray] = {}
    for name, keep in squeeze.items():
        unit = by_name.get(name)
        if unit is None or not (unit.kind == "block" or name in streams):
            continue
        kept = _select(_stream_parts(unit, by_name, chain, streams, scores), keep)
        for member_name in [name, *streams.get(name, [])]:
            out[member_name] = kept
    return out


def squeeze_scores(model: Any, program: EditProgram, scores: Any = None) -> dict[str, np.ndarray]:
    """``{name: per-unit importance}`` of everything ``program``'s chain may squeeze
    (:meth:`~evokeras.genomes.edits.BaseStructure.squeezable`): the scores
    :func:`apply_program` keeps the largest of (a residual stream's summed over its
    tensors), with the data-driven ``scores`` as there."""
    units = _parse(model)
    chain = [u for _, u in _kept(units, [u.name for u in units].index(program.cut), program)]
    by_name = {u.name: u for u in chain}
    base = _structure(units)
    streams = base.streams(program)
    inner = {layer.name: (layer, _next_bn(u.layers, j)) for u in chain if u.kind == "block"
             for j, layer in enumerate(u.layers)}
    out = {}
    for name in base.squeezable(program):
        unit = by_name.get(name)
        if unit is not None and (unit.kind == "block" or name in streams):
            out[name] = _score(_stream_parts(unit, by_name, chain, streams, scores))
        elif unit is not None:
            out[name] = _score([_contribution(unit.layers[0], _unit_bn(chain, chain.index(unit)), scores)])
        else:
            out[name] = _score([_contribution(*inner[name], scores)])
    return out


def _downsampled(x: Any, name: str, after: str) -> Any:
    """``x``, max-pooled by 2 along its spatial axes (``same`` padding) when unit ``name``
    is the program's downsample point ``after``."""
    import keras

    if name != after:
        return x
    pool = keras.layers.MaxPooling2D if len(x.shape) == 4 else keras.layers.MaxPooling1D
    return pool(2, padding="same", name="specialized_downsample")(x)


def _last_unit(names: list[str], program: EditProgram, whole: bool) -> int:
    """The index of the last unit :func:`apply_program` keeps."""
    if whole:
        if program.downsample:  # a head reading a flattened map keeps its input weights per position
            raise SurgeryError("downsample: not in a whole model (only up to a cut, before a new head)")
        return len(names) - 1
    if program.cut not in names[:-1]:
        raise SurgeryError(f"cut: {program.cut!r} is not a unit before the base's head ({names[:-1]})")
    return names.index(program.cut)


def apply_program(model: Any, program: EditProgram, scores: Any = None, *, whole: bool = False) -> Any:
    """The body ``program`` makes of ``model``: a new functional Keras model from the
    base's input to the pooled features at the cut (a vector per sample; ``whole``: to
    the base's own output through all its units, the head's outputs kept) -- built from
    fresh copies of the base's layers with its trained weights (sliced where squeezed).
    Layers of units up to ``program.freeze`` are not trainable; batch normalization layers
    never are (fine-tuning keeps them in inference mode, with the base's statistics, as
    the head was fitted on those features).

    ``scores``: ``{weighted layer name: (rows, units) contributions}`` of a data-driven
    importance criterion (:func:`evokeras.nets.importance.unit_scores`); a unit's
    importance is the mean over rows of the absolute contribution (summed over a
    residual stream's tensors). Layers it lacks, or ``None``, use :func:`importance`."""
    import keras


    units = _parse(model)
    names = [u.name for u in units]
    squeeze = dict(program.squeeze)
    frozen_to = names.index(program.freeze) if program.freeze else -1
    kept_units = _kept(units, _last_unit(names, program, whole), program)
    chain = [u for _, u in kept_units]
    streams = _structure(units).streams(program)
    forced = _stream_kept(kept_units, streams, squeeze, scores)

    def out_units(layer: Any, bn: Any) -> np.ndarray | None:
        keep = squeeze.get(layer.name)
        return _select([_contribution(layer, bn, scores)], keep) if keep else None

    inp = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name=model.inputs[0].name)
    x, kept = inp, None
    for pos, (i, unit) in enumerate(kept_units):
        trainable = i > frozen_to
        if unit.kind == "layer":
            layer = unit.layers[0]
            bn = _unit_bn(chain, pos)
            kept_out = forced[unit.name] if unit.name in forced else (
                out_units(layer, bn) if _role(layer) == "weighted" else None)
            x, kept = _apply_layer(layer, x, kept, kept_out, trainable)
            x = _downsampled(x, unit.name, program.downsample)
            continue
        stream = forced.get(unit.name)
        if kept is not None and unit.shortcut == [] and (stream is None or not np.array_equal(stream, kept)):
            raise SurgeryError(f"block {unit.name!r} reads a squeezed residual stream it does not belong to")

        ends: list[tuple[Any, np.ndarray | None]] = []
        for layers_ in (unit.layers, unit.shortcut):
            h, hk = x, kept
            last = _last_weighted(layers_)
            for j, layer in enumerate(layers_):
                if j == last and stream is not None:
                    kept_out = stream
                else:
                    kept_out = out_units(layer, _next_bn(layers_, j)) if _role(layer) == "weighted" else None
                h, hk = _apply_layer(layer, h, hk, kept_out, trainable)
            ends.append((h, hk))
        (h, hk), (s, sk) = ends
        if not (hk is None and sk is None) and (hk is None or sk is None or not np.array_equal(hk, sk)):
            raise SurgeryError(f"block {unit.name!r}: its branches end with different channels")
        x = _clone(unit.add)([s, h])
        kept = hk
        x = _downsampled(x, unit.name, program.downsample)
    if whole:
        return keras.Model(inp, x, name=f"{model.name}_pruned")
    rank = len(x.shape)
    pools = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
             "flatten": keras.layers.Flatten, "mean": keras.layers.GlobalAveragePooling1D, "last": layers.LastStep}
    if rank > 2:
        if program.pool not in pools:
            raise SurgeryError(f"pool: {program.pool!r} does not apply to rank-{rank} features")
        x = pools[program.pool](name="specialized_pool")(x)
    return keras.Model(inp, x, name="specialized_body")


def count_flops(model: Any) -> int:
    """Floating-point operations (2 per multiply-add) of one sample's forward pass through
    the Conv/Dense/LSTM layers of ``model`` (time-major layers: per window)."""
    total = 0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in ("Conv1D", "Conv2D", "Dense", "LSTM"):
            continue
        out = layer.output.shape
        kernel = layer.get_weights()[0]
        if cls == "LSTM":
            steps = layer.input.shape[1] or 1
            units = kernel.shape[1] // 4
            total += 2 * int(steps) * 4 * units * (kernel.shape[0] + units)
        else:
            positions = int(np.prod([d or 1 for d in out[1:-1]])) if len(out) > 2 else 1
            total += 2 * positions * int(np.prod(kernel.shape))
    return int(total)
