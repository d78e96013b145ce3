"""CartPole: evolved weights (codec, NumPy forward == Keras), variation, real rollouts,
evaluation, the solved-and-verified stop, resume and the study end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evokeras.engine.config import SearchConfig
from evokeras.engine.search import Search
from evokeras.engine.toolbox import make_toolbox
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene
from evokeras.tasks import make_task
from evokeras.tasks.cartpole import VERIFY_SEED_BASE, CartPole, rollout
from evokeras.training.evaluator import Evaluator
from evokeras.training.records import Budget
from evokeras.variation import weights as W

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def task() -> CartPole:
    return make_task("cartpole")


def _skip_genome(rng: np.random.Generator) -> Genome:
    g = Genome((
        LayerGene("dense", units=8, activation="tanh"),
        LayerGene("dense", units=4, activation="elu"),
        LayerGene("dense", units=8, activation="swish", skips=(0,), merge="add"),
        LayerGene("activation", activation="sigmoid", skips=(0, 1), merge="concat"),
        LayerGene("dense", units=2, activation="relu", skips=(1,), merge="add"),
    ))
    return W.init_weights(g, rng, 4, 2)


def test_weights_round_trip_and_key(rng: np.random.Generator) -> None:
    plain = Genome((LayerGene("dense", units=8),))
    assert "weights" not in plain.to_dict()
    g = W.init_weights(plain, rng, 4, 2)
    assert g.key != plain.key
    back = Genome.from_json(g.to_json())
    assert back == g and back.key == g.key
    p1, p2 = W.params_of(g, 4, 2), W.params_of(back, 4, 2)
    for name in p1:
        for a, b in zip(p1[name], p2[name], strict=True):
            np.testing.assert_array_equal(a, b)
    assert [n for n, _ in W.layout(g, 4, 2)] == ["g0_dense", "head"]


def test_weights_errors_name_the_layer(rng: np.random.Generator) -> None:
    g = W.init_weights(Genome((LayerGene("dense", units=8),)), rng, 4, 2)
    wrong = g.replace(weights={**dict(g.weights), "head": W.encode_weights([np.zeros(3)])})
    with pytest.raises(GenomeError, match="head"):
        W.params_of(wrong, 4, 2)
    with pytest.raises(GenomeError, match="g0_dense"):
        W.params_of(g.replace(weights={"head": dict(g.weights)["head"]}), 4, 2)
    with pytest.raises(GenomeError, match="batchnorm"):
        W.layout(Genome((LayerGene("batchnorm"),)), 4, 2)
    with pytest.raises(GenomeError, match="weights"):
        Genome.from_dict({**g.to_dict(), "weights": ["not", "a", "mapping"]})


def test_numpy_forward_equals_keras(task: CartPole, rng: np.random.Generator) -> None:
    genomes = [_skip_genome(rng)]
    tb = make_toolbox(task, seed=3)
    ind = tb.individual()
    for _ in range(6):
        ind = tb.mutate(ind)[0]
        genomes.append(ind.as_genome())
    x = rng.normal(size=(16, 4)).astype(np.float32)
    for g in genomes:
        model = task.keras_policy(g)
        np.testing.assert_allclose(W.forward(g, x, 4, 2), model.predict_on_batch(x), rtol=1e-5, atol=1e-5)


def test_inherit_keeps_overlap_and_perturb_changes(rng: np.random.Generator) -> None:
    parent = W.init_weights(Genome((LayerGene("dense", units=4, activation="tanh"),)), rng, 4, 2)
    grown = W.inherit(Genome((LayerGene("dense", units=8, activation="tanh"),)), parent, rng, 4, 2)
    old, new = W.params_of(parent, 4, 2), W.params_of(grown, 4, 2)
    np.testing.assert_array_equal(new["g0_dense"][0][:, :4], old["g0_dense"][0])
    np.testing.assert_array_equal(new["head"][0][:4], old["head"][0])
    moved = W.perturb(parent, rng, 4, 2, sigma=0.1)
    assert moved.layers == parent.layers and moved.key != parent.key


def test_variation_keeps_weights_valid(task: CartPole) -> None:
    tb = make_toolbox(task, seed=11)
    pop = tb.population(8)
    rng = np.random.default_rng(5)
    for _ in range(150):
        i, j = rng.integers(len(pop), size=2)
        if rng.random() < 0.3:
            child = tb.mate(pop[i], pop[j])[int(rng.integers(2))]
        else:
            child = tb.mutate(pop[i])[0]
        task.space.check(child)
        W.params_of(child, 4, 2)  # raises if the weights do not fit the architecture
        pop[int(rng.integers(len(pop)))] = child
    assert len({ind.key for ind in pop}) > 1


def test_rollout_is_real_and_seeded() -> None:
    left = lambda obs: np.tile([1.0, 0.0], (len(obs), 1))  # noqa: E731  always push left
    r1, steps = rollout(left, 4, seed=7)
    r2, _ = rollout(left, 4, seed=7)
    np.testing.assert_array_equal(r1, r2)
    assert r1.shape == (4,) and (r1 < 20).all() and steps == int(r1.sum())
    def balance(obs: np.ndarray) -> np.ndarray:  # push toward the side the pole falls to
        right = obs[:, 2] + 0.5 * obs[:, 3] > 0
        return np.stack([~right, right], axis=1).astype(float)

    good, _ = rollout(balance, 4, seed=7)
    assert good.mean() > 150


def test_evaluator_measures_return_and_size(task: CartPole) -> None:
    tb = make_toolbox(task, seed=2)
    g = tb.individual().as_genome()
    ev = Evaluator(task, Budget(episodes=3), {"return": 1.0, "params": -1.0}, seed=4)
    r1, r2 = ev(g), ev(g)
    assert r1.status == "ok" and r1.objectives == r2.objectives
    assert r1.metrics["episodes"] == 3 and 8 <= r1.metrics["return"] <= 500
    assert r1.metrics["params"] == task.space.analyze(g).params
    broken = ev(g.replace(weights={}))
    assert broken.status == "failed" and "weights" in broken.error


def test_verify_uses_unseen_seeds(task: CartPole, rng: np.random.Generator) -> None:
    g = _skip_genome(rng)
    check = task.verify(g, seed=0)
    assert check["seed"] >= VERIFY_SEED_BASE and check["episodes"] in (25, 50, 75, 100)
    assert task.episode_seed(0, g.key) < VERIFY_SEED_BASE
    assert check["solved"] == (check["episodes"] == 100 and check["mean_return"] >= 475)


def test_a_hopeless_policy_is_turned_down_early_and_a_good_one_checked_whole() -> None:
    from evokeras.tasks.control import ActionMap, check_policy

    def left(obs: np.ndarray) -> np.ndarray:  # always push left: falls within ~10 steps
        return np.tile([1.0, 0.0], (len(obs), 1))

    def balance(obs: np.ndarray) -> np.ndarray:  # push towards the pole's lean: keeps it up
        push = obs[:, 2] + obs[:, 3] > 0
        return np.stack([~push, push], axis=1).astype(np.float32)

    act = ActionMap(True)
    bad = check_policy(left, 1000, env_id="CartPole-v1", act=act, threshold=475)
    assert bad["episodes"] == 25 and not bad["solved"]
    good = check_policy(balance, 1000, env_id="CartPole-v1", act=act, threshold=475)
    assert good["episodes"] == 100 and good["solved"] and good["mean_return"] >= 475
    whole = check_policy(left, 1000, env_id="CartPole-v1", act=act, threshold=475, early=False)
    assert whole["episodes"] == 100 and not whole["solved"]
    first = check_policy(left, 1000, env_id="CartPole-v1", act=act, threshold=None, episodes=25)
    assert first["mean_return"] == bad["mean_return"]  # chunks run the same episodes as one batch


def _config(**kw: object) -> SearchConfig:
    base = {"task": "cartpole", "population": 8, "offspring": 8, "generations": 30, "seed": 3,
            "objectives": {"return": 1.0, "params": -1.0}, "evaluation": {"episodes": 3}}
    return SearchConfig.from_dict({**base, **kw})


def test_search_stops_when_solved_and_resume_keeps_it(tmp_path: Path) -> None:
    with Search(_config(), tmp_path / "run") as search:
        result = search._run()
        solved = search.store.get_meta("solved")
        verified = search.store.get_meta("verified")
    assert result.stopped_by == "solved" and result.generations_done < 30
    assert verified[solved]["solved"] and verified[solved]["mean_return"] >= 475
    with Search.resume(tmp_path / "run") as again:
        n = again.store.count_evaluations()
        result2 = again._run()
        assert result2.stopped_by == "solved" and again.store.count_evaluations() == n


def test_cartpole_study_smoke(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "studies" / "cartpole.py"), "--budget", "smoke", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    hof = json.loads((out / "hall_of_fame.json").read_text())
    assert hof["members"] and all("test_return" in m for m in hof["members"] if m["status"] == "ok")
    assert (out / "plots" / "policy.gif").stat().st_size > 1000
    for m in hof["members"]:
        assert (out / m["model"]).is_file()
    import keras

    model = keras.saving.load_model(out / hof["members"][0]["model"])
    genome = Genome.from_dict(hof["members"][0]["genome"])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), W.forward(genome, x, 4, 2), rtol=1e-5, atol=1e-5)


def test_final_test_uses_its_own_seeds(task: CartPole, rng: np.random.Generator) -> None:
    from evokeras.tasks.cartpole import TEST_SEED_BASE

    g = _skip_genome(rng)
    v, t = task.verify(g, seed=0), task.test(g, seed=0)
    assert VERIFY_SEED_BASE <= v["seed"] < TEST_SEED_BASE <= t["seed"] < 2**31


@pytest.mark.parametrize(
    ("override", "message"),
    [({"space": {"activations": ["gelu"]}}, "gelu"),
     ({"space": {"layer_kinds": {"dense": 1.0, "conv": 1.0}}}, "conv"),
     ({"inherit_weights": True}, "inherit_weights")],
)
def test_cartpole_config_errors(override: dict, message: str) -> None:
    from evokeras.engine.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        _config(**override).build_task()


def test_cartpole_multi_fidelity_scales_episodes() -> None:
    cfg = _config(multi_fidelity={"eta": 2, "fraction": 0.5}, evaluation={"episodes": 4})
    assert CartPole().scaled_budget(cfg.budget(), 0.5).episodes == 2
