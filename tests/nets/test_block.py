"""Block genes (convolution -> batch norm -> activation, optionally residual): the gene,
its analysis against Keras, its decoding, and the image priors that draw it."""

from __future__ import annotations

import numpy as np
import pytest

from evokeras import decode, make_task
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene
from evokeras.genomes.space import default_space
from evokeras.nets.decode import BN_MOMENTUM
from evokeras.variation import network as ops


def test_block_gene_defaults_round_trip_and_checks() -> None:
    gene = LayerGene("block")
    assert (gene.units, gene.kernel_size, gene.strides, gene.activation, gene.residual) == (32, 3, 1, "relu", False)
    assert gene.is_spatial and gene.is_conv
    assert LayerGene.from_dict(gene.to_dict()) == gene
    assert "residual" not in LayerGene("conv").to_dict()  # other kinds keep their keys
    with pytest.raises(GenomeError, match=r"layers\[0\]\.residual"):
        Genome.from_dict({"layers": [{"kind": "block", "residual": "yes"}]})
    with pytest.raises(GenomeError, match="residual: not used by a 'conv' layer"):
        LayerGene("conv", residual=True).check()


@pytest.mark.parametrize(
    "block",
    [LayerGene("block", units=16), LayerGene("block", units=8, residual=True),
     LayerGene("block", units=16, strides=2, residual=True), LayerGene("block", units=8, kernel_size=5, residual=True)],
)
def test_block_analysis_equals_keras(block: LayerGene) -> None:
    task = make_task("mnist")
    genome = Genome((LayerGene("block", units=8), block, LayerGene("pool")), reduce="flatten")
    model = decode(genome, task)
    a = task.space.analyze(genome)
    assert model.count_params() == a.params
    assert tuple(model.get_layer("g1_block_act").output.shape[1:]) == (*a.shapes[1].spatial, a.shapes[1].channels)
    assert model.get_layer("g1_block_bn").momentum == BN_MOMENTUM
    has_proj = block.residual and (block.strides != 1 or block.units != 8)
    assert any(layer.name == "g1_block_proj" for layer in model.layers) == bool(has_proj)
    assert any(layer.name == "g1_block_add" for layer in model.layers) == bool(block.residual)
    assert model.predict_on_batch(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_image_priors_downsample_random_networks() -> None:
    space = make_task("mnist").space.replace(max_params=200_000, max_layers=10, init_layers=(3, 7))
    kinds = []
    for seed in range(40):
        genome = ops.random_genome(np.random.default_rng(seed), space)
        space.check(genome)
        a = space.analyze(genome)
        spatial = [s.spatial for s, layer in zip(a.shapes, genome.layers, strict=True) if layer.is_spatial]
        assert not spatial or max(spatial[-1]) <= ops.IMAGE_FEATURE_SIZE or len(genome.layers) == space.max_layers
        kinds += [layer.kind for layer in genome.layers]
        assert genome.training.optimizer in ("adam", "adamw")
    assert kinds.count("block") > kinds.count("conv")


def test_reference_genomes_are_valid_and_distinct() -> None:
    task = make_task("mnist")
    refs = task.reference_genomes()
    assert len(refs) == 3 and len({g.key for g in refs}) == 3
    for genome in refs:
        task.space.check(genome)
    small = task.with_space(default_space("image").replace(max_params=20_000))
    for genome in small.reference_genomes():  # repaired into the space they start
        small.space.check(genome)
