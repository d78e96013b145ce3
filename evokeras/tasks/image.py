"""Image classification tasks on real MNIST and Fashion-MNIST (see ``evokeras.data``).

Splits (fixed, no shuffling): the first 55,000 official training images train, the
last 5,000 validate, the official 10,000 test images test. The search sees train and
validation only; the test split is read once, for the final report.
"""

from __future__ import annotations

from collections.abc import Callable

from evokeras import data as datasets
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Classification

__all__ = ["ImageClassification"]


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

    def data(self, **limits: int | None) -> datasets.Split:
        """The fixed split; ``train_size``, ``val_limit``, ``test_limit`` take prefixes."""
        return self._LOADERS[self.name](**limits)
