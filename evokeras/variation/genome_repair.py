"""Repair of genomes: :func:`repair` makes any genome valid and decodable inside a bound
:class:`~evokeras.genomes.space.SearchSpace` (deterministic, no random draws); every genome
operator of :mod:`evokeras.variation.network` ends with it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evokeras.genomes.cell import CellGenome, NodeGene
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.variation.cell import repair_cell
from evokeras.variation.draws import nearest as _nearest
from evokeras.variation.layer_list import remove as _remove
from evokeras.variation.layer_list import spatial_ok as _spatial_ok

__all__ = ["repair"]


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
