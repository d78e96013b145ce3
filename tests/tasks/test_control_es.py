"""Control that explores: observation scaling, the weight ES (strategy ``"es"``: antithetic
pairs on common episodes, Adam steps, novelty, wider steps and restarts when flat), its
checkpointed state and resume, and its configuration -- on real gymnasium episodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evokeras.engine.budgeting import time_budget_config
from evokeras.engine.config import ConfigError, SearchConfig, load_stored
from evokeras.engine.search import Search
from evokeras.engine.strategies.es import ES_DEFAULTS, WeightES
from evokeras.engine.toolbox import make_toolbox, to_individual
from evokeras.genomes.network import Genome
from evokeras.tasks import make_task
from evokeras.tasks.control import GymControl, observation_scale
from evokeras.training.evaluator import Evaluator
from evokeras.training.records import Budget, EvalResult
from evokeras.variation import weights as W


def _config(env_id: str = "Pendulum-v1", seed: int = 1, **strategy: object) -> SearchConfig:
    return SearchConfig.from_dict({
        "task": "gym", "task_options": {"env_id": env_id}, "seed": seed,
        "objectives": {"return": 1.0, "params": -1.0}, "evaluation": {"episodes": 2},
        "strategy": {"name": "es", "population": 8, "offspring": 8, "generations": 3, **strategy}})


@pytest.fixture(scope="module")
def pendulum() -> GymControl:
    return GymControl("Pendulum-v1")


def test_observations_are_scaled_alike_in_numpy_and_keras(pendulum: GymControl) -> None:
    mean, std = observation_scale("MountainCarContinuous-v0")
    assert std[1] < 0.1 < std[0]  # velocity is ~100x smaller than position: scaling matters
    task = GymControl("MountainCarContinuous-v0")
    np.testing.assert_array_equal(task.obs_std, std)
    tb = make_toolbox(task, seed=0)
    x = np.stack([np.random.default_rng(0).uniform(-1.2, 0.6, 16),
                  np.random.default_rng(1).uniform(-0.07, 0.07, 16)], axis=1).astype(np.float32)
    for _ in range(4):
        genome = tb.individual().as_genome()
        model = task.keras_policy(genome)
        np.testing.assert_allclose(task.policy(genome)(x), model.predict_on_batch(x), rtol=1e-4, atol=1e-4)
    raw = GymControl("MountainCarContinuous-v0", normalize=False)
    assert raw.obs_mean is None and raw.stem("x") == "x"
    options = task.recipe(Path("."))["task_options"]
    assert options["normalize"] is True and options["scale"] == [mean.tolist(), std.tolist()]
    again = GymControl(**json.loads(json.dumps(options)))  # a resume reads the recorded scale
    np.testing.assert_array_equal(again.obs_std, std)
    for bad in ([[0.0], [1.0]], [[0.0, 0.0], [1.0, 0.0]], "no"):
        with pytest.raises(ValueError, match="scale"):
            GymControl("MountainCarContinuous-v0", scale=bad)
    with pytest.raises(ValueError, match="normalize"):
        GymControl("Pendulum-v1", normalize="yes")


def test_a_control_run_before_0_15_resumes_reading_raw_observations() -> None:
    stored = {"task": "gym", "task_options": {"env_id": "Pendulum-v1", "threshold": None}, "seed": 0}
    assert load_stored(stored).task_options["normalize"] is False
    assert make_task("cartpole").obs_mean is None  # CartPole (and its old runs) read them raw


def test_score_records_behaviour_step_cost_and_shares_episodes_by_seed_key(pendulum: GymControl) -> None:
    tb = make_toolbox(pendulum, seed=0)
    a, b = (tb.individual() for _ in range(2))
    ev = Evaluator(pendulum, Budget(episodes=2), {"return": 1.0, "params": -1.0}, seed=4)
    ra = ev(a)
    assert ra.ok and len(ra.metrics["behaviour"]) == 3 and ra.metrics["step_us"] > 0
    assert ra.metrics["steps"] == 2 * 200
    fitness = type(a.fitness)
    twin = to_individual(a.as_genome(), fitness, seed_key=a.key)  # the key's own episodes: the same return
    other = to_individual(a.as_genome(), fitness, seed_key=b.key)  # b's episodes: other start states
    assert ev(twin).metrics["return"] == ra.metrics["return"]
    assert ev(other).metrics["return"] != ra.metrics["return"]


def _told(strategy: WeightES, batch: list, returns: list[float], behaviours: list[list[float]] | None = None) -> None:
    told = []
    for i, ind in enumerate(batch):
        ind.fitness.values = (returns[i], 10.0)
        metrics = {"return": returns[i], "params": 10}
        if behaviours is not None:
            metrics["behaviour"] = behaviours[i]
        result = EvalResult(key=ind.key, genome=ind.to_dict(), status="ok", objectives=(returns[i], 10.0),
                            objective_names=("return", "params"), metrics=metrics)
        strategy.standing.note(result)
        told.append((ind, result))
    strategy.tell(told)


def _strategy(pendulum: GymControl, **es: object) -> WeightES:
    from evokeras.engine.strategies.base import Standing

    cfg = _config(**({"es": es} if es else {}))
    tb = make_toolbox(pendulum, seed=0, objectives=cfg.objectives)
    return WeightES(tb, Standing(None, None), cfg.strategy)


def test_es_asks_the_centre_and_antithetic_pairs_on_its_episodes(pendulum: GymControl) -> None:
    es = _strategy(pendulum, architecture_share=0.25)
    gen0 = es.ask(8)
    _told(es, gen0, [float(i) for i in range(8)])
    best = gen0[7]
    assert es.centre.layers == best.layers and np.allclose(es.theta, W.flat_weights(best.as_genome(), 3, 1))
    batch = es.ask(8)
    assert batch[0].key == best.key  # the centre comes first (evaluated already: the store answers)
    pairs = [ind for ind in batch if ind.seed_key == best.key]  # the pairs run the centre's episodes
    assert len(pairs) == 4 and len(batch) == 1 + 4 + 3  # a quarter of 8 (and the odd one) explores architectures
    for plus, minus in zip(pairs[0::2], pairs[1::2], strict=True):
        mid = (W.flat_weights(plus.as_genome(), 3, 1) + W.flat_weights(minus.as_genome(), 3, 1)) / 2
        np.testing.assert_allclose(mid, es.theta, atol=1e-5)
        step = W.flat_weights(plus.as_genome(), 3, 1) - es.theta
        assert 0.02 < np.std(step) < 0.5  # sigma 0.1
    theta = es.theta.copy()
    plus_keys = {p.key for p in pairs[0::2]}
    _told(es, batch, [1.0 if i.key in plus_keys else 0.0 for i in batch])  # the "+" of each pair is better
    moved = es.theta - theta
    plus_dirs = np.stack([W.flat_weights(p.as_genome(), 3, 1) - theta for p in pairs[0::2]])
    assert moved @ plus_dirs.sum(axis=0) > 0  # the mean moves towards the better side of the pairs


def test_flat_returns_widen_the_step_follow_novelty_and_restart(pendulum: GymControl) -> None:
    es = _strategy(pendulum, flat_generations=3)
    batch = es.ask(8)
    _told(es, batch, [-200.0] * 8, [[float(i * i), 0.0] for i in range(8)])
    assert es.sigma == 2 * ES_DEFAULTS["sigma"] and es.flat == 1
    assert es.centre.layers == batch[7].layers  # ties: the most novel (behaviour farthest from the rest)
    for gen in range(2):
        batch = es.ask(8)
        theta = es.theta.copy()
        _told(es, batch, [-200.0] * 8, [[float(i) + 10 * gen, 1.0] for i in range(8)])
    assert es.restarts == 1 and es.flat == 0 and es.sigma == 8 * ES_DEFAULTS["sigma"]
    assert not np.array_equal(es.theta, theta) and len(es.archive) == 24
    batch = es.ask(8)
    _told(es, batch, [float(i) for i in range(8)], [[0.0, 0.0]] * 8)  # a signal again: the step shrinks back
    assert es.sigma == pytest.approx(0.8 * 8 * ES_DEFAULTS["sigma"]) and es.flat == 0
    state = json.loads(json.dumps(es.state()))
    again = _strategy(pendulum, flat_generations=3)
    again.restore(state)
    assert again.sigma == es.sigma and again.restarts == 1 and again.archive == es.archive
    np.testing.assert_array_equal(again.theta, es.theta)
    assert [i.key for i in again.ask(8)] == [i.key for i in es.ask(8)]


def test_an_es_search_resumes_exactly(tmp_path: Path) -> None:
    with Search(_config(generations=3), tmp_path / "whole") as whole:
        whole._run()
        keys = [r.key for _, r in whole.store.evaluations()]
    with Search(_config(generations=1), tmp_path / "part") as part:
        part._run()
    cfg = json.loads((tmp_path / "part" / "config.json").read_text())
    cfg["config"]["strategy"]["generations"] = 3
    (tmp_path / "part" / "config.json").write_text(json.dumps(cfg))
    with Search.resume(tmp_path / "part") as resumed:
        resumed._run()
        assert [r.key for _, r in resumed.store.evaluations()] == keys
        assert resumed.strategy.centre is not None


def test_mountain_car_continuous_is_solved_and_verified(tmp_path: Path) -> None:
    cfg = _config("MountainCarContinuous-v0", generations=20)
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        solved = search.store.get_meta("solved")
        assert result.stopped_by == "solved"
        assert search.store.get_meta("verified")[solved]["mean_return"] >= 90


def test_es_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="strategy.es"):
        SearchConfig.from_dict({"strategy": {"name": "nsga2", "es": {"sigma": 0.2}}})
    with pytest.raises(ConfigError, match="strategy.es.sigma"):
        _config(es={"sigma": 0})
    with pytest.raises(ConfigError, match="strategy.es.sgma"):
        _config(es={"sgma": 0.1})
    with pytest.raises(ConfigError, match="'es' evolves the weights"):
        SearchConfig.from_dict({"task": "mnist", "strategy": {"name": "es"}}).build_task()


def test_a_time_budget_gives_control_the_weight_es(pendulum: GymControl) -> None:
    keys = time_budget_config(300, pendulum)
    assert keys["strategy"]["name"] == "es" and keys["strategy"]["wall_seconds"] < 300
    assert Genome  # the task's genomes carry their weights: the ES has a vector to move
    assert pendulum.weight_vector(make_toolbox(pendulum, seed=0).individual().as_genome()).ndim == 1


def test_a_solution_ends_its_generation_and_the_run(tmp_path: Path) -> None:
    cfg = _config("CartPole-v1", seed=0, population=32, offspring=32, generations=20)
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        keys = [r.key for _, r in search.store.evaluations()]
        solved = search.store.get_meta("solved")
        verified = search.store.get_meta("verified")
    assert result.stopped_by == "solved" and verified[solved]["solved"] and verified[solved]["episodes"] == 100
    assert keys[-1] == solved and len(keys) < 32  # verified as it arrived: the rest of generation 0 was not asked
    with Search.resume(tmp_path / "run") as again:
        assert again._run().stopped_by == "solved" and again.store.count_evaluations() == len(keys)


class _Crash(Exception):
    pass


def test_an_es_search_interrupted_mid_generation_resumes_exactly(tmp_path: Path) -> None:
    cfg = _config(generations=3)
    with Search(cfg, tmp_path / "whole") as whole:
        whole._run()
        keys = [r.key for _, r in whole.store.evaluations()]
    real = Evaluator(cfg.build_task(), cfg.budget(), cfg.objectives, seed=cfg.seed)
    calls: list[str] = []

    def crashing(genome):  # the third candidate of generation 2 never returns
        if len(calls) == 8 + 8 + 2:
            raise _Crash
        calls.append(genome.key)
        return real(genome)

    with Search(cfg, tmp_path / "cut", evaluate=crashing) as cut, pytest.raises(_Crash):
        cut._run()
    with Search.resume(tmp_path / "cut") as resumed:
        resumed._run()
        assert [r.key for _, r in resumed.store.evaluations()] == keys


def test_a_solution_on_arrival_then_the_final_rung(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict({**json.loads(json.dumps(_config("CartPole-v1", seed=0, population=32,
                                                                  offspring=32).to_dict())),
                                  "evaluation": {"episodes": 2, "final_rung": {"candidates": 2, "factor": 2}}})
    with Search(cfg, tmp_path / "run") as search:
        result = search._run()
        assert result.stopped_by == "solved"
        assert any(r.key.endswith("@2") for _, r in search.store.evaluations())  # the rung ran after the halt
