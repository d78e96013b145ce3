"""Cluttered object scenes: an MNIST digit or Fashion-MNIST garment pasted into a canvas.

See :func:`object_scenes`; the images and their split come from :mod:`evokeras.data.images`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping

import numpy as np

from .base import Split, check_count, check_int, read_only, split_code, take
from .images import DEFAULT_VAL_SIZE, load_fashion_mnist_arrays, load_mnist_arrays

__all__ = ["object_scenes"]

logger = logging.getLogger(__name__)

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
    rng = np.random.default_rng([seed, split_code(part), block])
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
    return read_only(x), read_only(labels[:count].astype(np.int32)), read_only(centres)


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
        >>> from evokeras.data import object_scenes
        >>> split = object_scenes(train_size=100, val_limit=10, test_limit=10)
        >>> split.x_train.shape, split.y_train[:3].tolist()
        ((100, 48, 48, 1), [5, 0, 4])
    """
    _check_scene_options(source, target, canvas, clutter, fragment, seed)
    counts = _scene_counts(source, train_size, val_limit, test_limit)
    arrays = []
    for part, count in counts.items():
        x, labels, centres = _scenes_cached(
            source, part, count, int(canvas), int(clutter), int(fragment), int(seed)
        )
        arrays += [x, labels if target == "class" else centres]
    return Split(*arrays)


def _check_scene_options(source: str, target: str, canvas: int, clutter: int, fragment: int, seed: int) -> None:
    """Check the arguments of :func:`object_scenes` that shape the scenes (ValueError or
    TypeError naming the first bad one)."""
    if source not in _SCENE_SOURCES:
        raise ValueError(f"source must be one of {sorted(_SCENE_SOURCES)}, got {source!r}")
    if target not in _SCENE_TARGETS:
        raise ValueError(f"target must be one of {_SCENE_TARGETS}, got {target!r}")
    check_int("canvas", canvas, _OBJECT)
    check_int("clutter", clutter, 0)
    check_int("fragment", fragment, 1, _OBJECT)
    check_int("seed", seed, 0)


def _scene_counts(
    source: str, train_size: int | None, val_limit: int | None, test_limit: int | None
) -> dict[str, int]:
    """The number of scenes :func:`object_scenes` returns per split (``"train"``,
    ``"val"``, ``"test"``): the split's size, or its limit (checked; a ValueError if it
    exceeds the split)."""
    check_count("train_size", train_size, 1)
    check_count("val_limit", val_limit, 0)
    check_count("test_limit", test_limit, 0)
    return {
        part: take(name, len(_scene_part(source, part)[1]), limit)
        for part, name, limit in (
            ("train", "train_size", train_size),
            ("val", "val_limit", val_limit),
            ("test", "test_limit", test_limit),
        )
    }
