"""Genre classification on the Brown corpus: windows of word ids labelled by genre.

See :func:`brown_genre`; tokens, ids and the split by document are those of
:func:`evokeras.data.brown.brown_words`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from .base import Split, check_count, check_int, read_only, split_code, take
from .brown import (
    BrownDocument,
    brown_documents_cached,
    brown_location,
    brown_split_names,
    brown_words_cached,
    ptb_tokens,
)

__all__ = ["brown_genre", "brown_genre_names"]


#: Seed of the fixed permutation of :func:`brown_genre`'s windows (with the split name).
_BROWN_GENRE_SEED = 0


@functools.lru_cache(maxsize=4)
def _brown_genre_cached(
    location: str, window: int, vocab_size: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Build the full genre split once per location, window and vocabulary size."""
    documents = brown_documents_cached(location)
    words = brown_words_cached(location, vocab_size)
    split_of = brown_split_names(documents)
    genre_index = {genre: i for i, genre in enumerate(_brown_genres(documents))}
    streams = {"train": words.train, "val": words.val, "test": words.test}
    offsets = dict.fromkeys(streams, 0)
    windows: dict[str, list[np.ndarray]] = {part: [] for part in streams}
    genres: dict[str, list[np.ndarray]] = {part: [] for part in streams}
    for doc in documents:
        # brown_words concatenates the documents of a split in this order: slice them back out.
        part, length = split_of[doc.fileid], len(ptb_tokens(doc))
        ids = streams[part][offsets[part] : offsets[part] + length]
        offsets[part] += length
        count = length // window
        windows[part].append(ids[: count * window].reshape(count, window))
        genres[part].append(np.full(count, genre_index[doc.genre], np.int32))
    out = {}
    for part, stream in streams.items():
        if offsets[part] != len(stream):  # pragma: no cover - an internal inconsistency
            raise RuntimeError(f"brown_genre: the {part} documents do not add up to the stream")
        x = np.concatenate(windows[part]) if windows[part] else np.empty((0, window), np.int32)
        y = np.concatenate(genres[part]) if genres[part] else np.empty(0, np.int32)
        order = np.random.default_rng([_BROWN_GENRE_SEED, split_code(part)]).permutation(len(y))
        out[part] = (read_only(np.ascontiguousarray(x[order])), read_only(y[order]))
    return out


def _brown_genres(documents: Sequence[BrownDocument]) -> tuple[str, ...]:
    return tuple(sorted({doc.genre for doc in documents}))


def brown_genre_names(path: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Return the genres of the Brown corpus in sorted order (the labels of :func:`brown_genre`).

    Args:
        path: Where the corpus is; see :func:`find_brown`.

    Returns:
        The genre names; ``names[y]`` is the genre of label ``y`` (15 on the full
        corpus: ``adventure``, ``belles_lettres``, ..., ``science_fiction``).

    Raises:
        DatasetNotFoundError: If the corpus is not found.
    """
    return _brown_genres(brown_documents_cached(brown_location(path)))


def brown_genre(
    window: int = 100,
    vocab_size: int | None = 10_000,
    path: str | os.PathLike[str] | None = None,
    *,
    train_size: int | None = None,
    val_limit: int | None = None,
    test_limit: int | None = None,
) -> Split:
    """Return the Brown corpus as a genre-classification split of token windows.

    Tokens and ids are those of :func:`brown_words` with the same ``vocab_size``
    (PTB-style preprocessing, ``<eos>`` after each sentence, ids from the
    training vocabulary), and so is the split by document. Each document is cut
    into non-overlapping windows of ``window`` tokens (the remainder is
    dropped); a window's label is its document's genre, an index into
    :func:`brown_genre_names`. The windows of each split are then put in a
    fixed random order (seeded by the split's name), so that any prefix mixes
    the genres. With the defaults the full corpus gives 9,451 training, 524
    validation and 524 test windows (every genre in each split).

    Args:
        window: Tokens per window (>= 1).
        vocab_size: Number of known words, excluding ``<unk>``; see :func:`brown_words`.
        path: Where the corpus is; see :func:`find_brown`.
        train_size: Keep only the first ``train_size`` training windows.
        val_limit: Keep only the first ``val_limit`` validation windows.
        test_limit: Keep only the first ``test_limit`` test windows.

    Returns:
        A :class:`Split` of ``int32`` windows ``(N, window)`` and ``int32``
        genre labels ``(N,)``: read-only views of a per-process cache.

    Raises:
        DatasetNotFoundError: If the corpus is not found.
        TypeError: If a size or limit is not an int.
        ValueError: If a size or limit is out of range.

    Example:
        >>> from evokeras.data import brown_genre, brown_genre_names
        >>> split = brown_genre(train_size=8)
        >>> split.x_train.shape, len(brown_genre_names())
        ((8, 100), 15)
    """
    check_int("window", window, 1)
    check_count("vocab_size", vocab_size, 1)
    check_count("train_size", train_size, 1)
    check_count("val_limit", val_limit, 0)
    check_count("test_limit", test_limit, 0)
    full = _brown_genre_cached(brown_location(path), int(window), vocab_size)
    arrays = []
    for part, name, limit in (
        ("train", "train_size", train_size),
        ("val", "val_limit", val_limit),
        ("test", "test_limit", test_limit),
    ):
        x, y = full[part]
        count = take(name, len(y), limit)
        arrays += [x[:count], y[:count]]
    return Split(*arrays)
