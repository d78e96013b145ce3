"""Tests for :mod:`evokeras.genomes.space`: options, family defaults and ``check``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import FAMILIES, SearchSpace, SpaceError, default_space
from evokeras.variation import network as ops


# -- options ----------------------------------------------------------------------------
def test_replace_returns_a_copy() -> None:
    space = default_space("image")
    small = space.replace(max_layers=6, max_params=50_000)
    assert (small.max_layers, small.max_params) == (6, 50_000)
    assert (space.max_layers, space.max_params) == (12, 500_000)


def test_replace_unknown_option_names_it() -> None:
    with pytest.raises(SpaceError, match="unknown option 'max_layerz'"):
        default_space("image").replace(max_layerz=3)


def test_from_dict_unknown_option_names_it() -> None:
    with pytest.raises(SpaceError, match="'hidden_units'"):
        SearchSpace.from_dict({"hidden_units": [8]})


BAD_OPTIONS: dict[str, tuple[str, Any]] = {
    "units list": ("units", [16, 32]),
    "units empty": ("units", ()),
    "units zero": ("units", (0, 16)),
    "units float": ("units", (16.0,)),
    "units bool": ("units", (True,)),
    "filters str": ("filters", "8"),
    "kernel sizes negative": ("kernel_sizes", (-3,)),
    "strides zero": ("strides", (0,)),
    "pool sizes float": ("pool_sizes", (2.5,)),
    "batch sizes": ("batch_sizes", (0,)),
    "activations unknown": ("activations", ("relu", "mish")),
    "activations empty": ("activations", ()),
    "optimizers unknown": ("optimizers", ("lbfgs",)),
    "reductions unknown": ("reductions", ("max",)),
    "merges unknown": ("merges", ("mul",)),
    "dropout reversed": ("dropout", (0.5, 0.1)),
    "dropout one": ("dropout", (0.0, 1.0)),
    "dropout scalar": ("dropout", 0.5),
    "learning rate zero": ("learning_rate", (0.0, 0.1)),
    "learning rate list": ("learning_rate", [1e-4, 1e-2]),
    "max layers negative": ("max_layers", -1),
    "max layers str": ("max_layers", "12"),
    "max params float": ("max_params", 1e5),
    "max params bool": ("max_params", True),
    "min spatial negative": ("min_spatial", -1),
    "max skips float": ("max_skips", 1.5),
    "input shape list": ("input_shape", [28, 28, 1]),
    "input shape zero": ("input_shape", (28, 0, 1)),
    "input shape empty": ("input_shape", ()),
    "n outputs zero": ("n_outputs", 0),
    "n outputs str": ("n_outputs", "10"),
    "init layers reversed": ("init_layers", (4, 2)),
    "init layers scalar": ("init_layers", 3),
    "layer kinds unknown": ("layer_kinds", {"lstm": 1.0}),
    "layer kinds negative": ("layer_kinds", {"dense": -1.0}),
    "layer kinds all zero": ("layer_kinds", {"dense": 0.0, "conv": 0}),
}


@pytest.mark.parametrize(("option", "value"), list(BAD_OPTIONS.values()), ids=list(BAD_OPTIONS))
def test_bad_option_value_names_the_option(option: str, value: Any) -> None:
    with pytest.raises(SpaceError, match=f"option '{option}"):
        default_space("image").replace(**{option: value})


def test_min_layers_above_max_layers_is_rejected() -> None:
    with pytest.raises(SpaceError, match="'min_layers'"):
        SearchSpace(min_layers=5, max_layers=3)


def test_space_error_is_a_value_error() -> None:
    assert issubclass(SpaceError, ValueError)


@pytest.mark.parametrize("family", FAMILIES)
def test_to_dict_from_dict_round_trip_through_json(family: str) -> None:
    space = default_space(family).replace(input_shape=(8, 8, 2), n_outputs=3)
    data = json.loads(json.dumps(space.to_dict()))
    assert SearchSpace.from_dict(data) == space


def test_from_dict_overlays_a_base() -> None:
    base = default_space("vector")
    space = SearchSpace.from_dict({"units": [8, 16], "max_layers": 4}, base=base)
    assert space.units == (8, 16) and space.max_layers == 4
    assert space.reductions == base.reductions


# -- family defaults ------------------------------------------------------------------------
def test_default_space_image() -> None:
    space = default_space("image")
    assert space.layer_kinds["block"] > space.layer_kinds["conv"] and set(space.optimizers) == {"adam", "adamw"}
    assert space.allows_spatial
    assert set(space.reductions) == {"flatten", "global_avg"}
    assert space.input_shape is None and space.n_outputs is None


def test_default_space_sequence() -> None:
    space = default_space("sequence")
    assert space.allows_spatial
    assert 7 in space.kernel_sizes and space.max_params == 1_000_000


def test_default_space_vector() -> None:
    space = default_space("vector")
    assert not space.allows_spatial
    assert space.layer_kinds.get("conv", 0) == 0 and space.layer_kinds.get("pool", 0) == 0
    assert space.reductions == ("flatten",)
    assert space.max_layers == 6 and space.max_params == 20_000


def test_default_space_unknown_family_names_it() -> None:
    with pytest.raises(SpaceError, match="'graph'"):
        default_space("graph")


def test_task_binds_its_space(image_space: SearchSpace) -> None:
    assert image_space.input_shape == (28, 28, 1)
    assert image_space.n_outputs == 10
    assert image_space.bound() == ((28, 28, 1), 10)


# -- an unbound space ---------------------------------------------------------------------
UNBOUND_CALLS = {
    "random_genome": lambda g, rng, s: ops.random_genome(rng, s),
    "mutate": lambda g, rng, s: ops.mutate(g, rng, s),
    "add_layer": lambda g, rng, s: ops.add_layer(g, rng, s),
    "crossover": lambda g, rng, s: ops.crossover(g, g, rng, s),
    "repair": lambda g, rng, s: ops.repair(g, s),
    "analyze": lambda g, rng, s: s.analyze(g),
    "check": lambda g, rng, s: s.check(g),
}


@pytest.mark.parametrize("call", list(UNBOUND_CALLS.values()), ids=list(UNBOUND_CALLS))
def test_unbound_space_raises_space_error(call: Any) -> None:
    g = Genome((LayerGene("conv", units=8), LayerGene("dense", units=16)))
    with pytest.raises(SpaceError, match="'input_shape' and 'n_outputs' are unset"):
        call(g, np.random.default_rng(0), SearchSpace())


# -- check ----------------------------------------------------------------------------------
GOOD = Genome(
    (
        LayerGene("conv", units=8, kernel_size=3, strides=1),
        LayerGene("pool", pool_size=2),
        LayerGene("batchnorm"),
        LayerGene("dense", units=32),
        LayerGene("dropout", rate=0.2),
    ),
    reduce="global_avg",
)


def _with_layer(i: int, **changes: Any) -> Genome:
    layers = list(GOOD.layers)
    layers[i] = layers[i].replace(**changes)
    return GOOD.replace(layers=tuple(layers))


def test_check_accepts_a_genome_of_the_space(image_space: SearchSpace) -> None:
    image_space.check(GOOD)


OUT_OF_SPACE: dict[str, tuple[Genome, str]] = {
    "dense units": (_with_layer(3, units=100), r"layers\[3\]\.units: 100"),
    "conv filters": (_with_layer(0, units=128), r"layers\[0\]\.units: 128"),
    "kernel size": (_with_layer(0, kernel_size=7), r"layers\[0\]\.kernel_size: 7"),
    "strides": (_with_layer(0, strides=3), r"layers\[0\]\.strides: 3"),
    "pool size": (_with_layer(1, pool_size=4), r"layers\[1\]\.pool_size: 4"),
    "activation": (_with_layer(3, activation="sigmoid"), r"layers\[3\]\.activation: 'sigmoid'"),
    "dropout rate": (_with_layer(4, rate=0.9), r"layers\[4\]\.rate: 0\.9"),
    "learning rate": (
        GOOD.replace(training=TrainingGenes(learning_rate=0.5)),
        r"training\.learning_rate",
    ),
    "batch size": (
        GOOD.replace(training=TrainingGenes(batch_size=100)),
        r"training\.batch_size: 100",
    ),
    "too many layers": (
        GOOD.replace(layers=GOOD.layers + (LayerGene("dense", units=16),) * 8),
        r"genome\.layers: 13",
    ),
    "no layers": (GOOD.replace(layers=()), r"genome\.layers: 0 layers"),
    "over the parameter cap": (
        GOOD.replace(
            reduce="flatten", layers=(LayerGene("conv", units=8), LayerGene("dense", units=256))
        ),
        "exceed max_params",
    ),
}


@pytest.mark.parametrize(("genome", "match"), list(OUT_OF_SPACE.values()), ids=list(OUT_OF_SPACE))
def test_check_rejects_genomes_outside_the_space(
    image_space: SearchSpace, genome: Genome, match: str
) -> None:
    genome.validate()  # structurally fine: only the space rejects it
    with pytest.raises(GenomeError, match=match):
        image_space.check(genome)


def test_check_rejects_values_outside_a_restricted_space(image_space: SearchSpace) -> None:
    space = image_space.replace(
        optimizers=("sgd",),
        reductions=("flatten",),
        merges=("concat",),
        max_skips=1,
        layer_kinds={"conv": 1.0, "pool": 1.0, "dense": 1.0, "dropout": 1.0},
        min_spatial=8,
    )
    with pytest.raises(GenomeError, match=r"training\.optimizer: 'adam'"):
        space.check(GOOD.replace(reduce="flatten"))
    with pytest.raises(GenomeError, match=r"genome\.reduce: 'global_avg'"):
        space.check(GOOD.replace(training=TrainingGenes(optimizer="sgd")))
    base = GOOD.replace(reduce="flatten", training=TrainingGenes(optimizer="sgd"))
    with pytest.raises(GenomeError, match=r"layers\[2\]\.kind: 'batchnorm' is not allowed"):
        space.check(base)
    two_skips = base.replace(
        layers=(
            LayerGene("conv", units=8),
            LayerGene("conv", units=8),
            LayerGene("conv", units=8),
            LayerGene("pool", skips=(0, 1), merge="concat"),
        )
    )
    with pytest.raises(GenomeError, match=r"layers\[3\]\.skips: 2 links"):
        space.check(two_skips)
    add_merge = two_skips.replace(
        layers=(*two_skips.layers[:3], LayerGene("pool", skips=(1,), merge="add"))
    )
    with pytest.raises(GenomeError, match=r"layers\[3\]\.merge: 'add'"):
        space.check(add_merge)
    small = base.replace(layers=(LayerGene("pool", pool_size=2), LayerGene("pool", pool_size=2)))
    with pytest.raises(GenomeError, match="spatial size 7 below the minimum 8"):
        space.check(small)
    space.check(small.replace(layers=small.layers[:1]))  # 14 >= 8


def test_check_rejects_conv_in_a_vector_space(vector_space: SearchSpace) -> None:
    with pytest.raises(GenomeError, match=r"layers\[0\]\.kind: 'conv'"):
        vector_space.check(Genome((LayerGene("conv", units=8),)))
    vector_space.check(Genome((LayerGene("dense", units=8),)))


def test_check_parameter_cap_is_inclusive(image_space: SearchSpace) -> None:
    genome = Genome((LayerGene("dense", units=16),))
    params = image_space.analyze(genome).params
    assert params == 28 * 28 * 16 + 16 + 16 * 10 + 10
    image_space.replace(max_params=params).check(genome)
    with pytest.raises(GenomeError, match=f"{params} parameters exceed max_params={params - 1}"):
        image_space.replace(max_params=params - 1).check(genome)


def test_check_runs_structural_validation_first(image_space: SearchSpace) -> None:
    bad = Genome((LayerGene("dense", units=16), LayerGene("conv", units=8)))
    with pytest.raises(GenomeError, match=r"layers\[1\]: a 'conv' layer cannot follow"):
        image_space.check(bad)
