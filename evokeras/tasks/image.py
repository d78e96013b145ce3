"""Image classification tasks on real MNIST and Fashion-MNIST (see ``evokeras.data``).

Splits (fixed, no shuffling): the first 55,000 official training images train, the
last 5,000 validate, the official 10,000 test images test. The search sees train and
validation only; the test split is read once, for the final report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from evokeras import data as datasets
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Classification
from evokeras.variation.network import repair

__all__ = ["ImageClassification", "half_chance_error", "reference_genomes"]


class ImageClassification(Classification):
    """Classify 28x28 grey images into 10 classes (softmax head, sparse cross-entropy).

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        space: a search space to use instead of the image default.
    """

    family = "image"
    input_shape = (28, 28, 1)
    n_outputs = 10
    fast_trainable = True

    _LOADERS: dict[str, Callable[..., datasets.Split]] = {
        "mnist": datasets.mnist_splits,
        "fashion_mnist": datasets.fashion_mnist_splits,
    }

    def __init__(self, name: str = "mnist", *, space: SearchSpace | None = None) -> None:
        if name not in self._LOADERS:
            raise ValueError(f"ImageClassification: unknown data set {name!r} (known: {sorted(self._LOADERS)})")
        self.name = name
        super().__init__(space=space)

    #: Final models train on images shifted by up to 2 pixels (a new draw each epoch).
    default_final_augment = 2

    def augment(self, x: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
        """``x`` with each image moved by up to ``strength`` pixels (:func:`evokeras.data.images.random_shift`)."""
        return datasets.random_shift(x, strength, rng)

    @property
    def default_max_val_error(self) -> float | None:
        """Half the error of guessing (0.45 with 10 classes): members that have not
        clearly learned stay off the front however fast they are."""
        return half_chance_error(self.n_outputs)

    def reference_genomes(self) -> list[Genome]:
        """:func:`reference_genomes` in this task's space."""
        return reference_genomes(self.space)

    def data(self, **limits: int | None) -> datasets.Split:
        """The fixed split; ``train_size``, ``val_limit``, ``test_limit`` take prefixes."""
        return self._LOADERS[self.name](**limits)


def reference_genomes(space: SearchSpace) -> list[Genome]:
    """Three hand-designed starting points, repaired into ``space``: the Keras
    example convnet (conv 32 -> pool -> conv 64 -> pool -> dropout), a three-stage
    network of batch-normalised blocks with a residual block and a dense layer, and
    a small fast one (two blocks of 16 and 32 filters)."""
    conv = LayerGene("conv", units=32, kernel_size=3)
    pool = LayerGene("pool", pool_type="max", pool_size=2)
    block = LayerGene("block", units=32, kernel_size=3)
    adam = TrainingGenes(optimizer="adam", learning_rate=1e-3, batch_size=128)
    genomes = [
        Genome((conv, pool, conv.replace(units=64), pool, LayerGene("dropout", rate=0.4)), reduce="flatten",
               training=adam),
        Genome((block, pool, block.replace(units=64), pool, block.replace(units=64, residual=True), pool,
                LayerGene("dropout", rate=0.25), LayerGene("dense", units=128), LayerGene("dropout", rate=0.25)),
               reduce="flatten", training=dataclasses.replace(adam, learning_rate=2e-3)),
        Genome((block.replace(units=16), pool, block, pool, pool), reduce="flatten",
               training=dataclasses.replace(adam, learning_rate=2e-3)),
    ]
    out: list[Genome] = []
    for genome in genomes:
        repaired = repair(genome, space)
        if repaired not in out:
            out.append(repaired)
    return out


def half_chance_error(n_classes: int) -> float:
    """Half the validation error of guessing among ``n_classes`` (0.45 with 10): the default
    ``max_val_error`` of image classification."""
    return 0.5 * (1.0 - 1.0 / n_classes)
