"""Variation operators on genomes: pure functions with an explicit random source.

Every function takes a genome (never changed), a ``numpy.random.Generator`` and a
bound :class:`~evokeras.genomes.space.SearchSpace` (``task.space``), and returns new genomes
that :func:`repair` has made valid and decodable for the space's task: structure
valid, choices inside the space, spatial size never below ``min_spatial``, layer
count and parameters within the limits.

The operator set follows the usual neuro-evolution repertoire on a variable-length
layer list (Miikkulainen et al. 2017, "Evolving Deep Neural Networks"; Real et al. 2017,
"Large-Scale Evolution of Image Classifiers"): add/remove layer, change a
hyperparameter or activation, add/remove a skip link, change training genes, mutate
the skip-step cell of a recurrent gene (:func:`evokeras.variation.cell.mutate_cell`), and
one-point crossover on the layer sequence with uniform crossover of training genes
(recurrent genes move with their cells).
For DEAP's in-place ``return ind,`` convention see :mod:`evokeras.engine.toolbox`.

Example:
    >>> import numpy as np
    >>> from evokeras.genomes.space import default_space
    >>> space = default_space("image").replace(input_shape=(28, 28, 1), n_outputs=10)
    >>> rng = np.random.default_rng(0)
    >>> parent = random_genome(rng, space)
    >>> child = mutate(parent, rng, space)
    >>> space.check(child)  # every offspring is valid
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evokeras.genomes.cell import CellGenome, NodeGene
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import CONV_KINDS, SPATIAL_KINDS, Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.variation.cell import crossover_cells, mutate_cell, random_cell, repair_cell
from evokeras.variation.draws import first_change
from evokeras.variation.draws import nearest as _nearest
from evokeras.variation.draws import pick as _pick
from evokeras.variation.draws import weighted as _weighted

__all__ = [
    "MUTATIONS",
    "add_layer",
    "add_skip",
    "change_activation",
    "change_cell",
    "change_hyperparameter",
    "change_training",
    "crossover",
    "mutate",
    "random_genome",
    "random_layer",
    "remove_layer",
    "remove_skip",
    "repair",
]

Mutation = Callable[[Genome, np.random.Generator, SearchSpace], "Genome | None"]


# -- helpers -----------------------------------------------------------------------------
def _spatial_ok(space: SearchSpace) -> frozenset[str]:
    """The spatial kinds the space draws that its input can take: conv and pool on any
    input with spatial axes, recurrent only on ``(T, C)`` sequences."""
    input_shape, _ = space.bound()
    if len(input_shape) <= 1:
        return frozenset()
    kinds = ("conv", "block", "pool", "recurrent") if len(input_shape) == 2 else ("conv", "block", "pool")
    return frozenset(k for k in kinds if space.layer_kinds.get(k, 0) > 0)


def _has_spatial_input(space: SearchSpace) -> bool:
    return bool(_spatial_ok(space))


def _recurrent_ok(space: SearchSpace) -> bool:
    return space.input_shape is not None and len(space.input_shape) == 2


def _remove(layers: Sequence[LayerGene], index: int) -> tuple[LayerGene, ...]:
    """Remove gene ``index`` and renumber the skip links of the others."""
    out = []
    for i, layer in enumerate(layers):
        if i == index:
            continue
        skips = tuple(j - (j > index) for j in layer.skips if j != index)
        out.append(layer.replace(skips=skips) if skips != layer.skips else layer)
    return tuple(out)


def _insert(layers: Sequence[LayerGene], index: int, gene: LayerGene) -> tuple[LayerGene, ...]:
    """Insert ``gene`` at ``index`` and renumber the skip links after it."""
    shifted = [
        layer.replace(skips=tuple(j + (j >= index) for j in layer.skips)) if layer.skips else layer
        for layer in layers
    ]
    return tuple(shifted[:index]) + (gene,) + tuple(shifted[index:])


def _first_dense(layers: Sequence[LayerGene]) -> int:
    return next((i for i, layer in enumerate(layers) if layer.kind == "dense"), len(layers))


def _last_spatial(layers: Sequence[LayerGene]) -> int:
    return max((i for i, layer in enumerate(layers) if layer.is_spatial), default=-1)


# -- random genes ------------------------------------------------------------------------
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


# -- mutations -----------------------------------------------------------------------------
def add_layer(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Insert a random gene at a random position where its kind is allowed."""
    if len(genome.layers) >= space.max_layers:
        return None
    layers = genome.layers
    n = len(layers)
    pos = int(rng.integers(0, n + 1))
    spatial = _has_spatial_input(space) and pos <= _first_dense(layers)
    gene = random_layer(rng, space, spatial=spatial)
    if gene.kind == "dense":
        pos = max(pos, _last_spatial(layers) + 1)
    return repair(genome.replace(layers=_insert(layers, pos, gene)), space)


def remove_layer(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Remove a random gene (links to it are dropped, the others renumbered)."""
    if len(genome.layers) <= max(space.min_layers, 1):
        return None
    index = int(rng.integers(len(genome.layers)))
    return repair(genome.replace(layers=_remove(genome.layers, index)), space)


def _step(rng: np.random.Generator, value: Any, choices: Sequence[Any]) -> Any:
    """A neighbouring choice (70%) or any other choice (30%)."""
    options = [c for c in choices if c != value]
    if not options:
        return value
    ordered = sorted(choices)
    if value in ordered and rng.random() < 0.7:
        k = ordered.index(value)
        near = [ordered[m] for m in (k - 1, k + 1) if 0 <= m < len(ordered)]
        return _pick(rng, near)
    return _pick(rng, options)


def change_hyperparameter(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Change one hyperparameter of one gene (units, kernel, stride, pool, rate, a block's
    residual shortcut) or the reduction.

    Recurrent genes are left to :func:`change_cell`; the reduction is left alone when the
    task keeps the time axis (``space.sequence_output``: nothing is reduced).
    """
    reducible = len(space.reductions) > 1 and not space.sequence_output
    options: list[tuple[int, str]] = [(-1, "reduce")] if reducible else []
    for i, layer in enumerate(genome.layers):
        for name in ("units", "kernel_size", "strides", "pool_size", "pool_type", "rate", "residual"):
            if getattr(layer, name) is not None:
                options.append((i, name))
    if not options:
        return None
    i, name = _pick(rng, options)
    if name == "reduce":
        return repair(genome.replace(reduce=_step(rng, genome.reduce, space.reductions)), space)
    layer = genome.layers[i]
    value = getattr(layer, name)
    if name == "rate":
        lo, hi = space.dropout
        new: Any = round(float(np.clip(value + rng.normal(0.0, 0.1), lo, hi)), 2)
    elif name == "pool_type":
        new = "avg" if value == "max" else "max"
    elif name == "residual":
        new = not value
    else:
        choices = {
            "units": space.filters if layer.is_conv else space.units,
            "kernel_size": space.kernel_sizes,
            "strides": space.strides,
            "pool_size": space.pool_sizes,
        }[name]
        new = _step(rng, value, choices)
    layers = list(genome.layers)
    layers[i] = layer.replace(**{name: new})
    return repair(genome.replace(layers=tuple(layers)), space)


def change_activation(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Give one gene that has an activation a different one."""
    options = [i for i, layer in enumerate(genome.layers) if layer.activation is not None]
    if not options or len(space.activations) < 2:
        return None
    i = _pick(rng, options)
    layer = genome.layers[i]
    new = _pick(rng, [a for a in space.activations if a != layer.activation])
    layers = list(genome.layers)
    layers[i] = layer.replace(activation=new)
    return repair(genome.replace(layers=tuple(layers)), space)


def change_cell(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Mutate the skip-step cell of one recurrent gene (:func:`evokeras.variation.cell.mutate_cell`
    within ``space.cell_limits()``); ``None`` without recurrent genes."""
    options = [i for i, layer in enumerate(genome.layers) if layer.kind == "recurrent"]
    if not options:
        return None
    i = _pick(rng, options)
    layer = genome.layers[i]
    assert layer.cell is not None  # recurrent genes always have a cell (LayerGene.__post_init__)
    cell = mutate_cell(layer.cell, rng, space.cell_limits())
    if cell == layer.cell:
        return None
    layers = list(genome.layers)
    layers[i] = layer.replace(cell=cell)
    return repair(genome.replace(layers=tuple(layers)), space)


def _skip_candidates(genome: Genome, space: SearchSpace) -> list[tuple[int, int]]:
    regions = genome.regions()
    out = []
    for i, layer in enumerate(genome.layers):
        if len(layer.skips) >= space.max_skips:
            continue
        out += [(i, j) for j in range(i - 1) if j not in layer.skips and regions[j] == regions[i]]
    return out


def add_skip(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Link a gene to the output of an earlier gene of the same part (spatial or flat)."""
    candidates = _skip_candidates(genome, space)
    if not candidates:
        return None
    i, j = _pick(rng, candidates)
    layer = genome.layers[i]
    merge = layer.merge if layer.skips else _pick(rng, space.merges)
    layers = list(genome.layers)
    layers[i] = layer.replace(skips=tuple(sorted((*layer.skips, j))), merge=merge)
    return repair(genome.replace(layers=tuple(layers)), space)


def remove_skip(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Remove one skip link."""
    options = [(i, j) for i, layer in enumerate(genome.layers) for j in layer.skips]
    if not options:
        return None
    i, j = _pick(rng, options)
    layers = list(genome.layers)
    layers[i] = layers[i].replace(skips=tuple(s for s in layers[i].skips if s != j))
    return repair(genome.replace(layers=tuple(layers)), space)


def change_training(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Change the optimizer, the learning rate (log-normal step) or the batch size."""
    t = genome.training
    which = _pick(rng, ("optimizer", "learning_rate", "batch_size"))
    if which == "optimizer":
        t = TrainingGenes(_step(rng, t.optimizer, space.optimizers), t.learning_rate, t.batch_size)
    elif which == "batch_size":
        t = TrainingGenes(t.optimizer, t.learning_rate, _step(rng, t.batch_size, space.batch_sizes))
    else:
        lo, hi = space.learning_rate
        lr = float(f"{float(np.clip(t.learning_rate * math.exp(rng.normal(0.0, 0.7)), lo, hi)):.3g}")
        t = TrainingGenes(t.optimizer, lr, t.batch_size)
    return repair(genome.replace(training=t), space)


MUTATIONS: dict[str, Mutation] = {
    "add_layer": add_layer,
    "remove_layer": remove_layer,
    "change_hyperparameter": change_hyperparameter,
    "change_activation": change_activation,
    "add_skip": add_skip,
    "remove_skip": remove_skip,
    "change_training": change_training,
    "change_cell": change_cell,
}

DEFAULT_MUTATION_WEIGHTS: dict[str, float] = {
    "add_layer": 2.0,
    "remove_layer": 1.5,
    "change_hyperparameter": 3.0,
    "change_activation": 1.0,
    "add_skip": 1.0,
    "remove_skip": 0.5,
    "change_training": 1.5,
    "change_cell": 2.0,
}


def mutate(
    genome: Genome,
    rng: np.random.Generator,
    space: SearchSpace,
    *,
    weights: dict[str, float] | None = None,
) -> Genome:
    """Apply one mutation, drawn by ``weights`` among those that change the genome.

    Args:
        genome: the parent (not changed).
        rng: the random source.
        space: a bound search space.
        weights: relative weights of the :data:`MUTATIONS` by name
            (default :data:`DEFAULT_MUTATION_WEIGHTS`).

    Returns:
        A valid child; the parent itself (repaired) only if no mutation applies.
    """
    parent = genome.as_genome()
    table = DEFAULT_MUTATION_WEIGHTS if weights is None else weights
    child = first_change(parent, MUTATIONS, table, rng, space, who="mutate")
    return repair(parent, space) if child is None else child


def crossover(
    a: Genome, b: Genome, rng: np.random.Generator, space: SearchSpace
) -> tuple[Genome, Genome]:
    """One-point crossover of the layer sequences, uniform crossover of training genes.

    A cut ``i`` in ``a`` and ``j`` in ``b`` give ``a[:i] + b[j:]`` and ``b[:j] + a[i:]``;
    when a head already holds a dense gene, the other cut is moved past the other
    parent's last conv/pool gene so that no conv/pool follows a dense gene. Skip links
    inside the tail keep pointing at the same genes; links into the dropped part are
    removed. The reduction comes from either parent at random. When the cut gives back
    the two parents (short genomes), the cells of recurrent genes at the same index are
    crossed instead (:func:`evokeras.variation.cell.crossover_cells`).
    """
    a, b = a.as_genome(), b.as_genome()
    i = int(rng.integers(len(a.layers) + 1))
    j_low = _last_spatial(b.layers) + 1 if _first_dense(a.layers) < i else 0
    j = int(rng.integers(j_low, len(b.layers) + 1)) if j_low <= len(b.layers) else len(b.layers)
    if _first_dense(b.layers) < j and _last_spatial(a.layers) >= i:
        i = _last_spatial(a.layers) + 1

    def splice(head: Genome, cut_h: int, tail: Genome, cut_t: int) -> tuple[LayerGene, ...]:
        moved = tuple(
            layer.replace(skips=tuple(s - cut_t + cut_h for s in layer.skips if s >= cut_t))
            for layer in tail.layers[cut_t:]
        )
        return head.layers[:cut_h] + moved

    ta, tb = a.training, b.training
    swap = rng.random(3) < 0.5
    fields = ("optimizer", "learning_rate", "batch_size")
    ca = {f: getattr(tb if s else ta, f) for f, s in zip(fields, swap, strict=True)}
    cb = {f: getattr(ta if s else tb, f) for f, s in zip(fields, swap, strict=True)}
    reduce_a, reduce_b = (b.reduce, a.reduce) if rng.random() < 0.5 else (a.reduce, b.reduce)
    layers_a, layers_b = splice(a, i, b, j), splice(b, j, a, i)
    if {layers_a, layers_b} <= {a.layers, b.layers}:  # the cut gave back the parents
        layers_a, layers_b = _cross_cells(a.layers, b.layers, rng, space)
    child_a = Genome(layers_a, reduce=reduce_a, training=TrainingGenes(**ca))
    child_b = Genome(layers_b, reduce=reduce_b, training=TrainingGenes(**cb))
    return repair(child_a, space), repair(child_b, space)


def _cross_cells(
    a: tuple[LayerGene, ...], b: tuple[LayerGene, ...], rng: np.random.Generator, space: SearchSpace
) -> tuple[tuple[LayerGene, ...], tuple[LayerGene, ...]]:
    """Cross the cells of the recurrent genes at the same index of both parents
    (:func:`evokeras.variation.cell.crossover_cells`); other genes stay with their parent."""
    la, lb = list(a), list(b)
    for k in range(min(len(la), len(lb))):
        if la[k].kind == lb[k].kind == "recurrent":
            cell_a, cell_b = la[k].cell, lb[k].cell
            assert cell_a is not None and cell_b is not None  # recurrent genes always have a cell
            ca, cb = crossover_cells(cell_a, cell_b, rng, space.cell_limits())
            la[k], lb[k] = la[k].replace(cell=ca), lb[k].replace(cell=cb)
    return tuple(la), tuple(lb)


# -- repair ----------------------------------------------------------------------------------
def repair(genome: Genome, space: SearchSpace) -> Genome:
    """Make ``genome`` valid and decodable inside ``space`` (deterministic).

    In order: drop genes of kinds the space or the input does not allow (recurrent
    genes need a ``(T, C)`` input) and conv/pool/recurrent genes after a dense gene;
    move every value to the nearest allowed choice (cells by
    :func:`evokeras.variation.cell.repair_cell` within ``space.cell_limits()``); drop conv/pool
    genes that would shrink the spatial size below ``min_spatial`` (or, with
    ``sequence_output``, change the time length); trim to ``max_layers``; drop skip
    links that are out of range, cross the spatial/flat border or exceed
    ``max_skips``; while over ``max_params`` (stem included), switch a flatten
    reduction to global average pooling (not with ``sequence_output``), step the
    widest layer down to the next smaller width (a recurrent gene: the next smaller
    ``cell_units``), or remove it; pad to ``min_layers`` (:func:`_filler`).

    Raises:
        GenomeError: if no genome of the space fits (e.g. the head alone exceeds
            ``max_params``).
    """
    input_shape, _ = space.bound()
    spatial_ok = _spatial_ok(space)
    layers = list(genome.as_genome().layers)

    # Kinds.
    i, seen_dense = 0, False
    while i < len(layers):
        layer = layers[i]
        allowed = space.layer_kinds.get(layer.kind, 0) > 0 and not (
            layer.is_spatial and (seen_dense or layer.kind not in spatial_ok)
        )
        if not allowed:
            layers = list(_remove(layers, i))
            continue
        seen_dense = seen_dense or layer.kind == "dense"
        i += 1

    # Values.
    layers = [_clamp_layer(layer, space) for layer in layers]
    t = genome.training
    lo, hi = space.learning_rate
    training = TrainingGenes(
        optimizer=t.optimizer if t.optimizer in space.optimizers else space.optimizers[0],
        learning_rate=float(min(max(t.learning_rate, lo), hi)),
        batch_size=_nearest(t.batch_size, space.batch_sizes),
    )
    reduce = genome.reduce if genome.reduce in space.reductions else space.reductions[0]
    out = Genome(tuple(layers), reduce=reduce, training=training, weights=genome.weights)

    out = _fix_spatial(out, space, input_shape)
    while len(out.layers) > space.max_layers:
        out = out.replace(layers=_remove(out.layers, len(out.layers) - 1))
    out = _fix_params(_fix_skips(out, space), space)
    while len(out.layers) < space.min_layers:
        out = out.replace(layers=out.layers + (_filler(space, input_shape),))
        out = _fix_params(out, space)
    return out


def _filler(space: SearchSpace, input_shape: tuple[int, ...]) -> LayerGene:
    """The gene :func:`repair` pads with: the narrowest dense gene if the space allows
    dense genes, else the smallest one-node recurrent gene on ``(T, C)`` inputs, else
    the first allowed neutral kind with its values moved into the space."""
    if space.layer_kinds.get("dense", 0) > 0:
        return LayerGene("dense", units=min(space.units), activation=space.activations[0])
    if space.layer_kinds.get("recurrent", 0) > 0 and len(input_shape) == 2:

        limits = space.cell_limits()
        cell = CellGenome(min(limits.units), (NodeGene(limits.node_types[0]),), rec_links=((0, 1, 0),))
        return LayerGene("recurrent", cell=repair_cell(cell, limits))
    kind = next(k for k in ("activation", "dropout", "batchnorm") if space.layer_kinds.get(k, 0) > 0)
    return _clamp_layer(LayerGene(kind), space)


def _clamp_layer(layer: LayerGene, space: SearchSpace) -> LayerGene:
    changes: dict[str, Any] = {}
    if layer.units is not None:
        choices = space.filters if layer.is_conv else space.units
        changes["units"] = _nearest(layer.units, choices)
    for name, choices in (("kernel_size", space.kernel_sizes), ("strides", space.strides),
                          ("pool_size", space.pool_sizes)):
        if getattr(layer, name) is not None:
            changes[name] = _nearest(getattr(layer, name), choices)
    if layer.activation is not None and layer.activation not in space.activations:
        changes["activation"] = space.activations[0]
    if layer.rate is not None:
        changes["rate"] = float(min(max(layer.rate, space.dropout[0]), space.dropout[1]))
    if layer.skips and layer.merge not in space.merges:
        changes["merge"] = space.merges[0]
    if layer.kind == "recurrent":
        assert layer.cell is not None  # recurrent genes always have a cell (LayerGene.__post_init__)
        changes["cell"] = repair_cell(layer.cell, space.cell_limits())
    elif layer.cell is not None:
        changes["cell"] = None
    changed = {k: v for k, v in changes.items() if getattr(layer, k) != v}
    return layer.replace(**changed) if changed else layer


def _fix_skips(genome: Genome, space: SearchSpace) -> Genome:
    regions = genome.regions()
    layers = []
    for i, layer in enumerate(genome.layers):
        skips = tuple(sorted({j for j in layer.skips if 0 <= j <= i - 2 and regions[j] == regions[i]}))
        skips = skips[-space.max_skips:] if space.max_skips else ()
        layers.append(layer.replace(skips=skips) if skips != layer.skips else layer)
    return genome.replace(layers=tuple(layers))


def _fix_spatial(genome: Genome, space: SearchSpace, input_shape: tuple[int, ...]) -> Genome:
    spatial = tuple(input_shape[:-1])
    i = 0
    layers = genome.layers
    while i < len(layers):
        layer = layers[i]
        if spatial and (layer.is_conv or layer.kind == "pool"):  # recurrent genes keep the length
            step = layer.strides if layer.is_conv else layer.pool_size
            assert step is not None
            new = tuple(math.ceil(s / step) for s in spatial)
            if min(new) < space.min_spatial or (space.sequence_output and new != spatial):
                layers = _remove(layers, i)
                continue
            spatial = new
        i += 1
    return genome.replace(layers=layers)


def _fix_params(genome: Genome, space: SearchSpace) -> Genome:
    gap = next((r for r in ("global_avg", "global_max") if r in space.reductions), None)
    spatial_input = len(space.bound()[0]) > 1
    while (a := space.analyze(genome)).params > space.max_params:
        if genome.reduce == "flatten" and gap and spatial_input and not space.sequence_output:
            genome = genome.replace(reduce=gap)
            continue
        if not genome.layers:
            raise GenomeError(
                f"genome: cannot fit under max_params={space.max_params} (the head alone has {a.params})"
            )
        widest = int(np.argmax(a.layer_params))
        layer = genome.layers[widest]
        cell = layer.cell
        if layer.kind == "recurrent":
            assert cell is not None  # recurrent genes always have a cell (LayerGene.__post_init__)
            smaller = [c for c in sorted(space.cell_units) if c < cell.units]
        else:
            choices = space.filters if layer.is_conv else space.units
            smaller = [c for c in sorted(choices) if layer.units is not None and c < layer.units]
        if smaller:
            layers = list(genome.layers)
            if layer.kind == "recurrent":
                assert cell is not None
                layers[widest] = layer.replace(cell=cell.replace(units=smaller[-1]))
            else:
                layers[widest] = layer.replace(units=smaller[-1])
            genome = genome.replace(layers=tuple(layers))
        else:
            genome = _fix_skips(genome.replace(layers=_remove(genome.layers, widest)), space)
    return genome
