"""Object recognition in cluttered scenes: find and classify the digit (or garment).

Each scene (:func:`evokeras.data.object_scenes`) is a ``canvas`` x ``canvas`` grey
image holding one whole 28x28 MNIST (or Fashion-MNIST) image at a random position among
``clutter`` 8x8 fragments of other images of the same split; the label is the class of
the whole image. Splits are those of the source (55,000 / 5,000 / 10,000 scenes), the
scene layout fixed by a seed.
"""

from __future__ import annotations

from evokeras import data as datasets
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Classification
from evokeras.tasks.image import ImageClassification

__all__ = ["ObjectRecognition"]


class ObjectRecognition(ImageClassification):
    """Classify the object of a cluttered scene into 10 classes (softmax head named
    ``"head"``, sparse cross-entropy, accuracy; the image task's pieces).

    Args:
        canvas: side of the scene in pixels (>= 28).
        clutter: clutter fragments per scene.
        source: ``"mnist"`` or ``"fashion_mnist"``.
        space: a search space to use instead of the image default.

    Example:
        >>> from evokeras.tasks import make_task
        >>> make_task("objects").input_shape
        (48, 48, 1)
    """

    def __init__(
        self,
        *,
        canvas: int = 48,
        clutter: int = 8,
        source: str = "mnist",
        space: SearchSpace | None = None,
    ) -> None:
        if source not in self._LOADERS:
            raise ValueError(
                f"ObjectRecognition: unknown source {source!r} (known: {sorted(self._LOADERS)})"
            )
        for key, value, low in (("canvas", canvas, 28), ("clutter", clutter, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ObjectRecognition: {key} must be an int >= {low}, got {value!r}")
        self.name = "objects"
        self.source, self.canvas, self.clutter = source, canvas, clutter
        self.input_shape = (canvas, canvas, 1)
        Classification.__init__(self, space=space)  # not the image task's: its data set is the source

    def data(self, **limits: int | None) -> datasets.Split:
        """The fixed split of scenes; ``train_size``, ``val_limit``, ``test_limit`` take prefixes."""
        return datasets.object_scenes(
            self.source, canvas=self.canvas, clutter=self.clutter, **limits
        )
