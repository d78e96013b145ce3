"""Tests for :mod:`evokeras.nets.layers` (``SpatialResize``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from evokeras.nets.layers import SpatialResize


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (7, 7)},
        {"size": [5], "interpolation": "nearest"},
        {"size": (3, 9), "name": "resize_x"},
    ],
)
def test_config_round_trip(kwargs: dict) -> None:
    layer = SpatialResize(**kwargs)
    config = layer.get_config()
    assert config["size"] == list(kwargs["size"])
    assert config["interpolation"] == kwargs.get("interpolation", "bilinear")
    clone = SpatialResize.from_config(config)
    assert clone.size == tuple(kwargs["size"])
    assert clone.interpolation == layer.interpolation
    assert clone.name == layer.name
    assert clone.get_config() == config


def test_registered_for_keras_serialization() -> None:
    layer = SpatialResize((4, 6), interpolation="nearest")
    data = keras.saving.serialize_keras_object(layer)
    assert keras.saving.get_registered_name(SpatialResize) == "evokeras>SpatialResize"
    back = keras.saving.deserialize_keras_object(data)
    assert isinstance(back, SpatialResize)
    assert (back.size, back.interpolation) == ((4, 6), "nearest")


@pytest.mark.parametrize(
    ("input_shape", "size", "expected"),
    [
        ((2, 14, 14, 3), (7, 7), (2, 7, 7, 3)),  # 2-D down
        ((2, 7, 7, 3), (14, 14), (2, 14, 14, 3)),  # 2-D up
        ((2, 5, 9, 1), (3, 4), (2, 3, 4, 1)),  # 2-D, unequal axes
        ((2, 16, 3), (8,), (2, 8, 3)),  # 1-D down
        ((1, 4, 5), (10,), (1, 10, 5)),  # 1-D up
    ],
)
def test_output_shapes(input_shape: tuple, size: tuple, expected: tuple) -> None:
    layer = SpatialResize(size)
    x = np.random.default_rng(0).normal(size=input_shape).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == expected
    assert layer.compute_output_shape((None, *input_shape[1:])) == (None, *expected[1:])
    symbolic = layer(keras.Input(shape=input_shape[1:]))
    assert tuple(symbolic.shape) == (None, *expected[1:])


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("shape", [(2, 6, 6, 2), (2, 6, 2)])
def test_values(interpolation: str, shape: tuple) -> None:
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    same = SpatialResize(shape[1:-1], interpolation=interpolation)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(same), x, atol=1e-6)
    constant = np.full(shape, 3.5, dtype="float32")
    big = SpatialResize(tuple(2 * s for s in shape[1:-1]), interpolation=interpolation)(constant)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(big), 3.5, atol=1e-6)


def test_nearest_upsampling_repeats_steps() -> None:
    x = np.arange(3, dtype="float32").reshape(1, 3, 1)
    y = keras.ops.convert_to_numpy(SpatialResize((6,), interpolation="nearest")(x))
    assert y[0, :, 0].tolist() == [0, 0, 1, 1, 2, 2]


BAD_ARGUMENTS = {
    "empty size": ({"size": ()}, "`size`"),
    "three axes": ({"size": (2, 2, 2)}, "`size`"),
    "zero": ({"size": (0, 4)}, "`size`"),
    "negative": ({"size": (-3,)}, "`size`"),
    "interpolation": ({"size": (4, 4), "interpolation": "bicubic"}, "`interpolation`"),
}


@pytest.mark.parametrize(("kwargs", "name"), list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        SpatialResize(**kwargs)
    assert repr(kwargs.get("interpolation", tuple(kwargs["size"]))) in str(info.value)


def test_scalar_size_means_one_spatial_axis() -> None:
    assert SpatialResize(8).size == (8,)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(2.7,), (True, 3), "ab"])
def test_non_integer_size_is_rejected_with_a_value_error(size: object) -> None:
    with pytest.raises(ValueError, match="`size`"):
        SpatialResize(size)  # type: ignore[arg-type]
