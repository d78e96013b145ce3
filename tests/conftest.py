"""Shared fixtures for the core tests (genome, space, operators, toolbox, decode, layers).

Nothing here imports Keras at module level: tests that never build a model (and the
``spawn`` worker of the toolbox tests) stay free of the backend import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from evokeras import SearchSpace, Task, default_space, make_task  # noqa: E402
from evokeras.tasks import SupervisedTask  # noqa: E402


class VectorTask(SupervisedTask):
    """A 4-feature, 2-class vector task (dense-only genomes), for tests."""

    name = "test_vector"
    family = "vector"
    input_shape = (4,)
    n_outputs = 2

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, activation="softmax", name="head")(x)

    def loss(self) -> Any:
        return "sparse_categorical_crossentropy"


class SequenceTask(SupervisedTask):
    """A (16 steps, 3 channels) -> 3 classes sequence task (Conv1D genomes), for tests."""

    name = "test_sequence"
    family = "sequence"
    input_shape = (16, 3)
    n_outputs = 3

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, activation="softmax", name="head")(x)

    def loss(self) -> Any:
        return "sparse_categorical_crossentropy"


class LanguageTask(SupervisedTask):
    """Next-token prediction on 12 int tokens of a 50-token vocabulary, for tests.

    The stem embeds the tokens into 8 channels (stem shape (12, 8), 400 parameters);
    the model keeps the time axis (``sequence_output``) and the head gives 50 logits
    per step. The space draws recurrent, dropout and dense genes.
    """

    name = "test_language"
    family = "sequence"
    input_shape = (12,)
    n_outputs = 50
    sequence_output = True
    stem_params = 50 * 8

    def __init__(self, *, space: SearchSpace | None = None) -> None:
        base = default_space("sequence").replace(
            layer_kinds={"recurrent": 2.0, "dropout": 0.5, "dense": 1.0},
            cell_units=(4, 8, 16),
            max_layers=5,
            init_layers=(1, 4),
            max_params=20_000,
        )
        super().__init__(space=space if space is not None else base)

    @property
    def stem_shape(self) -> tuple[int, ...]:
        return (12, 8)

    def stem(self, inputs: Any) -> Any:
        import keras

        return keras.layers.Embedding(50, 8, name="stem_embedding")(inputs)

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, name="head")(x)

    def loss(self) -> Any:
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="session")
def mnist_task() -> Task:
    return make_task("mnist")


@pytest.fixture(scope="session")
def image_space(mnist_task: Task) -> SearchSpace:
    """The wide image space (``SearchSpace()``: every kind, optimizer and reduction) bound
    to MNIST shapes, (28, 28, 1) -> 10; the operators are tested on it (the priors of
    ``default_space("image")`` have their own tests, tests/nets/test_block.py)."""
    return mnist_task.with_space(SearchSpace()).space


@pytest.fixture(scope="session")
def vector_task() -> VectorTask:
    return VectorTask()


@pytest.fixture(scope="session")
def vector_space() -> SearchSpace:
    return default_space("vector").replace(input_shape=(4,), n_outputs=2)


@pytest.fixture(scope="session")
def sequence_task() -> SequenceTask:
    return SequenceTask()


@pytest.fixture(scope="session")
def language_task() -> LanguageTask:
    return LanguageTask()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@contextlib.contextmanager
def lazy_weights() -> Iterator[None]:
    """Build Keras models without drawing their initial weights.

    Variables created inside a ``keras.StatelessScope(initialize_variables=False)``
    keep their shapes but defer the initializer. That is all a shape or parameter
    count check needs, and it avoids compiling one random kernel per weight shape
    (about a second each on the JAX CPU backend). The deferred variables are dropped
    on exit so that no later stateless scope initializes them.
    """
    import keras
    from keras.src.backend.common import global_state

    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute("uninitialized_variables", [])


@pytest.fixture
def lazy() -> Any:
    """The :func:`lazy_weights` context manager, for tests that build many models."""
    return lazy_weights


@contextlib.contextmanager
def numpy_initial_weights(seed: int = 0) -> Iterator[None]:
    """On JAX, draw Keras' random initial weights with numpy.

    Building a layer draws its initial weights; on JAX each new weight shape compiles
    the backend's random kernels (about a second each on 2 loaded cores), and
    :func:`~evokeras.nets.surgery.apply_program` builds layers of new (sliced) shapes only to
    overwrite their weights at once. Numpy draws keep those builds cheap; nothing is
    patched on other backends, and the patch ends with the context.
    """
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax.numpy as jnp
    from keras.src.backend.jax import random as jax_random

    rng = np.random.default_rng(seed)

    def as_array(values: np.ndarray, dtype: Any) -> Any:
        return jnp.asarray(values, dtype=dtype or keras.backend.floatx())

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):  # noqa: ANN001, ANN202
        return as_array(rng.uniform(minval, maxval, shape), dtype)

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):  # noqa: ANN001, ANN202
        return as_array(rng.normal(mean, stddev, shape), dtype)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):  # noqa: ANN001, ANN202
        z = rng.normal(0.0, 1.0, shape)
        while np.any(bad := np.abs(z) > 2):
            z[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        return as_array(mean + stddev * z, dtype)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jax_random, "uniform", uniform)
        mp.setattr(jax_random, "normal", normal)
        mp.setattr(jax_random, "truncated_normal", truncated_normal)
        yield
