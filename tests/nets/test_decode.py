"""Tests for :mod:`evokeras.nets.decode`: layers, skips, naming, saving, parameter counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from evokeras import decode
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.nets.layers import SpatialResize
from evokeras.tasks import Task
from evokeras.variation import network as ops

ALL_KINDS = Genome(
    (
        LayerGene("conv", units=8, kernel_size=3, strides=1, activation="relu"),
        LayerGene("pool", pool_type="max", pool_size=2),
        LayerGene("batchnorm"),
        LayerGene("conv", units=16, kernel_size=5, strides=2, activation="gelu"),
        LayerGene("pool", pool_type="avg", pool_size=3),
        LayerGene("activation", activation="swish"),
        LayerGene("dense", units=32, activation="tanh"),
        LayerGene("dropout", rate=0.3),
        LayerGene("dense", units=16, activation="elu"),
    ),
    reduce="flatten",
)

# Skips across spatial sizes (28, 14, 7) and channel counts (8, 16), both merges, and
# flat skips (an "add" that projects 32 -> 16 units). Gene 3 adds gene 0 resized to 14x14
# and projected to 16 channels; gene 4 concatenates 16 + 8 + 16 channels at 7x7; gene 5
# adds gene 0 (resized only) and gene 2 (resized and projected to 8).
SKIPS = Genome(
    (
        LayerGene("conv", units=8, kernel_size=3),  # 0: 28x28x8
        LayerGene("pool", pool_size=2),  # 1: 14x14x8
        LayerGene("conv", units=16, kernel_size=3),  # 2: 14x14x16
        LayerGene("pool", pool_size=2, skips=(0,), merge="add"),  # 3: 7x7x16
        LayerGene("conv", units=8, kernel_size=1, skips=(1, 2), merge="concat"),  # 4: 7x7x8
        LayerGene("batchnorm", skips=(0, 2), merge="add"),  # 5: 7x7x8
        LayerGene("dense", units=32),  # 6: global average pooling first
        LayerGene("dense", units=16),  # 7
        LayerGene("activation", activation="tanh", skips=(6,), merge="add"),  # 8: 16 + 32 projected
        LayerGene("dense", units=16, skips=(6, 7), merge="concat"),  # 9: 16+32+16 -> 16
    ),
    reduce="global_avg",
)

# The same links in a sequence task: 1-D resize and Conv1D.
SEQUENCE_SKIPS = Genome(
    (
        LayerGene("conv", units=16, kernel_size=3),  # 0: 16 steps x 16
        LayerGene("pool", pool_size=2),  # 1: 8x16
        LayerGene("conv", units=32, kernel_size=5, strides=2),  # 2: 4x32
        LayerGene("batchnorm", skips=(0,), merge="add"),  # 3: 4x32 + 0 resized and projected
        LayerGene("activation", skips=(1, 2), merge="concat"),  # 4: 4x(32+16+32)
        LayerGene("dense", units=16),  # 5
    ),
    reduce="global_max",
)


def _batch(task: Task, n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *task.input_shape)).astype("float32")


def _run(model: Any, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def all_kinds_model(mnist_task: Task) -> Any:
    return decode(ALL_KINDS, mnist_task, compile=False)


@pytest.fixture(scope="module")
def skips_model(mnist_task: Task) -> Any:
    return decode(SKIPS, mnist_task, compile=False)


def test_genomes_are_in_space(image_space: Any, sequence_task: Task) -> None:
    image_space.check(ALL_KINDS)
    image_space.check(SKIPS)
    sequence_task.space.check(SEQUENCE_SKIPS)


def test_every_layer_kind_decodes(mnist_task: Task, all_kinds_model: Any) -> None:
    model = all_kinds_model
    expected = {
        "g0_conv": keras.layers.Conv2D,
        "g1_pool": keras.layers.MaxPooling2D,
        "g2_batchnorm": keras.layers.BatchNormalization,
        "g3_conv": keras.layers.Conv2D,
        "g4_pool": keras.layers.AveragePooling2D,
        "g5_activation": keras.layers.Activation,
        "g6_reduce": keras.layers.Flatten,
        "g6_dense": keras.layers.Dense,
        "g7_dropout": keras.layers.Dropout,
        "g8_dense": keras.layers.Dense,
        "head": keras.layers.Dense,
    }
    for name, cls in expected.items():
        assert isinstance(model.get_layer(name), cls), name
    assert model.name == f"evokeras_{ALL_KINDS.key}"
    assert model.output_shape == (None, 10)
    assert model.count_params() == mnist_task.space.analyze(ALL_KINDS).params
    conv = model.get_layer("g3_conv")
    assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (
        16,
        (5, 5),
        (2, 2),
        "same",
    )
    assert conv.activation.__name__ == "gelu"
    pool = model.get_layer("g4_pool")
    assert (pool.pool_size, pool.strides, pool.padding) == ((3, 3), (3, 3), "same")
    assert model.get_layer("g7_dropout").rate == pytest.approx(0.3)
    # shapes follow the analysis: 28 -> 14 -> 7 (stride 2) -> 3 (pool 3, same)
    a = mnist_task.space.analyze(ALL_KINDS)
    assert tuple(model.get_layer("g4_pool").output.shape) == (
        None,
        *a.shapes[4].spatial,
        a.shapes[4].channels,
    )
    y = _run(model, _batch(mnist_task))
    assert y.shape == (3, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)  # softmax head


def test_layers_are_named_by_gene_index_and_kind(all_kinds_model: Any, skips_model: Any) -> None:
    for genome, model in ((ALL_KINDS, all_kinds_model), (SKIPS, skips_model)):
        names = {layer.name for layer in model.layers}
        for i, layer in enumerate(genome.layers):
            assert f"g{i}_{layer.kind}" in names
            if layer.skips:
                assert f"g{i}_merge" in names
        assert "reduce" in names or genome.layers[-1].kind == "dense"


def test_skips_across_sizes_and_channels_decode_and_run(mnist_task: Task, skips_model: Any) -> None:
    model = skips_model
    assert model.output_shape == (None, 10)
    assert model.count_params() == mnist_task.space.analyze(SKIPS).params
    # add: 28x28x8 resized to 14x14 and projected to 16 channels
    assert isinstance(model.get_layer("g3_resize0"), SpatialResize)
    assert model.get_layer("g3_resize0").size == (14, 14)
    assert model.get_layer("g3_proj0").units == 16
    assert isinstance(model.get_layer("g3_merge"), keras.layers.Add)
    # concat: sources of sizes 14 and 14 resized to 7, channels stack
    assert isinstance(model.get_layer("g4_merge"), keras.layers.Concatenate)
    assert tuple(model.get_layer("g4_merge").output.shape) == (None, 7, 7, 16 + 8 + 16)
    assert {"g4_resize1", "g4_resize2"} <= {layer.name for layer in model.layers}
    assert "g4_proj1" not in {layer.name for layer in model.layers}  # concat never projects
    # add with two sources: both resized, only the one with other channels projected
    names = {layer.name for layer in model.layers}
    assert {"g5_resize0", "g5_resize2", "g5_proj2"} <= names and "g5_proj0" not in names
    assert model.get_layer("g5_proj2").units == 8
    # flat skips: add projects 32 -> 16; concat stacks 16 + 32 + 16
    assert model.get_layer("g8_proj6").units == 16
    assert tuple(model.get_layer("g9_merge").output.shape) == (None, 64)
    assert isinstance(model.get_layer("g6_reduce"), keras.layers.GlobalAveragePooling2D)
    y = _run(model, _batch(mnist_task))
    assert y.shape == (3, 10) and np.isfinite(y).all()


def test_sequence_skips_decode(sequence_task: Task, lazy: Any) -> None:
    # Shapes only (SpatialResize on sequences runs in test_layers.py): building real
    # weights costs an XLA compile per weight shape on the JAX CPU backend.
    with lazy():
        model = decode(SEQUENCE_SKIPS, sequence_task, compile=False)
    assert isinstance(model.get_layer("g0_conv"), keras.layers.Conv1D)
    assert isinstance(model.get_layer("g1_pool"), keras.layers.MaxPooling1D)
    assert model.get_layer("g3_resize0").size == (4,)
    assert model.get_layer("g3_proj0").units == 32
    assert tuple(model.get_layer("g4_merge").output.shape) == (None, 4, 32 + 16 + 32)
    names = {layer.name for layer in model.layers}
    assert "g4_resize1" in names and "g4_resize2" not in names  # gene 2 already has 4 steps
    assert isinstance(model.get_layer("g5_reduce"), keras.layers.GlobalMaxPooling1D)
    assert model.output_shape == (None, 3)
    assert model.count_params() == sequence_task.space.analyze(SEQUENCE_SKIPS).params


def test_vector_genome_decodes(vector_task: Task, lazy: Any) -> None:
    genome = Genome(
        (
            LayerGene("dense", units=8),
            LayerGene("batchnorm"),
            LayerGene("dense", units=4, skips=(0,), merge="concat"),
        )
    )
    with lazy():
        model = decode(genome, vector_task, compile=False)
    assert model.output_shape == (None, 2)
    assert "reduce" not in {layer.name for layer in model.layers}  # nothing to reduce
    assert (
        model.count_params()
        == vector_task.space.analyze(genome).params
        == 4 * 8 + 8 + 4 * 8 + 16 * 4 + 4 + 4 * 2 + 2
    )


@pytest.mark.parametrize(
    ("reduce", "cls"),
    [
        ("flatten", "Flatten"),
        ("global_avg", "GlobalAveragePooling2D"),
        ("global_max", "GlobalMaxPooling2D"),
    ],
)
def test_reduction_before_the_head(mnist_task: Task, lazy: Any, reduce: str, cls: str) -> None:
    genome = Genome((LayerGene("conv", units=8), LayerGene("pool")), reduce=reduce)
    with lazy():
        model = decode(genome, mnist_task, compile=False)
    assert type(model.get_layer("reduce")).__name__ == cls
    assert model.count_params() == mnist_task.space.analyze(genome).params


def test_empty_genome_decodes_to_the_head_alone(mnist_task: Task, lazy: Any) -> None:
    with lazy():
        model = decode(Genome(reduce="global_avg"), mnist_task, compile=False)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 1 * 10 + 10


def test_count_params_matches_the_analysis(mnist_task: Task, lazy: Any) -> None:
    rng = np.random.default_rng(2024)
    genomes = [ops.random_genome(rng, mnist_task.space) for _ in range(36)]
    assert sum(bool(layer.skips) for g in genomes for layer in g.layers) >= 5
    with lazy():
        for genome in genomes:
            model = decode(genome, mnist_task, compile=False)
            assert model.count_params() == mnist_task.space.analyze(genome).params, genome.to_json()
            assert model.output_shape == (None, 10)


def test_save_and_load_keras_file(tmp_path: Path, mnist_task: Task, skips_model: Any) -> None:
    x = _batch(mnist_task, seed=3)
    before = _run(skips_model, x)
    path = tmp_path / "model.keras"
    skips_model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("g3_resize0"), SpatialResize)
    assert [w.shape for w in loaded.weights] == [w.shape for w in skips_model.weights]
    np.testing.assert_allclose(_run(loaded, x), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("optimizer", "cls"),
    [("adam", "Adam"), ("adamw", "AdamW"), ("rmsprop", "RMSprop"), ("sgd", "SGD")],
)
def test_compile_uses_the_training_genes(mnist_task: Task, optimizer: str, cls: str) -> None:
    genome = Genome((LayerGene("dense", units=16),), training=TrainingGenes(optimizer, 0.0025, 64))
    model = decode(genome, mnist_task, name="custom")  # optimizers cannot be built lazily
    assert model.name == "custom"
    assert type(model.optimizer).__name__ == cls
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.0025)
    assert model.loss == "sparse_categorical_crossentropy"


def test_decode_validates_the_genome_first(mnist_task: Task) -> None:
    bad = Genome((LayerGene("dense", units=16), LayerGene("conv", units=8)))
    with pytest.raises(GenomeError, match=r"layers\[1\]"):
        decode(bad, mnist_task)


def test_decode_accepts_a_task_name(lazy: Any) -> None:
    with lazy():
        model = decode(Genome((LayerGene("dense", units=16),)), "mnist", compile=False)
    assert model.input_shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="unknown task 'imagenet'"):
        decode(Genome(), "imagenet")


class _ProgramTask(Task):
    """A task whose genomes are not evokeras networks (as ``specialize``'s edit programs)."""

    name = "programs"

    def __init__(self) -> None:
        super().__init__(space=None)

    def random_genome(self, rng: Any, space: Any) -> Any:
        return {}

    def mutate(self, genome: Any, rng: Any, space: Any, **kwargs: Any) -> Any:
        return genome

    def crossover(self, a: Any, b: Any, rng: Any, space: Any) -> tuple[Any, Any]:
        return a, b

    def genome_from_dict(self, data: Any) -> Any:
        return data

    def score(self, genome: Any, ctx: Any) -> dict[str, Any]:
        return {}

    def final_model(self, genome: Any, final: Any, path: Any) -> dict[str, Any]:
        return {"status": "ok"}


def test_decode_refuses_a_task_that_is_not_a_network_task() -> None:
    with pytest.raises(TypeError, match=r"task 'programs' \(_ProgramTask\) is not a NetworkTask"):
        decode(Genome((LayerGene("dense", units=16),)), _ProgramTask())
