"""Figures of a run, read from its run store. Each function returns a matplotlib Figure;
:func:`save_plots` writes ``plots/stats.png``, ``plots/pareto.png`` and
``plots/hypervolume.png`` into the run directory.

Axes carry the objective's name and unit (:func:`objective_label`; inference time is
shown in microseconds per sample, as in the report), generations are whole numbers, an
axis whose positive values span more than :data:`LOG_SPREAD` times is logarithmic, and
legends sit below the axes, off the data. Front points are labelled with the first
:data:`SHORT_KEY` characters of their genome key, with which the report's rows begin.

Hypervolume is computed in a normalised objective space: every objective is turned into
a minimised one and scaled by the run's final front (the non-dominated candidates of
all generations within ``max_val_error``): 0 is the front's best value of the objective
(the ideal point), 1 its worst (the nadir point). The reference point is
:data:`HV_REFERENCE` (1.1) in each objective, and the volume is reported as a fraction
of the box between the ideal point and the reference point, so it lies in [0, 1]; a
front beyond the reference point in some objective adds nothing. Values are comparable
across the generations of one run, not across runs. The volume and the
non-dominated sort are moocore's (``moocore.hypervolume``, ``moocore.is_nondominated``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import moocore
import numpy as np

from evokeras._io import MAX_CONFIG_BYTES, UnreadableFile, atomic_path, read_json
from evokeras.engine.store import RunStore
from evokeras.results.report import read_front
from evokeras.tasks import Task, make_task
from evokeras.tasks.arrays import recorded_task_options

log = logging.getLogger(__name__)

__all__ = [
    "HV_REFERENCE",
    "LOG_SPREAD",
    "SHORT_KEY",
    "display_values",
    "figure_points",
    "hypervolume",
    "hypervolume_by_generation",
    "new_figure",
    "nondominated",
    "objective_label",
    "plot_hypervolume",
    "plot_lineages",
    "plot_pareto",
    "plot_stats",
    "save_plots",
    "short_key",
    "wants_log",
]

#: The hypervolume's reference point in each normalised objective (1 is the worst value seen).
HV_REFERENCE = 1.1
#: A positive axis whose largest value is more than this many times its smallest is logarithmic.
LOG_SPREAD = 30.0
#: Characters of a genome key that label a front point.
SHORT_KEY = 6


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
    """Boolean mask of the non-dominated rows of a matrix of *minimised* objectives
    (copies of a non-dominated row are all kept)."""
    points = np.asarray(points, dtype=float)
    if not len(points):
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(points, keep_weakly=True), dtype=bool)


def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by ``points`` (minimised) up to ``ref``; a point not
    strictly better than ``ref`` in every objective adds nothing."""
    ref = np.asarray(ref, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, len(ref))
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    return float(moocore.hypervolume(points, ref=ref))


def hypervolume_by_generation(store: RunStore) -> tuple[list[int], list[float]]:
    """Normalised hypervolume, in [0, 1], of the cumulative front after each generation
    (see the module doc)."""
    gens, points, names, _ = _ok_points(store)
    if not len(points):
        return [], []
    minimised = points * -np.sign(_weights(store, names))
    allowed = _allowed(store, points, names)
    if not allowed.any():
        return [], []
    final = minimised[allowed][nondominated(minimised[allowed])]
    lo, hi = final.min(axis=0), final.max(axis=0)  # the ideal and nadir points of the final front
    scaled = (minimised - lo) / np.where(hi > lo, hi - lo, 1.0)
    ref = np.full(scaled.shape[1], HV_REFERENCE)
    box = float(np.prod(ref))  # the volume between the ideal point and the reference point
    out_g, out_hv = [], []
    for g in range(int(gens.max()) + 1):
        sel = scaled[(gens <= g) & allowed]
        if not len(sel):
            continue
        out_g.append(g)
        out_hv.append(hypervolume(sel[nondominated(sel)], ref) / box)
    return out_g, out_hv


# -- axes: names, units, scales ----------------------------------------------------------------
#: Axis label (name and unit) of the built-in objectives and measures, and the factor from
#: the stored value (SI units: seconds) to the unit shown.
_AXES: dict[str, tuple[str, float]] = {
    "val_error": ("validation error (fraction)", 1.0),
    "val_loss": ("validation loss", 1.0),
    "val_accuracy": ("validation accuracy (fraction)", 1.0),
    "exec_time": ("inference time per sample (µs)", 1e6),
    "flops": ("FLOPs per sample", 1.0),
    "params": ("parameters", 1.0),
    "val_bpc": ("validation bits per character", 1.0),
    "val_perplexity": ("validation perplexity (per word)", 1.0),
    "return": ("mean episode return", 1.0),
}


def objective_label(name: str) -> str:
    """The axis label of an objective: its name and unit (the name itself if unknown)."""
    return _AXES.get(name, (name, 1.0))[0]


def display_values(name: str, values: Any) -> np.ndarray:
    """Stored values of ``name`` in the unit of :func:`objective_label`."""
    return np.asarray(values, dtype=float) * _AXES.get(name, (name, 1.0))[1]


def wants_log(values: Any) -> bool:
    """Whether finite positive ``values`` spread over more than :data:`LOG_SPREAD` times."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > LOG_SPREAD)


def short_key(key: str) -> str:
    """The label of a front point: the first :data:`SHORT_KEY` characters of its genome key."""
    return key[:SHORT_KEY]


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _log_scale(ax: Any, which: str) -> None:
    """Make ``ax``'s ``which`` ("x" or "y") axis logarithmic, labelled with plain numbers
    (0.05, 20), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if _leading_digit(v) in (2, 5) else ""))


def _leading_digit(v: float) -> int:
    return int(round(v / 10 ** np.floor(np.log10(v)))) if v > 0 else 0


def _generation_axis(ax: Any, gens: Sequence[int]) -> None:
    """Whole generations on the x axis; a single generation gets room each side."""
    ax.set_xlabel("generation")
    _integer_ticks(ax.xaxis)
    if len(set(gens)) == 1:
        g = next(iter(gens))
        ax.set_xlim(g - 1, g + 1)


def plot_stats(store: RunStore) -> Any:
    """Each objective's min/avg/max per generation (successful candidates of the population)."""
    records = store.generations()
    names = [k for k, v in (records[0].items() if records else []) if isinstance(v, dict)]
    fig = new_figure(figsize=(4.2 * max(len(names), 1), 3.8), layout="constrained")
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    gens = [r["gen"] for r in records]
    for ax, name in zip(axes, names, strict=False):
        values = {stat: display_values(name, [r[name][stat] for r in records]) for stat in ("min", "avg", "max")}
        for stat, style in (("min", "-"), ("avg", "--"), ("max", ":")):
            ax.plot(gens, values[stat], style, marker="o", ms=3, label=stat)
        _generation_axis(ax, gens)
        ax.set_ylabel(objective_label(name))
        if wants_log(np.concatenate(list(values.values()))):
            _log_scale(ax, "y")
        ax.set_title(f"{name} of the population")
    if names:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    return fig


def plot_pareto(store: RunStore) -> Any:
    """Every successful candidate in the plane of the first two objectives, coloured by
    generation, with the front of the run highlighted and labelled by short key."""
    gens, points, names, keys = _ok_points(store)
    fig = new_figure(figsize=(6.4, 5.0), layout="constrained")
    ax = fig.subplots()
    if len(points) == 0 or points.shape[1] < 2:
        ax.text(0.5, 0.5, "no successful evaluations", ha="center", transform=ax.transAxes)
        return fig
    minimised = points * -np.sign(_weights(store, names))
    allowed = _allowed(store, points, names)
    front = np.zeros(len(points), dtype=bool)
    front[np.flatnonzero(allowed)[nondominated(minimised[allowed])]] = True
    x, y = display_values(names[1], points[:, 1]), display_values(names[0], points[:, 0])
    sc = ax.scatter(x[allowed], y[allowed], c=gens[allowed], cmap="viridis", s=18, alpha=0.8,
                    vmin=gens.min(), vmax=max(gens.max(), gens.min() + 1))
    if not allowed.all():
        ax.scatter(x[~allowed], y[~allowed], marker="x", color="0.6", s=18,
                   label=f"above max_val_error={store.get_meta('max_val_error'):g} (never on the front)")
    order = np.argsort(x[front])
    ax.step(x[front][order], y[front][order], where="post", color="crimson", lw=1.2)
    ax.scatter(x[front], y[front], facecolors="none", edgecolors="crimson", s=60,
               label="Pareto front (labels: key, as in the report)")
    _draw_rung(ax, store, names, dict(zip(keys, zip(x, y, strict=True), strict=True)))
    labelled: set[str] = set()
    for n, i in enumerate(np.flatnonzero(front)[order]):  # along the front, alternating sides
        if keys[i] not in labelled:
            labelled.add(keys[i])
            above = n % 2 == 0
            ax.annotate(short_key(keys[i]), (x[i], y[i]), xytext=(4, 5) if above else (-4, -10),
                        textcoords="offset points", ha="left" if above else "right", fontsize=6.5,
                        color="crimson")
    bar = fig.colorbar(sc, ax=ax, label="generation")
    _integer_ticks(bar.ax.yaxis)
    ax.set_xlabel(objective_label(names[1]))
    ax.set_ylabel(objective_label(names[0]))
    if wants_log(x):
        _log_scale(ax, "x")
    if wants_log(y):
        _log_scale(ax, "y")
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    ax.set_title(f"{len(points)} candidates, {int(front.sum())} on the front")
    return fig


def _draw_rung(ax: Any, store: RunStore, names: list[str], searched: dict[str, tuple[float, float]]) -> None:
    """The final rung's longer evaluations (``evaluation.final_rung``: records ``<key>@<factor>``
    with a fidelity above 1), each joined to its candidate's search point."""
    rung = [r for _, r in store.evaluations() if r.ok and float(r.metrics.get("fidelity", 1.0)) > 1.0]
    if not rung:
        return
    for r in rung:
        rx = float(display_values(names[1], np.array([r.objectives[1]]))[0])
        ry = float(display_values(names[0], np.array([r.objectives[0]]))[0])
        base = searched.get(r.key.partition("@")[0])
        if base is not None:
            ax.plot([base[0], rx], [base[1], ry], color="0.35", lw=0.8, ls=":")
        ax.scatter([rx], [ry], marker="D", color="0.15", s=22, zorder=3)
    factor = float(rung[0].metrics["fidelity"])
    ax.scatter([], [], marker="D", color="0.15", s=22,
               label=f"final rung ({factor:g}x budget; final models from its front)")


def plot_lineages(store: RunStore) -> Any | None:
    """The validation figure (validation error, else the first objective that is a
    validation figure: bits per character, perplexity, ...) against the training a
    candidate's weights have had along its lineage (``lineage_seconds``: its own and its
    ancestors'), a line from each parent to its child; the front's members marked.
    ``None`` when the run recorded no lineage (weights not inherited) or no validation
    figure is an objective."""
    records = [r for _, r in store.evaluations() if r.ok and r.full and "lineage_seconds" in r.metrics]
    objectives = records[0].objective_names if records else ()
    metric = "val_error" if "val_error" in objectives else next((n for n in objectives if n.startswith("val_")), None)
    if metric is None:
        return None
    where = {r.key: (float(r.metrics["lineage_seconds"]), float(r.metrics[metric])) for r in records}
    _, points, names, keys = _ok_points(store)
    allowed = _allowed(store, points, names)
    mask = np.zeros(len(points), dtype=bool)
    mask[allowed] = nondominated((points * -np.sign(_weights(store, names)))[allowed])
    front = {k for k, on in zip(keys, mask, strict=True) if on}
    fig = new_figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    for r in records:
        parent = where.get(r.metrics.get("parent"))
        if parent is not None:
            ax.plot([parent[0], where[r.key][0]], [parent[1], where[r.key][1]], "-", color="0.75", lw=0.8, zorder=1)
    xs, ys = np.array([where[r.key] for r in records]).T
    gens = [g for g, r in store.evaluations() if r.ok and r.full and "lineage_seconds" in r.metrics]
    points = ax.scatter(xs, ys, c=gens, cmap="viridis", s=14, zorder=2)
    fig.colorbar(points, ax=ax, label="generation")
    marked = [where[k] for k in front if k in where]
    if marked:
        fx, fy = np.array(marked).T
        ax.scatter(fx, fy, facecolors="none", edgecolors="crimson", s=60, lw=1.2, zorder=3, label="front")
        ax.legend(frameon=False)
    ax.set_xlabel("training along the lineage (s)")
    ax.set_ylabel(objective_label(metric))
    if wants_log(ys):
        _log_scale(ax, "y")
    ax.set_title(f"lineages: accumulated training vs {objective_label(metric)}")
    return fig


def figure_points(store: RunStore) -> dict[str, int]:
    """How much each figure of the run would show: ``generations`` (the points of each
    line of :func:`plot_stats`), ``candidates`` (the points of :func:`plot_pareto`),
    ``front`` (the distinct members of the run's front: with one, the normalised
    hypervolume is 1 by construction), ``hypervolume`` (the points of
    :func:`plot_hypervolume`) and ``lineages`` (the points of :func:`plot_lineages`)."""
    _, points, names, keys = _ok_points(store)
    allowed = _allowed(store, points, names)
    on_front = np.flatnonzero(allowed)[nondominated((points * -np.sign(_weights(store, names)))[allowed])]
    lineages = sum(1 for _, r in store.evaluations() if r.ok and r.full and "lineage_seconds" in r.metrics)
    return {"generations": len(store.generations()), "candidates": len(points),
            "front": len({keys[i] for i in on_front}), "hypervolume": len(hypervolume_by_generation(store)[0]),
            "lineages": lineages}


def plot_hypervolume(store: RunStore) -> Any:
    """Normalised hypervolume of the cumulative front per generation, its reference point
    stated under the axes."""
    g, hv = hypervolume_by_generation(store)
    fig = new_figure(figsize=(5.0, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(g, hv, marker="o")
    _generation_axis(ax, g or [0])
    ax.set_ylim(0, 1)
    ax.set_ylabel("hypervolume (fraction of the box)")
    ax.set_title("front quality by generation")
    fig.supxlabel(f"objectives scaled by the run's final front (0 its best value, 1 its worst);\n"
                  f"box from the ideal point to the reference point {HV_REFERENCE:g} in each objective",
                  fontsize=7)
    return fig


def save_plots(run_dir: str | Path, task: Task | None = None) -> list[Path]:
    """Draw the run's figures into ``run_dir/plots`` and return their paths.

    Besides ``stats``, ``pareto`` and ``hypervolume``, the run's task may add its own
    (:meth:`evokeras.tasks.Task.save_plots`, e.g. an animation of the best CartPole
    policy) once ``hall_of_fame.json`` exists: ``task``, or the task that ``config.json``
    names, rebuilt (a task that cannot be rebuilt here -- an importable factory not
    trusted in this process, a data file that changed -- adds none; a warning says why).
    """
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = run_dir / "plots"
    paths = []
    with RunStore(run_dir / "run.db", readonly=True) as store:
        out.mkdir(exist_ok=True)
        for name, fn in (("stats", plot_stats), ("pareto", plot_pareto), ("hypervolume", plot_hypervolume),
                         ("lineages", plot_lineages)):
            path = out / f"{name}.png"
            fig = fn(store)
            if fig is None:
                continue
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120)
            plt.close(fig)
            paths.append(path)
    hof = run_dir / "hall_of_fame.json"
    if hof.is_file():
        front = read_front(run_dir)  # checked against its schema
        if task is None:
            stored = read_json(run_dir / "config.json", max_bytes=MAX_CONFIG_BYTES)
            config = stored.get("config") if isinstance(stored, dict) else None
            if not isinstance(config, dict) or not isinstance(config.get("task"), str) \
                    or not isinstance(config.get("task_options") or {}, dict):
                raise UnreadableFile(f"{run_dir / 'config.json'}: expected {{\"config\": {{\"task\": NAME, ...}}}}")
            try:
                options = recorded_task_options(config["task"], config.get("task_options") or {}, run_dir)
                task = make_task(config["task"], **options)
            except (TypeError, ValueError, OSError) as exc:
                # (an importable factory not trusted in this process, a data file that changed)
                log.warning("no figures of task %r: %s", config["task"], exc)
                return paths
        paths += task.save_plots(out, front)
    return paths
