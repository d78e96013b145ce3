"""Mutations of genomes: one function per mutation (``None`` where it does not apply),
the table :data:`MUTATIONS` of them by name with :data:`DEFAULT_MUTATION_WEIGHTS`, and
:func:`mutate`, which applies one drawn by weight. Every child is repaired
(:func:`evokeras.variation.genome_repair.repair`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.variation.cell import mutate_cell
from evokeras.variation.draws import first_change
from evokeras.variation.draws import pick as _pick
from evokeras.variation.genome_repair import repair
from evokeras.variation.layer_list import first_dense as _first_dense
from evokeras.variation.layer_list import has_spatial_input as _has_spatial_input
from evokeras.variation.layer_list import insert as _insert
from evokeras.variation.layer_list import last_spatial as _last_spatial
from evokeras.variation.layer_list import remove as _remove
from evokeras.variation.random_genes import random_layer

__all__ = [
    "DEFAULT_MUTATION_WEIGHTS",
    "LINEAGE_MUTATION_WEIGHTS",
    "MUTATIONS",
    "Mutation",
    "add_layer",
    "add_skip",
    "change_activation",
    "change_cell",
    "change_hyperparameter",
    "change_training",
    "deepen",
    "mutate",
    "remove_layer",
    "remove_skip",
    "widen",
]

Mutation = Callable[[Genome, np.random.Generator, SearchSpace], "Genome | None"]


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


def widen(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Give one dense, conv, block or recurrent gene the next larger width of the space
    (a network morphism: :mod:`evokeras.nets.morph` keeps the function, the new units
    start with zero outgoing weights)."""
    def larger(layer: LayerGene) -> list[int]:
        if layer.kind == "recurrent":
            assert layer.cell is not None
            return sorted(c for c in space.cell_units if c > layer.cell.units)
        return sorted(c for c in (space.filters if layer.is_conv else space.units) if c > (layer.units or 0))

    options = [(i, larger(layer)) for i, layer in enumerate(genome.layers)
               if layer.kind in ("dense", "conv", "block", "recurrent")]
    options = [(i, wider) for i, wider in options if wider]
    if not options:
        return None
    i, wider = options[int(rng.integers(len(options)))]
    layers = list(genome.layers)
    cell = layers[i].cell
    layers[i] = layers[i].replace(cell=cell.replace(units=wider[0])) if cell is not None \
        else layers[i].replace(units=wider[0])
    return repair(genome.replace(layers=tuple(layers)), space)


def deepen(genome: Genome, rng: np.random.Generator, space: SearchSpace) -> Genome | None:
    """Insert an identity-ready layer after one ReLU dense, conv or block gene: a dense
    layer of the same width, or a 3x3 (3-tap) stride-1 conv of the same filters (a
    residual block whose branch starts at zero where the space draws no plain conv);
    a network morphism (:mod:`evokeras.nets.morph` starts it as the identity)."""
    if len(genome.layers) >= space.max_layers:
        return None
    options = [i for i, layer in enumerate(genome.layers)
               if layer.kind in ("dense", "conv", "block") and layer.activation == "relu"]
    if not options:
        return None
    i = options[int(rng.integers(len(options)))]
    layer = genome.layers[i]
    if layer.kind == "dense":
        gene = LayerGene("dense", units=layer.units, activation="relu")
    elif space.layer_kinds.get("conv", 0) > 0:
        gene = LayerGene("conv", units=layer.units, kernel_size=3, strides=1, activation="relu")
    else:
        gene = LayerGene("block", units=layer.units, kernel_size=3, strides=1, activation="relu", residual=True)
    return repair(genome.replace(layers=_insert(genome.layers, i + 1, gene)), space)


MUTATIONS: dict[str, Mutation] = {
    "add_layer": add_layer,
    "remove_layer": remove_layer,
    "change_hyperparameter": change_hyperparameter,
    "change_activation": change_activation,
    "add_skip": add_skip,
    "remove_skip": remove_skip,
    "change_training": change_training,
    "change_cell": change_cell,
    "widen": widen,
    "deepen": deepen,
}

#: The weights of :func:`mutate` by default; ``widen`` and ``deepen`` (the growing
#: morphisms the ``lineage`` strategy favours, :data:`LINEAGE_MUTATION_WEIGHTS`) are off.
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


#: The weights the ``lineage`` strategy mutates with: the defaults plus the growing
#: morphisms (a grown child starts as accurate as its parent and trains on).
LINEAGE_MUTATION_WEIGHTS: dict[str, float] = {**DEFAULT_MUTATION_WEIGHTS, "widen": 3.0, "deepen": 2.0}


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
