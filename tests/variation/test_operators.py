"""Tests for :mod:`evokeras.variation.network`: validity, purity, determinism and repair.

The property tests draw a seed and a sequence of operators from hypothesis
(``derandomize=True``: the same examples on every run) and apply them to a random
genome; every genome on the way must be inside the task's space, round-trip through
JSON and decode to a model with the task's output.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evokeras import decode
from evokeras.genomes.analysis import TensorShape, reduced
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.tasks import Task
from evokeras.variation import network as ops

OPERATORS = ("mutate", "crossover", *ops.MUTATIONS)
PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
operator_sequences = st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=4)


def _apply(name: str, genome: Genome, rng: np.random.Generator, space: SearchSpace) -> list[Genome]:
    """Apply operator ``name``; return every genome it produced (the parent if none)."""
    if name == "mutate":
        return [ops.mutate(genome, rng, space)]
    if name == "crossover":
        return list(ops.crossover(genome, ops.random_genome(rng, space), rng, space))
    child = ops.MUTATIONS[name](genome, rng, space)
    return [genome if child is None else child]


def _run_sequence(seed: int, names: list[str], space: SearchSpace) -> list[list[Genome]]:
    """A random genome, then ``names`` applied in turn (following a random crossover child).

    Returns what each step produced: ``[[random genome], [child], [child_a, child_b], ...]``.
    """
    rng = np.random.default_rng(seed)
    steps = [[ops.random_genome(rng, space)]]
    for name in names:
        current = steps[-1][int(rng.integers(len(steps[-1])))]
        steps.append(_apply(name, current, rng, space))
    return steps


def _all(steps: list[list[Genome]]) -> list[Genome]:
    return [genome for step in steps for genome in step]


def _assert_in_space(genome: Genome, space: SearchSpace) -> None:
    space.check(genome)
    back = Genome.from_json(genome.to_json())
    assert back.to_json() == genome.to_json()
    assert back.key == genome.key
    assert back == genome
    assert ops.repair(genome, space) == genome  # repair leaves a genome of the space alone
    a = space.analyze(genome)
    input_shape, n_outputs = space.bound()
    assert len(a.shapes) == len(a.layer_params) == len(genome.layers)
    stem = TensorShape(tuple(input_shape[:-1]), input_shape[-1])
    features = reduced(a.shapes[-1] if a.shapes else stem, genome.reduce).channels
    assert a.head_params == features * n_outputs + n_outputs  # the task's output head
    assert a.params == sum(a.layer_params) + a.head_params <= space.max_params
    assert a.min_spatial is None or a.min_spatial >= space.min_spatial


# -- property: 1,000 operator sequences on MNIST -----------------------------------------------
@pytest.mark.slow
@settings(PROPERTY, max_examples=1000)
@given(seed=seeds, names=operator_sequences)
def test_operator_sequences_stay_in_space_and_decode(
    mnist_task: Task, lazy: Any, seed: int, names: list[str]
) -> None:
    """Every genome is checked; the genomes each sequence ends with are decoded.

    Decoding every intermediate genome as well (about 4 per sequence) took 87 s on the
    TensorFlow CPU backend; the last step's genomes carry every earlier step's changes.
    """
    space = mnist_task.space
    steps = _run_sequence(seed, names, space)
    for genome in _all(steps):
        _assert_in_space(genome, space)
    with lazy():  # shapes and parameter counts only: skip drawing initial weights
        for genome in dict.fromkeys(steps[-1]):
            model = decode(genome, mnist_task, compile=False)
            assert model.output_shape == (None, 10)
            assert model.count_params() == space.analyze(genome).params


# -- property: other spaces -------------------------------------------------------------------
@settings(PROPERTY, max_examples=200)
@given(seed=seeds, names=operator_sequences)
def test_vector_family_never_yields_conv_or_pool(
    vector_task: Task, lazy: Any, seed: int, names: list[str]
) -> None:
    space = vector_task.space
    assert space.bound() == ((4,), 2)
    steps = _run_sequence(seed, names, space)
    for genome in _all(steps):
        _assert_in_space(genome, space)
        assert not any(layer.kind in ("conv", "pool") for layer in genome.layers)
        assert len(genome.layers) <= 6
    with lazy():
        for genome in dict.fromkeys(steps[-1]):
            model = decode(genome, vector_task, compile=False)
            assert model.output_shape == (None, 2)
            assert model.count_params() == space.analyze(genome).params


@settings(PROPERTY, max_examples=200)
@given(seed=seeds, names=operator_sequences)
def test_sequence_family_stays_in_space_and_decodes(
    sequence_task: Task, lazy: Any, seed: int, names: list[str]
) -> None:
    space = sequence_task.space
    steps = _run_sequence(seed, names, space)
    for genome in _all(steps):
        _assert_in_space(genome, space)
    with lazy():  # Conv1D, 1-D pooling and 1-D SpatialResize for skips
        for genome in dict.fromkeys(steps[-1]):
            model = decode(genome, sequence_task, compile=False)
            assert model.output_shape == (None, 3)
            assert model.count_params() == space.analyze(genome).params


@settings(PROPERTY, max_examples=300)
@given(seed=seeds, names=operator_sequences)
def test_tight_parameter_cap_is_respected(
    image_space: SearchSpace, seed: int, names: list[str]
) -> None:
    space = image_space.replace(max_params=5_000, max_layers=5)
    for genome in _all(_run_sequence(seed, names, space)):
        a = space.analyze(genome)
        assert a.params <= 5_000
        assert len(genome.layers) <= 5
        kinds = [layer.kind for layer in genome.layers]
        first_dense = kinds.index("dense") if "dense" in kinds else len(kinds)
        assert not any(k in ("conv", "pool") for k in kinds[first_dense:])


@settings(PROPERTY, max_examples=300)
@given(seed=seeds, names=operator_sequences)
def test_tight_parameter_cap_sequences_stay_in_space(
    image_space: SearchSpace, seed: int, names: list[str]
) -> None:
    space = image_space.replace(max_params=5_000)
    for genome in _all(_run_sequence(seed, names, space)):
        space.check(genome)


# -- purity and determinism ----------------------------------------------------------------------
PARENT = Genome(
    (
        LayerGene("conv", units=16, kernel_size=3, strides=1, activation="relu"),
        LayerGene("batchnorm"),
        LayerGene("conv", units=32, kernel_size=3, strides=2, activation="elu"),
        LayerGene("pool", pool_type="max", pool_size=2, skips=(0,), merge="concat"),
        LayerGene("dense", units=64, activation="relu"),
        LayerGene("dropout", rate=0.2),
        LayerGene("dense", units=32, activation="tanh"),
    ),
    reduce="global_avg",
    training=TrainingGenes("adam", 0.001, 64),
)
OTHER = Genome(
    (
        LayerGene("conv", units=8, kernel_size=5, strides=2, activation="gelu"),
        LayerGene("pool", pool_type="avg", pool_size=3),
        LayerGene("dense", units=128, activation="swish"),
    ),
    reduce="flatten",
    training=TrainingGenes("sgd", 0.005, 256),
)

Call = Callable[[np.random.Generator, SearchSpace], Any]
CALLS: dict[str, Call] = {
    "mutate": lambda rng, s: ops.mutate(PARENT, rng, s),
    "crossover": lambda rng, s: ops.crossover(PARENT, OTHER, rng, s),
    "random_genome": lambda rng, s: ops.random_genome(rng, s),
    # change_cell needs a recurrent gene (image genomes have none): see test_recurrent_genes.py
    **{
        name: (lambda rng, s, f=f: f(PARENT, rng, s))
        for name, f in ops.MUTATIONS.items()
        if name != "change_cell"
    },
}


def test_fixed_parents_are_in_space(image_space: SearchSpace) -> None:
    image_space.check(PARENT)
    image_space.check(OTHER)


@pytest.mark.parametrize("name", list(CALLS))
def test_operators_leave_parents_unchanged(image_space: SearchSpace, name: str) -> None:
    saved = copy.deepcopy((PARENT, OTHER))
    for seed in range(10):
        out = CALLS[name](np.random.default_rng(seed), image_space)
        children = out if isinstance(out, tuple) else (out,)
        for child in children:
            assert child is not PARENT and child is not OTHER
            image_space.check(child)
    assert (PARENT, OTHER) == saved
    assert PARENT.key == saved[0].key and OTHER.key == saved[1].key


@pytest.mark.parametrize("name", list(CALLS))
def test_same_seed_same_children(image_space: SearchSpace, name: str) -> None:
    for seed in range(5):
        first = CALLS[name](np.random.default_rng(seed), image_space)
        again = CALLS[name](np.random.default_rng(seed), image_space)
        assert first == again


@pytest.mark.parametrize(
    "name", ["mutate", "crossover", "random_genome", "add_layer", "change_hyperparameter"]
)
def test_different_seeds_different_children(image_space: SearchSpace, name: str) -> None:
    outs = {CALLS[name](np.random.default_rng(seed), image_space) for seed in range(20)}
    assert len(outs) >= 5


def test_operators_do_not_touch_global_random_state(image_space: SearchSpace) -> None:
    import random

    random.seed(7)
    np.random.seed(7)
    before = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    rng = np.random.default_rng(0)
    g = ops.random_genome(rng, image_space)
    ops.crossover(ops.mutate(g, rng, image_space), PARENT, rng, image_space)
    assert (random.random(), np.random.random()) == before


def test_mutate_accepts_individual_like_subclasses(image_space: SearchSpace) -> None:
    class Sub(Genome):
        pass

    sub = Sub(layers=PARENT.layers, reduce=PARENT.reduce, training=PARENT.training)
    child = ops.mutate(sub, np.random.default_rng(0), image_space)
    assert type(child) is Genome
    a, b = ops.crossover(sub, OTHER, np.random.default_rng(0), image_space)
    assert type(a) is Genome and type(b) is Genome


# -- the specific mutations ---------------------------------------------------------------------
def _links(genome: Genome) -> int:
    return sum(len(layer.skips) for layer in genome.layers)


@pytest.mark.parametrize("seed", range(20))
def test_add_layer_adds_one_gene(image_space: SearchSpace, seed: int) -> None:
    child = ops.add_layer(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    assert len(child) == len(PARENT) + 1
    image_space.check(child)


@pytest.mark.parametrize("seed", range(20))
def test_remove_layer_removes_one_gene(image_space: SearchSpace, seed: int) -> None:
    child = ops.remove_layer(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    assert len(child) == len(PARENT) - 1
    image_space.check(child)


@pytest.mark.parametrize("seed", range(20))
def test_add_skip_adds_one_link(image_space: SearchSpace, seed: int) -> None:
    child = ops.add_skip(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    assert _links(child) == _links(PARENT) + 1
    assert [layer.kind for layer in child.layers] == [layer.kind for layer in PARENT.layers]
    image_space.check(child)


@pytest.mark.parametrize("seed", range(5))
def test_remove_skip_removes_one_link(image_space: SearchSpace, seed: int) -> None:
    child = ops.remove_skip(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    assert _links(child) == _links(PARENT) - 1
    assert child == PARENT.replace(
        layers=(*PARENT.layers[:3], PARENT.layers[3].replace(skips=()), *PARENT.layers[4:])
    )


@pytest.mark.parametrize("seed", range(20))
def test_change_training_changes_only_training(image_space: SearchSpace, seed: int) -> None:
    child = ops.change_training(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    assert child.layers == PARENT.layers and child.reduce == PARENT.reduce
    assert child.training != PARENT.training
    changed = [
        f
        for f in ("optimizer", "learning_rate", "batch_size")
        if getattr(child.training, f) != getattr(PARENT.training, f)
    ]
    assert len(changed) == 1
    image_space.check(child)


@pytest.mark.parametrize("seed", range(20))
def test_change_hyperparameter_changes_one_value(image_space: SearchSpace, seed: int) -> None:
    child = ops.change_hyperparameter(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None and child != PARENT
    assert child.training == PARENT.training
    assert [layer.kind for layer in child.layers] == [layer.kind for layer in PARENT.layers]
    diffs = sum(a != b for a, b in zip(child.layers, PARENT.layers, strict=True)) + (
        child.reduce != PARENT.reduce
    )
    assert diffs == 1


@pytest.mark.parametrize("seed", range(20))
def test_change_activation_changes_one_activation(image_space: SearchSpace, seed: int) -> None:
    child = ops.change_activation(PARENT, np.random.default_rng(seed), image_space)
    assert child is not None
    diffs = [(a, b) for a, b in zip(child.layers, PARENT.layers, strict=True) if a != b]
    assert len(diffs) == 1
    new, old = diffs[0]
    assert new.activation != old.activation and new.replace(activation=old.activation) == old
    assert new.activation in image_space.activations


def test_mutations_return_none_when_they_do_not_apply(image_space: SearchSpace) -> None:
    rng = np.random.default_rng(0)
    one = Genome((LayerGene("dense", units=16),))
    assert ops.remove_layer(one, rng, image_space) is None  # min_layers = 1
    assert ops.add_skip(one, rng, image_space) is None  # nothing two genes back
    assert ops.remove_skip(one, rng, image_space) is None
    assert ops.change_activation(Genome((LayerGene("pool"),)), rng, image_space) is None
    full = Genome((LayerGene("dense", units=16),) * image_space.max_layers)
    assert ops.add_layer(full, rng, image_space) is None
    no_skips = image_space.replace(max_skips=0)
    assert ops.add_skip(PARENT, rng, no_skips) is None
    assert ops.change_cell(PARENT, rng, image_space) is None  # no recurrent gene


def test_mutate_only_uses_the_weighted_mutations(image_space: SearchSpace) -> None:
    for seed in range(10):
        child = ops.mutate(
            PARENT, np.random.default_rng(seed), image_space, weights={"change_training": 1.0}
        )
        assert child.layers == PARENT.layers and child.training != PARENT.training


def test_mutate_unknown_weight_is_named(image_space: SearchSpace) -> None:
    with pytest.raises(ValueError, match="unknown mutation 'flip'"):
        ops.mutate(PARENT, np.random.default_rng(0), image_space, weights={"flip": 1.0})


def test_mutate_returns_the_parent_when_nothing_applies(image_space: SearchSpace) -> None:
    one = Genome((LayerGene("dense", units=16),))
    child = ops.mutate(one, np.random.default_rng(0), image_space, weights={"remove_skip": 1.0})
    assert child == one


# -- crossover ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(30))
def test_crossover_children_are_valid_mixes(image_space: SearchSpace, seed: int) -> None:
    a, b = ops.crossover(PARENT, OTHER, np.random.default_rng(seed), image_space)
    for child in (a, b):
        image_space.check(child)
        for f in ("optimizer", "learning_rate", "batch_size"):
            assert getattr(child.training, f) in (
                getattr(PARENT.training, f),
                getattr(OTHER.training, f),
            )
        assert child.reduce in (PARENT.reduce, OTHER.reduce)
        parent_kinds = {layer.kind for layer in PARENT.layers + OTHER.layers}
        assert {layer.kind for layer in child.layers} <= parent_kinds
    # training genes are swapped uniformly: the two children hold both parents' values
    for f in ("optimizer", "learning_rate", "batch_size"):
        assert {getattr(a.training, f), getattr(b.training, f)} == {
            getattr(PARENT.training, f),
            getattr(OTHER.training, f),
        }


def test_crossover_of_a_genome_with_itself_is_valid(image_space: SearchSpace) -> None:
    for seed in range(10):
        for child in ops.crossover(PARENT, PARENT, np.random.default_rng(seed), image_space):
            image_space.check(child)


def test_crossover_produces_new_layer_sequences(image_space: SearchSpace) -> None:
    children = set()
    for seed in range(30):
        children.update(ops.crossover(PARENT, OTHER, np.random.default_rng(seed), image_space))
    layer_sets = {child.layers for child in children}
    assert layer_sets - {PARENT.layers, OTHER.layers}


# -- repair ------------------------------------------------------------------------------------------
def test_repair_drops_conv_and_pool_after_dense(image_space: SearchSpace) -> None:
    bad = Genome(
        (
            LayerGene("conv", units=8),
            LayerGene("dense", units=16),
            LayerGene("conv", units=8),
            LayerGene("pool"),
            LayerGene("dense", units=32),
        ),
        reduce="global_avg",
    )
    fixed = ops.repair(bad, image_space)
    assert [layer.kind for layer in fixed.layers] == ["conv", "dense", "dense"]
    image_space.check(fixed)


def test_repair_drops_spatial_genes_in_a_vector_space(vector_space: SearchSpace) -> None:
    bad = Genome((LayerGene("conv", units=8), LayerGene("pool"), LayerGene("dense", units=8)))
    fixed = ops.repair(bad, vector_space)
    assert [layer.kind for layer in fixed.layers] == ["dense"]
    vector_space.check(fixed)


def test_repair_moves_values_to_the_nearest_choice(image_space: SearchSpace) -> None:
    bad = Genome(
        (
            LayerGene("conv", units=100, kernel_size=7, strides=3, activation="sigmoid"),
            LayerGene("pool", pool_size=5),
            LayerGene("dropout", rate=0.9),
            LayerGene("dense", units=100),
        ),
        reduce="global_avg",
        training=TrainingGenes("adam", 0.5, 100),
    )
    fixed = ops.repair(bad, image_space)
    conv, pool, dropout, dense = fixed.layers
    assert (conv.units, conv.kernel_size, conv.strides, conv.activation) == (64, 5, 2, "relu")
    assert pool.pool_size == 3 and dropout.rate == 0.5 and dense.units == 128
    assert fixed.training == TrainingGenes("adam", 0.01, 128)
    image_space.check(fixed)


def test_repair_switches_flatten_to_global_pooling_when_needed(image_space: SearchSpace) -> None:
    wide = Genome((LayerGene("conv", units=64), LayerGene("dense", units=256)), reduce="flatten")
    assert image_space.analyze(wide).params > image_space.max_params
    fixed = ops.repair(wide, image_space)
    assert fixed.reduce == "global_avg"
    assert fixed.layers == wide.layers  # the reduction alone was enough
    image_space.check(fixed)
    narrow = Genome((LayerGene("conv", units=8), LayerGene("pool"), LayerGene("dense", units=16)))
    assert ops.repair(narrow, image_space).reduce == "flatten"  # kept when it fits


def test_repair_tight_cap_shrinks_then_removes(image_space: SearchSpace) -> None:
    space = image_space.replace(max_params=5_000)
    for seed in range(50):
        genome = ops.random_genome(np.random.default_rng(seed), image_space)
        fixed = ops.repair(genome, space)
        assert space.analyze(fixed).params <= 5_000
        assert len(fixed.layers) >= space.min_layers


def test_repair_trims_to_max_layers_and_pads_to_min_layers(image_space: SearchSpace) -> None:
    long = Genome(tuple(LayerGene("dense", units=16 * (1 + i % 2)) for i in range(10)))
    trimmed = ops.repair(long, image_space.replace(max_layers=4))
    assert trimmed.layers == long.layers[:4]
    padded = ops.repair(Genome(()), image_space.replace(min_layers=2))
    assert [layer.kind for layer in padded.layers] == ["dense", "dense"]
    assert all(layer.units == 16 for layer in padded.layers)


def test_repair_respects_min_spatial(image_space: SearchSpace) -> None:
    space = image_space.replace(min_spatial=4)
    pools = Genome(tuple(LayerGene("pool", pool_size=2) for _ in range(5)))  # 28 14 7 4 2 1
    fixed = ops.repair(pools, space)
    assert len(fixed.layers) == 3
    assert space.analyze(fixed).min_spatial == 4
    space.check(fixed)


def test_repair_drops_out_of_range_skips(image_space: SearchSpace) -> None:
    bad = Genome(
        (
            LayerGene("conv", units=8),
            LayerGene("conv", units=8),
            LayerGene("dense", units=16),
            LayerGene("dense", units=16, skips=(0, 2, 3, 9)),
        ),
        reduce="global_avg",
    )
    fixed = ops.repair(bad, image_space)
    assert fixed.layers[3].skips == ()
    image_space.check(fixed)
    too_many = Genome(
        tuple(LayerGene("dense", units=16) for _ in range(5))
        + (LayerGene("dense", units=16, skips=(0, 1, 2, 3)),)
    )
    assert ops.repair(too_many, image_space).layers[5].skips == (2, 3)  # max_skips = 2, latest kept


def test_repair_raises_when_the_head_alone_does_not_fit(image_space: SearchSpace) -> None:
    with pytest.raises(GenomeError, match="cannot fit under max_params=10"):
        ops.repair(PARENT, image_space.replace(max_params=10))


REMOVAL_CASES = {
    # _fix_spatial removes gene 4 (28 -> 10 -> 4 -> 2 -> 1 < 2); gene 5's link to 3 becomes "previous gene"
    "min_spatial": (
        Genome(
            (LayerGene("conv", units=8),)
            + (LayerGene("pool", pool_size=3),) * 4
            + (LayerGene("batchnorm", skips=(3,)),)
        ),
        {"min_spatial": 2},
    ),
    # _fix_params removes the widest 16-unit dense gene 2; gene 3's link to 1 becomes "previous gene"
    "max_params": (
        Genome(
            (LayerGene("conv", units=8),)
            + (LayerGene("dense", units=16),) * 2
            + (LayerGene("dense", units=16, skips=(1,)),),
            reduce="global_avg",
        ),
        {"max_params": 900},
    ),
    # _fix_params removes the first dense gene: gene 3 falls into the spatial part, gene 5 links to it
    "region": (
        Genome(
            (
                LayerGene("conv", units=8, strides=2),
                LayerGene("pool", pool_size=3),
                LayerGene("dense", units=16),
                LayerGene("batchnorm"),
                LayerGene("dense", units=16),
                LayerGene("batchnorm", skips=(3,)),
            )
        ),
        {"max_params": 3_700, "reductions": ("flatten",)},
    ),
}


@pytest.mark.parametrize(
    ("genome", "changes"), list(REMOVAL_CASES.values()), ids=list(REMOVAL_CASES)
)
def test_repair_drops_skips_broken_by_removals(
    image_space: SearchSpace, genome: Genome, changes: dict[str, Any]
) -> None:
    genome.validate()
    space = image_space.replace(**changes)
    space.check(ops.repair(genome, space))
