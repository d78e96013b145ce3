"""The skip-step recurrent cell's genome (operators: :mod:`evokeras.variation.cell`;
drawing: :func:`evokeras.genomes.drawing.draw_cell`).

A :class:`CellGenome` describes one recurrent cell built from a few *nodes*, each a
small recurrent unit of width ``units``, wired by feed-forward links inside a time
step and by recurrent links that reach any number of steps back ("skip-step" or
deep recurrent connections, as in EXAMM: Ororbia, ElSaid and Desell 2019,
"Investigating Recurrent Neural Network Memory Structures using Neuro-Evolution").
It never imports Keras: the cell itself is :class:`evokeras.nets.layers.SkipStepCell`.

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
does not apply, as in :mod:`evokeras.variation.network`).

Example:
    >>> import numpy as np, evokeras.variation.cell
    >>> cell = CellGenome(16, ("lstm", "tanh"), rec_links=((1, 3, 0),))
    >>> CellGenome.from_dict(cell.to_dict()) == cell
    True
    >>> cell.max_lag, cell.register_depths
    (3, (0, 3))
    >>> rng = np.random.default_rng(0)
    >>> child = evokeras.variation.cell.mutate_cell(cell, rng, CellLimits())
    >>> _ = child.validate()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evokeras.genomes.keyed import GenomeError, Keyed, check_keys, is_int

__all__ = ["NODE_GATES", "NODE_TYPES", "CellGenome", "CellLimits", "NodeGene"]

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
        check_keys(data, {"type"}, where)
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
class CellGenome(Keyed):
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
        check_keys(data, {"units", "nodes", "ff_links", "rec_links"}, "cell")
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
        if not is_int(self.units) or self.units < 1:
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
                if not isinstance(link, tuple) or len(link) != size or not all(map(is_int, link)):
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

    def weight_names(self) -> tuple[str, ...]:
        """The names of :class:`~evokeras.nets.layers.SkipStepCell`'s weights, in the
        order of its ``get_weights()``: per node, a kernel per input (:meth:`node_inputs`
        order: ``node{j}_kernel`` for the main input, ``node{j}_ff{i}_kernel``,
        ``node{j}_rec{i}_lag{k}_kernel``), then ``node{j}_bias``."""
        names: list[str] = []
        for j in range(len(self.nodes)):
            names += [self.kernel_name(j, spec) for spec in self.node_inputs(j)]
            names.append(f"node{j}_bias")
        return tuple(names)

    @staticmethod
    def kernel_name(j: int, spec: tuple[Any, ...]) -> str:
        """The name of node ``j``'s kernel for its input ``spec`` (:meth:`node_inputs`)."""
        if spec[0] == "ff":
            return f"node{j}_ff{spec[1]}_kernel"
        if spec[0] == "rec":
            return f"node{j}_rec{spec[1]}_lag{spec[2]}_kernel"
        return f"node{j}_kernel"

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
            if not is_int(value) or value < low:
                raise ValueError(f"CellLimits.{name}: expected an integer >= {low}, got {value!r}")
        if not self.units or any(not is_int(u) or u < 1 for u in self.units):
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
