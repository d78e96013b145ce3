"""Random genes and genomes drawn from a bound
:class:`~evokeras.genomes.space.SearchSpace`: :func:`random_layer`, :func:`random_training`
and :func:`random_genome` (repaired by :func:`evokeras.variation.genome_repair.repair`)."""

from __future__ import annotations

import math

import numpy as np

from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import CONV_KINDS, SPATIAL_KINDS, Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.variation.cell import random_cell
from evokeras.variation.draws import pick as _pick
from evokeras.variation.draws import weighted as _weighted
from evokeras.variation.genome_repair import repair
from evokeras.variation.layer_list import has_spatial_input as _has_spatial_input
from evokeras.variation.layer_list import insert as _insert
from evokeras.variation.layer_list import recurrent_ok as _recurrent_ok

__all__ = ["IMAGE_FEATURE_SIZE", "IMAGE_FLATTEN_SHARE", "random_genome", "random_layer", "random_training"]


def random_layer(rng: np.random.Generator, space: SearchSpace, *, spatial: bool) -> LayerGene:
    """A random layer gene; ``spatial=False`` excludes conv, pool and recurrent genes
    (recurrent genes are drawn on ``(T, C)`` inputs only)."""
    weights = dict(space.layer_kinds)
    if not spatial:
        for kind in SPATIAL_KINDS:
            weights.pop(kind, None)
    elif not _recurrent_ok(space):
        weights.pop("recurrent", None)
    if not any(w > 0 for w in weights.values()):
        weights = {"dense": 1.0}
    return _random_of_kind(rng, space, _weighted(rng, weights))


def _random_of_kind(rng: np.random.Generator, space: SearchSpace, kind: str) -> LayerGene:
    """A gene of ``kind`` with its hyperparameters drawn from the space."""
    if kind == "dense":
        return LayerGene("dense", units=_pick(rng, space.units), activation=_pick(rng, space.activations))
    if kind in CONV_KINDS:
        gene = LayerGene(
            kind,
            units=_pick(rng, space.filters),
            kernel_size=_pick(rng, space.kernel_sizes),
            strides=_pick(rng, space.strides),
            activation=_pick(rng, space.activations),
        )
        return gene.replace(residual=bool(rng.random() < 0.5)) if kind == "block" else gene
    if kind == "pool":
        return LayerGene("pool", pool_type=_pick(rng, ("max", "avg")), pool_size=_pick(rng, space.pool_sizes))
    if kind == "dropout":
        return LayerGene("dropout", rate=round(float(rng.uniform(*space.dropout)), 2))
    if kind == "activation":
        return LayerGene("activation", activation=_pick(rng, space.activations))
    if kind == "recurrent":
        return LayerGene("recurrent", cell=random_cell(rng, space.cell_limits()))
    return LayerGene("batchnorm")


def _random_learning_rate(rng: np.random.Generator, space: SearchSpace) -> float:
    lo, hi = space.learning_rate
    return float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}")


def random_training(rng: np.random.Generator, space: SearchSpace) -> TrainingGenes:
    """Random training genes from the space."""
    return TrainingGenes(
        optimizer=_pick(rng, space.optimizers),
        learning_rate=_random_learning_rate(rng, space),
        batch_size=_pick(rng, space.batch_sizes),
    )


def random_genome(rng: np.random.Generator, space: SearchSpace) -> Genome:
    """A random valid genome with ``space.init_layers`` layers (before repair).

    On inputs with spatial axes the genome is a feature extractor followed by a
    classifier part, as hand-designed networks are: the first gene is a conv or block
    gene (a recurrent gene if the space draws neither), the
    next genes of the spatial part are drawn from the kinds other than dense; then, with
    probability 1/2 for each of up to two dense genes, a flat part opens with a dense
    gene and continues with kinds other than conv/pool. All draws follow the space's
    ``layer_kinds`` weights. Each gene from the third on gets a skip link with
    probability 0.2. On images the feature extractor ends in maps of at most
    :data:`IMAGE_FEATURE_SIZE` (2x2 max pools are appended) and the maps are flattened
    with probability :data:`IMAGE_FLATTEN_SHARE`.
    """
    lo, hi = space.init_layers
    n = int(rng.integers(lo, hi + 1))
    spatial = _has_spatial_input(space)
    kinds = dict(space.layer_kinds)
    if not _recurrent_ok(space):
        kinds.pop("recurrent", None)
    flat_kinds = {k: w for k, w in kinds.items() if k not in SPATIAL_KINDS}
    n_flat = n
    if spatial:
        n_flat = int(sum(rng.random() < 0.5 for _ in range(2))) if n > 1 else 0
        n_flat = min(n_flat if kinds.get("dense", 0) > 0 else 0, n - 1)
    layers: list[LayerGene] = []
    for i in range(n):
        in_spatial = i < n - n_flat
        if in_spatial:
            convs = {k: w for k, w in kinds.items() if k in CONV_KINDS and w > 0}
            first = _weighted(rng, convs) if convs else ("recurrent" if kinds.get("recurrent", 0) > 0 else None)
            pool = {k: w for k, w in kinds.items() if k != "dense"}
            layer = _random_of_kind(rng, space, first if i == 0 and first else _weighted(rng, pool))
        elif i == n - n_flat and kinds.get("dense", 0) > 0:
            layer = _random_of_kind(rng, space, "dense")
        else:
            layer = _random_of_kind(rng, space, _weighted(rng, flat_kinds))
        if i >= 2 and space.max_skips > 0 and rng.random() < 0.2:
            layer = layer.replace(skips=(int(rng.integers(0, i - 1)),), merge=_pick(rng, space.merges))
        layers.append(layer)
    reduce = _pick(rng, space.reductions)
    if spatial:
        layers = _downsample_images(layers, space, n - n_flat)
        if _is_image(space) and "flatten" in space.reductions and rng.random() < IMAGE_FLATTEN_SHARE:
            reduce = "flatten"  # global pooling of a shallow random network learns slowly
            layers = _downsample_images(layers, space, n - n_flat + (len(layers) - n), fit_params=True)
    genome = Genome(tuple(layers), reduce=reduce, training=random_training(rng, space))
    return repair(genome, space)


#: The largest feature map a random image network hands to its reduction (MNIST: 28 -> 7).
IMAGE_FEATURE_SIZE = 7
#: The share of random image networks that flatten their last feature maps (the others
#: draw any of the space's reductions).
IMAGE_FLATTEN_SHARE = 1.0


def _is_image(space: SearchSpace) -> bool:
    return len(space.bound()[0]) == 3


def _downsample_images(layers: list[LayerGene], space: SearchSpace, end: int, *,
                       fit_params: bool = False) -> list[LayerGene]:
    """On image inputs, append 2x2 max-pool genes to the spatial part (``layers[:end]``)
    until its feature maps are at most :data:`IMAGE_FEATURE_SIZE` wide, as hand-designed
    networks do: a reduction over large maps of a shallow network (flatten: too many
    parameters; global pooling: too little information) is what keeps random networks from
    learning. With ``fit_params`` (the maps are flattened), go on down to 2x2 maps while
    the flattened network has more than ``max_params`` parameters, so that the repair need
    not replace the flattening by global pooling. Within ``max_layers``; nothing on
    sequences or when the space draws no pools."""
    input_shape, _ = space.bound()
    if not _is_image(space) or space.layer_kinds.get("pool", 0) <= 0 or 2 not in space.pool_sizes:
        return layers
    size = max(input_shape[:-1])
    for layer in layers[:end]:
        step = layer.strides if layer.is_conv else layer.pool_size if layer.kind == "pool" else 1
        size = math.ceil(size / (step or 1))
    out = list(layers)
    while len(out) < space.max_layers and (
        size > IMAGE_FEATURE_SIZE or (fit_params and size > 2 and _flat_params(out, space) > space.max_params)
    ):
        out = list(_insert(out, end, LayerGene("pool", pool_type="max", pool_size=2)))
        end += 1
        size = math.ceil(size / 2)
    return out


def _flat_params(layers: list[LayerGene], space: SearchSpace) -> float:
    """Parameters of ``layers`` with flattened maps (infinite when they do not fit together yet)."""
    try:
        return space.analyze(Genome(tuple(layers), reduce="flatten")).params
    except GenomeError:
        return math.inf
