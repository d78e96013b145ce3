"""Weight transfer from a trained parent network to its child: network morphisms.

A child of the search differs from its parent by a mutation (or a crossover). Its
model starts from the parent's trained weights through :func:`transfer`, which follows
what the mutation did rather than the layer names (an inserted gene renumbers every
later one):

* the genes of parent and child are aligned (:func:`align`: the order-keeping
  alignment that pairs the most equal genes, then genes of the same kind);
* every tensor carries a *channel map*, child channel -> parent channel (``-1``: a
  channel the parent did not have), from the stem through each gene, the merges of
  skip links and the flattening before the first dense layer;
* a weighted layer copies the parent's weights from the mapped input channels to the
  mapped output channels. Its rows for new input channels are zero, so a new channel
  changes nothing downstream: widening a layer (the new units' incoming weights stay
  fresh, their outgoing weights are zero), appending channels by a new ``concat``
  skip, or adding a skip whose projection starts at zero (an ``add`` skip between
  tensors of different widths) keep the function exactly (Net2Net, Chen et al. 2016;
  LEMONADE's network morphisms, Elsken et al. 2019);
* an inserted dense or conv gene starts as the identity (its first channels copy its
  input, through the kernel tap that reads the output's own position; exact after a
  ReLU input for ``relu`` and ``linear`` genes), an inserted residual block as its
  shortcut (its batch norm's scale and shift start at zero: exact where the activation
  of 0 is 0), an inserted batch norm with its initial statistics (the identity at
  inference only);
* a narrowed layer keeps the units of largest importance (the squeeze criterion of
  specialization, :func:`kernel_importance`, which :mod:`evokeras.nets.surgery` squeezes
  by) -- an approximate
  morphism, as are smaller kernels (cropped around the tap of the output's own
  position; a larger kernel is zero-padded around it: exact), strides and activations;
* a skip-step recurrent cell (:mod:`evokeras.genomes.cell`) keeps the trained weights
  of every node and link that survive its mutation: its nodes are aligned like genes
  (same type first), and :mod:`evokeras.nets.morph_cells` moves their arrays; a new
  recurrent layer starts with every node near the identity, so the layers after it
  keep reading what they read;
* layers the alignment cannot follow, and layers that no longer read the channels
  their parent layer read (after a removed layer, a changed reduction), keep their
  fresh initial weights.

:func:`transfer` only reads numpy arrays and the two genomes; it never builds the
parent's model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evokeras.genomes.cell import CellGenome
from evokeras.genomes.network import Genome, LayerGene
from evokeras.nets import morph_cells

__all__ = ["align", "kernel_importance", "transfer"]

Arrays = dict[str, list[np.ndarray]]


def kernel_importance(kernel: np.ndarray, bn: list[np.ndarray] | None = None, epsilon: float = 1e-3) -> np.ndarray:
    """Importance of each output unit of a trained ``kernel`` (output units last): the L1
    norm of its incoming weights, times ``|gamma| / sqrt(variance + epsilon)`` of the
    batch normalization that follows it, given as its arrays ``[gamma, beta, mean,
    variance]`` (or ``[beta, mean, variance]`` without a scale)."""
    score = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    if bn:
        gamma = bn[0] if len(bn) == 4 else np.ones_like(bn[-1])
        score = score * np.abs(gamma) / np.sqrt(bn[-1] + epsilon)
    return np.asarray(score, dtype=np.float64)


def _signature(gene: LayerGene) -> tuple[Any, ...]:
    d = gene.to_dict()
    d.pop("skips", None)
    d.pop("merge", None)
    return tuple(sorted((k, str(v)) for k, v in d.items()))


def align(parent: Genome, child: Genome) -> dict[int, int]:
    """``{child gene index: parent gene index}``: the order-keeping alignment of the two
    gene lists that scores most, an equal gene (skips aside) 2, a gene of the same kind
    1 (Needleman-Wunsch without gap costs; of equal alignments, the one whose new child
    genes come last: a gene inserted after an equal one is the new one)."""
    pa, ch = [_signature(g) for g in parent.layers], [_signature(g) for g in child.layers]
    kinds_p, kinds_c = [g.kind for g in parent.layers], [g.kind for g in child.layers]
    return _align(len(pa), len(ch), lambda i, j: 2 if pa[i] == ch[j] else 1 if kinds_p[i] == kinds_c[j] else 0)


def _align(n: int, m: int, pair: Any) -> dict[int, int]:
    """The order-keeping alignment of ``n`` parent and ``m`` child items that maximises
    the sum of ``pair(parent index, child index)`` (0: never paired); ``{child: parent}``."""
    score = np.zeros((n + 1, m + 1), dtype=int)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            p = pair(i - 1, j - 1)
            score[i, j] = max(score[i - 1, j], score[i, j - 1], score[i - 1, j - 1] + p if p > 0 else -1)
    out: dict[int, int] = {}
    i, j = n, m
    while i and j:  # from the end: of equal alignments, the one that leaves later child items new
        p = pair(i - 1, j - 1)
        if score[i, j] == score[i, j - 1]:
            j -= 1
        elif p and score[i, j] == score[i - 1, j - 1] + p:
            out[j - 1] = i - 1
            i, j = i - 1, j - 1
        else:
            i -= 1
    return out


def _channels(genome: Genome, stem: int) -> list[int]:
    """The channel (feature) count of each gene's output."""
    out: list[int] = []
    for i, gene in enumerate(genome.layers):
        c = out[i - 1] if i else stem
        if gene.skips and gene.merge == "concat":
            c += sum(out[j] for j in gene.skips)
        if gene.kind in ("dense", "conv", "block"):
            c = int(gene.units or 0)
        elif gene.kind == "recurrent":
            assert gene.cell is not None
            c = int(gene.cell.units)
        out.append(c)
    return out


class _Transfer:
    """One transfer: the child model, the parent's arrays, and what was inherited."""

    def __init__(self, model: Any, arrays: Arrays) -> None:
        self.model = model
        self.arrays = arrays
        self.layers = {layer.name: layer for layer in model.layers}
        self.inherited: list[str] = []
        self.identity: list[str] = []

    def layer(self, name: str) -> Any:
        return self.layers.get(name)

    def set(self, name: str, weights: list[np.ndarray], *, identity: bool = False) -> None:
        layer = self.layers[name]
        layer.set_weights([w.astype(v.dtype) for w, v in zip(weights, layer.get_weights(), strict=True)])
        (self.identity if identity else self.inherited).append(name)

    def weighted(self, name: str, parent_name: str | None, in_map: np.ndarray,
                 out_map: np.ndarray | None = None, bn_name: str | None = None) -> np.ndarray:
        """Move a Dense/Conv layer's weights; returns the output channel map. Without the
        parent's layer, the layer keeps its fresh weights (all outputs new)."""
        layer = self.layers[name]
        current = layer.get_weights()
        kernel = current[0]
        width = kernel.shape[-1]
        old = self.arrays.get(parent_name) if parent_name else None
        rows = np.flatnonzero(in_map >= 0)
        if not old or old[0].ndim != kernel.ndim or not len(rows):  # nothing it read before: fresh
            return np.full(width, -1)
        pk = _fit_window(old[0], kernel.shape[:-2], causal=_causal(layer))
        if out_map is None:
            if width >= pk.shape[-1]:
                out_map = np.concatenate([np.arange(pk.shape[-1]), np.full(width - pk.shape[-1], -1)])
            else:
                bn = self.arrays.get(bn_name) if bn_name else None
                score = kernel_importance(pk, bn)
                out_map = np.sort(np.argsort(-score, kind="stable")[:width])
        new = kernel.copy()
        rows = rows[in_map[rows] < pk.shape[-2]]
        for o in np.flatnonzero((out_map >= 0) & (out_map < pk.shape[-1])):
            new[..., :, o] = 0.0
            new[..., rows, o] = pk[..., in_map[rows], out_map[o]]
        weights = [new]
        if len(current) > 1 and len(old) > 1:
            bias = current[1].copy()
            known = (out_map >= 0) & (out_map < old[1].shape[0])
            bias[known] = old[1][out_map[known]]
            weights.append(bias)
        weights += current[len(weights):]
        self.set(name, weights)
        return out_map

    def channelwise(self, name: str, parent_name: str | None, cmap: np.ndarray) -> None:
        """Move a per-channel layer's arrays (batch norm: gamma, beta, mean, variance);
        new channels keep their initial values."""
        layer = self.layers.get(name)
        old = self.arrays.get(parent_name) if parent_name else None
        if layer is None or not old:
            return
        current = [w.copy() for w in layer.get_weights()]
        if len(old) != len(current) or any(o.ndim != 1 for o in old):
            return
        known = (cmap >= 0) & (cmap < old[0].shape[0])
        if not known.any() or len(cmap) != len(current[0]):
            return
        for w, o in zip(current, old, strict=True):
            w[known] = o[cmap[known]]
        self.set(name, current)

    def identity_kernel(self, name: str, in_map: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
        """Start an inserted Dense/Conv (stride 1) as the identity on its first channels;
        its other outputs keep their fresh incoming weights. Returns its output map."""
        layer = self.layers[name]
        current = layer.get_weights()
        kernel = current[0]
        width, n_in = kernel.shape[-1], kernel.shape[-2]
        n = min(width, n_in)
        new = kernel.copy()
        new[..., :n] = 0.0
        centre = tuple(_tap(s, _causal(layer)) for s in kernel.shape[:-2])
        for c in range(n):
            new[(*centre, c, c)] = scale
        self.set(name, [new, *(np.zeros_like(w) for w in current[1:])], identity=True)
        return np.concatenate([in_map[:n], np.full(width - n, -1)])

    def matching(self, name: str, in_map: np.ndarray, out_map: np.ndarray) -> None:
        """A new projection (1x1 conv or Dense, no bias) that passes each mapped input
        channel to the output channel mapped to the same parent channel (zero elsewhere)."""
        layer = self.layers[name]
        kernel = np.zeros_like(layer.get_weights()[0])
        for o, p in enumerate(out_map):
            if p >= 0:
                for c in np.flatnonzero(in_map == p):
                    kernel[(*(0,) * (kernel.ndim - 2), c, o)] = 1.0
        self.set(name, [kernel], identity=True)

    def zero(self, name: str) -> None:
        layer = self.layers[name]
        self.set(name, [np.zeros_like(w) for w in layer.get_weights()], identity=True)


def _causal(layer: Any) -> bool:
    return layer.get_config().get("padding") == "causal"


def _tap(size: int, causal: bool) -> int:
    """The index of the kernel tap that reads the output's own position: the last one with
    causal padding, ``(size - 1) // 2`` with "same" padding (Keras pads less on the left)."""
    return size - 1 if causal else (size - 1) // 2


def _fit_window(kernel: np.ndarray, window: tuple[int, ...], *, causal: bool = False) -> np.ndarray:
    """``kernel`` with its spatial window cropped or zero-padded to ``window``, every
    tap keeping its offset from the output's own position (:func:`_tap`)."""
    for axis, size in enumerate(window):
        old = kernel.shape[axis]
        if old == size:
            continue
        shape = list(kernel.shape)
        shape[axis] = size
        out = np.zeros(shape, dtype=kernel.dtype)
        shift = _tap(size, causal) - _tap(old, causal)  # new index = old index + shift
        lo, hi = max(0, -shift), min(old, size - shift)
        src = [slice(None)] * kernel.ndim
        dst = [slice(None)] * kernel.ndim
        src[axis], dst[axis] = slice(lo, hi), slice(lo + shift, hi + shift)
        out[tuple(dst)] = kernel[tuple(src)]
        kernel = out
    return kernel


def _flatten_map(cmap: np.ndarray, parent_channels: int, positions: int) -> np.ndarray:
    """The channel map after a Flatten of ``positions`` spatial positions (channels last)."""
    offsets = np.arange(positions)[:, None] * parent_channels
    return np.where(cmap[None, :] >= 0, offsets + cmap[None, :], -1).reshape(-1)


def _same_shapes(old: list[np.ndarray] | None, current: list[np.ndarray]) -> bool:
    return bool(old) and len(old) == len(current) and all(a.shape == w.shape for a, w in zip(old, current, strict=True))


_PASS_KINDS = ("pool", "dropout", "activation", "batchnorm")


def _identities(genome: Genome) -> list[int]:
    """For each gene's output, the gene whose channels it carries (``-1``: the stem's):
    a gene that passes its input's channels through (pool, dropout, activation, batch
    norm; an ``add`` merge keeps its main input's) carries its input's, any other its own."""
    out: list[int] = []
    for i, gene in enumerate(genome.layers):
        own = gene.kind not in _PASS_KINDS or (gene.skips and gene.merge == "concat")
        out.append(i if own else (out[i - 1] if i else -1))
    return out


def _check_widths(parent: Genome, arrays: Arrays) -> None:
    """Raise ``ValueError`` where ``arrays`` are not the widths ``parent`` says."""
    for k, gene in enumerate(parent.layers):
        name = {"dense": f"g{k}_dense", "conv": f"g{k}_conv", "block": f"g{k}_block_conv"}.get(gene.kind)
        if name in arrays and (not arrays[name] or arrays[name][0].shape[-1] != gene.units):
            raise ValueError(f"{name}: not the {gene.units} units its genome says")


def transfer(model: Any, child: Genome, parent: Genome, arrays: Arrays, *, stem_channels: int) -> dict[str, int]:
    """Set ``model`` (``child`` decoded) from ``parent``'s trained ``arrays`` (``{parent
    layer name: its weights}``) through the morphism between the genomes.

    A channel map is followed only where it indexes the parent tensor that the parent's
    layer read (each tensor carries the identity of the parent gene whose channels it
    holds): after a removed layer, or where the reductions differ, a layer reads
    channels the parent never fed it and keeps its fresh weights.

    Returns ``inherited_layers`` (layers that took parent weights) and
    ``identity_layers`` (new layers started as an identity or at zero). Raises
    ``ValueError``/``IndexError`` where ``arrays`` do not fit ``parent`` (the caller
    treats the file as unreadable).
    """
    t = _Transfer(model, arrays)
    matched = align(parent, child)
    pch = _channels(parent, stem_channels)
    _check_widths(parent, arrays)
    pid = _identities(parent)
    stem_map = np.arange(stem_channels)
    maps: list[np.ndarray] = []
    cid: list[int | None] = []  # the parent gene whose channels each child tensor carries
    stem = t.layer("stem_embedding")  # stem layers keep their names
    if stem is not None and _same_shapes(arrays.get("stem_embedding"), stem.get_weights()):
        t.set("stem_embedding", arrays["stem_embedding"])
    reduced = False
    for i, gene in enumerate(child.layers):
        pi = matched.get(i)
        pg = parent.layers[pi] if pi is not None else None
        pre = f"g{pi}_" if pi is not None else None
        m = maps[i - 1] if i else stem_map
        here = cid[i - 1] if i else -1
        if pi is not None and here != (pid[pi - 1] if pi else -1):
            m = np.full(len(m), -1)  # not the channels the parent's layer read
        if gene.kind == "dense" and not reduced and t.layer(f"g{i}_reduce") is not None:
            reduced = True
            if pg is not None:  # the parent's first dense layer read this reduction
                before, old = (pch[pi - 1] if pi else stem_channels), arrays.get(f"g{pi}_dense")
            else:  # a new first dense layer: the parent reduced this tensor further on
                before, old = (pch[here] if here is not None and here >= 0 else stem_channels), None
            m = _reduced(t, f"g{i}_reduce", child, parent, m, before, old)
        if gene.skips:
            m = _merge(t, gene, i, pg, pi, matched, maps, m, pch)
        own = pi if pg is not None else None
        if gene.kind in ("dense", "conv"):
            name = f"g{i}_{gene.kind}"
            if pg is not None:
                maps.append(t.weighted(name, f"{pre}{gene.kind}", m))
            elif gene.kind == "dense" or gene.strides == 1:
                maps.append(t.identity_kernel(name, m))
                own = here
            else:
                maps.append(np.full(int(gene.units or 0), -1))
        elif gene.kind == "block":
            out = _block(t, gene, i, pg, pre, m)
            maps.append(out)
            own = pi if pg is not None else here
        elif gene.kind == "recurrent":
            assert gene.cell is not None
            if pg is None:  # a new recurrent layer: near the identity of its input
                maps.append(_identity_cell(t, f"g{i}_recurrent", gene.cell, m))
                own = here
            else:
                assert pg.cell is not None  # aligned genes are of one kind: a recurrent gene has a cell
                maps.append(_cell(t, f"g{i}_recurrent", gene.cell, pg.cell, arrays.get(f"{pre}recurrent"), m))
        else:  # pool, dropout, activation, batch norm: the input's channels
            if gene.kind == "batchnorm":
                t.channelwise(f"g{i}_batchnorm", f"{pre}batchnorm" if pg is not None else None, m)
            maps.append(m)
            if not (gene.skips and gene.merge == "concat"):
                own = here
        cid.append(own if np.any(maps[-1] >= 0) else None)
    m = maps[-1] if maps else stem_map
    if (cid[-1] if cid else -1) != (pid[-1] if pid else -1):
        m = np.full(len(m), -1)
    if t.layer("reduce") is not None:
        m = _reduced(t, "reduce", child, parent, m, pch[-1] if pch else stem_channels, arrays.get("head"))
    if t.layer("head") is not None:
        t.weighted("head", "head", m, out_map=np.arange(t.layers["head"].get_weights()[0].shape[-1]))
    return {"inherited_layers": len(t.inherited), "identity_layers": len(t.identity)}


def _reduced(t: _Transfer, name: str, child: Genome, parent: Genome, m: np.ndarray, before: int,
             old: list[np.ndarray] | None) -> np.ndarray:
    """The channel map after the reduction layer ``name`` (flatten or global pooling) in
    front of a dense layer whose parent arrays are ``old`` (``None``: a new layer; the
    parent had ``before`` channels there): all new where the parent reduced otherwise or
    to another size."""
    positions = int(np.prod(t.layers[name].input.shape[1:-1]))
    flat = child.reduce == "flatten"
    fits = old is None or (bool(old) and old[0].shape[0] == before * (positions if flat else 1))
    if child.reduce != parent.reduce or not fits:
        return np.full(len(m) * (positions if flat else 1), -1)
    return _flatten_map(m, before, positions) if flat else m


def _merge(t: _Transfer, gene: LayerGene, i: int, pg: LayerGene | None, pi: int | None, matched: dict[int, int],
           maps: list[np.ndarray], m: np.ndarray, pch: list[int]) -> np.ndarray:
    """The channel map after gene ``i``'s merge of its skip links; sets its projections."""
    parent_skips = list(pg.skips) if pg is not None else []
    parent_concat = pg is not None and pg.merge == "concat"
    if gene.merge == "concat":
        parts = [m]
        for j in gene.skips:
            pj = matched.get(j)
            if parent_concat and pj in parent_skips and pi is not None:
                offset = (pch[pi - 1] if pi else 0) + sum(pch[k] for k in parent_skips if k < pj)
                parts.append(np.where(maps[j] >= 0, maps[j] + offset, -1))
            else:
                parts.append(np.full(len(maps[j]), -1))
        return np.concatenate(parts)
    for j in gene.skips:
        name = f"g{i}_proj{j}"
        if t.layer(name) is None:
            continue
        pj = matched.get(j)
        if pg is not None and pg.merge == "add" and pj in parent_skips:
            if f"g{pi}_proj{pj}" in t.arrays:
                t.weighted(name, f"g{pi}_proj{pj}", maps[j], out_map=m)
            else:
                t.matching(name, maps[j], m)
        else:
            t.zero(name)  # a new skip adds nothing at first
    return m


def _block(t: _Transfer, gene: LayerGene, i: int, pg: LayerGene | None, pre: str | None, m: np.ndarray) -> np.ndarray:
    """Move a conv -> batch norm -> activation block (with its shortcut); its output map."""
    name = f"g{i}_block"
    identity_shortcut = gene.residual and t.layer(f"{name}_proj") is None
    if pg is not None:
        forced = m if identity_shortcut else None
        out = t.weighted(f"{name}_conv", f"{pre}block_conv", m, out_map=forced, bn_name=f"{pre}block_bn")
        t.channelwise(f"{name}_bn", f"{pre}block_bn", out)
        if t.layer(f"{name}_proj") is not None:
            if f"{pre}block_proj" in t.arrays:
                t.weighted(f"{name}_proj", f"{pre}block_proj", m, out_map=out)
            elif pg.residual:
                t.matching(f"{name}_proj", m, out)
            else:
                t.zero(f"{name}_proj")
        return out
    if gene.residual:  # a new residual block: its branch starts at zero (batch norm scale and shift 0)
        bn = t.layers[f"{name}_bn"]
        t.set(f"{name}_bn", [np.zeros_like(w) if k < 2 else w for k, w in enumerate(bn.get_weights())], identity=True)
        if t.layer(f"{name}_proj") is None:
            return m
        out = np.concatenate([m[: int(gene.units or 0)], np.full(max(0, int(gene.units or 0) - len(m)), -1)])
        t.matching(f"{name}_proj", m, out)
        return out
    if gene.strides == 1:
        return t.identity_kernel(f"{name}_conv", m)
    return np.full(int(gene.units or 0), -1)


# -- recurrent cells (the arrays: :mod:`evokeras.nets.morph_cells`) -----------------------------
def _identity_cell(t: _Transfer, name: str, cell: CellGenome, in_map: np.ndarray) -> np.ndarray:
    """Start a new recurrent layer near the identity of its input; returns the output's
    channel map."""
    weights, out = morph_cells.identity_cell(cell, t.layers[name].get_weights(), in_map)
    t.set(name, weights, identity=True)
    return out


def _cell(t: _Transfer, name: str, cell: CellGenome, parent: CellGenome, old: list[np.ndarray] | None,
          in_map: np.ndarray) -> np.ndarray:
    """Move a skip-step cell's weights (layer ``name``) from the parent's cell, its nodes
    aligned like genes (same type 2, other type 1); returns the output's unit map.
    Without the parent's arrays the layer stays fresh."""
    if not old:
        return np.full(cell.units, -1)
    nodes = _align(len(parent.nodes), len(cell.nodes), lambda p, j: 2 if parent.types[p] == cell.types[j] else 1)
    try:
        weights, out = morph_cells.moved_cell(cell, parent, old, t.layers[name].get_weights(), in_map, nodes)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    t.set(name, weights)
    return out
