"""Pieces shared by the data-set loaders of :mod:`evokeras.data`.

The split containers (:class:`Split` for inputs and targets, :class:`TextSplit` for
token streams), :class:`DatasetNotFoundError`, the lookup of a data set shipped
inside an installed package (:func:`packaged_file`) and the checks of the sizes and
limits that the loaders take.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.metadata
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EOS",
    "UNK",
    "DatasetNotFoundError",
    "Split",
    "TextSplit",
    "check_count",
    "char_ids",
    "check_int",
    "file_sha256",
    "packaged_file",
    "ranked_vocab",
    "read_only",
    "split_code",
    "take",
    "text_prefixes",
]

logger = logging.getLogger(__name__)

#: Tokens of word-level streams: end of sentence (or line) and out-of-vocabulary.
EOS, UNK = "<eos>", "<unk>"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says what to install."""


def packaged_file(label: str, dist_name: str, version: str, relpath: str, hint: str) -> Path:
    """The path of ``relpath`` inside the installed distribution ``dist_name`` (a data set
    shipped as a package); warns if its version is not the one the loader was written for.

    Raises:
        DatasetNotFoundError: If the distribution is not installed.
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DatasetNotFoundError(
            f"{label} not found: {hint}; the distribution {dist_name!r} is not installed"
        ) from exc
    if dist.version != version:
        logger.warning("%s %s is installed; the %s loader was written for version %s",
                       dist_name, dist.version, label, version)
    return Path(os.fspath(dist.locate_file(relpath)))


@dataclass(frozen=True, eq=False)
class Split:
    """A train/validation/test split of inputs and targets.

    It holds images (:func:`mnist_splits`: ``float32`` in ``[0, 1]``, shape
    ``(N, 28, 28, 1)``), cluttered scenes (:func:`object_scenes`: shape
    ``(N, canvas, canvas, 1)``, targets class labels or object positions) or
    windows of token ids (:func:`brown_genre`: ``int32``, shape ``(N, window)``).

    Attributes:
        x_train: Training inputs (images, scenes or token windows).
        y_train: Training targets: ``int32`` labels of shape ``(N,)`` (or
            ``float32`` positions of shape ``(N, 2)`` for scenes).
        x_val: Validation inputs, same layout as ``x_train``.
        y_val: Validation targets, same layout as ``y_train``.
        x_test: Test inputs, same layout as ``x_train``.
        y_test: Test targets, same layout as ``y_train``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __repr__(self) -> str:
        return (
            f"Split(train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, image_shape={self.x_train.shape[1:]})"
        )


@dataclass(frozen=True, eq=False)
class TextSplit:
    """A train/validation/test split of a token stream, for language modelling.

    Attributes:
        train: Training token ids, ``int32``, shape ``(N,)``, read-only.
        val: Validation token ids, laid out like ``train``.
        test: Test token ids, laid out like ``train``.
        vocab: The tokens, indexed by id (``vocab[i]`` is the token with id ``i``).
        unk_id: Id of the out-of-vocabulary token, or ``None`` where every token
            of the text is in the vocabulary (character level).
        level: ``"char"`` or ``"word"``; :meth:`decode` joins tokens with
            ``""`` or ``" "`` accordingly.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]
    unk_id: int | None = None
    level: str = "char"

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids (``len(vocab)``, the size of an output softmax)."""
        return len(self.vocab)

    @functools.cached_property
    def token_to_id(self) -> dict[str, int]:
        """Mapping from token to id (the inverse of :attr:`vocab`)."""
        return {token: index for index, token in enumerate(self.vocab)}

    def encode(self, tokens) -> np.ndarray:
        """Map tokens (the characters of a string, or an iterable of words) to ids.

        Unknown tokens map to :attr:`unk_id`; without one they raise ``KeyError``.
        """
        mapping = self.token_to_id
        if self.unk_id is None:
            ids = [mapping[token] for token in tokens]
        else:
            ids = [mapping.get(token, self.unk_id) for token in tokens]
        return np.asarray(ids, dtype=np.int32)

    def decode(self, ids) -> str:
        """Turn ids back into text (characters joined by ``""``, words by ``" "``)."""
        return ("" if self.level == "char" else " ").join(self.vocab[int(i)] for i in ids)

    def __repr__(self) -> str:
        return (
            f"TextSplit(level={self.level!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, vocab_size={self.vocab_size})"
        )


def check_count(name: str, value: int | None, minimum: int) -> None:
    """Reject counts that are not integers or are below ``minimum``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def take(name: str, available: int, limit: int | None) -> int:
    """Return how many examples to keep from a split of ``available`` examples."""
    if limit is None:
        return available
    if limit > available:
        raise ValueError(f"{name}={limit} exceeds the {available} examples available")
    return int(limit)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Reject an argument that is not an int in ``low .. high`` (naming it)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def read_only(array: np.ndarray) -> np.ndarray:
    """Make ``array`` read-only (in place) and return it."""
    array.setflags(write=False)
    return array


def split_code(part: str) -> int:
    """A stable integer naming a split (``"train"``, ...), for seeding generators."""
    return zlib.crc32(part.encode("ascii"))


def text_prefixes(
    full: TextSplit, unit: str, train: int | None, val: int | None, test: int | None
) -> TextSplit:
    """Return ``full`` with each split cut to its first ``train``/``val``/``test`` tokens.

    ``unit`` names the arguments in error messages (``"chars"`` -> ``train_chars``, ...).
    """
    names = [f"{part}_{unit}" for part in ("train", "val", "test")]
    check_count(names[0], train, 1)
    check_count(names[1], val, 0)
    check_count(names[2], test, 0)
    return TextSplit(
        train=full.train[: take(names[0], len(full.train), train)],
        val=full.val[: take(names[1], len(full.val), val)],
        test=full.test[: take(names[2], len(full.test), test)],
        vocab=full.vocab,
        unk_id=full.unk_id,
        level=full.level,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def char_ids(text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(ids, vocab)`` of a character stream: the vocabulary is the sorted set of the
    text's characters, ``ids`` (``int32``) index it."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    symbols = np.unique(codes)
    return np.searchsorted(symbols, codes).astype(np.int32), tuple(chr(code) for code in symbols.tolist())


def ranked_vocab(counts: collections.Counter[str], size: int | None) -> tuple[str, ...]:
    """The ``size`` most frequent tokens of ``counts`` (ties alphabetical; ``None``: all),
    most frequent first."""
    return tuple(sorted(counts, key=lambda token: (-counts[token], token))[:size])
