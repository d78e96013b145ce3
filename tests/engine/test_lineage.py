"""The lineage strategy: children continue their parents' training, the lineage's
training is recorded, and the final models continue from the search's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.engine.final import finalize
from evokeras.engine.search import Search
from evokeras.engine.strategies import STRATEGIES
from evokeras.engine.strategies.lineage import PROMOTION_FACTORS, Lineage
from evokeras.engine.toolbox import make_toolbox, to_individual
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes

CONFIG = {
    "task": "mnist", "seed": 2, "objectives": {"val_error": -1.0, "flops": -1.0}, "max_val_error": 1.0,
    "strategy": {"name": "lineage", "population": 3, "offspring": 3, "generations": 2, "cxpb": 0.1, "mutpb": 0.5},
    "evaluation": {"epochs": 1, "train_samples": 256, "val_samples": 128, "patience": 0, "time_repeats": 1,
                   "inherit_weights": True},
    "final": {"epochs": 1, "train_samples": 512, "members": 1},
    "space": {"max_params": 30_000, "max_layers": 4, "init_layers": [2, 3]},
}


def test_lineage_needs_weight_inheritance() -> None:
    assert STRATEGIES["lineage"] is Lineage
    with pytest.raises(ConfigError, match=r"strategy\.name.*inherit_weights"):
        SearchConfig.from_dict({**CONFIG, "evaluation": {**CONFIG["evaluation"], "inherit_weights": False}})


def test_training_accumulates_along_lineages_and_into_the_final_model(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict(CONFIG)
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        records = {r.key: r for _, r in search.store.evaluations()}
        children = [r for r in records.values() if r.metrics.get("parent") in records]
        assert children, "no child inherited"
        for r in records.values():
            assert r.metrics["train_steps"] > 0
        for r in children:  # a child's lineage = its parent's + its own training
            parent = records[r.metrics["parent"]]
            assert r.metrics["lineage_steps"] == parent.metrics["lineage_steps"] + r.metrics["train_steps"]
            assert r.metrics["lineage_seconds"] > parent.metrics["lineage_seconds"]
        # a child that lost the layer its next layer read inherits nothing; most inherit
        assert sum(r.metrics["inherited_layers"] >= 1 for r in children) >= len(children) / 2
        assert search.strategy.progress == 1.0  # both generations done
        kept = {p.stem for p in (tmp_path / "run" / "weights").glob("*.npz")}
        assert {ind.key for ind in result.front} <= kept
        (entry,) = [e for e in finalize(search, result.front) if e.get("status") == "ok"]
    assert entry["final_start"] == "search"
    assert entry["search_steps"] == records[entry["key"]].metrics["lineage_steps"]
    assert entry["final_steps"] == 512 // records[entry["key"]].genome["training"]["batch_size"] + (
        512 % records[entry["key"]].genome["training"]["batch_size"] > 0)


def test_final_models_start_from_scratch_when_asked(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict({**CONFIG, "strategy": {**CONFIG["strategy"], "generations": 0},
                                  "final": {**CONFIG["final"], "from_search": False}})
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        (entry,) = [e for e in finalize(search, result.front) if e.get("status") == "ok"]
    assert entry["final_start"] == "scratch" and "search_steps" not in entry


def _strategy(progress: float) -> Lineage:
    cfg = SearchConfig.from_dict(CONFIG)
    tb = make_toolbox("mnist", objectives=cfg.objectives, seed=0)
    from evokeras.engine.strategies.base import Standing

    strategy = Lineage(tb, Standing(1.0, "val_error"), cfg.strategy)
    genomes = [Genome((LayerGene("conv", units=4 * (i + 1)), LayerGene("dense", units=8))) for i in range(4)]
    strategy.population = []
    for i, g in enumerate(genomes):
        ind = to_individual(g, tb.fitness_class)
        ind.fitness.values = (0.5 - 0.1 * i, 1000.0 * i)  # the later, the more accurate
        strategy.standing.status[ind.key] = "ok"
        strategy.population.append(ind)
    strategy.progress = progress
    return strategy


def test_promotion_only_scales_the_learning_rate() -> None:
    strategy = _strategy(0.0)
    parent = strategy.population[0]
    child = strategy.promote(parent)
    assert child.parent == parent.key and child.layers == parent.layers
    assert child.training.learning_rate in {float(f"{parent.training.learning_rate * f:.3g}") for f in PROMOTION_FACTORS}
    lo, hi = strategy.toolbox.space.learning_rate
    stuck = to_individual(parent.as_genome().replace(training=TrainingGenes(learning_rate=lo)), strategy.toolbox.fitness_class)
    assert strategy.promote(stuck).training.learning_rate > lo  # only the factors that move it


def test_parents_move_toward_the_accurate_end() -> None:
    def mean_error(progress: float) -> float:
        strategy = _strategy(progress)
        strategy.toolbox.rng = np.random.default_rng(0)
        return float(np.mean([strategy._pick().fitness.values[0] for _ in range(400)]))

    assert mean_error(1.0) < mean_error(0.0) - 0.03


def test_cells_accumulate_training_along_lineages(tmp_path: Path) -> None:
    """On a language model the children's cells take their parents' weights (cell
    morphisms), training accumulates, and the lineage plot shows bits per character."""
    from evokeras.results.plotting import objective_label, plot_lineages

    cfg = SearchConfig.from_dict({
        "task": "bible_chars", "seed": 1, "objectives": {"val_bpc": -1.0, "flops": -1.0},
        "strategy": {"name": "lineage", "population": 3, "offspring": 3, "generations": 2, "cxpb": 0.1, "mutpb": 0.5},
        "evaluation": {"epochs": 1, "train_samples": 96, "val_samples": 32, "patience": 0, "time_repeats": 1,
                       "time_batch": 16, "inherit_weights": True},
        "space": {"max_layers": 2, "cell_units": [16, 32], "cell_max_nodes": 3, "cell_max_lag": 4},
    })
    with Search(cfg, tmp_path / "run") as search:
        search._run()
        records = {r.key: r for _, r in search.store.evaluations()}
        children = [r for r in records.values() if r.metrics.get("parent") in records]
        assert children
        # the stem and the head always, and most children their recurrent layers too
        assert all(r.metrics["inherited_layers"] >= 2 for r in children)
        assert sum(r.metrics["inherited_layers"] >= 3 for r in children) >= len(children) / 2
        for r in children:
            assert r.metrics["lineage_steps"] == records[r.metrics["parent"]].metrics["lineage_steps"] + r.metrics["train_steps"]
        fig = plot_lineages(search.store)
    assert fig is not None and fig.axes[0].get_ylabel() == objective_label("val_bpc")
