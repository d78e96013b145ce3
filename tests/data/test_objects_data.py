"""Cluttered object scenes (:func:`evokeras.data.object_scenes`) and the ``objects`` task."""

from __future__ import annotations

import numpy as np
import pytest

from evokeras.data import Split, mnist_splits, object_scenes
from evokeras.data import images as image_data
from evokeras.data import objects as objects_data

N_TRAIN, N_VAL, N_TEST = 300, 40, 40
LIMITS = {"train_size": N_TRAIN, "val_limit": N_VAL, "test_limit": N_TEST}
FASHION_INSTALLED = all(
    (image_data.FASHION_MNIST_DIR / name).is_file() for name in image_data._FASHION_FILES.values()
)


def _parts(split: Split) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (split.x_train, split.y_train),
        (split.x_val, split.y_val),
        (split.x_test, split.y_test),
    ]


@pytest.fixture(scope="module")
def source() -> Split:
    return mnist_splits(**LIMITS)


@pytest.fixture(scope="module")
def scenes() -> Split:
    return object_scenes(**LIMITS)


@pytest.fixture(scope="module")
def clean() -> tuple[Split, Split]:
    """Scenes without clutter, as classes and as positions."""
    kw = {"canvas": 40, "clutter": 0, "seed": 3, **LIMITS}
    return object_scenes(**kw), object_scenes(target="position", **kw)


def _corners(positions: np.ndarray, canvas: int) -> np.ndarray:
    """Top-left corners of the objects from the position targets (centre = corner + 14)."""
    corners = positions.astype(np.float64) * canvas - 14
    np.testing.assert_allclose(corners, np.round(corners), atol=1e-4)
    return np.round(corners).astype(int)


def test_shapes_dtypes_ranges(scenes: Split, source: Split) -> None:
    for (x, y), (_, y_src), n in zip(
        _parts(scenes), _parts(source), (N_TRAIN, N_VAL, N_TEST), strict=True
    ):
        assert x.shape == (n, 48, 48, 1) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int32 and y.shape == (n,)
        np.testing.assert_array_equal(y, y_src)  # labels of the same fixed split
        assert not x.flags.writeable and not y.flags.writeable
    assert repr(scenes).startswith("Split(train=300, val=40, test=40")


def test_clutter_zero_patch_is_the_source_image(clean: tuple[Split, Split], source: Split) -> None:
    classes, positions = clean
    for (x, y), (_, p), (img, y_src) in zip(
        _parts(classes), _parts(positions), _parts(source), strict=True
    ):
        np.testing.assert_array_equal(y, y_src)
        assert p.dtype == np.float32 and p.shape == (len(x), 2)
        assert 0.0 <= p.min() and p.max() <= 1.0
        corners = _corners(p, 40)
        assert corners.min() >= 0 and corners.max() <= 40 - 28  # fully inside the canvas
        for i in range(len(x)):
            r, c = corners[i]
            np.testing.assert_array_equal(x[i, r : r + 28, c : c + 28], img[i])
            rest = x[i].copy()
            rest[r : r + 28, c : c + 28] = 0
            assert not rest.any()
            ink = x[i, :, :, 0]
            rows, cols = np.indices(ink.shape)
            centroid = np.array([(rows * ink).sum(), (cols * ink).sum()]) / ink.sum() + 0.5
            assert np.abs(centroid - p[i] * 40).max() < 4.0
    # Positions spread over the canvas.
    assert len(np.unique(corners[:, 0])) > 8


def test_clutter_keeps_the_object_and_adds_fragments(scenes: Split, source: Split) -> None:
    positions = object_scenes(target="position", **LIMITS)
    corners = _corners(positions.y_train, 48)
    outside = []
    for i in range(N_TRAIN):
        r, c = corners[i]
        patch = scenes.x_train[i, r : r + 28, c : c + 28]
        assert (patch >= source.x_train[i]).all()  # pasted with max, over the clutter
        rest = scenes.x_train[i].copy()
        rest[r : r + 28, c : c + 28] = 0
        outside.append(rest.sum())
    assert np.median(outside) > 3.0  # fragments with ink around the object
    np.testing.assert_array_equal(positions.x_train, scenes.x_train)  # target does not change x


def test_deterministic_and_prefix_invariant(scenes: Split) -> None:
    objects_data._scenes_cached.cache_clear()
    again = object_scenes(**LIMITS)
    for (x, y), (x2, y2) in zip(_parts(scenes), _parts(again), strict=True):
        assert x is not x2
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    small = object_scenes(train_size=7, val_limit=3, test_limit=0)
    np.testing.assert_array_equal(small.x_train, scenes.x_train[:7])
    np.testing.assert_array_equal(small.x_val, scenes.x_val[:3])
    assert small.x_test.shape == (0, 48, 48, 1)
    # Across the generator blocks of 1,024 scenes.
    longer = object_scenes(canvas=28, clutter=2, train_size=1100, val_limit=0, test_limit=0)
    shorter = object_scenes(canvas=28, clutter=2, train_size=1030, val_limit=0, test_limit=0)
    np.testing.assert_array_equal(shorter.x_train, longer.x_train[:1030])
    other = object_scenes(seed=1, **LIMITS)
    assert not np.array_equal(other.x_train, scenes.x_train)
    np.testing.assert_array_equal(other.y_train, scenes.y_train)


@pytest.mark.skipif(not FASHION_INSTALLED, reason="Fashion-MNIST files absent")
def test_fashion_source() -> None:
    split = object_scenes(
        "fashion_mnist", clutter=0, target="position", train_size=5, val_limit=2, test_limit=2
    )
    images = image_data.fashion_mnist_splits(train_size=5, val_limit=2, test_limit=2)
    corners = _corners(split.y_train, 48)
    for i, (r, c) in enumerate(corners):
        np.testing.assert_array_equal(split.x_train[i, r : r + 28, c : c + 28], images.x_train[i])
    labels = object_scenes("fashion_mnist", train_size=5, val_limit=2, test_limit=2)
    np.testing.assert_array_equal(labels.y_train, images.y_train)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"canvas": 27}, "canvas"),
        ({"canvas": 48.0}, "canvas"),
        ({"fragment": 0}, "fragment"),
        ({"fragment": 29}, "fragment"),
        ({"clutter": -1}, "clutter"),
        ({"target": "box"}, "target"),
        ({"source": "cifar10"}, "source"),
        ({"seed": -1}, "seed"),
        ({"train_size": 0}, "train_size"),
        ({"val_limit": 5001}, "val_limit"),
        ({"test_limit": 10**6}, "test_limit"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        object_scenes(**kwargs)


def test_objects_task_decodes_and_fits_one_batch() -> None:
    from evokeras.nets.decode import decode
    from evokeras.tasks import ObjectRecognition, make_task

    task = make_task("objects")
    assert isinstance(task, ObjectRecognition) and task.name == "objects"
    assert task.input_shape == (48, 48, 1) and task.n_outputs == 10
    assert task.space.input_shape == (48, 48, 1)
    with pytest.raises(ValueError, match="canvas"):
        make_task("objects", canvas=20)
    data = task.data(train_size=16, val_limit=8, test_limit=0)
    assert data.x_train.shape == (16, 48, 48, 1) and data.y_train.dtype == np.int32
    genome = task.random_genome(np.random.default_rng(5), task.space)
    task.space.check(genome)
    model = decode(genome, task)
    assert model.output_shape == (None, 10)
    assert model.get_layer("head").activation.__name__ == "softmax"
    assert model.count_params() == task.space.analyze(genome).params
    history = model.fit(data.x_train, data.y_train, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "accuracy" in history.history
