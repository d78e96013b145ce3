"""Your own data (:mod:`evokeras.data.files`): splits of arrays and text, digests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evokeras.data import DataChangedError
from evokeras.data.files import array_split, check_sha256, load_npz, npz_bytes, save_npz, text_split


def _arrays(n: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (n, 6, 9, 3), dtype=np.uint8), "y_train": np.arange(n) % 7}


def test_seeded_split_of_training_data() -> None:
    split, k = array_split(_arrays(), seed=3)
    assert k == 7
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (80, 10, 10)
    assert split.x_train.dtype == np.float32 and split.x_train.max() <= 1.0 and split.x_train.shape[1:] == (6, 9, 3)
    again, _ = array_split(_arrays(), seed=3)
    other, _ = array_split(_arrays(), seed=4)
    assert np.array_equal(split.y_val, again.y_val) and np.array_equal(split.x_test, again.x_test)
    assert not np.array_equal(split.x_val, other.x_val)
    # nothing is lost or shared between the parts
    seen = np.concatenate([split.x_train, split.x_val, split.x_test]).reshape(100, -1).sum(axis=1)
    assert np.allclose(np.sort(seen), np.sort(_arrays()["x_train"].astype(np.float32).reshape(100, -1).sum(axis=1) / 255))


def test_user_validation_data_and_grey_images() -> None:
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.random((30, 5, 8)), "y_train": np.arange(30) % 3,
              "x_val": rng.random((6, 5, 8)), "y_val": np.arange(6) % 3}
    split, k = array_split(arrays, n_classes=4, test_fraction=0.2)
    assert k == 4 and split.x_val.shape == (6, 5, 8, 1) and len(split.y_test) == 6 and len(split.y_train) == 24
    vectors, _ = array_split({"x_train": rng.random((20, 3)), "y_train": np.arange(20) % 2})
    assert vectors.x_train.shape[1:] == (3,)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"y_train": np.arange(100) % 7 - 1}, ">= 0"),
        ({"x_val": np.zeros((3, 6, 9, 3))}, "'x_val' and 'y_val'"),
        ({"z": np.zeros(3)}, "'z'"),
        ({"y_train": np.zeros((100, 2))}, "y_train"),
        ({"x_train": np.zeros(100)}, "x_train"),
        ({"x_train": np.array([["a"] * 3] * 100)}, "x_train"),
    ],
)
def test_bad_arrays_named(change, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        array_split({**_arrays(), **change})


def test_too_few_classes_and_no_validation_left() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        array_split(_arrays(), n_classes=5)
    with pytest.raises(ValueError, match="val_fraction"):
        array_split(_arrays(5), test_fraction=0.5, val_fraction=0.01)


def test_npz_bytes_depend_only_on_arrays(tmp_path: Path) -> None:
    a = npz_bytes(_arrays())
    assert a == npz_bytes(dict(reversed(list(_arrays().items()))))
    digest = save_npz(tmp_path / "d.npz", _arrays())
    assert check_sha256(tmp_path / "d.npz", digest) == digest
    loaded = load_npz(tmp_path / "d.npz")
    assert np.array_equal(loaded["x_train"], _arrays()["x_train"])
    (tmp_path / "d.npz").write_bytes(npz_bytes({**_arrays(), "y_train": np.arange(100) % 5}))
    with pytest.raises(DataChangedError, match="d.npz has changed"):
        check_sha256(tmp_path / "d.npz", digest)


def test_text_split_char_and_word() -> None:
    chars = text_split("hello world\n" * 50, level="char")
    assert chars.vocab == ("\n", " ", "d", "e", "h", "l", "o", "r", "w") and chars.unk_id is None
    assert len(chars.train) + len(chars.val) + len(chars.test) == 600 and len(chars.val) == 30
    assert chars.decode(chars.train[:11]) == "hello world"
    words = text_split("The cat sat\nthe cat ran\n\n" * 40 + "a dog", level="word", vocab_size=3, lower=True)
    assert set(words.vocab[:3]) == {"<eos>", "cat", "the"} and words.vocab[3:] == ("<unk>",) and words.unk_id == 3
    assert words.decode(words.train[:4]) == "the cat <unk> <eos>"  # "sat" is not among the 3 most frequent
    with pytest.raises(ValueError, match="level"):
        text_split("abc", level="byte")
    with pytest.raises(ValueError, match="too few"):
        text_split("abc")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("key", ["x_train", "x_val"])
def test_non_finite_inputs_are_refused_naming_the_array(key: str, value: float) -> None:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((20, 3)), "y_train": np.arange(20) % 2,
              "x_val": rng.random((6, 3)), "y_val": np.arange(6) % 2}
    arrays[key] = arrays[key].copy()
    arrays[key][1, 2] = value
    with pytest.raises(ValueError, match=rf"{key}: 1 of \d+ input values are NaN or infinite"):
        array_split(arrays)
    arrays[key][:] = np.nan  # all of them
    with pytest.raises(ValueError, match=rf"{key}: \d+ of \d+ input values are NaN"):
        array_split(arrays)
