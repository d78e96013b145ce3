"""Figures of a run, read from its run store. Each function returns a matplotlib Figure;
:func:`save_plots` writes ``plots/stats.png``, ``plots/pareto.png`` and
``plots/hypervolume.png`` into the run directory.

Hypervolume is computed in a normalised objective space: every objective is turned
into a minimised one and scaled to [0, 1] by the range of all successful evaluations of
the run; the reference point is 1.1 in each objective. Values are comparable across
the generations of one run (not across runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import MAX_CONFIG_BYTES, UnreadableFile, atomic_path, read_json
from evokeras.engine.store import RunStore
from evokeras.results.report import read_front
from evokeras.tasks import make_task

__all__ = ["hypervolume", "new_figure", "hypervolume_by_generation", "nondominated", "plot_hypervolume", "plot_pareto", "plot_stats", "save_plots"]


def new_figure(*args: Any, **kwargs: Any) -> Any:
    """A matplotlib figure on the non-interactive Agg backend (no GUI, no pyplot state)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


def _ok_points(store: RunStore) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(generations, objective matrix, objective names, keys) of successful full-fidelity
    evaluations."""
    gens, points, keys, names = [], [], [], []
    for gen, r in store.evaluations():
        if r.ok and r.full:
            gens.append(gen)
            points.append(r.objectives)
            keys.append(r.key)
            names = list(r.objective_names)
    return np.array(gens, dtype=int), np.array(points, dtype=float).reshape(len(points), len(names)), names, keys


def _allowed(store: RunStore, points: np.ndarray, names: list[str]) -> np.ndarray:
    """Which candidates may be on the front: validation error within the run's
    ``max_val_error`` (all of them when the run has no such constraint)."""
    limit = store.get_meta("max_val_error")
    if limit is None or "val_error" not in names:
        return np.ones(len(points), dtype=bool)
    return points[:, names.index("val_error")] <= float(limit)


def _weights(store: RunStore, names: list[str]) -> np.ndarray:
    objectives = (store.get_meta("objectives") or {}) if names else {}
    return np.array([float(objectives.get(n, -1.0)) for n in names])


def nondominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of a matrix of *minimised* objectives."""
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        others = np.delete(points, i, axis=0)
        dominated = np.any(np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1))
        mask[i] = not dominated
    return mask


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by ``points`` (minimised) up to ``ref``, by slicing
    along the last objective (fine for the small fronts of a search)."""
    points = np.asarray(points, dtype=float)
    ref = np.asarray(ref, dtype=float)
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    levels = np.unique(points[:, -1])
    bounds = np.append(levels[1:], ref[-1])
    return float(sum(
        (hi - lo) * hypervolume(points[points[:, -1] <= lo][:, :-1], ref[:-1])
        for lo, hi in zip(levels, bounds, strict=True)
    ))


def hypervolume_by_generation(store: RunStore) -> tuple[list[int], list[float]]:
    """Hypervolume of the cumulative front after each generation (see the module doc)."""
    gens, points, names, _ = _ok_points(store)
    if not len(points):
        return [], []
    minimised = points * -np.sign(_weights(store, names))
    lo, hi = minimised.min(axis=0), minimised.max(axis=0)
    scaled = (minimised - lo) / np.where(hi > lo, hi - lo, 1.0)
    allowed = _allowed(store, points, names)
    out_g, out_hv = [], []
    for g in range(int(gens.max()) + 1):
        sel = scaled[(gens <= g) & allowed]
        if not len(sel):
            continue
        front = sel[nondominated(sel)]
        out_g.append(g)
        out_hv.append(hypervolume(front, np.full(scaled.shape[1], 1.1)))
    return out_g, out_hv


def plot_stats(store: RunStore) -> Any:
    """Each objective's min/avg/max per generation (successful candidates of the population)."""
    records = store.generations()
    names = [k for k, v in (records[0].items() if records else []) if isinstance(v, dict)]
    fig = new_figure(figsize=(4.2 * max(len(names), 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    gens = [r["gen"] for r in records]
    for ax, name in zip(axes, names, strict=False):
        for stat, style in (("min", "-"), ("avg", "--"), ("max", ":")):
            ax.plot(gens, [r[name][stat] for r in records], style, marker="o", ms=3, label=stat)
        ax.set_xlabel("generation")
        ax.set_ylabel(name)
        if name in ("exec_time", "flops", "params"):
            ax.set_yscale("log")
        ax.legend(frameon=False)
        ax.set_title(f"{name} of the population")
    return fig


def plot_pareto(store: RunStore) -> Any:
    """Every successful candidate in the plane of the first two objectives, coloured by
    generation, with the front of the run highlighted."""
    gens, points, names, _ = _ok_points(store)
    fig = new_figure(figsize=(5.6, 4.2), layout="constrained")
    ax = fig.subplots()
    if len(points) == 0 or points.shape[1] < 2:
        ax.text(0.5, 0.5, "no successful evaluations", ha="center", transform=ax.transAxes)
        return fig
    minimised = points * -np.sign(_weights(store, names))
    allowed = _allowed(store, points, names)
    front = np.zeros(len(points), dtype=bool)
    front[np.flatnonzero(allowed)[nondominated(minimised[allowed])]] = True
    x, y = points[:, 1], points[:, 0]
    sc = ax.scatter(x[allowed], y[allowed], c=gens[allowed], cmap="viridis", s=18, alpha=0.8)
    if not allowed.all():
        ax.scatter(x[~allowed], y[~allowed], marker="x", color="0.6", s=18,
                   label=f"above max_val_error={store.get_meta('max_val_error'):g} (never on the front)")
    order = np.argsort(x[front])
    ax.step(x[front][order], y[front][order], where="post", color="crimson", lw=1.2)
    ax.scatter(x[front], y[front], facecolors="none", edgecolors="crimson", s=60, label="Pareto front")
    fig.colorbar(sc, ax=ax, label="generation")
    ax.set_xlabel(names[1])
    ax.set_ylabel(names[0])
    if names[1] in ("exec_time", "flops", "params"):
        ax.set_xscale("log")
    ax.legend(frameon=False)
    ax.set_title(f"{len(points)} candidates, {int(front.sum())} on the front")
    return fig


def plot_hypervolume(store: RunStore) -> Any:
    """Hypervolume of the cumulative front per generation."""
    g, hv = hypervolume_by_generation(store)
    fig = new_figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(g, hv, marker="o")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (normalised)")
    ax.set_title("front quality by generation")
    return fig


def save_plots(run_dir: str | Path) -> list[Path]:
    """Draw the run's figures into ``run_dir/plots`` and return their paths.

    Besides ``stats``, ``pareto`` and ``hypervolume``, the run's task may add its own
    (:meth:`evokeras.tasks.Task.save_plots`, e.g. an animation of the best CartPole
    policy) once ``hall_of_fame.json`` exists.
    """
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = run_dir / "plots"
    paths = []
    with RunStore(run_dir / "run.db", readonly=True) as store:
        out.mkdir(exist_ok=True)
        for name, fn in (("stats", plot_stats), ("pareto", plot_pareto), ("hypervolume", plot_hypervolume)):
            path = out / f"{name}.png"
            fig = fn(store)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120)
            plt.close(fig)
            paths.append(path)
    hof = run_dir / "hall_of_fame.json"
    if hof.is_file():
        front = read_front(run_dir)  # checked against its schema
        stored = read_json(run_dir / "config.json", max_bytes=MAX_CONFIG_BYTES)
        config = stored.get("config") if isinstance(stored, dict) else None
        if not isinstance(config, dict) or not isinstance(config.get("task"), str) \
                or not isinstance(config.get("task_options") or {}, dict):
            raise UnreadableFile(f"{run_dir / 'config.json'}: expected {{\"config\": {{\"task\": NAME, ...}}}}")
        try:
            task = make_task(config["task"], **(config.get("task_options") or {}))
        except (TypeError, ValueError, OSError) as exc:
            raise UnreadableFile(f"{run_dir / 'config.json'}: task {config['task']!r}: {exc}") from None
        paths += task.save_plots(out, front)
    return paths
