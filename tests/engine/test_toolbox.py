"""Tests for :mod:`evokeras.engine.toolbox`: the DEAP contract, pickling and a short search.

This module imports no Keras at module level: the ``spawn`` worker imports it to find
:func:`key_and_fitness` and stays light.
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import random
from typing import Any

import pytest
from deap import algorithms, base, tools

from evokeras import Genome, make_toolbox
from evokeras.engine.toolbox import Individual, fitness_class

REGISTERED = ("individual", "population", "mate", "mutate", "select", "decode", "clone", "map")


def key_and_fitness(ind: Individual) -> tuple[str, tuple[float, ...], str, int]:
    """Run in a ``spawn`` worker: what the worker sees of an unpickled individual."""
    return ind.key, ind.fitness.values, type(ind).__name__, len(ind.layers)


def cheap_evaluate(space: Any) -> Any:
    """An analytic fitness: (parameters / 1e5, layer count), both minimised."""

    def evaluate(ind: Individual) -> tuple[float, float]:
        return space.analyze(ind).params / 1e5, float(len(ind.layers))

    return evaluate


def test_registers_the_deap_names() -> None:
    tb = make_toolbox("mnist", seed=0)
    for name in REGISTERED:
        assert callable(getattr(tb, name)), name
    assert not hasattr(tb, "evaluate")
    assert tb.select.func is tools.selNSGA2
    assert tb.map(lambda a, b: a + b, [1, 2], [10, 20]) == [11, 22]
    assert tb.task.name == "mnist" and tb.space is tb.task.space
    evaluate = cheap_evaluate(tb.space)
    assert make_toolbox("mnist", evaluate=evaluate).evaluate.func is evaluate


def test_individuals_are_genomes_with_fitness() -> None:
    tb = make_toolbox("mnist", seed=0)
    ind = tb.individual()
    assert isinstance(ind, Genome) and isinstance(ind, Individual)
    assert isinstance(ind.fitness, base.Fitness) and not ind.fitness.valid
    assert len(ind.key) == 16 and ind.key == ind.as_genome().key
    assert Genome.from_dict(ind.to_dict()).to_json() == ind.to_json()
    tb.space.check(ind)
    pop = tb.population(6)
    assert len(pop) == 6 and all(isinstance(p, Individual) for p in pop)
    assert len({p.key for p in pop}) == 6


def test_default_weights_minimise_two_objectives() -> None:
    tb = make_toolbox("mnist", seed=0)
    assert tb.weights == (-1.0, -1.0)
    assert tb.objectives == ("val_error", "exec_time")
    assert tb.individual().fitness.weights == (-1.0, -1.0)


def test_objective_dict_sets_the_weights() -> None:
    tb = make_toolbox("mnist", objectives={"acc": 1, "params": -1}, seed=0)
    assert tb.weights == (1.0, -1.0)
    assert tb.objectives == ("acc", "params")
    assert tb.individual().fitness.weights == (1.0, -1.0)
    assert make_toolbox("mnist", objectives=["val_error", "params", "flops"]).weights == (
        -1.0,
        -1.0,
        -1.0,
    )


def test_unknown_objective_name_is_named() -> None:
    with pytest.raises(ValueError, match="unknown objective 'beauty'"):
        make_toolbox("mnist", objectives=["val_error", "beauty"])


def test_fitness_classes_are_named_module_attributes() -> None:
    import evokeras.engine.toolbox as module

    cls = fitness_class((1, -1))
    assert cls.__name__ == "Fitness_p1_m1"
    assert module.Fitness_p1_m1 is cls
    assert fitness_class([1.0, -1.0]) is cls
    assert module.Fitness_m0p5_p2.weights == (-0.5, 2.0)
    with pytest.raises(ValueError, match="non-zero"):
        fitness_class((1, 0))


def test_variation_returns_new_individuals_with_invalid_fitness() -> None:
    tb = make_toolbox("mnist", seed=1)
    a, b = tb.population(2)
    a.fitness.values = (0.1, 2.0)
    b.fitness.values = (0.2, 1.0)
    saved = copy.deepcopy((a.as_genome(), b.as_genome()))
    ca, cb = tb.mate(a, b)
    (m,) = tb.mutate(a)
    for child in (ca, cb, m):
        assert isinstance(child, Individual) and not child.fitness.valid
        assert child is not a and child is not b
        tb.space.check(child)
    assert (a.as_genome(), b.as_genome()) == saved
    assert a.fitness.values == (0.1, 2.0) and b.fitness.values == (0.2, 1.0)


def test_clone_copies_the_fitness() -> None:
    tb = make_toolbox("mnist", seed=0)
    ind = tb.individual()
    ind.fitness.values = (0.5, 3.0)
    twin = tb.clone(ind)
    assert twin is not ind and twin == ind and twin.key == ind.key
    assert twin.fitness.values == (0.5, 3.0)
    del twin.fitness.values
    assert ind.fitness.values == (0.5, 3.0)


@pytest.mark.parametrize(
    "objectives", [None, {"acc": 1, "params": -1}, {"a": 0.5, "b": -2.5, "c": 3}]
)
def test_pickle_round_trip_keeps_fitness(objectives: Any) -> None:
    tb = make_toolbox("mnist", objectives=objectives, seed=3)
    ind = tb.individual()
    ind.fitness.values = tuple(float(i) + 0.25 for i in range(len(tb.weights)))
    back = pickle.loads(pickle.dumps(ind))
    assert type(back) is Individual and back == ind and back.key == ind.key
    assert back.fitness.values == ind.fitness.values
    assert type(back.fitness) is type(ind.fitness)
    empty = pickle.loads(pickle.dumps(tb.individual()))
    assert not empty.fitness.valid


def test_individual_unpickles_in_a_spawn_process() -> None:
    tb = make_toolbox("mnist", objectives={"acc": 1, "params": -1}, seed=5)
    ind = tb.individual()
    ind.fitness.values = (0.9, 12345.0)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply_async(key_and_fitness, (ind,)).get(timeout=60)
    assert result == (ind.key, (0.9, 12345.0), "Individual", len(ind.layers))


def _run_search(seed: int) -> tuple[list[Individual], tools.ParetoFront, Any]:
    tb = make_toolbox("mnist", seed=seed, evaluate=None)
    tb.register("evaluate", cheap_evaluate(tb.space))
    random.seed(seed)
    pop = tb.population(12)
    front = tools.ParetoFront()
    pop, log = algorithms.eaMuPlusLambda(
        pop, tb, mu=12, lambda_=12, cxpb=0.5, mutpb=0.4, ngen=3, halloffame=front, verbose=False
    )
    return pop, front, tb


def test_ea_mu_plus_lambda_runs_and_the_front_is_non_dominated() -> None:
    pop, front, tb = _run_search(seed=0)
    assert len(pop) == 12 and len(front) >= 1
    for ind in pop:
        assert isinstance(ind, Individual) and ind.fitness.valid
        tb.space.check(ind)
    for a in front:
        assert a.fitness.values == tb.evaluate(a)
        assert not any(b.fitness.dominates(a.fitness) for b in front)
        # nothing in the final population dominates a front member either
        assert not any(b.fitness.dominates(a.fitness) for b in pop)


def test_same_seed_same_front_and_different_seed_different_front() -> None:
    _, front_a, _ = _run_search(seed=7)
    _, front_b, _ = _run_search(seed=7)
    _, front_c, _ = _run_search(seed=8)
    keys_a = [ind.key for ind in front_a]
    assert keys_a == [ind.key for ind in front_b]
    assert [ind.fitness.values for ind in front_a] == [ind.fitness.values for ind in front_b]
    assert keys_a != [ind.key for ind in front_c]


def test_decode_is_registered(lazy: Any) -> None:
    tb = make_toolbox("mnist", seed=0)
    ind = tb.individual()
    with lazy():
        model = tb.decode(ind, compile=False)
    assert model.output_shape == (None, 10)
    assert model.count_params() == tb.space.analyze(ind).params
    assert model.name == f"evokeras_{ind.key}"


# -- known problems -------------------------------------------------------------------------------
def test_individual_compares_equal_to_its_genome() -> None:
    ind = make_toolbox("mnist", seed=0).individual()
    assert ind == ind.as_genome()


@pytest.mark.parametrize("weight", [1e-5, 0.1234567])
def test_pickle_with_unusual_weights(weight: float) -> None:
    tb = make_toolbox("mnist", objectives={"x": weight}, seed=0)
    ind = tb.individual()
    ind.fitness.values = (1.0,)
    assert pickle.loads(pickle.dumps(ind)).fitness.values == (1.0,)
