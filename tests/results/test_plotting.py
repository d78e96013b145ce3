"""Tests for :mod:`evokeras.results.plotting`: hypervolume, non-dominated mask, figures of a run."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402

from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.genomes.network import Genome, LayerGene  # noqa: E402
from evokeras.results.plotting import (  # noqa: E402
    HV_REFERENCE,
    hypervolume,
    hypervolume_by_generation,
    nondominated,
    plot_hypervolume,
    plot_pareto,
    plot_stats,
    save_plots,
    short_key,
    wants_log,
)
from evokeras.results.report import format_report, read_front  # noqa: E402
from evokeras.training.records import EvalResult  # noqa: E402

# -- hypervolume --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "ref", "expected"),
    [
        ([[0, 0]], [1, 1], 1.0),
        ([[0.5, 0], [0, 0.5]], [1, 1], 0.75),
        ([[0.5, 0.5, 0.5]], [1, 1, 1], 0.125),
        ([[0, 0, 0.5], [0.5, 0.5, 0]], [1, 1, 1], 0.625),
        ([[0.25]], [1], 0.75),
        ([[0.5, 0], [0, 0.5], [0.6, 0.6]], [1, 1], 0.75),  # a dominated point adds nothing
        ([[0.5, 0], [0.5, 0], [0, 0.5]], [1, 1], 0.75),  # nor does a duplicate
        ([[2, 0]], [1, 1], 0.0),  # outside the reference box
        ([[1, 0]], [1, 1], 0.0),  # on its boundary
        ([[0.2, 0.2]], [1.1, 1.1], 0.81),
    ],
)
def test_hypervolume_known_values(points, ref, expected) -> None:
    assert hypervolume(np.array(points, dtype=float), np.array(ref, dtype=float)) == pytest.approx(expected)


def test_hypervolume_of_no_points_is_zero() -> None:
    assert hypervolume(np.zeros((0, 2)), np.ones(2)) == 0.0


def test_hypervolume_matches_grid_count() -> None:
    """Points on a 1/8 grid: the exact volume is the number of dominated grid cells / 8**3."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        points = rng.integers(0, 8, size=(6, 3)) / 8
        cells = np.array(list(itertools.product(range(8), repeat=3))) / 8
        dominated = [np.any(np.all(points <= c, axis=1)) for c in cells]
        assert hypervolume(points, np.ones(3)) == pytest.approx(sum(dominated) / 8**3)


def test_nondominated_mask() -> None:
    points = np.array([[1, 2], [2, 1], [2, 2], [1, 2], [3, 0], [3, 3]], dtype=float)
    assert nondominated(points).tolist() == [True, True, False, True, True, False]
    assert nondominated(np.array([[0.5, 0.5, 0.5]])).tolist() == [True]
    assert nondominated(np.array([[1, 1, 1], [1, 1, 0], [0, 2, 2]])).tolist() == [False, True, True]


# -- figures of a run -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cfg = small_config(generations=3)
    out = tmp_path_factory.mktemp("plots") / "run"
    search = Search(cfg, out, evaluate=fake_for(cfg))
    search._run()
    search.close()
    return out


def test_figures_are_matplotlib_figures(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        for fn in (plot_stats, plot_pareto, plot_hypervolume):
            fig = fn(store)
            assert isinstance(fig, Figure), fn.__name__
            assert fig.axes, fn.__name__
        stats = plot_stats(store)
        assert [ax.get_ylabel() for ax in stats.axes] == ["validation error (fraction)", "FLOPs per sample"]
        pareto = plot_pareto(store)
        assert pareto.axes[0].get_xlabel() == "FLOPs per sample"
        assert pareto.axes[0].get_ylabel() == "validation error (fraction)"


def test_hypervolume_by_generation_never_decreases(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        gens, hv = hypervolume_by_generation(store)
    assert gens == [0, 1, 2, 3]
    assert all(0 < v <= 1 for v in hv)  # a fraction of the box up to the reference point
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(hv))


def test_save_plots_writes_pngs(run_dir: Path) -> None:
    paths = save_plots(run_dir)
    names = sorted(p.name for p in paths)
    assert names == ["hypervolume.png", "pareto.png", "stats.png"]
    for p in paths:
        assert p.parent == run_dir / "plots"
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((run_dir / "plots").glob(".*tmp*"))


def test_plots_of_an_empty_store(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.db") as store:
        for fn in (plot_stats, plot_pareto, plot_hypervolume):
            assert isinstance(fn(store), Figure)
        assert hypervolume_by_generation(store) == ([], [])


def _result(units: int, objectives: tuple[float, float], status: str = "ok") -> EvalResult:
    g = Genome((LayerGene("dense", units=units),))
    return EvalResult(g.key, g.to_dict(), status, objectives, ("accuracy", "cost"))


def test_maximised_objectives_are_flipped(tmp_path: Path) -> None:
    """With accuracy maximised, (0.9, 2) and (0.5, 1) are both on the front; (0.4, 3) is not."""
    with RunStore(tmp_path / "run.db") as store:
        store.set_meta("objectives", {"accuracy": 1.0, "cost": -1.0})
        store.add_evaluation(_result(16, (0.5, 1.0)), 0)
        store.add_evaluation(_result(32, (0.4, 3.0)), 0)
        store.add_evaluation(_result(64, (0.9, 2.0)), 1)
        store.add_evaluation(_result(128, (-1e9, 1e9), status="failed"), 1)
        gens, hv = hypervolume_by_generation(store)
        # minimised: (-0.5, 1), (-0.4, 3), (-0.9, 2); the final front {(-0.5, 1), (-0.9, 2)}
        # scales them to (1, 0), (1.25, 2), (0, 1): gen 0's front is {(1, 0)}, gen 1 adds (0, 1)
        assert gens == [0, 1]
        assert hv[0] == pytest.approx((1.1 - 1) * 1.1 / 1.1**2)
        assert hv[1] == pytest.approx(hypervolume(np.array([[1.0, 0.0], [0.0, 1.0]]), np.full(2, 1.1)) / 1.1**2)
        assert hv[1] == pytest.approx((0.1 * 1.1 + 1.0 * 0.1) / 1.21)
        fig = plot_pareto(store)
        assert "3 candidates, 2 on the front" in fig.axes[0].get_title()


# -- moocore against the hand-written code it replaced ----------------------------------------
def _slicing_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """The hand-written hypervolume of evokeras <= 0.4 (slicing along the last objective)."""
    points = points[np.all(points < ref, axis=1)]
    if not len(points):
        return 0.0
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    levels = np.unique(points[:, -1])
    bounds = np.append(levels[1:], ref[-1])
    return float(sum((hi - lo) * _slicing_hypervolume(points[points[:, -1] <= lo][:, :-1], ref[:-1])
                     for lo, hi in zip(levels, bounds, strict=True)))


def _pairwise_nondominated(points: np.ndarray) -> np.ndarray:
    """The hand-written non-dominated mask of evokeras <= 0.4."""
    mask = np.ones(len(points), dtype=bool)
    for i in range(len(points)):
        others = np.delete(points, i, axis=0)
        mask[i] = not np.any(np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1))
    return mask


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_moocore_gives_the_old_values(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for n in (1, 2, 7, 30):
        points = rng.random((n, dims)) * 1.2  # some beyond the reference point
        points[rng.random(n) < 0.2] = points[0]  # and copies
        ref = np.full(dims, 1.1)
        assert hypervolume(points, ref) == pytest.approx(_slicing_hypervolume(points, ref), rel=1e-12, abs=1e-15)
        grid = np.round(points * 4) / 4  # ties in some objectives
        assert nondominated(grid).tolist() == _pairwise_nondominated(grid).tolist()
        assert nondominated(points).tolist() == _pairwise_nondominated(points).tolist()


# -- readable figures ---------------------------------------------------------------------------
def _store_with(tmp_path: Path, objectives: dict[str, float], rows: list[tuple[int, tuple[float, ...]]]) -> RunStore:
    store = RunStore(tmp_path / "run.db")
    store.set_meta("objectives", objectives)
    for i, (gen, values) in enumerate(rows):
        g = Genome((LayerGene("dense", units=8 + i),))
        store.add_evaluation(EvalResult(g.key, g.to_dict(), "ok", values, tuple(objectives)), gen)
    for gen in sorted({gen for gen, _ in rows}):
        vals = np.array([v for g, v in rows if g <= gen])
        record = {"gen": gen, "nevals": 1, "nfailed": 0, "elapsed": 1.0}
        for j, name in enumerate(objectives):
            record[name] = {"min": float(vals[:, j].min()), "avg": float(vals[:, j].mean()),
                            "max": float(vals[:, j].max()), "std": float(vals[:, j].std())}
        store.end_generation(gen, record, {"gen": gen, "population": [], "front": []})
    return store


def _is_whole(ticks: Any) -> bool:
    return all(float(t).is_integer() for t in ticks)


def test_units_integer_generations_and_legends_off_the_axes(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        for fig in (plot_stats(store), plot_hypervolume(store)):
            for ax in fig.axes:
                assert ax.get_xlabel() == "generation" and _is_whole(ax.get_xticks())
                assert ax.get_legend() is None  # no legend over the lines
        assert plot_stats(store).legends  # one legend for the figure, below the axes
        pareto = plot_pareto(store)
        assert pareto.axes[0].get_legend() is None and pareto.legends


def test_exec_time_in_microseconds_and_log_scales(tmp_path: Path) -> None:
    rows = [(0, (0.10, 2e-6)), (0, (0.05, 4e-5)), (1, (0.03, 1e-4)), (1, (0.2, 1e-6))]
    with _store_with(tmp_path, {"val_error": -1.0, "exec_time": -1.0}, rows) as store:
        stats = plot_stats(store)
        assert stats.axes[1].get_ylabel() == "inference time per sample (µs)"
        assert stats.axes[1].get_yscale() == "log"  # 1 to 100 us
        assert stats.axes[0].get_yscale() == "linear"
        pareto = plot_pareto(store)
        ax = pareto.axes[0]
        assert ax.get_xlabel() == "inference time per sample (µs)" and ax.get_xscale() == "log"
        xs = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections])
        assert xs.min() == pytest.approx(1.0) and xs.max() == pytest.approx(100.0)  # seconds * 1e6


def test_perplexity_spread_gets_a_log_axis(tmp_path: Path) -> None:
    rows = [(0, (5000.0, 1e-5)), (0, (900.0, 2e-5)), (1, (120.0, 3e-5))]
    with _store_with(tmp_path, {"val_perplexity": -1.0, "exec_time": -1.0}, rows) as store:
        ax = plot_stats(store).axes[0]
        assert ax.get_ylabel() == "validation perplexity (per word)" and ax.get_yscale() == "log"
    assert wants_log([1.0, 31.0]) and not wants_log([1.0, 29.0]) and not wants_log([0.0, 100.0])


def test_front_points_are_labelled_with_the_report_keys(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        ax = plot_pareto(store).axes[0]
        labels = {t.get_text() for t in ax.texts}
        n_front = int(ax.get_title().split(", ")[1].split()[0])
    front = read_front(run_dir)["members"]
    assert labels == {short_key(m["key"]) for m in front}
    assert 0 < len(labels) <= n_front
    report = format_report(run_dir)
    assert all(any(line.startswith(label) for line in report.splitlines()) for label in labels)


def test_hypervolume_states_its_reference_point(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        fig = plot_hypervolume(store)
    text = fig._supxlabel.get_text()
    assert f"reference point {HV_REFERENCE:g}" in text
    assert fig.axes[0].get_ylim() == (0.0, 1.0)


def test_one_generation(tmp_path: Path) -> None:
    rows = [(0, (0.1, 200.0)), (0, (0.3, 100.0)), (0, (0.2, 300.0))]
    with _store_with(tmp_path, {"val_error": -1.0, "flops": -1.0}, rows) as store:
        assert hypervolume_by_generation(store)[0] == [0]
        for fig in (plot_stats(store), plot_hypervolume(store)):
            ax = fig.axes[0]
            lo, hi = ax.get_xlim()
            assert lo < 0 < hi and _is_whole(ax.get_xticks())
        assert "3 candidates, 2 on the front" in plot_pareto(store).axes[0].get_title()
