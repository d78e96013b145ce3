"""Low-cost search levers: weight inheritance and multi-fidelity (successive halving)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from evokeras import decode
from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.engine.search import Search
from evokeras.engine.toolbox import make_toolbox, to_individual
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.tasks import make_task
from evokeras.training.evaluator import Evaluator
from evokeras.training.inheritance import WeightCache
from evokeras.training.records import Budget, TrainSettings

TINY = {"epochs": 1, "train_samples": 256, "val_samples": 128, "patience": 0, "time_repeats": 1}


def test_budget_scaled() -> None:
    b = Budget(epochs=4, train_samples=1000)
    assert b.scaled(0.25).train_samples == 250 and b.scaled(0.25).epochs == 4
    assert Budget(epochs=4, train_samples=None).scaled(0.25).epochs == 1
    assert Budget(train_samples=3).scaled(0.01).train_samples == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [({"eta": 1}, "eta"), ({"fraction": 1.5}, "fraction"), ({"speed": 2}, "speed"), ([1], "multi_fidelity")],
)
def test_multi_fidelity_config_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchConfig.from_dict({"multi_fidelity": value})
    with pytest.raises(ConfigError, match="inherit_weights"):
        SearchConfig.from_dict({"inherit_weights": "yes"})


@pytest.mark.parametrize(
    ("value", "message"),
    [({"candidates": 0}, "candidates"), ({"factor": 1}, "factor"), ({"factor": True}, "factor"),
     ({"speed": 2}, "speed"), ([1], "final_rung")],
)
def test_final_rung_config_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchConfig.from_dict({"final_rung": value})


def test_final_rung_must_fit_the_evaluation_timeout() -> None:
    annealed = {"task": "mnist", "evaluation": {"anneal": True, "seconds": 30, "timeout": 100}}
    with pytest.raises(ConfigError, match=r"final_rung\.factor.*timeout"):
        SearchConfig.from_dict({**annealed, "final_rung": {"factor": 4}}).build_task()
    SearchConfig.from_dict({**annealed, "final_rung": {"factor": 3}}).build_task()
    assert Budget(anneal=True, seconds=30).scaled(4).seconds == 120
    assert Budget(epochs=1, train_samples=100).scaled(2).train_samples == 200


@pytest.mark.parametrize("key", ["final_rung", "multi_fidelity"])
def test_other_fidelities_need_the_built_in_evaluator(tmp_path: Path, key: str) -> None:
    cfg = SearchConfig.from_dict({"task": "mnist", key: {}})
    with pytest.raises(ConfigError, match=key):
        Search(cfg, tmp_path / "run", evaluate=lambda genome: None)  # type: ignore[arg-type,return-value]


def test_individuals_carry_their_parent() -> None:
    tb = make_toolbox("mnist", seed=0)
    parent = tb.individual()
    (child,) = tb.mutate(parent)
    assert child.parent == parent.key and parent.parent is None
    again = pickle.loads(pickle.dumps(child))
    assert again.parent == parent.key and again == child
    a, b = tb.mate(parent, child)
    assert (a.parent, b.parent) == (parent.key, child.key)


def _genomes() -> tuple[Genome, Genome]:
    layers = (LayerGene("conv", units=8, kernel_size=3), LayerGene("pool"), LayerGene("dense", units=16))
    parent = Genome(layers, training=TrainingGenes(learning_rate=1e-3))
    child = Genome(layers[:2] + (LayerGene("dense", units=32),), training=TrainingGenes(learning_rate=2e-3))
    return parent, child


def test_child_starts_from_parent_weights(tmp_path: Path) -> None:
    parent, child = _genomes()
    ev = Evaluator(make_task("mnist", space=SearchSpace()), Budget(**TINY), {"val_error": -1.0, "flops": -1.0}, seed=0, weight_dir=tmp_path)
    r_parent = ev(parent)
    assert r_parent.ok and (tmp_path / f"{parent.key}.npz").is_file()
    assert r_parent.metrics["inherited_layers"] == 0 and r_parent.metrics["fidelity"] == 1.0
    # without the child's genome: layer by layer, the unchanged conv layer (same name,
    # same shapes) comes from the parent; the wider dense layer and the head do not
    model = decode(child, "mnist")
    metrics = WeightCache(tmp_path).inherit(model, parent.key)
    assert metrics == {"inherited_layers": 1, "parent": parent.key}
    # with it: through the morphism, the widened dense layer and the head too
    model = decode(child, "mnist")
    metrics = WeightCache(tmp_path).inherit(model, parent.key, genome=child, stem_channels=1)
    assert metrics == {"inherited_layers": 3, "identity_layers": 0, "parent": parent.key}
    with np.load(tmp_path / f"{parent.key}.npz") as stored:
        np.testing.assert_array_equal(model.get_layer("g0_conv").get_weights()[0], stored["g0_conv/0"])
    ind = to_individual(child, make_toolbox("mnist").fitness_class, parent=parent.key)
    r_child = ev(ind)
    assert r_child.ok and r_child.metrics["inherited_layers"] == 3 and r_child.metrics["parent"] == parent.key
    assert r_child.metrics["lineage_steps"] == r_parent.metrics["lineage_steps"] + r_child.metrics["train_steps"]
    off = Evaluator(make_task("mnist", space=SearchSpace()), Budget(**TINY), {"val_error": -1.0, "flops": -1.0}, seed=0)(ind)
    assert "inherited_layers" not in off.metrics


def test_successive_halving_search(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict({
        "task": "mnist", "population": 3, "offspring": 4, "generations": 1, "seed": 3,
        "objectives": {"val_error": -1.0, "flops": -1.0}, "evaluation": {**TINY, "train_samples": 128},
        "space": {"max_layers": 3, "init_layers": [2, 3], "max_params": 20_000},
        "inherit_weights": True, "multi_fidelity": {"eta": 3, "fraction": 0.25},
    })
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        rows = [r for g, r in search.store.evaluations() if g == 1]
        runs = search.store.count_evaluations(1)
        from evokeras.results.plotting import _ok_points

        _, points, _, plotted = _ok_points(search.store)
        population = {ind.key for ind in search.strategy.parents}
    low = [r for r in rows if r.key.endswith("@0.25")]
    pruned = [r for r in rows if r.status == "pruned"]
    full = [r for r in rows if "@" not in r.key and r.status != "pruned"]
    assert low and all(r.metrics["fidelity"] == 0.25 for r in low)
    assert all(r.metrics["fidelity"] == 1.0 for r in full)
    assert len(full) == -(-len(low) // 3)  # ceil(n / eta) promoted to the full budget
    assert len(full) + len(pruned) == len(low) and runs == len(low) + len(full)
    assert {r.key for r in full} | {r.key for r in pruned} == {r.key.removesuffix("@0.25") for r in low}
    assert not {r.key for r in pruned} & {ind.key for ind in result.front}
    assert not any("@" in k for k in plotted) and not {r.key for r in pruned} & set(plotted)
    cached = {p.stem for p in (tmp_path / "run" / "weights").glob("*.npz")}
    assert cached <= population and cached  # only the parents of the next generation


def test_training_settings_of_older_configs_move_out_of_the_budget() -> None:
    cfg = SearchConfig.from_dict({"evaluation": {"fast": True, "deterministic": False, "epochs": 2}})
    assert cfg.budget() == Budget(epochs=2) and cfg.evaluation.fast_path and not cfg.evaluation.deterministic
    assert cfg.train_settings() == TrainSettings(fast=True, deterministic=False)
    assert SearchConfig.from_dict({"fast_path": False, "evaluation": {"fast": True}}).evaluation.fast_path is False


def test_fast_path_in_the_evaluator() -> None:
    parent, _ = _genomes()
    objectives = {"val_error": -1.0, "flops": -1.0}
    stock = Evaluator(make_task("mnist", space=SearchSpace()), Budget(**TINY), objectives, seed=0)(parent)
    fast = Evaluator(make_task("mnist", space=SearchSpace()), Budget(**TINY), objectives, seed=0, settings=TrainSettings(fast=True))(parent)
    assert stock.metrics["train_path"] == "stock" and fast.metrics["train_path"] == "fast"
    assert fast.ok and 0.0 <= fast.metrics["val_error"] < 0.9
    assert fast.metrics["params"] == stock.metrics["params"]


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(300))


def _pickled(path: Path) -> None:
    np.savez(path, **{"g0_conv/0": np.array([{"a": 1}], dtype=object)})


def _no_index(path: Path) -> None:
    np.savez(path, g0_conv=np.zeros((3, 3, 1, 8), np.float32))


def _text(path: Path) -> None:
    np.savez(path, **{"g0_conv/0": np.array(["x"] * 8)})


def _truncated(path: Path) -> None:
    np.savez(path, **{"g0_conv/0": np.zeros((3, 3, 1, 8), np.float32)})
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("spoil", [_garbage, _pickled, _no_index, _text, _truncated])
def test_a_spoiled_weight_file_is_skipped(tmp_path: Path, spoil) -> None:
    """A cached parent file that is not an .npz of numeric <layer>/<index> arrays (tampered,
    truncated, pickled objects) is never unpickled or trusted: the child keeps its weights."""
    parent, child = _genomes()
    spoil(tmp_path / f"{parent.key}.npz")
    model = decode(child, "mnist")
    before = [w.copy() for w in model.get_weights()]
    assert WeightCache(tmp_path).inherit(model, parent.key) == {
        "inherited_layers": 0, "parent": parent.key, "parent_weights": "unreadable"}
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_final_rung_chooses_the_front_from_longer_evaluations(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict({
        "task": "mnist", "population": 3, "offspring": 3, "generations": 1, "seed": 1,
        "objectives": {"val_error": -1.0, "flops": -1.0}, "evaluation": {**TINY, "train_samples": 128},
        "space": {"max_layers": 3, "init_layers": [2, 3], "max_params": 20_000},
        "final_rung": {"candidates": 2, "factor": 2}, "final_epochs": 1, "final_train_samples": 128,
        "max_val_error": 1,
    })
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        rows = [r for _, r in search.store.evaluations()]
        rung = {r.key.removesuffix("@2"): r for r in rows if r.key.endswith("@2")}
        from evokeras.engine.final import finalize
        from evokeras.results.plotting import plot_pareto

        entries = finalize(search, result.front)
        legend = [t.get_text() for t in plot_pareto(search.store).legends[0].get_texts()]
    full = sorted((r for r in rows if r.ok and r.full), key=lambda r: (r.objectives[0], r.key))  # ties: by key
    # the two most accurate candidates of the whole run, evaluated again with twice the budget
    assert set(rung) == {r.key for r in full[:2]}
    assert all(r.ok and r.metrics["fidelity"] == 2.0 for r in rung.values())
    assert result.front and {ind.key for ind in result.front} <= set(rung)
    for ind in result.front:
        assert ind.fitness.values == tuple(rung[ind.key].objectives)
    assert all(e["metrics"]["fidelity"] == 2.0 and e["status"] == "ok" for e in entries)
    assert [e["objectives"]["val_error"] for e in entries] == sorted(rung[e["key"]].objectives[0] for e in entries)
    assert any(text.startswith("final rung (2x budget") for text in legend)
    # a resumed run reads the rung from the store: nothing is evaluated again
    with Search.resume(tmp_path / "run") as again:
        resumed = again._run()
        assert again.store.count_evaluations() == len(rows)
    assert sorted(ind.key for ind in resumed.front) == sorted(ind.key for ind in result.front)


def test_the_reference_architectures_always_reach_the_final_rung(tmp_path: Path) -> None:
    """With ``strategy.reference_architectures``, the task's references are evaluated
    again in the final rung whatever their rank."""
    cfg = SearchConfig.from_dict({
        "task": "mnist", "seed": 2, "objectives": {"val_error": -1.0, "flops": -1.0},
        "strategy": {"population": 4, "offspring": 2, "generations": 1, "reference_architectures": True},
        "evaluation": {**TINY, "train_samples": 128, "final_rung": {"candidates": 1, "factor": 2}},
        "space": {"max_layers": 3, "init_layers": [2, 3], "max_params": 200_000},
        "final_epochs": 1, "final_train_samples": 128, "max_val_error": 1,
    })
    refs = {g.key for g in cfg.build_task().reference_genomes()}
    with Search(cfg, tmp_path / "run") as search:
        search._run()
        rows = [r for _, r in search.store.evaluations()]
    ok = {r.key for r in rows if r.ok and r.full}
    rung = {r.key.removesuffix("@2") for r in rows if r.key.endswith("@2")}
    assert refs & ok and refs & ok <= rung
    assert len(rung) == 1 + len(refs & ok - {min((r for r in rows if r.ok and r.full),
                                                  key=lambda r: (r.objectives[0], r.key)).key})
