"""Language modelling: predict every next character (King James Bible) or word (Brown).

The model reads windows of ``seq_len`` token ids through a task-owned embedding stem,
then the genome's genes -- typically evolved skip-step recurrent layers
(:class:`evokeras.build.layers.SkipStepCell`) -- keeping the time axis, and a per-step
softmax head over the vocabulary. Training minimises the cross-entropy of every next
token.

Data (:mod:`evokeras.data`), fixed splits:

* ``bible_chars`` -- the King James Bible as one character stream (verses joined by
  newlines, canonical order), 65 symbols; contiguous splits: first 90% train, next 5%
  validation, last 5% test (the enwik8/text8 convention).
* ``brown_words`` -- the Brown corpus, Penn-Treebank-style (lower case, numbers -> N,
  punctuation dropped, ``<eos>`` after each sentence), the 10,000 most frequent training
  words plus ``<unk>``; split by document within each genre (90/5/5 of the tokens).

Each split is cut into non-overlapping windows: input ``ids[i*T:(i+1)*T]``, target the
same shifted by one. ``Budget.train_samples``/``val_samples`` count windows (prefixes).

Metrics: ``val_bpc`` (bits per character = loss / ln 2) for characters, ``val_perplexity``
(exp of the loss) for words; ``exec_time`` is inference seconds **per token**
(per-window time / ``seq_len``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from evokeras import data as datasets
from evokeras._io import atomic_path
from evokeras.genomes.drawing import draw_cell
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import Task

__all__ = ["LanguageModel"]

_LEVELS = {
    # name: (loader, vocabulary size, default window, default embedding width, metric)
    "bible_chars": ("char", 65, 64, 16, "val_bpc"),
    "brown_words": ("word", 10_001, 35, 64, "val_perplexity"),
}


class LanguageModel(Task):
    """Next-token prediction on real text.

    Args:
        name: ``"bible_chars"`` or ``"brown_words"``.
        seq_len: window length (default 64 characters / 35 words).
        embedding: width of the embedding stem (default 16 / 64).
        space: a search space instead of the default (1-3 stacked recurrent genes;
            cells of up to 4 nodes and lags up to 8). The default allows no other
            kinds, so that every candidate is a recurrent model (with dropout or dense
            genes allowed, a genome without a recurrent gene is a mere bigram model).
    """

    family = "sequence"
    sequence_output = True

    def __init__(self, name: str = "bible_chars", *, seq_len: int | None = None, embedding: int | None = None,
                 space: SearchSpace | None = None) -> None:
        if name not in _LEVELS:
            raise ValueError(f"LanguageModel: unknown corpus {name!r} (known: {sorted(_LEVELS)})")
        level, vocab, default_len, default_emb, metric = _LEVELS[name]
        self.name, self.level, self.metric = name, level, metric
        self.seq_len = int(seq_len or default_len)
        self.embedding = int(embedding or default_emb)
        self.input_shape = (self.seq_len,)
        self.n_outputs = vocab
        self.stem_params = vocab * self.embedding
        self.tokens_per_sample = self.seq_len
        self.measures = (metric, "val_loss", "exec_time", "params", "flops")
        self.default_objectives = {metric: -1.0, "exec_time": -1.0}
        if space is None:
            space = SearchSpace(
                layer_kinds={"recurrent": 1.0},
                min_layers=1,
                max_layers=3,
                init_layers=(1, 2),
                cell_units=(32, 64, 128),
                optimizers=("adam", "rmsprop"),
                learning_rate=(1e-3, 1e-2),
                batch_sizes=(32, 64),
                max_skips=0,
                max_params=3_000_000,
            )
        super().__init__(space=space)

    @property
    def stem_shape(self) -> tuple[int, ...]:
        return (self.seq_len, self.embedding)

    # -- model pieces ----------------------------------------------------------------
    def stem(self, inputs: Any) -> Any:
        import keras

        return keras.layers.Embedding(self.n_outputs, self.embedding, name="stem_embedding")(inputs)

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, name="head")(x)

    def loss(self) -> Any:
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self) -> list[Any]:
        return []

    def val_metrics(self, scores: dict[str, float]) -> dict[str, float]:
        loss = float(scores["loss"])
        value = loss / math.log(2.0) if self.level == "char" else math.exp(min(loss, 700.0))
        return {"val_loss": loss, self.metric: value}

    # -- data ------------------------------------------------------------------------
    def text(self) -> datasets.TextSplit:
        """The corpus split (token ids and vocabulary)."""
        split = datasets.bible_chars() if self.level == "char" else datasets.brown_words()
        if split.vocab_size != self.n_outputs:
            raise datasets.DatasetNotFoundError(
                f"{self.name}: the corpus has {split.vocab_size} symbols, expected {self.n_outputs}"
            )
        return split

    def windows(self, ids: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Non-overlapping ``(x, y)`` windows of ``ids`` (``y`` is ``x`` shifted by one)."""
        t = self.seq_len
        n = (len(ids) - 1) // t
        if limit is not None:
            n = min(n, int(limit))
        x = np.asarray(ids[: n * t], dtype=np.int32).reshape(n, t)
        y = np.asarray(ids[1 : n * t + 1], dtype=np.int32).reshape(n, t)
        return x, y

    def data(self, *, train_size: int | None = None, val_limit: int | None = None,
             test_limit: int | None = None) -> datasets.Split:
        """Windows of the fixed split; the limits count windows (prefixes)."""
        for key, value in (("train_size", train_size), ("val_limit", val_limit), ("test_limit", test_limit)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{self.name}: {key} must be a count >= 0, got {value!r}")
        text = self.text()
        x_train, y_train = self.windows(text.train, train_size)
        x_val, y_val = self.windows(text.val, val_limit)
        x_test, y_test = self.windows(text.test, test_limit)
        for key, want, got in (("train_size", train_size, len(x_train)), ("val_limit", val_limit, len(x_val))):
            if want is not None and want > got:
                raise ValueError(f"{self.name}: {key}={want} exceeds the {got} windows of {self.seq_len} tokens available")
        return datasets.Split(x_train, y_train, x_val, y_val, x_test, y_test)

    # -- figures ---------------------------------------------------------------------
    def save_plots(self, out_dir: Any, hall_of_fame: dict[str, Any]) -> list[Any]:
        """``cell.png``: the evolved cell(s) of the best front member (lowest validation
        figure, the search's own criterion; the test figure is shown too)."""
        import matplotlib

        matplotlib.use("Agg")

        test_key = "test_" + self.metric.removeprefix("val_")
        members = [m for m in hall_of_fame.get("members", []) if m.get("status") == "ok" and test_key in m]
        if not members:
            return []
        best = min(members, key=lambda m: m["metrics"][self.metric])
        genome = Genome.from_dict(best["genome"])
        cells = [(i, layer.cell) for i, layer in enumerate(genome.layers) if layer.kind == "recurrent"]
        paths = []
        for n, (i, cell) in enumerate(cells):
            path = Path(out_dir) / ("cell.png" if n == 0 else f"cell_{n}.png")
            title = (f"{self.name}: member {best['key']}, gene {i}\n"
                     f"{self.metric} {best['metrics'][self.metric]:.3f}, {test_key} {best[test_key]:.3f}")
            fig = draw_cell(cell, title=title)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120)
            paths.append(path)
        return paths
