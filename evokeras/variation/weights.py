"""Weights that evolve with the architecture, for flat (vector-input) genomes.

Tasks that evolve weights rather than train them (CartPole) keep each individual's
weights in :attr:`evokeras.genomes.network.Genome.weights`: Keras layer name -> the layer's
arrays, float32 little-endian, concatenated in Keras order and base64-encoded. The
arrays' shapes follow from the architecture (:func:`layout`), so the encoding is
compact, exact and part of the genome's key.

The layer names and shapes are those :func:`evokeras.nets.decode.decode` builds
(``g{i}_dense`` kernel+bias, ``g{i}_proj{j}`` kernel of an ``add`` merge that changes
width, ``head`` kernel+bias), so :func:`set_model_weights` loads them into the
decoded model, and :func:`forward` -- a NumPy forward pass used for fast rollouts --
computes what that model computes (a test checks it).

Variation: :func:`init_weights` (Glorot-uniform kernels, zero biases, as Keras does),
:func:`inherit` (a child's layer takes its parent's same-named layer's values where
the shapes overlap, fresh values elsewhere), :func:`perturb` (Gaussian noise).

Example:
    >>> import numpy as np
    >>> from evokeras.genomes.network import Genome, LayerGene
    >>> g = Genome((LayerGene("dense", units=8, activation="tanh"),))
    >>> g = init_weights(g, np.random.default_rng(0), 4, 2)
    >>> forward(g, np.zeros((3, 4), np.float32), 4, 2).shape
    (3, 2)
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from evokeras.genomes.analysis import analyze
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome

__all__ = [
    "ACTIVATIONS",
    "FORWARD_KINDS",
    "decode_weights",
    "encode_weights",
    "flat_weights",
    "forward",
    "inherit",
    "init_weights",
    "layout",
    "params_of",
    "perturb",
    "set_model_weights",
    "with_flat_weights",
    "with_params",
]

#: Layer kinds :func:`forward` evaluates (dropout is the identity at inference).
FORWARD_KINDS = frozenset({"dense", "activation", "dropout"})


Params = dict[str, list[np.ndarray]]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_NP_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x * _sigmoid(x),
}


#: Activations :func:`forward` evaluates.
ACTIVATIONS = tuple(_NP_ACTIVATIONS)


def layout(genome: Genome, input_dim: int, n_outputs: int) -> list[tuple[str, list[tuple[int, ...]]]]:
    """The weighted layers of ``genome`` in build order: ``[(name, [shapes])]``.

    Raises:
        GenomeError: for a gene kind :func:`forward` does not evaluate.
    """
    widths = [s.channels for s in analyze(genome, (input_dim,), n_outputs).shapes]
    out: list[tuple[str, list[tuple[int, ...]]]] = []
    for i, layer in enumerate(genome.layers):
        if layer.kind not in FORWARD_KINDS:
            raise GenomeError(f"layers[{i}].kind: {layer.kind!r} has no evolved-weights form (allowed: {sorted(FORWARD_KINDS)})")
        if layer.activation is not None and layer.activation not in _NP_ACTIVATIONS:
            raise GenomeError(f"layers[{i}].activation: {layer.activation!r} has no NumPy form (allowed: {sorted(_NP_ACTIVATIONS)})")
        width = widths[i - 1] if i else input_dim
        if layer.skips and layer.merge == "add":
            for j in layer.skips:
                if widths[j] != width:
                    out.append((f"g{i}_proj{j}", [(widths[j], width)]))
        elif layer.skips:
            width += sum(widths[j] for j in layer.skips)
        if layer.kind == "dense":
            assert layer.units is not None  # dense genes always have units (LayerGene.__post_init__)
            out.append((f"g{i}_dense", [(width, layer.units), (layer.units,)]))
    last = widths[-1] if widths else input_dim
    out.append(("head", [(last, n_outputs), (n_outputs,)]))
    return out


def encode_weights(arrays: list[np.ndarray]) -> str:
    """One layer's arrays as a base64 string of float32 little-endian values."""
    flat = np.concatenate([np.asarray(a, dtype="<f4").ravel() for a in arrays]) if arrays else np.zeros(0, "<f4")
    return base64.b64encode(flat.tobytes()).decode("ascii")


def decode_weights(blob: str, shapes: list[tuple[int, ...]], *, where: str = "weights") -> list[np.ndarray]:
    """Invert :func:`encode_weights` for arrays of ``shapes``."""
    try:
        flat = np.frombuffer(base64.b64decode(blob.encode("ascii"), validate=True), dtype="<f4")
    except (ValueError, UnicodeEncodeError) as exc:
        raise GenomeError(f"genome.{where}: not valid base64 ({exc})") from None
    sizes = [int(np.prod(s)) for s in shapes]
    if flat.size != sum(sizes):
        raise GenomeError(f"genome.{where}: {flat.size} values, the layer needs {sum(sizes)} for shapes {shapes}")
    out, pos = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(flat[pos : pos + size].astype(np.float32).reshape(shape))
        pos += size
    return out


def params_of(genome: Genome, input_dim: int, n_outputs: int) -> Params:
    """The genome's weights as arrays by layer name (checked against :func:`layout`)."""
    stored = dict(genome.weights)
    params: Params = {}
    for name, shapes in layout(genome, input_dim, n_outputs):
        if name not in stored:
            raise GenomeError(f"genome.weights: no weights for layer {name!r}")
        params[name] = decode_weights(stored[name], shapes, where=f"weights[{name!r}]")
    extra = sorted(set(stored) - set(params))
    if extra:
        raise GenomeError(f"genome.weights: layer {extra[0]!r} is not in the architecture")
    return params


def with_params(genome: Genome, params: Mapping[str, list[np.ndarray]]) -> Genome:
    """``genome`` carrying ``params`` as its weights."""
    return genome.replace(weights={name: encode_weights(arrays) for name, arrays in params.items()})


def flat_weights(genome: Genome, input_dim: int, n_outputs: int) -> np.ndarray:
    """All of the genome's weights as one float64 vector, in :func:`layout` order (what an
    evolution strategy perturbs: :mod:`evokeras.variation.es`)."""
    arrays = [a for _, values in params_of(genome, input_dim, n_outputs).items() for a in values]
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float64) if arrays else np.zeros(0)


def with_flat_weights(genome: Genome, vector: np.ndarray, input_dim: int, n_outputs: int) -> Genome:
    """``genome`` carrying ``vector`` (:func:`flat_weights`'s order) as its weights."""
    vector = np.asarray(vector, dtype=np.float64).ravel()
    layers = layout(genome, input_dim, n_outputs)
    ends = np.cumsum([sum(int(np.prod(shape)) for shape in shapes) for _, shapes in layers])  # the head's last
    if vector.size != int(ends[-1]):
        raise GenomeError(f"genome.weights: {vector.size} values, the architecture needs {int(ends[-1])}")
    starts = [0, *ends[:-1]]  # a layer's blob is its arrays concatenated: its slice of the vector
    return genome.replace(weights={name: encode_weights([vector[a:b]])
                                   for (name, _), a, b in zip(layers, starts, ends, strict=True)})


def _fresh(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if len(shape) == 1:
        return np.zeros(shape, np.float32)
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def init_weights(genome: Genome, rng: np.random.Generator, input_dim: int, n_outputs: int) -> Genome:
    """``genome`` with fresh weights: Glorot-uniform kernels and zero biases."""
    params = {name: [_fresh(s, rng) for s in shapes] for name, shapes in layout(genome, input_dim, n_outputs)}
    return with_params(genome, params)


def inherit(genome: Genome, parent: Genome, rng: np.random.Generator, input_dim: int, n_outputs: int) -> Genome:
    """``genome`` with weights taken from ``parent`` where layer names match.

    Each array of a same-named layer copies the parent's values on the overlap of the
    two shapes (a layer that grew keeps its old units, one that shrank keeps the
    first ones); everything else is freshly initialised as by :func:`init_weights`.
    A parent without (valid) weights contributes nothing.
    """
    try:
        old = params_of(parent, input_dim, n_outputs)
    except GenomeError:
        old = {}
    params: Params = {}
    for name, shapes in layout(genome, input_dim, n_outputs):
        arrays = [_fresh(s, rng) for s in shapes]
        for new, prev in zip(arrays, old.get(name, []), strict=False):
            if new.ndim == prev.ndim:
                region = tuple(slice(0, min(a, b)) for a, b in zip(new.shape, prev.shape, strict=True))
                new[region] = prev[region]
        params[name] = arrays
    return with_params(genome, params)


def perturb(
    genome: Genome, rng: np.random.Generator, input_dim: int, n_outputs: int, *, sigma: float, fraction: float = 1.0
) -> Genome:
    """Add Gaussian noise of scale ``sigma`` to a random ``fraction`` of the weights."""
    params = params_of(genome, input_dim, n_outputs)
    for arrays in params.values():
        for a in arrays:
            mask = rng.random(a.shape) < fraction
            a += (rng.normal(0.0, sigma, a.shape) * mask).astype(np.float32)
    return with_params(genome, params)


def forward(genome: Genome, x: np.ndarray, input_dim: int, n_outputs: int, params: Params | None = None) -> np.ndarray:
    """The decoded model's output for a batch ``x`` of shape ``(n, input_dim)``, in NumPy."""
    if params is None:
        params = params_of(genome, input_dim, n_outputs)
    outputs: list[np.ndarray] = []
    h = np.asarray(x, dtype=np.float32)
    for i, layer in enumerate(genome.layers):
        h = outputs[i - 1] if i else h
        if layer.skips:
            if layer.merge == "add":
                parts = [h] + [
                    outputs[j] @ params[f"g{i}_proj{j}"][0] if f"g{i}_proj{j}" in params else outputs[j]
                    for j in layer.skips
                ]
                h = np.sum(parts, axis=0)
            else:
                h = np.concatenate([h] + [outputs[j] for j in layer.skips], axis=-1)
        if layer.kind == "dense":
            assert layer.activation is not None  # dense and activation genes always have one
            kernel, bias = params[f"g{i}_dense"]
            h = _NP_ACTIVATIONS[layer.activation](h @ kernel + bias)
        elif layer.kind == "activation":
            assert layer.activation is not None
            h = _NP_ACTIVATIONS[layer.activation](h)
        outputs.append(h)
    h = outputs[-1] if outputs else h
    kernel, bias = params["head"]
    return h @ kernel + bias


def set_model_weights(model: Any, genome: Genome, input_dim: int, n_outputs: int) -> None:
    """Load the genome's weights into its decoded Keras model."""
    for name, arrays in params_of(genome, input_dim, n_outputs).items():
        model.get_layer(name).set_weights(arrays)
