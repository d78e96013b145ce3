"""Queries and edits of a genome's layer list shared by the genome operators
(:mod:`evokeras.variation.network`): which spatial kinds a bound space's input takes, and
removing or inserting a gene while keeping the skip links of the others pointing at the
same genes."""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.genomes.network import LayerGene
from evokeras.genomes.space import SearchSpace

__all__ = ["first_dense", "has_spatial_input", "insert", "last_spatial", "recurrent_ok", "remove", "spatial_ok"]


def spatial_ok(space: SearchSpace) -> frozenset[str]:
    """The spatial kinds the space draws that its input can take: conv and pool on any
    input with spatial axes, recurrent only on ``(T, C)`` sequences."""
    input_shape, _ = space.bound()
    if len(input_shape) <= 1:
        return frozenset()
    kinds = ("conv", "block", "pool", "recurrent") if len(input_shape) == 2 else ("conv", "block", "pool")
    return frozenset(k for k in kinds if space.layer_kinds.get(k, 0) > 0)


def has_spatial_input(space: SearchSpace) -> bool:
    """Whether the space draws a spatial kind its input can take (:func:`spatial_ok`)."""
    return bool(spatial_ok(space))


def recurrent_ok(space: SearchSpace) -> bool:
    """Whether the space's input is a ``(T, C)`` sequence (recurrent genes need one)."""
    return space.input_shape is not None and len(space.input_shape) == 2


def remove(layers: Sequence[LayerGene], index: int) -> tuple[LayerGene, ...]:
    """Remove gene ``index`` and renumber the skip links of the others."""
    out = []
    for i, layer in enumerate(layers):
        if i == index:
            continue
        skips = tuple(j - (j > index) for j in layer.skips if j != index)
        out.append(layer.replace(skips=skips) if skips != layer.skips else layer)
    return tuple(out)


def insert(layers: Sequence[LayerGene], index: int, gene: LayerGene) -> tuple[LayerGene, ...]:
    """Insert ``gene`` at ``index`` and renumber the skip links after it."""
    shifted = [
        layer.replace(skips=tuple(j + (j >= index) for j in layer.skips)) if layer.skips else layer
        for layer in layers
    ]
    return tuple(shifted[:index]) + (gene,) + tuple(shifted[index:])


def first_dense(layers: Sequence[LayerGene]) -> int:
    """The index of the first dense gene (``len(layers)`` without one)."""
    return next((i for i, layer in enumerate(layers) if layer.kind == "dense"), len(layers))


def last_spatial(layers: Sequence[LayerGene]) -> int:
    """The index of the last conv/pool/recurrent gene (-1 without one)."""
    return max((i for i, layer in enumerate(layers) if layer.is_spatial), default=-1)
