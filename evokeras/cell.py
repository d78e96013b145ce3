"""The skip-step recurrent cell: its genome, its variation operators and a drawing.

A :class:`CellGenome` describes one recurrent cell built from a few *nodes*, each a
small recurrent unit of width ``units``, wired by feed-forward links inside a time
step and by recurrent links that reach any number of steps back ("skip-step" or
deep recurrent connections, as in EXAMM: Ororbia, ElSaid and Desell 2019,
"Investigating Recurrent Neural Network Memory Structures using Neuro-Evolution").
It never imports Keras: the cell itself is :class:`evokeras.layers.SkipStepCell`.

Semantics, at each time step ``t``:

- nodes are computed in index order ``0, 1, ..., n - 1``;
- node 0 reads the step input ``x_t``; node ``j >= 1`` reads the output of node
  ``j - 1`` of the same step (the *main* input);
- a feed-forward link ``(i, j)``, ``i < j - 1``, adds node ``i``'s output of the same
  step as an extra input of node ``j``;
- a recurrent link ``(i, k, j)``, ``k >= 1``, adds node ``i``'s output from ``k`` steps
  back (zeros before the sequence start) as an input of node ``j`` -- any source, any
  destination, ``j == i`` included;
- the cell's output is the last node's output.

Every input has its own kernel, in this order: main input, feed-forward links (by
source), recurrent links (by source, then lag) -- see :meth:`CellGenome.node_inputs`.
With ``W_s`` the kernel of input ``s``, the nodes compute:

========= ===================================================================
type      computation (``σ`` the logistic sigmoid)
========= ===================================================================
tanh      ``h = tanh(Σ_s in_s·W_s + b)`` (``keras.layers.SimpleRNNCell``)
lstm      ``[i, f, g, o] = Σ_s in_s·W_s + b`` (gate order of Keras' LSTMCell);
          ``c = σ(f)·c_prev + σ(i)·tanh(g)``, ``h = σ(o)·tanh(c)``; the memory
          ``c`` is the node's own and is carried one step
gru       with ``m_x = Σ_{s not recurrent} in_s·W_s + b_x`` and
          ``m_r = Σ_{s recurrent} in_s·W_s + b_r`` split as ``[z, r, h]``:
          ``z = σ(m_x,z + m_r,z)``, ``r = σ(m_x,r + m_r,r)``,
          ``ĥ = tanh(m_x,h + r·m_r,h)``, ``h = z·h_prev + (1 - z)·ĥ`` where
          ``h_prev`` is the node's own output of the previous step; the reset
          gate scales what comes from the past (``keras.layers.GRUCell`` with
          ``reset_after=True``)
========= ===================================================================

Hence a one-node cell with the single recurrent link ``(0, 1, 0)`` is exactly Keras'
SimpleRNNCell, LSTMCell or GRUCell (same weights, same state layout ``[h]``/``[h, c]``).

Genomes are canonical: links are kept sorted (the constructor sorts them) and must be
unique, so cells with the same content compare and hash equal. :class:`CellLimits` bounds the operators; every operator returns a cell that
:meth:`CellGenome.validate` and :meth:`CellLimits.check` accept (or ``None`` when it
does not apply, as in :mod:`evokeras.operators`).

Example:
    >>> import numpy as np
    >>> cell = CellGenome(16, ("lstm", "tanh"), rec_links=((1, 3, 0),))
    >>> CellGenome.from_dict(cell.to_dict()) == cell
    True
    >>> cell.max_lag, cell.register_depths
    (3, (0, 3))
    >>> rng = np.random.default_rng(0)
    >>> child = mutate_cell(cell, rng, CellLimits())
    >>> _ = child.validate()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._draw import first_change
from ._draw import nearest as _nearest
from ._draw import pick as _pick
from .genome import GenomeError, _check_keys, _is_int, _Keyed

__all__ = [
    "CELL_MUTATIONS",
    "DEFAULT_CELL_MUTATION_WEIGHTS",
    "NODE_TYPES",
    "CellGenome",
    "CellLimits",
    "NodeGene",
    "add_link",
    "add_node",
    "change_lag",
    "change_node_type",
    "change_units",
    "crossover_cells",
    "draw_cell",
    "mutate_cell",
    "random_cell",
    "remove_link",
    "remove_node",
    "repair_cell",
]

NODE_TYPES = ("tanh", "gru", "lstm")
#: Gates (kernel column blocks) per node type.
NODE_GATES = {"tanh": 1, "gru": 3, "lstm": 4}

FFLink = tuple[int, int]
RecLink = tuple[int, int, int]


# -- genome ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeGene:
    """One node of a cell: its ``type`` ("tanh", "gru" or "lstm")."""

    type: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "node") -> NodeGene:
        _check_keys(data, {"type"}, where)
        if "type" not in data:
            raise GenomeError(f"{where}: missing key 'type'")
        node = cls(data["type"])
        node.check(where=where)
        return node

    def check(self, *, where: str = "node") -> None:
        if self.type not in NODE_TYPES:
            raise GenomeError(f"{where}.type: unknown node type {self.type!r} (known: {NODE_TYPES})")


def _as_links(links: Any) -> tuple[Any, ...]:
    """Links as a sorted tuple of tuples (inner lists become tuples; duplicates and
    anything malformed are kept for :meth:`CellGenome.validate` to report)."""
    if isinstance(links, Sequence) and not isinstance(links, str):
        links = tuple(tuple(x) if isinstance(x, list | tuple) else x for x in links)
        try:
            return tuple(sorted(links))
        except TypeError:
            return links
    return links


@dataclass(frozen=True)
class CellGenome(_Keyed):
    """A skip-step recurrent cell (see the module docstring for its semantics).

    Immutable; equal content means equal cells and equal hashes. Node types may be
    given as strings (``CellGenome(8, ("tanh",))``), lists become tuples and links are
    sorted.

    Args:
        units: the width of every node (and of the cell's output).
        nodes: the nodes, computed in index order; the last one is the output.
        ff_links: feed-forward links ``(src, dst)`` with ``src < dst - 1`` (any order;
            stored sorted).
        rec_links: recurrent links ``(src, lag, dst)`` with ``lag >= 1`` (any order;
            stored sorted).
    """

    units: int
    nodes: tuple[NodeGene, ...]
    ff_links: tuple[FFLink, ...] = ()
    rec_links: tuple[RecLink, ...] = ()

    def __post_init__(self) -> None:
        nodes = self.nodes
        if isinstance(nodes, Sequence) and not isinstance(nodes, str):
            nodes = tuple(NodeGene(x) if isinstance(x, str) else x for x in nodes)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "ff_links", _as_links(self.ff_links))
        object.__setattr__(self, "rec_links", _as_links(self.rec_links))

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; :meth:`from_dict` inverts it exactly."""
        return {
            "units": self.units,
            "nodes": [node.to_dict() for node in self.nodes],
            "ff_links": [list(link) for link in self.ff_links],
            "rec_links": [list(link) for link in self.rec_links],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellGenome:
        """Build and validate a cell from :meth:`to_dict` output (or parsed JSON)."""
        _check_keys(data, {"units", "nodes", "ff_links", "rec_links"}, "cell")
        for name in ("units", "nodes"):
            if name not in data:
                raise GenomeError(f"cell: missing key {name!r}")
        nodes = _list_of(data["nodes"], "cell.nodes")
        parsed = tuple(
            NodeGene.from_dict(item, where=f"cell.nodes[{i}]") for i, item in enumerate(nodes)
        )
        links = {}
        for name, size in (("ff_links", 2), ("rec_links", 3)):
            items = _list_of(data.get(name, []), f"cell.{name}")
            for i, item in enumerate(items):
                if not isinstance(item, list | tuple) or len(item) != size:
                    raise GenomeError(f"cell.{name}[{i}]: expected a list of {size} integers, got {item!r}")
            links[name] = tuple(tuple(item) for item in items)
        cell = cls(data["units"], parsed, links["ff_links"], links["rec_links"])
        return cell.validate()

    # -- structure -------------------------------------------------------------------
    def validate(self) -> CellGenome:
        """Check every field; raise one :class:`GenomeError` naming it. Returns ``self``."""
        if not _is_int(self.units) or self.units < 1:
            raise GenomeError(f"cell.units: expected an integer >= 1, got {self.units!r}")
        if not isinstance(self.nodes, tuple) or not self.nodes:
            raise GenomeError(f"cell.nodes: expected at least one node, got {self.nodes!r}")
        for i, node in enumerate(self.nodes):
            if not isinstance(node, NodeGene):
                raise GenomeError(f"cell.nodes[{i}]: expected a NodeGene, got {type(node).__name__}")
            node.check(where=f"cell.nodes[{i}]")
        n = len(self.nodes)
        for name, size in (("ff_links", 2), ("rec_links", 3)):
            links = getattr(self, name)
            if not isinstance(links, tuple):
                raise GenomeError(f"cell.{name}: expected a sequence, got {type(links).__name__}")
            for m, link in enumerate(links):
                where = f"cell.{name}[{m}]"
                if not isinstance(link, tuple) or len(link) != size or not all(map(_is_int, link)):
                    raise GenomeError(f"{where}: expected {size} integers, got {link!r}")
                if size == 2:
                    src, dst = link
                    if not (0 <= src and src < dst - 1 and dst < n):
                        raise GenomeError(
                            f"{where}: feed-forward link {list(link)} needs 0 <= src < dst - 1 "
                            f"and dst < {n} (the number of nodes)"
                        )
                else:
                    src, lag, dst = link
                    if not (0 <= src < n and 0 <= dst < n):
                        raise GenomeError(
                            f"{where}: recurrent link {list(link)} names a node outside 0..{n - 1}"
                        )
                    if lag < 1:
                        raise GenomeError(f"{where}: the lag of {list(link)} must be >= 1, got {lag}")
            dups = sorted({x for x in links if links.count(x) > 1})
            if dups:
                raise GenomeError(f"cell.{name}: link {list(dups[0])} appears more than once")
            if list(links) != sorted(links):
                raise GenomeError(f"cell.{name}: must be sorted, got {[list(x) for x in links]}")
        return self

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_links(self) -> int:
        """Feed-forward plus recurrent links."""
        return len(self.ff_links) + len(self.rec_links)

    @property
    def max_lag(self) -> int:
        """The longest recurrent link (0 without recurrent links)."""
        return max((lag for _, lag, _ in self.rec_links), default=0)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(node.type for node in self.nodes)

    def node_inputs(self, j: int) -> tuple[tuple[Any, ...], ...]:
        """The inputs of node ``j`` in kernel order.

        ``("x",)`` (the step input, node 0) or ``("prev", j - 1)``, then ``("ff", i)`` for
        each feed-forward link ``(i, j)``, then ``("rec", i, lag)`` for each recurrent link
        ``(i, lag, j)``.
        """
        main: tuple[Any, ...] = ("x",) if j == 0 else ("prev", j - 1)
        ff = tuple(("ff", i) for i, d in self.ff_links if d == j)
        rec = tuple(("rec", i, lag) for i, lag, d in self.rec_links if d == j)
        return (main, *ff, *rec)

    @property
    def register_depths(self) -> tuple[int, ...]:
        """Per node, how many past outputs the cell keeps (its shift register's depth).

        The longest recurrent link leaving the node; at least 1 for a gru node (it
        updates its own previous output) and for the last node (so a cell always
        carries its previous output, like every Keras RNN cell).
        """
        depths = [0] * len(self.nodes)
        for src, lag, _ in self.rec_links:
            depths[src] = max(depths[src], lag)
        for j, node in enumerate(self.nodes):
            if node.type == "gru" or j == len(self.nodes) - 1:
                depths[j] = max(depths[j], 1)
        return tuple(depths)

    def state_layout(self) -> tuple[tuple[Any, ...], ...]:
        """What each entry of the cell's state list holds, in order.

        ``("h", i, k)``: node ``i``'s output ``k`` steps back, for each node by index and
        ``k = 1..register_depths[i]``; then ``("c", i)``: the memory of each lstm node
        by index. Every entry has ``units`` columns.
        """
        hs = tuple(("h", i, k) for i, d in enumerate(self.register_depths) for k in range(1, d + 1))
        cs = tuple(("c", i) for i, node in enumerate(self.nodes) if node.type == "lstm")
        return hs + cs

    def replace(self, **changes: Any) -> CellGenome:
        """Return a copy with ``changes`` applied (not validated)."""
        return dataclasses.replace(self, **changes)


def _list_of(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise GenomeError(f"{where}: expected a list, got {type(value).__name__}")
    return value


# -- limits --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellLimits:
    """Bounds for the cell operators.

    Args:
        max_nodes: the most nodes in a cell (>= 1).
        max_lag: the longest recurrent link (>= 1).
        max_links: the most links, feed-forward and recurrent together (>= 0).
        units: the allowed node widths.
        node_types: the allowed node types.
    """

    max_nodes: int = 4
    max_lag: int = 8
    max_links: int = 8
    units: tuple[int, ...] = (8, 16, 32, 64)
    node_types: tuple[str, ...] = NODE_TYPES

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "node_types", tuple(self.node_types))
        for name, low in (("max_nodes", 1), ("max_lag", 1), ("max_links", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(f"CellLimits.{name}: expected an integer >= {low}, got {value!r}")
        if not self.units or any(not _is_int(u) or u < 1 for u in self.units):
            raise ValueError(f"CellLimits.units: expected positive integers, got {self.units!r}")
        if not self.node_types or any(t not in NODE_TYPES for t in self.node_types):
            raise ValueError(f"CellLimits.node_types: expected some of {NODE_TYPES}, got {self.node_types!r}")

    def check(self, cell: CellGenome) -> None:
        """Raise :class:`GenomeError` naming the field if ``cell`` is invalid or out of bounds."""
        cell.validate()
        if cell.units not in self.units:
            raise GenomeError(f"cell.units: {cell.units} is not one of {self.units}")
        if len(cell.nodes) > self.max_nodes:
            raise GenomeError(f"cell.nodes: {len(cell.nodes)} nodes, at most {self.max_nodes} allowed")
        for i, node in enumerate(cell.nodes):
            if node.type not in self.node_types:
                raise GenomeError(f"cell.nodes[{i}].type: {node.type!r} is not one of {self.node_types}")
        if cell.max_lag > self.max_lag:
            raise GenomeError(f"cell.rec_links: lag {cell.max_lag} exceeds max_lag={self.max_lag}")
        if cell.n_links > self.max_links:
            raise GenomeError(f"cell.rec_links: {cell.n_links} links, at most {self.max_links} allowed")


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
        if _is_int(cell.units) or isinstance(cell.units, float)
        else limits.units[0]
    )

    def links_of(value: Any, size: int) -> list[tuple[int, ...]]:
        if not isinstance(value, Sequence) or isinstance(value, str):
            return []
        return [
            tuple(x)
            for x in value
            if isinstance(x, list | tuple) and len(x) == size and all(map(_is_int, x))
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


# -- drawing -----------------------------------------------------------------------------------
def draw_cell(cell: CellGenome, *, title: str | None = None) -> Any:
    """Draw ``cell``: nodes as labelled boxes, links as arrows.

    The step input ``x_t`` enters on the left, the chain runs left to right to the
    output ``h_t``; feed-forward links arc above the chain, recurrent links arc below
    it, each labelled with its lag ``t-k`` (a link to its own node is a loop).
    Uses :class:`matplotlib.figure.Figure` directly (no pyplot, no GUI backend).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    cell.validate()
    n = len(cell.nodes)
    gap, w, h = 2.0, 1.1, 0.6
    xs = [gap * (j + 1) for j in range(n)]
    fig = Figure(figsize=(1.7 * (n + 2), 3.6))
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")

    def arrow(a: tuple[float, float], b: tuple[float, float], rad: float = 0.0, **kw: Any) -> None:
        ax.add_patch(
            FancyArrowPatch(
                a, b, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>", mutation_scale=12,
                shrinkA=0, shrinkB=0, lw=1.2, **kw,
            )
        )

    colors = {"tanh": "#dbe9f6", "gru": "#e3f1d9", "lstm": "#fbe3cf"}
    for j, node in enumerate(cell.nodes):
        ax.add_patch(
            FancyBboxPatch(
                (xs[j] - w / 2, -h / 2), w, h, boxstyle="round,pad=0.05",
                fc=colors.get(node.type, "white"), ec="black", lw=1.2,
            )
        )
        ax.text(xs[j], 0, f"{j}: {node.type}", ha="center", va="center", fontsize=10)
    ax.text(0, 0, "$x_t$", ha="center", va="center", fontsize=12)
    out_x = xs[-1] + gap
    ax.text(out_x, 0, "$h_t$", ha="center", va="center", fontsize=12)
    arrow((0.25, 0), (xs[0] - w / 2 - 0.05, 0))
    for j in range(1, n):
        arrow((xs[j - 1] + w / 2 + 0.05, 0), (xs[j] - w / 2 - 0.05, 0))
    arrow((xs[-1] + w / 2 + 0.05, 0), (out_x - 0.25, 0))

    top, bottom = h / 2 + 0.05, -h / 2 - 0.05
    for i, j in cell.ff_links:
        arrow((xs[i], top), (xs[j], top), rad=-0.35, color="tab:blue")

    seen: dict[tuple[int, int], int] = {}
    lowest = bottom
    for i, lag, j in cell.rec_links:
        m = seen.get((i, j), 0)
        seen[(i, j)] = m + 1
        if i == j:  # a loop under the box, wider for each further lag
            a, b = (xs[i] + 0.25 + 0.08 * m, bottom), (xs[i] - 0.25 - 0.08 * m, bottom)
            rad = -(1.3 + 0.8 * m)
        elif i < j:  # forward in the chain: shallow arcs
            a, b = (xs[i] + 0.2, bottom), (xs[j] - 0.2, bottom)
            rad = 0.3 + 0.12 * m
        else:  # backward: deeper arcs, other endpoints
            a, b = (xs[i] - 0.05, bottom), (xs[j] + 0.05, bottom)
            rad = -(0.5 + 0.12 * m)
        arrow(a, b, rad=rad, color="tab:red")
        # A point of arc3's quadratic Bezier (control point = mid + rad * (dy, -dx)); labels
        # of forward links sit near their end, clear of the loops of the nodes between.
        dx, dy = b[0] - a[0], b[1] - a[1]
        cx, cy = (a[0] + b[0]) / 2 + rad * dy, (a[1] + b[1]) / 2 - rad * dx
        u = 0.7 if i < j else 0.5
        wa, wc, wb = (1 - u) ** 2, 2 * u * (1 - u), u**2
        mx, my = wa * a[0] + wc * cx + wb * b[0], wa * a[1] + wc * cy + wb * b[1]
        lowest = min(lowest, cy)
        ax.text(mx, my, f"t-{lag}", ha="center", va="center", fontsize=8, color="tab:red",
                bbox={"fc": "white", "ec": "none", "pad": 0.5})

    highest = top + (0.35 * gap * max((j - i for i, j in cell.ff_links), default=0))
    ax.set_xlim(-0.5, out_x + 0.5)
    ax.set_ylim(min(-1.0, lowest / 2 - 0.3), max(1.0, highest / 2 + 0.4))
    ax.set_title(title or f"skip-step cell: {n} node(s), {cell.units} units", fontsize=10)
    fig.tight_layout()
    return fig
