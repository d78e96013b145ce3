"""Your own data: NumPy arrays and UTF-8 text, in memory or in files, with their digests.

A run directory records a data file by its path and sha256 (:func:`file_sha256`); a
rebuild compares them (:func:`check_sha256`) and refuses a changed file with
:class:`DataChangedError`. Arrays held in memory are written to the run directory as an
``.npz`` file whose bytes depend only on the arrays (:func:`save_npz`), so equal arrays
give equal digests. Files are read without unpickling (``allow_pickle=False``): nothing in
a data file can run code.

Splits:

* :func:`array_split` -- inputs and integer labels, with the user's validation and test
  data or a seeded random split of the training data;
* :func:`text_split` -- a character or word stream, contiguous 90/5/5 split by default
  (as :func:`~evokeras.data.bible.bible_chars`), the vocabulary options of the built-in
  corpora (word level: the ``vocab_size`` most frequent training words plus ``<unk>``,
  ``<eos>`` at the end of every non-empty line, as :func:`~evokeras.data.brown.brown_words`).

Example:
    >>> import numpy as np
    >>> from evokeras.data.files import array_split, text_split
    >>> split, n_classes = array_split({"x_train": np.zeros((50, 6, 9, 3), np.uint8), "y_train": np.arange(50) % 7})
    >>> split.x_train.shape, split.x_val.shape, split.x_test.shape, n_classes
    ((40, 6, 9, 3), (5, 6, 9, 3), (5, 6, 9, 3), 7)
    >>> text_split("abracadabra " * 20, level="char").vocab
    (' ', 'a', 'b', 'c', 'd', 'r')
"""

from __future__ import annotations

import collections
import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import atomic_path

from .base import (
    EOS,
    UNK,
    DatasetNotFoundError,
    Split,
    TextSplit,
    char_ids,
    file_sha256,
    ranked_vocab,
    read_only,
)

__all__ = [
    "ARRAY_KEYS",
    "DataChangedError",
    "array_split",
    "check_sha256",
    "dataset_arrays",
    "file_sha256",
    "load_npz",
    "npz_bytes",
    "read_text",
    "save_npz",
    "text_split",
]

#: The arrays of a classification data file; ``x_train``/``y_train`` are required, the
#: validation and test pairs optional (a seeded split of the training data stands in).
ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


class DataChangedError(ValueError):
    """A data file differs from the one a run recorded (its sha256 changed)."""


def check_sha256(path: Path, expected: str | None) -> str:
    """The file's digest; :class:`DataChangedError` if it is not ``expected`` (when given)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {path} not found")
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        raise DataChangedError(f"data file {path} has changed since the run recorded it "
                               f"(sha256 {expected[:12]}... recorded, {digest[:12]}... now)")
    return digest


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The ``.npz`` form of ``arrays`` (keys sorted, fixed timestamps: equal arrays give
    equal bytes); ``numpy.load`` reads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            array = np.asarray(arrays[key])
            if array.dtype.hasobject:
                raise TypeError(f"array {key!r}: object arrays cannot be saved without pickling")
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    """Write :func:`npz_bytes` of ``arrays`` to ``path`` (atomically); returns its sha256."""
    data = npz_bytes(arrays)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (no unpickling); check its digest first
    (:func:`check_sha256`)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"data file {path}: not a readable .npz file of arrays ({exc})") from exc


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents; check its digest first (:func:`check_sha256`)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {path} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"data file {path}: not UTF-8 text ({exc})") from exc


def dataset_arrays(name: str, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The inputs and targets of a finite dataset of ``(x, y)`` (or ``(x, y, weights)``)
    *batches*, as Keras's ``fit`` takes them: a ``keras.utils.PyDataset``, a batched
    ``tf.data.Dataset``, or any iterable of batches (a generator, a loader); the batches
    are concatenated in order, once.

    The data must fit in memory: a search trains each candidate on a prefix of the same
    arrays, and the run directory keeps them (``data.npz``) to rebuild the task. An
    infinite dataset (``repeat()``, a ``PyDataset`` without ``num_batches``) is refused.

    Example:
        >>> import numpy as np
        >>> batches = [(np.zeros((4, 3)), np.arange(4)), (np.ones((2, 3)), np.arange(2))]
        >>> x, y = dataset_arrays("train", batches)
        >>> x.shape, y.tolist()
        ((6, 3), [0, 1, 2, 3, 0, 1])
    """
    if hasattr(dataset, "cardinality") and hasattr(dataset, "as_numpy_iterator"):  # tf.data
        if int(dataset.cardinality()) == -1:  # tf.data.INFINITE_CARDINALITY
            raise ValueError(f"{name}: an infinite tf.data.Dataset (repeat()); give a finite one")
        batches: Any = dataset.as_numpy_iterator()
    elif hasattr(dataset, "num_batches") and hasattr(dataset, "__getitem__"):  # keras.utils.PyDataset
        n = dataset.num_batches
        if n is None:
            raise ValueError(f"{name}: a PyDataset without num_batches (infinite); give a finite one")
        batches = (dataset[i] for i in range(int(n)))
    elif isinstance(dataset, str | bytes | Mapping | np.ndarray) or not hasattr(dataset, "__iter__"):
        raise ValueError(f"{name}: expected an (x, y) pair of arrays, a keras.utils.PyDataset, a tf.data.Dataset "
                         f"or an iterable of (x, y) batches, got {type(dataset).__name__}")
    else:
        batches = iter(dataset)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i, batch in enumerate(batches):
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3) or isinstance(batch[0], Mapping):
            raise ValueError(f"{name}: batch {i} is not an (x, y) or (x, y, weights) pair of arrays "
                             "(dict inputs are not supported)")
        x, y = np.asarray(batch[0]), np.asarray(batch[1])
        if x.ndim == 0 or len(x) != len(y) or (xs and (x.shape[1:] != xs[0].shape[1:] or y.shape[1:] != ys[0].shape[1:])):
            raise ValueError(f"{name}: batch {i} has inputs {x.shape} and targets {y.shape}, which do not "
                             f"match each other or the earlier batches")
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"{name}: the dataset is empty")
    return np.concatenate(xs), np.concatenate(ys)


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"{name}: expected a fraction in [0, 1), got {value!r}")
    return float(value)


def _inputs(name: str, x: Any, family: str) -> np.ndarray:
    """Inputs as ``float32`` (``uint8`` scaled to ``[0, 1]``) in the family's layout."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numbers, got dtype {x.dtype}")
    out = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if family == "image" and out.ndim == 3:
        out = out[..., None]  # (N, H, W) grey images
    elif family == "sequence" and out.ndim == 2:
        out = out[..., None]  # (N, T) scalar series
    want = {"image": 4, "sequence": 3, "vector": 2}[family]
    if out.ndim != want:
        raise ValueError(f"{name}: shape {x.shape} does not fit family {family!r} "
                         "(image: (N, H, W[, C]), sequence: (N, T[, F]), vector: (N, D))")
    _refuse_non_finite(name, out, "input values", "replace or drop them (e.g. numpy.nan_to_num)")
    return out


def _refuse_non_finite(name: str, values: np.ndarray, what: str, fix: str) -> None:
    """A ``ValueError`` naming the array ``name`` and how many of its ``what`` are NaN or infinite."""
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(f"{name}: {bad} of {np.size(values)} {what} are NaN or infinite; {fix} before the search")


def infer_family(x: np.ndarray) -> str:
    """``vector`` for ``(N, D)``, ``image`` for ``(N, H, W)`` and ``(N, H, W, C)``."""
    return {2: "vector", 3: "image", 4: "image"}.get(np.ndim(x), "")


def _labels(name: str, y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name}: expected {n} integer labels (shape ({n},)), got shape {y.shape}")
    if y.dtype.kind == "f":
        _refuse_non_finite(name, y, "labels", "drop those examples")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"{name}: expected integer class labels, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{name}: class labels must be >= 0, got {int(y.min())}")
    return y.astype(np.int32)


def _values(name: str, y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2) or len(y) != n:
        raise ValueError(f"{name}: expected {n} numbers (shape ({n},) or ({n}, k)), got {y.dtype} of shape {y.shape}")
    _refuse_non_finite(name, y, "target values", "replace or drop them (e.g. numpy.nan_to_num)")
    return (y[:, None] if y.ndim == 1 else y).astype(np.float32)


def array_split(arrays: Mapping[str, Any], *, family: str | None = None, n_classes: int | None = None,
                val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                regression: bool = False) -> tuple[Split, int]:
    """A classification :class:`Split` of ``arrays`` (keys :data:`ARRAY_KEYS`) and its
    number of classes.

    ``x_val``/``y_val`` and ``x_test``/``y_test`` are the user's when given; otherwise a
    seeded random ``test_fraction`` and ``val_fraction`` of the training examples
    (``numpy.random.default_rng(seed)``; test drawn first) stand in. Inputs become
    ``float32`` (``uint8`` divided by 255), grey images get a channel axis; labels
    ``int32`` in ``[0, n_classes)`` (default: the largest label + 1). With ``regression``
    the targets are numbers, ``float32`` of shape ``(N, k)``, and the count returned is ``k``.

    Raises:
        ValueError: a missing or unknown key, mismatched shapes or lengths, labels out of range.
    """
    unknown = sorted(set(arrays) - set(ARRAY_KEYS))
    if unknown:
        raise ValueError(f"arrays: unknown key {unknown[0]!r} (known: {', '.join(ARRAY_KEYS)})")
    for a, b in (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test")):
        if (a in arrays) != (b in arrays) or (a == "x_train" and a not in arrays):
            raise ValueError(f"arrays: {a!r} and {b!r} go together" + (" and are required" if a == "x_train" else ""))
    if family is None:
        family = infer_family(arrays["x_train"])
        if not family:
            raise ValueError(f"x_train: inputs of shape {np.shape(arrays['x_train'])} fit no family "
                             "(image: (N, H, W[, C]), sequence: (N, T[, F]) with family='sequence', vector: (N, D))")
    if family not in ("image", "sequence", "vector"):
        raise ValueError(f"family: expected 'image', 'sequence' or 'vector', got {family!r}")
    parts = {}
    for part in ("train", "val", "test"):
        if f"x_{part}" in arrays:
            x = _inputs(f"x_{part}", arrays[f"x_{part}"], family)
            targets = _values if regression else _labels
            parts[part] = (x, targets(f"y_{part}", arrays[f"y_{part}"], len(x)))
    x, y = parts["train"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    start = 0
    for part, fraction in (("test", test_fraction), ("val", val_fraction)):
        if part in parts:
            continue
        n = int(round(len(x) * _fraction(f"{part}_fraction", fraction)))
        if n < 1:
            raise ValueError(f"{part}_fraction: {fraction!r} of {len(x)} training examples leaves no "
                             f"{'validation' if part == 'val' else 'test'} data (give x_{part}/y_{part} or raise it)")
        index = np.sort(order[start:start + n])
        parts[part] = (x[index], y[index])
        start += n
    if start:
        keep = np.sort(order[start:])
        parts["train"] = (x[keep], y[keep])
    if len(parts["train"][0]) < 1:
        raise ValueError("arrays: no training examples left after the validation and test split")
    shapes = {p: v[0].shape[1:] for p, v in parts.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"arrays: input shapes differ between splits: {shapes}")
    if regression:
        widths = {v[1].shape[1] for v in parts.values()}
        if len(widths) != 1:
            raise ValueError(f"arrays: target widths differ between splits: {sorted(widths)}")
        return Split(*parts["train"], *parts["val"], *parts["test"]), widths.pop()
    top = max(int(v[1].max()) for v in parts.values() if len(v[1]))
    k = top + 1 if n_classes is None else int(n_classes)
    if k < 2 or top >= k:
        raise ValueError(f"n_classes: labels go up to {top}, so n_classes must be >= {max(2, top + 1)}, got {k}")
    return Split(*parts["train"], *parts["val"], *parts["test"]), k


def text_split(text: str, *, level: str = "char", vocab_size: int | None = None, lower: bool = False,
               val_fraction: float = 0.05, test_fraction: float = 0.05) -> TextSplit:
    """A language-modelling :class:`TextSplit` of ``text``.

    ``level="char"``: every character is a token, the vocabulary is the sorted set of the
    text's characters (no unknown token). ``level="word"``: whitespace-separated words
    (lower-cased with ``lower``), ``<eos>`` after every non-empty line; the vocabulary is
    the ``vocab_size`` most frequent training tokens (ties alphabetical; ``None``: all)
    plus ``<unk>``. The split is contiguous: the first ``1 - val_fraction - test_fraction``
    of the tokens train, the next ``val_fraction`` validate, the rest test.
    """
    if not isinstance(text, str):
        raise ValueError(f"text: expected a string, got {type(text).__name__}")
    if level not in ("char", "word"):
        raise ValueError(f"level: expected 'char' or 'word', got {level!r}")
    val, test = _fraction("val_fraction", val_fraction), _fraction("test_fraction", test_fraction)
    if val + test >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val + test:g}")
    if lower:
        text = text.lower()
    if level == "char":
        ids, vocab = char_ids(text)
        unk: int | None = None
        n = len(ids)
        n_train, n_val = n - int(round(n * (val + test))), int(round(n * val))
    else:
        tokens = [t for line in text.splitlines() for t in [*line.split(), EOS] if line.split()]
        n = len(tokens)
        n_train, n_val = n - int(round(n * (val + test))), int(round(n * val))
        vocab = ranked_vocab(collections.Counter(tokens[:n_train]), vocab_size)
        unk = len(vocab)
        vocab = (*vocab, UNK)
        mapping = {token: i for i, token in enumerate(vocab)}
        ids = np.fromiter((mapping.get(t, unk) for t in tokens), np.int32, n)
    if n_train < 2 or (val and n_val < 2) or (test and n - n_train - n_val < 2):
        raise ValueError(f"text: {n} {level} tokens are too few to split {1 - val - test:g}/{val:g}/{test:g}")
    return TextSplit(train=read_only(ids[:n_train]), val=read_only(ids[n_train:n_train + n_val]),
                     test=read_only(ids[n_train + n_val:]), vocab=tuple(vocab), unk_id=unk, level=level)
