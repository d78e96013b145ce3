"""Variation operators of recurrent cells (:class:`~evokeras.genomes.cell.CellGenome`):
random cells, seven mutations, crossover and repair, each a pure function of an explicit
``numpy.random.Generator`` that returns a valid cell (or ``None`` when it does not apply).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from evokeras.genomes.cell import CellGenome, CellLimits, FFLink, NodeGene
from evokeras.genomes.keyed import is_int
from evokeras.variation.draws import first_change
from evokeras.variation.draws import nearest as _nearest
from evokeras.variation.draws import pick as _pick

__all__ = [
    "CELL_MUTATIONS",
    "DEFAULT_CELL_MUTATION_WEIGHTS",
    "add_link",
    "add_node",
    "change_lag",
    "change_node_type",
    "change_units",
    "crossover_cells",
    "mutate_cell",
    "random_cell",
    "remove_link",
    "remove_node",
    "repair_cell",
]


# -- helpers -------------------------------------------------------------------------------
def _step(rng: np.random.Generator, value: int, choices: Sequence[int]) -> int | None:
    """A neighbouring choice (70%) or any other choice (30%); ``None`` if there is none."""
    options = [c for c in choices if c != value]
    if not options:
        return None
    ordered = sorted(set(choices) | {value})
    if rng.random() < 0.7:
        k = ordered.index(value)
        near = [ordered[m] for m in (k - 1, k + 1) if 0 <= m < len(ordered) and ordered[m] in options]
        if near:
            return _pick(rng, near)
    return _pick(rng, options)


def _random_lag(rng: np.random.Generator, lags: Sequence[int]) -> int:
    """Lag 1 (the classic recurrence) with probability 1/2 if free, else any free lag."""
    if 1 in lags and rng.random() < 0.5:
        return 1
    return int(_pick(rng, lags))


def _ff_candidates(cell: CellGenome) -> list[FFLink]:
    have = set(cell.ff_links)
    n = len(cell.nodes)
    return [(i, j) for j in range(n) for i in range(j - 1) if (i, j) not in have]


def _rec_candidates(cell: CellGenome, limits: CellLimits) -> dict[tuple[int, int], list[int]]:
    """Per (src, dst), the lags not linked yet."""
    have = set(cell.rec_links)
    n = len(cell.nodes)
    out = {}
    for i in range(n):
        for j in range(n):
            free = [k for k in range(1, limits.max_lag + 1) if (i, k, j) not in have]
            if free:
                out[(i, j)] = free
    return out


def _with_links(cell: CellGenome, ff: Any, rec: Any) -> CellGenome:
    return cell.replace(ff_links=tuple(sorted(set(ff))), rec_links=tuple(sorted(set(rec))))


# -- random cells and mutations ----------------------------------------------------------------
def random_cell(rng: np.random.Generator, limits: CellLimits) -> CellGenome:
    """A random valid cell.

    1..``max_nodes`` nodes of random types and a random width; one recurrent link (so
    the cell has a memory beyond its gated nodes) and up to ``n_nodes`` further links,
    each feed-forward or recurrent with probability 1/2. Lags are 1 with probability
    1/2, else uniform in 1..``max_lag``.
    """
    n = int(rng.integers(1, limits.max_nodes + 1))
    cell = CellGenome(
        units=int(_pick(rng, limits.units)),
        nodes=tuple(NodeGene(str(_pick(rng, limits.node_types))) for _ in range(n)),
    )
    if limits.max_links == 0:
        return repair_cell(cell, limits)
    extra = int(rng.integers(0, min(limits.max_links - 1, n) + 1))
    cell = _add_rec(cell, rng, limits) or cell
    for _ in range(extra):
        if _ff_candidates(cell) and rng.random() < 0.5:
            cell = _add_ff(cell, rng) or cell
        else:
            cell = _add_rec(cell, rng, limits) or cell
    return repair_cell(cell, limits)


def _add_ff(cell: CellGenome, rng: np.random.Generator) -> CellGenome | None:
    candidates = _ff_candidates(cell)
    if not candidates:
        return None
    return _with_links(cell, (*cell.ff_links, _pick(rng, candidates)), cell.rec_links)


def _add_rec(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    candidates = _rec_candidates(cell, limits)
    if not candidates:
        return None
    pairs = sorted(candidates)
    src, dst = _pick(rng, pairs)
    lag = _random_lag(rng, candidates[(src, dst)])
    return _with_links(cell, cell.ff_links, (*cell.rec_links, (src, lag, dst)))


def add_node(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Insert a node of a random type at a random position of the chain.

    Links keep their endpoints (indices after the new node shift by one); inserted
    last, the new node becomes the output. ``None`` at ``max_nodes``.
    """
    n = len(cell.nodes)
    if n >= limits.max_nodes:
        return None
    pos = int(rng.integers(0, n + 1))
    node = NodeGene(str(_pick(rng, limits.node_types)))

    def shift(i: int) -> int:
        return i + (i >= pos)

    nodes = cell.nodes[:pos] + (node,) + cell.nodes[pos:]
    ff = [(shift(i), shift(j)) for i, j in cell.ff_links]
    rec = [(shift(i), k, shift(j)) for i, k, j in cell.rec_links]
    return repair_cell(_with_links(cell.replace(nodes=nodes), ff, rec), limits)


def _remove_node(cell: CellGenome, index: int) -> CellGenome:
    """Remove node ``index``: drop its links, renumber the others (no repair)."""

    def shift(i: int) -> int:
        return i - (i > index)

    nodes = cell.nodes[:index] + cell.nodes[index + 1 :]
    ff = [
        (shift(i), shift(j))
        for i, j in cell.ff_links
        if index not in (i, j) and shift(i) < shift(j) - 1  # links that became the chain go
    ]
    rec = [(shift(i), k, shift(j)) for i, k, j in cell.rec_links if index not in (i, j)]
    return _with_links(cell.replace(nodes=nodes), ff, rec)


def remove_node(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Remove a random node (its links go, the others are renumbered); ``None`` for one node."""
    if len(cell.nodes) <= 1:
        return None
    return repair_cell(_remove_node(cell, int(rng.integers(len(cell.nodes)))), limits)


def change_node_type(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Give a random node another allowed type; ``None`` if only one type is allowed."""
    j = int(rng.integers(len(cell.nodes)))
    options = [t for t in limits.node_types if t != cell.nodes[j].type]
    if not options:
        return None
    nodes = cell.nodes[:j] + (NodeGene(str(_pick(rng, options))),) + cell.nodes[j + 1 :]
    return repair_cell(cell.replace(nodes=nodes), limits)


def change_units(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Move the width to a neighbouring allowed width (70%) or any other (30%)."""
    units = _step(rng, cell.units, limits.units)
    if units is None:
        return None
    return repair_cell(cell.replace(units=units), limits)


def add_link(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Add a feed-forward or a recurrent link (1/2 each when both are possible).

    ``None`` at ``max_links`` or when every link exists.
    """
    if cell.n_links >= limits.max_links:
        return None
    if _ff_candidates(cell) and rng.random() < 0.5:
        child = _add_ff(cell, rng)
    else:
        child = _add_rec(cell, rng, limits) or _add_ff(cell, rng)
    return None if child is None else repair_cell(child, limits)


def remove_link(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Remove a random link (all links equally likely); ``None`` without links."""
    links: list[tuple[int, ...]] = [*cell.ff_links, *cell.rec_links]
    if not links:
        return None
    drop = links[int(rng.integers(len(links)))]
    ff = [x for x in cell.ff_links if x != drop]
    rec = [x for x in cell.rec_links if x != drop]
    return repair_cell(_with_links(cell, ff, rec), limits)


def change_lag(cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> CellGenome | None:
    """Move a random recurrent link to a neighbouring free lag (70%) or any free lag (30%)."""
    if not cell.rec_links:
        return None
    m = int(rng.integers(len(cell.rec_links)))
    src, lag, dst = cell.rec_links[m]
    used = {k for i, k, j in cell.rec_links if (i, j) == (src, dst) and k != lag}
    free = [k for k in range(1, limits.max_lag + 1) if k not in used]
    new = _step(rng, lag, free)
    if new is None:
        return None
    rec = [*cell.rec_links[:m], (src, new, dst), *cell.rec_links[m + 1 :]]
    return repair_cell(_with_links(cell, cell.ff_links, rec), limits)


CellMutation = Callable[[CellGenome, np.random.Generator, CellLimits], "CellGenome | None"]

#: The cell mutations by name.
CELL_MUTATIONS: dict[str, CellMutation] = {
    "add_node": add_node,
    "remove_node": remove_node,
    "change_node_type": change_node_type,
    "change_units": change_units,
    "add_link": add_link,
    "remove_link": remove_link,
    "change_lag": change_lag,
}

DEFAULT_CELL_MUTATION_WEIGHTS: dict[str, float] = {
    "add_node": 1.0,
    "remove_node": 1.0,
    "change_node_type": 1.5,
    "change_units": 1.0,
    "add_link": 2.0,
    "remove_link": 1.0,
    "change_lag": 2.0,
}


def mutate_cell(
    cell: CellGenome,
    rng: np.random.Generator,
    limits: CellLimits,
    *,
    weights: Mapping[str, float] | None = None,
) -> CellGenome:
    """Apply one mutation, drawn by ``weights`` among those that change the cell.

    Args:
        cell: the parent (not changed).
        rng: the random source.
        limits: the bounds.
        weights: relative weights of the :data:`CELL_MUTATIONS` by name
            (default :data:`DEFAULT_CELL_MUTATION_WEIGHTS`).

    Returns:
        A valid child; the parent itself (repaired) only if no mutation applies.
    """
    parent = repair_cell(cell, limits)
    table = DEFAULT_CELL_MUTATION_WEIGHTS if weights is None else weights
    child = first_change(parent, CELL_MUTATIONS, table, rng, limits, who="mutate_cell")
    return parent if child is None else child


def crossover_cells(
    a: CellGenome, b: CellGenome, rng: np.random.Generator, limits: CellLimits
) -> tuple[CellGenome, CellGenome]:
    """Uniform crossover by node index and by link, then repair.

    Each child keeps its own parent's node count; at each index both parents have,
    the node types are swapped with probability 1/2, and so are the widths. Links
    both parents have go to both children; a link only one parent has goes to one
    child or the other with probability 1/2 each. Links that do not fit a child's
    nodes are dropped by :func:`repair_cell`.
    """
    nodes_a, nodes_b = list(a.nodes), list(b.nodes)
    for i in range(min(len(nodes_a), len(nodes_b))):
        if rng.random() < 0.5:
            nodes_a[i], nodes_b[i] = nodes_b[i], nodes_a[i]
    units_a, units_b = (b.units, a.units) if rng.random() < 0.5 else (a.units, b.units)

    def split(links_a: tuple[Any, ...], links_b: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
        set_b = set(links_b)
        out_a, out_b = [], []
        for link in sorted(set(links_a) | set_b):
            if link in links_a and link in set_b:
                out_a.append(link)
                out_b.append(link)
            elif rng.random() < 0.5:
                out_a.append(link)
            else:
                out_b.append(link)
        return out_a, out_b

    ff_a, ff_b = split(a.ff_links, b.ff_links)
    rec_a, rec_b = split(a.rec_links, b.rec_links)
    child_a = _with_links(CellGenome(units_a, tuple(nodes_a)), ff_a, rec_a)
    child_b = _with_links(CellGenome(units_b, tuple(nodes_b)), ff_b, rec_b)
    return repair_cell(child_a, limits), repair_cell(child_b, limits)


# -- repair ------------------------------------------------------------------------------------
def repair_cell(cell: CellGenome, limits: CellLimits) -> CellGenome:
    """Turn ``cell`` into a valid cell within ``limits`` (deterministic, idempotent).

    In order: keep the first ``max_nodes`` nodes (at least one); replace node types
    the limits do not allow by the first allowed type; move the width to the nearest
    allowed width; drop malformed links and links outside the nodes, feed-forward links
    that are not ``src < dst - 1``; clamp lags to 1..``max_lag``; sort and deduplicate;
    keep at most ``max_links`` links, recurrent links first (in sorted order).
    """
    default_type = limits.node_types[0]
    nodes = []
    raw_nodes = cell.nodes if isinstance(cell.nodes, Sequence) and not isinstance(cell.nodes, str) else ()
    for node in list(raw_nodes)[: limits.max_nodes]:
        kind = node.type if isinstance(node, NodeGene) else node
        nodes.append(NodeGene(kind if kind in limits.node_types else default_type))
    if not nodes:
        nodes.append(NodeGene(default_type))
    n = len(nodes)
    units = (
        _nearest(cell.units, limits.units)
        if is_int(cell.units) or isinstance(cell.units, float)
        else limits.units[0]
    )

    def links_of(value: Any, size: int) -> list[tuple[int, ...]]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            return []
        return [
            tuple(x)
            for x in value
            if isinstance(x, list | tuple) and len(x) == size and all(map(is_int, x))
        ]

    ff = {(i, j) for i, j in links_of(cell.ff_links, 2) if 0 <= i and i < j - 1 and j < n}
    rec = {
        (i, min(max(k, 1), limits.max_lag), j)
        for i, k, j in links_of(cell.rec_links, 3)
        if 0 <= i < n and 0 <= j < n
    }
    rec_sorted = sorted(rec)[: limits.max_links]
    ff_sorted = sorted(ff)[: limits.max_links - len(rec_sorted)]
    return CellGenome(int(units), tuple(nodes), tuple(ff_sorted), tuple(rec_sorted))
