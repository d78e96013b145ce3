"""Genre classification on the Brown corpus: :func:`evokeras.data.brown_genre` and the
``brown_genre`` task (skipped where the corpus is not installed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from evokeras.data import (
    DatasetNotFoundError,
    Split,
    brown_categories,
    brown_documents,
    brown_genre,
    brown_genre_names,
    brown_words,
)
from evokeras.data import brown as brown_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _fakes import needs_brown  # noqa: E402

GENRES = (
    "adventure",
    "belles_lettres",
    "editorial",
    "fiction",
    "government",
    "hobbies",
    "humor",
    "learned",
    "lore",
    "mystery",
    "news",
    "religion",
    "reviews",
    "romance",
    "science_fiction",
)



@pytest.fixture(scope="module")
def split() -> Split:
    return brown_genre()


def _parts(split: Split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": (split.x_train, split.y_train),
        "val": (split.x_val, split.y_val),
        "test": (split.x_test, split.y_test),
    }


@needs_brown
def test_shapes_dtypes_and_genres(split: Split) -> None:
    assert brown_genre_names() == GENRES == tuple(sorted(set(brown_categories().values())))
    sizes = {}
    for part, (x, y) in _parts(split).items():
        assert x.dtype == np.int32 and y.dtype == np.int32 and x.shape == (len(y), 100)
        assert not x.flags.writeable and not y.flags.writeable
        assert 0 <= x.min() and x.max() <= 10_000
        assert set(y.tolist()) == set(range(15)), part  # every genre in every split
        sizes[part] = len(y)
    assert sizes == {"train": 9451, "val": 524, "test": 524}
    assert len(set(split.y_train[:40].tolist())) >= 6  # the fixed shuffle mixes the genres


@needs_brown
def test_val_windows_come_from_validation_documents(split: Split) -> None:
    """Rebuild the validation windows from the validation documents and brown_words' vocabulary."""
    words = brown_words()
    documents = brown_documents()
    split_of = brown_data.brown_split_names(documents)
    expected = []
    for doc in documents:
        if split_of[doc.fileid] != "val":
            continue
        ids = words.encode(brown_data.ptb_tokens(doc))
        label = GENRES.index(doc.genre)
        expected += [(ids[i : i + 100].tobytes(), label) for i in range(0, len(ids) - 99, 100)]
    got = [(row.tobytes(), int(label)) for row, label in zip(split.x_val, split.y_val, strict=True)]
    assert sorted(got) == sorted(expected)
    assert got != expected  # shuffled, not in document order
    # The ids are brown_words' ids: a window decodes to a run of its validation stream.
    text = " " + words.decode(words.val) + " "
    assert " " + words.decode(split.x_val[0]) + " " in text
    assert " " + words.decode(split.x_train[0]) + " " not in text


@needs_brown
def test_prefixes_windows_and_errors(split: Split) -> None:
    small = brown_genre(train_size=10, val_limit=3, test_limit=0)
    np.testing.assert_array_equal(small.x_train, split.x_train[:10])
    np.testing.assert_array_equal(small.y_val, split.y_val[:3])
    assert small.x_test.shape == (0, 100)
    assert brown_genre().x_train is not split.x_train and np.shares_memory(
        brown_genre().x_train, split.x_train
    )
    short = brown_genre(window=50, val_limit=0, test_limit=0)
    assert short.x_train.shape[1] == 50 and len(short.y_train) > 2 * len(split.y_train) - 450
    for kwargs, name in (
        ({"window": 0}, "window"),
        ({"train_size": 0}, "train_size"),
        ({"val_limit": 10**6}, "val_limit"),
        ({"vocab_size": 0}, "vocab_size"),
    ):
        with pytest.raises((TypeError, ValueError), match=name):
            brown_genre(**kwargs)


def test_missing_corpus_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="Brown corpus not found"):
        brown_genre(path=tmp_path)
    with pytest.raises(DatasetNotFoundError):
        brown_genre_names(path=tmp_path)


def test_task_shapes() -> None:
    from evokeras.tasks import TextClassification, make_task

    task = make_task("brown_genre", window=20, embedding=8)
    assert isinstance(task, TextClassification) and task.family == "sequence"
    assert task.input_shape == (20,) and task.stem_shape == (20, 8) and task.n_outputs == 15
    assert task.stem_params == 10_001 * 8 and not task.sequence_output
    assert task.space.input_shape == (20, 8) and task.space.stem_params == 10_001 * 8
    with pytest.raises(ValueError, match="window"):
        make_task("brown_genre", window=0)


@needs_brown
def test_task_decodes_and_fits_one_batch() -> None:
    from evokeras.nets.decode import decode
    from evokeras.tasks import make_task

    task = make_task("brown_genre", window=20, embedding=16)
    data = task.data(train_size=16, val_limit=8, test_limit=0)
    assert data.x_train.shape == (16, 20) and data.y_train.max() < 15
    genome = task.random_genome(np.random.default_rng(2), task.space)
    task.space.check(genome)
    assert genome.layers[0].kind == "recurrent"
    model = decode(genome, task)
    assert model.output_shape == (None, 15)
    assert model.get_layer("stem_embedding").input_dim == 10_001
    assert model.count_params() == task.space.analyze(genome).params
    history = model.fit(data.x_train, data.y_train, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history
