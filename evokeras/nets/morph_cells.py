"""Weight transfer for skip-step recurrent cells (:mod:`evokeras.genomes.cell`): the
cell part of the network morphisms of :mod:`evokeras.nets.morph`, which aligns the
cells' nodes and sets the layers; these functions only compute numpy arrays.

A mutated cell keeps the trained weights of every node and link that survive its
mutation: wider units get zero rows in every kernel that reads them (exact); a new
feed-forward or recurrent link starts at zero (exact); a moved lag keeps its kernel; a
new node starts near the identity of its main input (an identity kernel on its
candidate block, gates open, memory shut); a node that changes type keeps its
candidate block; a narrower cell keeps its units of largest incoming weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evokeras.genomes.cell import NODE_GATES, CellGenome

__all__ = ["identity_cell", "moved_cell"]

#: The gate block of each node type that holds its new value (tanh's one block, GRU's
#: candidate ``h``, LSTM's ``g``): what a node that changes type keeps.
_CANDIDATE = {"tanh": 0, "gru": 2, "lstm": 2}
#: The biases that start a new node (and the new gates of a node that changed type)
#: near the identity of its input: gates open (LSTM input and output gates, GRU reset
#: gate; sigmoid(3) = 0.95), memory and update shut (LSTM forget gate, GRU update
#: gate), so ``h ~ tanh(input)``.
_OPEN = 3.0
_IDENTITY_BIAS = {"tanh": (0.0,), "gru": (-_OPEN, _OPEN, 0.0), "lstm": (_OPEN, -_OPEN, 0.0, _OPEN)}


def _unit_map(parent: CellGenome, weights: dict[str, np.ndarray], units: int) -> np.ndarray:
    """Child unit -> parent unit: the parent's units in order, then new ones; narrowed,
    the units of largest incoming weights (summed over every node and gate)."""
    pu = parent.units
    if units >= pu:
        return np.concatenate([np.arange(pu), np.full(units - pu, -1)])
    score = np.zeros(pu)
    for name, w in weights.items():
        if name.endswith("_kernel"):
            score += np.abs(w).reshape(w.shape[0], -1, pu).sum(axis=(0, 1))
    return np.sort(np.argsort(-score, kind="stable")[:units])


def _copy_gates(dst: np.ndarray, src: np.ndarray, rows: np.ndarray | None, units: np.ndarray,
                types: tuple[str, str], widths: tuple[int, int]) -> None:
    """Copy a node's kernel (``rows``: child input row -> parent row) or bias (``rows``
    ``None``) from ``src`` (parent node of type ``types[0]``, width ``widths[0]``) into
    ``dst`` (child), gate by gate where the types agree, else the candidate block only.
    Mapped columns of a kernel get zeros in the rows of new inputs."""
    (pt, ct), (pu, cu) = types, widths
    pairs = [(g, g) for g in range(NODE_GATES[ct])] if pt == ct else [(_CANDIDATE[pt], _CANDIDATE[ct])]
    cols = np.flatnonzero(units >= 0)
    if rows is not None and not np.any((rows >= 0) & (rows < src.shape[0])):
        return  # it reads nothing the parent's node read: fresh
    for g in range(NODE_GATES[ct]) if pt != ct else ():  # a new type: its other gates open or shut
        if g != _CANDIDATE[ct]:
            ccols = g * cu + cols
            if rows is not None:
                dst[:, ccols] = 0.0
            elif dst.ndim == 2:
                dst[0, ccols], dst[1, ccols] = _IDENTITY_BIAS[ct][g], 0.0
            else:
                dst[ccols] = _IDENTITY_BIAS[ct][g]
    for gp, gc in pairs:
        ccols, pcols = gc * cu + cols, gp * pu + units[cols]
        if rows is None:  # a bias: GRU's is (2, width), the second row its recurrent bias
            if dst.ndim == src.ndim:
                dst[..., ccols] = src[..., pcols]
            else:
                (dst[0] if dst.ndim == 2 else dst)[ccols] = (src[0] if src.ndim == 2 else src)[pcols]
            continue
        dst[:, ccols] = 0.0
        r = np.flatnonzero((rows >= 0) & (rows < src.shape[0]))
        dst[np.ix_(r, ccols)] = src[np.ix_(rows[r], pcols)]


def _parent_input(cell: CellGenome, parent: CellGenome, j: int, p: int, spec: tuple[Any, ...],
                  carries: list[int | None]) -> str | None:
    """The parent kernel (by name) that child node ``j``'s input ``spec`` takes over
    (``p``: the parent node of ``j``; ``carries``: per child node, the parent node
    whose output it carries), or ``None``."""
    if spec[0] == "x":
        return CellGenome.kernel_name(0, spec) if p == 0 else None
    s = carries[spec[1]]  # ("prev", j - 1), ("ff", i), ("rec", i, lag): the source node
    if s is None:
        return None
    if spec[0] in ("prev", "ff"):
        if p >= 1 and s == p - 1:
            return CellGenome.kernel_name(p, ("prev", s))
        return CellGenome.kernel_name(p, ("ff", s)) if (s, p) in parent.ff_links else None
    lag = spec[2]
    lags = sorted((k for a, k, b in parent.rec_links if a == s and b == p), key=lambda k: (abs(k - lag), k))
    taken = {k for a, k, b in cell.rec_links if a == spec[1] and b == j and k != lag}
    lags = [k for k in lags if k == lag or k not in taken]  # a moved lag keeps its kernel
    return CellGenome.kernel_name(p, ("rec", s, lags[0])) if lags else None


def _start_near_identity(weights: dict[str, np.ndarray], cell: CellGenome, j: int, rows: int) -> None:
    """Start node ``j`` near the identity of its main input (its first ``rows`` inputs
    onto its first units), its links at zero (:data:`_IDENTITY_BIAS`)."""
    ct, cu = cell.types[j], cell.units
    specs = cell.node_inputs(j)
    for spec in specs:
        kernel = weights[cell.kernel_name(j, spec)]
        if spec[0] in ("x", "prev"):
            block, n = _CANDIDATE[ct] * cu, min(rows, cu)
            kernel[:, block:block + cu] = 0.0
            kernel[np.arange(n), block + np.arange(n)] = 1.0
        else:
            kernel[:] = 0.0
    bias = weights[f"node{j}_bias"]
    (bias[0] if bias.ndim == 2 else bias)[:] = np.repeat(_IDENTITY_BIAS[ct], cu)
    if bias.ndim == 2:
        bias[1] = 0.0


def identity_cell(cell: CellGenome, fresh: list[np.ndarray], in_map: np.ndarray
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """A new recurrent layer near the identity of its input (``fresh``: its initial
    weights): every node of its chain passes its input's first channels on
    (:func:`_start_near_identity`). Returns its weights and the output's channel map."""
    names = cell.weight_names()
    weights = dict(zip(names, (w.copy() for w in fresh), strict=True))
    n = min(len(in_map), cell.units)
    for j in range(len(cell.nodes)):
        _start_near_identity(weights, cell, j, len(in_map) if j == 0 else cell.units)
    return [weights[k] for k in names], np.concatenate([in_map[:n], np.full(cell.units - n, -1)])


def moved_cell(cell: CellGenome, parent: CellGenome, old: list[np.ndarray], fresh: list[np.ndarray],
               in_map: np.ndarray, nodes: dict[int, int]) -> tuple[list[np.ndarray], np.ndarray]:
    """The weights of ``cell`` (``fresh``: its initial ones) moved from the parent's
    trained cell (``old``), its nodes aligned to the parent's by ``nodes`` (child node
    -> parent node); returns them and the output's unit map. Units widen with zero rows
    for the new ones (exact) or narrow by importance; a node that changes type keeps
    its candidate block; a new link starts at zero (exact); a new node starts near the
    identity of its main input (:data:`_IDENTITY_BIAS`); inputs the parent's node did
    not read keep their fresh kernels (a main input) or start at zero (a link). Raises
    :class:`ValueError` when ``old`` is not the parent's cell."""
    pnames = parent.weight_names()
    if len(old) != len(pnames) or old[-1].shape[-1] != NODE_GATES[parent.types[-1]] * parent.units:
        raise ValueError(f"not the weights of the {parent.units}-unit cell its genome says")
    pw = dict(zip(pnames, old, strict=True))
    names = cell.weight_names()
    new = dict(zip(names, (w.copy() for w in fresh), strict=True))
    cu, pu = cell.units, parent.units
    units = _unit_map(parent, pw, cu)
    carries: list[int | None] = []  # per child node: the parent node whose output it carries
    for j in range(len(cell.nodes)):
        carries.append(nodes[j] if j in nodes else carries[j - 1] if j else None)
    for j, ct in enumerate(cell.types):
        p = nodes.get(j)
        if p is None:  # a new node: near the identity of its main input, its links at zero
            if j:
                _start_near_identity(new, cell, j, cu)
            continue
        types = (parent.types[p], ct)
        for spec in cell.node_inputs(j):
            k = cell.kernel_name(j, spec)
            source = _parent_input(cell, parent, j, p, spec, carries)
            if source is None:
                if spec[0] in ("ff", "rec"):
                    new[k][:] = 0.0  # a new link adds nothing at first
                continue
            rows = in_map if spec[0] == "x" else units
            _copy_gates(new[k], pw[source], rows, units, types, (pu, cu))
        _copy_gates(new[f"node{j}_bias"], pw[f"node{p}_bias"], None, units, types, (pu, cu))
    return [new[k] for k in names], units if carries[-1] == len(parent.nodes) - 1 else np.full(cu, -1)
