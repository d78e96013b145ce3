"""Language modelling: predict every next character (King James Bible) or word (Brown).

The model reads windows of ``seq_len`` token ids through a task-owned embedding stem,
then the genome's genes -- typically evolved skip-step recurrent layers
(:class:`evokeras.nets.layers.SkipStepCell`) -- keeping the time axis, and a per-step
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
from evokeras.data.files import check_sha256, read_text, text_split
from evokeras.genomes.cell import CellGenome
from evokeras.genomes.drawing import draw_cell
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.tasks.base import SupervisedTask
from evokeras.variation.network import repair

__all__ = ["REFERENCE_LEARNING_RATE", "LanguageModel", "TextLanguageModel"]

#: Adam's rate for the reference LSTMs: the tuned stock LSTM's best on the validation
#: split at both levels (3.3e-2 in ``benchmarks/results/lm.json``).
REFERENCE_LEARNING_RATE = 3e-2

_LEVELS = {
    # name: (loader, vocabulary size, default window, default embedding width, metric)
    "bible_chars": ("char", 65, 64, 16, "val_bpc"),
    "brown_words": ("word", 10_001, 35, 64, "val_perplexity"),
}


class LanguageModel(SupervisedTask):
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
        level, vocab, _, _, _ = _LEVELS[name]
        self._configure(name, level, vocab, seq_len, embedding, space)

    def _configure(self, name: str, level: str, vocab: int, seq_len: int | None, embedding: int | None,
                   space: SearchSpace | None) -> None:
        """Set the task's shapes and metric from the corpus's level and vocabulary size."""
        _, _, default_len, default_emb, metric = _LEVELS["bible_chars" if level == "char" else "brown_words"]
        for key, value in (("seq_len", seq_len), ("embedding", embedding)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{key}: expected an integer >= 1 or None, got {value!r}")
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
                cell_units=(32, 64, 128, 256),
                optimizers=("adam", "rmsprop"),
                learning_rate=(1e-3, 5e-2),
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

    # -- search priors ----------------------------------------------------------------
    def reference_genomes(self) -> list[Genome]:
        """The stock LSTM layer at each cell width of the space, widest first: a one-node
        ``lstm`` cell with its lag-1 self link (exactly ``keras.layers.LSTM``), trained
        with Adam at :data:`REFERENCE_LEARNING_RATE` (clipped to the space: the tuned
        rate of a stock LSTM on both corpora in ``benchmarks/lm.py``), repaired into the space.
        A search with ``strategy.reference_architectures`` starts from the baseline it is compared
        with, and its variation adds nodes, gates and skip links to it."""
        space = self.space
        rate = min(max(REFERENCE_LEARNING_RATE, space.learning_rate[0]), space.learning_rate[1])
        training = TrainingGenes(optimizer="adam", learning_rate=rate, batch_size=space.batch_sizes[0])
        out: list[Genome] = []
        for units in sorted(space.cell_units, reverse=True):
            cell = CellGenome(int(units), ("lstm",), rec_links=((0, 1, 0),))
            genome = repair(Genome((LayerGene("recurrent", cell=cell),), training=training), space)
            if genome not in out:
                out.append(genome)
        return out

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


class TextLanguageModel(LanguageModel):
    """Next-token prediction on your own UTF-8 text (registered as ``"text"``): a file
    (``path``) or a string (``text``), at character or word level, with the built-in
    corpora's options (:func:`evokeras.data.files.text_split`: vocabulary, contiguous
    split; windows, embedding and search space as :class:`LanguageModel`).

    A run directory rebuilds the task from the file's path and sha256 (absolute; a
    string is first written to ``DIR/data.txt``, recorded relative to the run directory,
    which may then move); a file that changed since is refused
    (:class:`evokeras.data.DataChangedError`).

    Args:
        text: the text itself (instead of ``path``).
        path: a UTF-8 text file.
        sha256: the file's expected digest (a run directory's record).
        level: ``"char"`` (metric ``val_bpc``) or ``"word"`` (``val_perplexity``).
        vocab_size: word level: the most frequent training words kept (plus ``<unk>``;
            ``None``: all).
        lower: lower-case the text first.
        val_fraction: the contiguous validation part (before the test part, at the end).
        test_fraction: the contiguous test part (at the end).
        seq_len: as :class:`LanguageModel`.
        embedding: as :class:`LanguageModel`.
        space: as :class:`LanguageModel`.
        name: a label for plots and reports (default: the file's stem, or ``"text"``).

    Example:
        >>> task = TextLanguageModel("to be or not to be, that is the question. " * 40, seq_len=16)
        >>> task.n_outputs, task.metric, task.data().x_train.shape
        (15, 'val_bpc', (94, 16))
    """

    def __init__(self, text: str | None = None, *, path: str | Path | None = None, sha256: str | None = None,
                 level: str = "char", vocab_size: int | None = None, lower: bool = False,
                 val_fraction: float = 0.05, test_fraction: float = 0.05, seq_len: int | None = None,
                 embedding: int | None = None, name: str | None = None, space: SearchSpace | None = None) -> None:
        if (path is None) == (text is None):
            raise ValueError("text task: give either text (a string) or path (a UTF-8 file), not "
                             + ("both" if path is not None else "neither"))
        if path is not None and not isinstance(path, str | Path):
            raise ValueError(f"path: expected a file path, got {path!r}")
        self.path = None if path is None else Path(path).expanduser().resolve()
        self.sha256 = None if self.path is None else check_sha256(self.path, sha256)
        self._text = text if self.path is None else None  # written to the run directory by recipe()
        self.options: dict[str, Any] = {"level": level, "vocab_size": vocab_size, "lower": lower,
                                        "val_fraction": val_fraction, "test_fraction": test_fraction,
                                        "seq_len": seq_len, "embedding": embedding}
        self._split = text_split(text if self.path is None else read_text(self.path), level=level,
                                 vocab_size=vocab_size, lower=lower, val_fraction=val_fraction,
                                 test_fraction=test_fraction)
        self._configure(name or (self.path.stem if self.path is not None else "text"), level,
                        self._split.vocab_size, seq_len, embedding, space)
        if len(self._split.train) <= self.seq_len:
            raise ValueError(f"seq_len: {self.seq_len} tokens leave no training window in "
                             f"{len(self._split.train)} training tokens")

    def recipe(self, out_dir: Any) -> dict[str, Any] | None:
        """The ``"text"`` task on the file (a string: written to ``DIR/data.txt``) with its
        sha256 and options; ``None`` for a subclass (another task)."""
        if type(self) is not TextLanguageModel:
            return None
        if self.path is None:  # from now on the task is the file's
            self.path = Path(out_dir).resolve() / "data.txt"
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text(self._text or "", encoding="utf-8", newline="")
            self.sha256, self._text = check_sha256(self.path, None), None
        return {"task": "text", "task_options": {"path": str(self.path), "sha256": self.sha256, **self.options,
                                                 "name": self.name}}

    def text(self) -> datasets.TextSplit:
        """The text's split (token ids and vocabulary)."""
        return self._split
