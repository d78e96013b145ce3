"""Tests for :mod:`evokeras.genomes.network`: serialisation, keys and structural validation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest

from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes

SMALL = Genome(
    layers=(
        LayerGene("conv", units=8, kernel_size=3),
        LayerGene("pool"),
        LayerGene("dense", units=32),
    )
)
# sha256 of SMALL.to_json(), first 16 hex digits. If this changes, every stored run's
# genome keys change: bump it only on purpose.
SMALL_KEY = "d41046c7547a7762"
SMALL_JSON = (
    '{"layers":[{"activation":"relu","kernel_size":3,"kind":"conv","strides":1,"units":8},'
    '{"kind":"pool","pool_size":2,"pool_type":"max"},{"activation":"relu","kind":"dense","units":32}],'
    '"reduce":"flatten","training":{"batch_size":128,"learning_rate":0.001,"optimizer":"adam"}}'
)

RICH = Genome(
    layers=(
        LayerGene("conv", units=16, kernel_size=5, strides=2, activation="gelu"),
        LayerGene("batchnorm"),
        LayerGene("pool", pool_type="avg", pool_size=3, skips=(0,), merge="concat"),
        LayerGene("activation", activation="tanh", skips=(0, 1)),
        LayerGene("dense", units=64, activation="swish"),
        LayerGene("dropout", rate=0.3),
        LayerGene("dense", units=16, skips=(4,), merge="add"),
    ),
    reduce="global_max",
    training=TrainingGenes("sgd", 0.0125, 32),
)


# -- serialisation and keys -------------------------------------------------------------
@pytest.mark.parametrize("genome", [Genome(), SMALL, RICH], ids=["empty", "small", "rich"])
def test_dict_and_json_round_trip(genome: Genome) -> None:
    assert Genome.from_dict(genome.to_dict()) == genome
    back = Genome.from_json(genome.to_json())
    assert back == genome
    assert back.key == genome.key
    # The dictionary is JSON-ready as it is.
    assert Genome.from_dict(json.loads(json.dumps(genome.to_dict()))) == genome


def test_key_is_stable_across_versions() -> None:
    assert SMALL.to_json() == SMALL_JSON
    assert SMALL.key == SMALL_KEY
    assert len(RICH.key) == 16 and int(RICH.key, 16) >= 0


def test_equal_genomes_have_equal_keys() -> None:
    same = Genome(
        layers=[
            LayerGene("conv", units=8),
            LayerGene("pool", pool_type="max"),
            LayerGene("dense", units=32),
        ]
    )
    assert same == SMALL and same is not SMALL
    assert same.key == SMALL.key
    assert hash(same) == hash(SMALL)
    assert len({same, SMALL}) == 1


@pytest.mark.parametrize(
    "other",
    [
        SMALL.replace(reduce="global_avg"),
        SMALL.replace(training=TrainingGenes(learning_rate=0.002)),
        SMALL.replace(training=TrainingGenes(batch_size=64)),
        SMALL.replace(training=TrainingGenes(optimizer="adamw")),
        SMALL.replace(layers=SMALL.layers[:2]),
        SMALL.replace(layers=(SMALL.layers[0].replace(units=16), *SMALL.layers[1:])),
        SMALL.replace(layers=(*SMALL.layers[:2], SMALL.layers[2].replace(activation="elu"))),
        SMALL.replace(layers=(*SMALL.layers[:2], LayerGene("batchnorm"), SMALL.layers[2])),
        SMALL.replace(layers=(*SMALL.layers[:2], SMALL.layers[2].replace(skips=(0,)))),
        SMALL.replace(
            layers=(*SMALL.layers[:2], SMALL.layers[2].replace(skips=(0,), merge="concat"))
        ),
    ],
)
def test_different_genomes_have_different_keys(other: Genome) -> None:
    assert other != SMALL
    assert other.key != SMALL.key


def test_to_dict_omits_unused_fields_and_empty_skips() -> None:
    d = SMALL.to_dict()
    assert d["layers"][1] == {"kind": "pool", "pool_type": "max", "pool_size": 2}
    assert "skips" not in d["layers"][2] and "merge" not in d["layers"][2]
    assert RICH.to_dict()["layers"][2]["skips"] == [0]
    assert RICH.to_dict()["layers"][2]["merge"] == "concat"


def test_layer_gene_defaults() -> None:
    assert LayerGene("dense") == LayerGene("dense", units=64, activation="relu")
    assert LayerGene("conv") == LayerGene(
        "conv", units=16, kernel_size=3, strides=1, activation="relu"
    )
    assert LayerGene("pool") == LayerGene("pool", pool_type="max", pool_size=2)
    assert LayerGene("dropout").rate == 0.25
    assert LayerGene("batchnorm").units is None


def test_genomes_are_frozen_and_replace_returns_copies() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.reduce = "global_avg"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMALL.layers[0].units = 4  # type: ignore[misc]
    other = SMALL.replace(reduce="global_avg")
    assert SMALL.reduce == "flatten" and other.reduce == "global_avg"
    assert SMALL.as_genome() is SMALL
    assert len(RICH) == 7
    assert RICH.regions() == ["spatial"] * 4 + ["flat"] * 3


def test_validate_accepts_valid_genomes() -> None:
    assert SMALL.validate() is SMALL
    assert RICH.validate() is RICH
    assert Genome().validate() == Genome()


# -- validation errors name the field ------------------------------------------------------
def _genome(*layers: LayerGene, **kw: Any) -> Genome:
    return Genome(layers=layers, **kw)


INVALID = {
    "unknown kind": (_genome(LayerGene("lstm")), "layers[0].kind"),
    "zero units": (_genome(LayerGene("dense", units=0)), "layers[0].units"),
    "float units": (_genome(LayerGene("dense", units=1.5)), "layers[0].units"),  # type: ignore[arg-type]
    "bool units": (_genome(LayerGene("dense", units=True)), "layers[0].units"),
    "zero kernel": (_genome(LayerGene("conv", kernel_size=0)), "layers[0].kernel_size"),
    "zero strides": (_genome(LayerGene("conv", strides=0)), "layers[0].strides"),
    "zero pool size": (_genome(LayerGene("pool", pool_size=0)), "layers[0].pool_size"),
    "bad pool type": (_genome(LayerGene("pool", pool_type="min")), "layers[0].pool_type"),
    "bad activation": (_genome(LayerGene("dense", activation="softmax")), "layers[0].activation"),
    "rate of one": (_genome(LayerGene("dropout", rate=1.0)), "layers[0].rate"),
    "negative rate": (_genome(LayerGene("dropout", rate=-0.1)), "layers[0].rate"),
    "unused field": (_genome(LayerGene("pool", units=3)), "layers[0].units"),
    "bad merge": (
        _genome(
            LayerGene("dense"), LayerGene("dense"), LayerGene("dense", skips=(0,), merge="mul")
        ),
        "layers[2].merge",
    ),
    "skip to previous gene": (
        _genome(LayerGene("dense"), LayerGene("dense"), LayerGene("dense", skips=(1,))),
        "layers[2].skips",
    ),
    "skip to itself": (
        _genome(LayerGene("dense"), LayerGene("dense"), LayerGene("dense", skips=(2,))),
        "layers[2].skips",
    ),
    "skip forward": (
        _genome(
            LayerGene("dense"),
            LayerGene("dense", skips=(3,)),
            LayerGene("dense"),
            LayerGene("dense"),
        ),
        "layers[1].skips",
    ),
    "negative skip": (
        _genome(LayerGene("dense"), LayerGene("dense"), LayerGene("dense", skips=(-1,))),
        "layers[2].skips",
    ),
    "unsorted skips": (
        _genome(*[LayerGene("dense")] * 3, LayerGene("dense", skips=(1, 0))),
        "layers[3].skips",
    ),
    "skip across the flat border": (
        _genome(
            LayerGene("conv"), LayerGene("pool"), LayerGene("dense"), LayerGene("dense", skips=(0,))
        ),
        "layers[3].skips",
    ),
    "conv after dense": (_genome(LayerGene("dense"), LayerGene("conv")), "layers[1]"),
    "pool after dense": (
        _genome(LayerGene("conv"), LayerGene("dense"), LayerGene("pool")),
        "layers[2]",
    ),
    "bad reduce": (_genome(LayerGene("dense"), reduce="max"), "genome.reduce"),
    "bad optimizer": (_genome(training=TrainingGenes(optimizer="adagrad")), "training.optimizer"),
    "zero learning rate": (
        _genome(training=TrainingGenes(learning_rate=0.0)),
        "training.learning_rate",
    ),
    "huge learning rate": (
        _genome(training=TrainingGenes(learning_rate=10.0)),
        "training.learning_rate",
    ),
    "string learning rate": (
        _genome(training=TrainingGenes(learning_rate="0.1")),  # type: ignore[arg-type]
        "training.learning_rate",
    ),
    "zero batch size": (_genome(training=TrainingGenes(batch_size=0)), "training.batch_size"),
    "float batch size": (
        _genome(training=TrainingGenes(batch_size=32.0)),  # type: ignore[arg-type]
        "training.batch_size",
    ),
}


@pytest.mark.parametrize(("genome", "field"), list(INVALID.values()), ids=list(INVALID))
def test_validate_raises_naming_the_field(genome: Genome, field: str) -> None:
    with pytest.raises(GenomeError) as info:
        genome.validate()
    assert str(info.value).startswith(field), str(info.value)
    # The same error is raised when the genome comes from its dictionary form.
    with pytest.raises(
        GenomeError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        Genome.from_dict(genome.to_dict())


def test_conv_after_dense_message_names_the_kind() -> None:
    with pytest.raises(
        GenomeError, match=r"layers\[1\]: a 'conv' layer cannot follow a dense layer"
    ):
        _genome(LayerGene("dense"), LayerGene("conv")).validate()


def test_genome_error_is_a_value_error() -> None:
    assert issubclass(GenomeError, ValueError)


FROM_DICT_ERRORS = {
    "unknown genome key": ({**SMALL.to_dict(), "fitness": 1.0}, "genome: unknown key 'fitness'"),
    "unknown layer key": (
        {"layers": [{"kind": "dense", "neurons": 3}]},
        r"layers\[0\]: unknown key 'neurons'",
    ),
    "missing kind": ({"layers": [{"units": 3}]}, r"layers\[0\]: missing key 'kind'"),
    "layer not a mapping": ({"layers": ["dense"]}, r"layers\[0\]: expected a mapping"),
    "layers not a list": ({"layers": "dense"}, r"genome\.layers: expected a list"),
    "genome not a mapping": ([1, 2], "genome: expected a mapping"),
    "unknown training key": ({"training": {"momentum": 0.9}}, "training: unknown key 'momentum'"),
    "training not a mapping": ({"training": "adam"}, "training: expected a mapping"),
    "bad training value": ({"training": {"batch_size": -4}}, r"training\.batch_size"),
    "unknown kind": ({"layers": [{"kind": "gru"}]}, r"layers\[0\]\.kind: unknown layer kind 'gru'"),
}


@pytest.mark.parametrize(
    ("data", "match"), list(FROM_DICT_ERRORS.values()), ids=list(FROM_DICT_ERRORS)
)
def test_from_dict_rejects_malformed_input(data: Any, match: str) -> None:
    with pytest.raises(GenomeError, match=match):
        Genome.from_dict(data)


def test_from_dict_fills_defaults() -> None:
    g = Genome.from_dict({"layers": [{"kind": "dense", "units": 16}]})
    assert g == Genome((LayerGene("dense", units=16),))
    assert g.reduce == "flatten" and g.training == TrainingGenes()


def test_genome_module_never_imports_keras() -> None:
    code = ("import evokeras, evokeras.genomes.network, evokeras.variation.network, sys; "
            "assert 'keras' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_stale_merge_round_trips_to_an_equal_genome() -> None:
    # The operators produce such genes: remove_skip, repair's skip fixing and crossover
    # drop the last skip of a gene and leave its merge="concat".
    stale = Genome((LayerGene("dense", units=16), LayerGene("dense", units=16, merge="concat")))
    back = Genome.from_json(stale.to_json())
    assert back.key == stale.key
    assert back == stale
    assert hash(back) == hash(stale)
