"""Pictures of genomes (matplotlib, imported when called): :func:`draw_cell`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evokeras.genomes.cell import CellGenome

__all__ = ["draw_cell"]

#: Fill colours of the node boxes by node type (white for the others).
_NODE_COLORS = {"tanh": "#dbe9f6", "gru": "#e3f1d9", "lstm": "#fbe3cf"}

Point = tuple[float, float]


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

    cell.validate()
    n = len(cell.nodes)
    gap, w, h = 2.0, 1.1, 0.6
    xs = [gap * (j + 1) for j in range(n)]
    fig = Figure(figsize=(1.7 * (n + 2), 3.6))
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    ax.axis("off")

    out_x = _draw_chain(ax, cell, xs, w, h, gap)
    top, bottom = h / 2 + 0.05, -h / 2 - 0.05
    for i, j in cell.ff_links:
        _arrow(ax, (xs[i], top), (xs[j], top), rad=-0.35, color="tab:blue")
    lowest = _draw_rec_links(ax, cell, xs, bottom)

    highest = top + (0.35 * gap * max((j - i for i, j in cell.ff_links), default=0))
    ax.set_xlim(-0.5, out_x + 0.5)
    ax.set_ylim(min(-1.0, lowest / 2 - 0.3), max(1.0, highest / 2 + 0.4))
    ax.set_title(title or f"skip-step cell: {n} node(s), {cell.units} units", fontsize=10)
    fig.tight_layout()
    return fig


def _arrow(ax: Any, a: Point, b: Point, rad: float = 0.0, **kw: Any) -> None:
    """An arrow from ``a`` to ``b`` along an ``arc3`` curve of curvature ``rad``."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(
        FancyArrowPatch(
            a, b, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>", mutation_scale=12,
            shrinkA=0, shrinkB=0, lw=1.2, **kw,
        )
    )


def _draw_chain(ax: Any, cell: CellGenome, xs: Sequence[float], w: float, h: float, gap: float) -> float:
    """The node boxes (``w`` x ``h``, centred at ``xs``), the ``x_t`` and ``h_t`` labels and
    the arrows of the chain between them. Returns the abscissa of ``h_t``."""
    from matplotlib.patches import FancyBboxPatch

    for j, node in enumerate(cell.nodes):
        ax.add_patch(
            FancyBboxPatch(
                (xs[j] - w / 2, -h / 2), w, h, boxstyle="round,pad=0.05",
                fc=_NODE_COLORS.get(node.type, "white"), ec="black", lw=1.2,
            )
        )
        ax.text(xs[j], 0, f"{j}: {node.type}", ha="center", va="center", fontsize=10)
    ax.text(0, 0, "$x_t$", ha="center", va="center", fontsize=12)
    out_x = xs[-1] + gap
    ax.text(out_x, 0, "$h_t$", ha="center", va="center", fontsize=12)
    _arrow(ax, (0.25, 0), (xs[0] - w / 2 - 0.05, 0))
    for j in range(1, len(cell.nodes)):
        _arrow(ax, (xs[j - 1] + w / 2 + 0.05, 0), (xs[j] - w / 2 - 0.05, 0))
    _arrow(ax, (xs[-1] + w / 2 + 0.05, 0), (out_x - 0.25, 0))
    return out_x


def _draw_rec_links(ax: Any, cell: CellGenome, xs: Sequence[float], bottom: float) -> float:
    """The recurrent links as red arcs below the boxes (whose lower edge is at ``bottom``),
    each labelled with its lag. Returns the lowest control point of the arcs (``bottom``
    at most)."""
    seen: dict[tuple[int, int], int] = {}
    lowest = bottom
    for i, lag, j in cell.rec_links:
        m = seen.get((i, j), 0)
        seen[(i, j)] = m + 1
        a, b, rad = _rec_link_arc(i, j, m, xs, bottom)
        _arrow(ax, a, b, rad=rad, color="tab:red")
        # labels of forward links sit near their end, clear of the loops of the nodes between
        (mx, my), (_, cy) = _arc3_point(a, b, rad, 0.7 if i < j else 0.5)
        lowest = min(lowest, cy)
        ax.text(mx, my, f"t-{lag}", ha="center", va="center", fontsize=8, color="tab:red",
                bbox={"fc": "white", "ec": "none", "pad": 0.5})
    return lowest


def _rec_link_arc(i: int, j: int, m: int, xs: Sequence[float], bottom: float) -> tuple[Point, Point, float]:
    """Start, end and ``arc3`` curvature of the ``m``-th recurrent link from node ``i`` to
    node ``j``: a loop under the box, wider for each further lag; shallow arcs forward in
    the chain; deeper arcs with other endpoints backward."""
    if i == j:  # a loop under the box, wider for each further lag
        return (xs[i] + 0.25 + 0.08 * m, bottom), (xs[i] - 0.25 - 0.08 * m, bottom), -(1.3 + 0.8 * m)
    if i < j:  # forward in the chain: shallow arcs
        return (xs[i] + 0.2, bottom), (xs[j] - 0.2, bottom), 0.3 + 0.12 * m
    # backward: deeper arcs, other endpoints
    return (xs[i] - 0.05, bottom), (xs[j] + 0.05, bottom), -(0.5 + 0.12 * m)


def _arc3_point(a: Point, b: Point, rad: float, u: float) -> tuple[Point, Point]:
    """The point at parameter ``u`` of matplotlib's ``arc3`` curve from ``a`` to ``b``
    (a quadratic Bezier whose control point is ``mid + rad * (dy, -dx)``), and that
    control point."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    cx, cy = (a[0] + b[0]) / 2 + rad * dy, (a[1] + b[1]) / 2 - rad * dx
    wa, wc, wb = (1 - u) ** 2, 2 * u * (1 - u), u**2
    return (wa * a[0] + wc * cx + wb * b[0], wa * a[1] + wc * cy + wb * b[1]), (cx, cy)
