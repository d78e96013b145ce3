"""Text classification: the genre of a window of Brown-corpus words.

The model reads a window of ``window`` token ids (the vocabulary and ids of
``brown_words``, so that a word-level language model's embedding fits) through a
task-owned embedding stem, then the genome's genes -- by default evolved recurrent
layers -- then the genome's reduction over time and a softmax head over the 15 genres.

Data (:func:`evokeras.data.brown_genre`): each document of the Brown corpus is cut
into non-overlapping windows, labelled with the document's genre; the split is by
document, as for ``brown_words`` (about 90/5/5%, every genre in each split), and each
split's windows are in a fixed shuffled order, so prefixes mix the genres.
"""

from __future__ import annotations

from typing import Any

from evokeras import data as datasets
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Classification

__all__ = ["TextClassification"]

#: Known words of the ``brown_words`` vocabulary, plus ``<unk>``.
_VOCAB_SIZE = 10_000
_N_GENRES = 15


class TextClassification(Classification):
    """Classify windows of Brown-corpus token ids into the corpus's 15 genres.

    Args:
        window: tokens per window (default 100).
        embedding: width of the embedding stem (default 64).
        space: a search space instead of the default (1-2 stacked recurrent genes with
            cells of up to 4 nodes, widths 16-64, reduced over time by a global average
            or maximum).

    Example:
        >>> from evokeras.tasks import make_task
        >>> task = make_task("brown_genre", window=50)
        >>> task.input_shape, task.stem_shape, task.n_outputs
        ((50,), (50, 64), 15)
    """

    name = "brown_genre"
    family = "sequence"
    n_outputs = _N_GENRES
    #: One per-sample loss and accuracy: :func:`evokeras.training.fast.fit_fast` trains it.
    fast_trainable = True

    def __init__(
        self, *, window: int = 100, embedding: int = 64, space: SearchSpace | None = None
    ) -> None:
        for key, value in (("window", window), ("embedding", embedding)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TextClassification: {key} must be an int >= 1, got {value!r}")
        self.window, self.embedding = window, embedding
        self.vocab = _VOCAB_SIZE + 1
        self.input_shape = (window,)
        self.stem_params = self.vocab * embedding
        if space is None:
            space = SearchSpace(
                layer_kinds={"recurrent": 1.0},
                min_layers=1,
                max_layers=2,
                init_layers=(1, 2),
                cell_units=(16, 32, 64),
                reductions=("global_avg", "global_max"),
                optimizers=("adam", "rmsprop"),
                learning_rate=(1e-3, 1e-2),
                batch_sizes=(32, 64),
                max_skips=0,
                max_params=1_500_000,
            )
        super().__init__(space=space)

    @property
    def stem_shape(self) -> tuple[int, ...]:
        return (self.window, self.embedding)

    # -- model pieces ----------------------------------------------------------------
    def stem(self, inputs: Any) -> Any:
        import keras

        return keras.layers.Embedding(self.vocab, self.embedding, name="stem_embedding")(inputs)

    # -- data ------------------------------------------------------------------------
    def data(self, **limits: int | None) -> datasets.Split:
        """The fixed split of windows; ``train_size``, ``val_limit``, ``test_limit`` take prefixes."""
        genres = datasets.brown_genre_names()
        if len(genres) != self.n_outputs:
            raise datasets.DatasetNotFoundError(
                f"{self.name}: the corpus has {len(genres)} genres, expected {self.n_outputs}"
            )
        return datasets.brown_genre(self.window, _VOCAB_SIZE, **limits)
