"""Tests for :mod:`evokeras.results.plotting`: hypervolume, non-dominated mask, figures of a run."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402

from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.genomes.network import Genome, LayerGene  # noqa: E402
from evokeras.results.plotting import (  # noqa: E402
    hypervolume,
    hypervolume_by_generation,
    nondominated,
    plot_hypervolume,
    plot_pareto,
    plot_stats,
    save_plots,
)
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
    search.run()
    search.close()
    return out


def test_figures_are_matplotlib_figures(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        for fn in (plot_stats, plot_pareto, plot_hypervolume):
            fig = fn(store)
            assert isinstance(fig, Figure), fn.__name__
            assert fig.axes, fn.__name__
        stats = plot_stats(store)
        assert [ax.get_ylabel() for ax in stats.axes] == ["val_error", "flops"]
        pareto = plot_pareto(store)
        assert pareto.axes[0].get_xlabel() == "flops"
        assert pareto.axes[0].get_ylabel() == "val_error"


def test_hypervolume_by_generation_never_decreases(run_dir: Path) -> None:
    with RunStore(run_dir / "run.db", create=False) as store:
        gens, hv = hypervolume_by_generation(store)
    assert gens == [0, 1, 2, 3]
    assert all(0 < v <= 1.1**2 for v in hv)
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
        # normalised minimised points: gen 0 front {(0.8, 0)} (from (0.5, 1)), then + (0, 0.5)
        assert gens == [0, 1]
        assert hv[0] == pytest.approx((1.1 - 0.8) * 1.1)
        assert hv[1] == pytest.approx(hypervolume(np.array([[0.8, 0.0], [0.0, 0.5]]), np.full(2, 1.1)))
        fig = plot_pareto(store)
        assert "3 candidates, 2 on the front" in fig.axes[0].get_title()
