"""What the installed package is: its version and its optional dependencies.

``__version__`` is the one place the version is written (``pyproject.toml`` reads it
from here). :func:`optional_dependency` turns the import error of a module that an
extra provides into one message naming the extra::

    with optional_dependency():
        import gymnasium          # ModuleNotFoundError -> "... pip install 'evokeras[rl]'"

The extras (``pyproject.toml``): ``tensorflow`` and ``jax`` (a Keras backend; the core
installs Keras without one), ``rl`` (gymnasium), ``dask`` (the Dask backend), ``data``
(the data-set packages), ``tensorboard``, ``optuna`` (the run-logging callbacks),
``bench``, ``test`` and ``all``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["EXTRA_OF", "MissingExtraError", "__version__", "optional_dependency", "quiet_backends"]

__version__ = "0.4.0"

#: The extra that provides each optional top-level module.
EXTRA_OF: dict[str, str] = {
    "tensorflow": "tensorflow",
    "jax": "jax",
    "jaxlib": "jax",
    "gymnasium": "rl",
    "pygame": "rl",
    "dask": "dask",
    "distributed": "dask",
    "zarr": "data",
    "pureml": "data",
    "bible": "data",
    "tensorboard": "tensorboard",
    "optuna": "optuna",
}

#: What each extra is for, in the error message.
_PURPOSE: dict[str, str] = {
    "tensorflow": "the TensorFlow Keras backend (or install 'evokeras[jax]' and set KERAS_BACKEND=jax)",
    "jax": "the JAX Keras backend",
    "rl": "the CartPole task",
    "dask": "the Dask evaluation backend",
    "data": "the packaged data sets (MNIST, Fashion-MNIST, the Bible)",
    "tensorboard": "the TensorBoard callback",
    "optuna": "the export of a run to an Optuna study",
}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that provides it."""


@contextmanager
def optional_dependency() -> Iterator[None]:
    """Re-raise a ``ModuleNotFoundError`` of a module in :data:`EXTRA_OF` as a
    :class:`MissingExtraError` naming the extra to install; other errors pass unchanged."""
    try:
        yield
    except MissingExtraError:
        raise
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        extra = EXTRA_OF.get(top)
        if extra is None:
            raise
        raise MissingExtraError(
            f"{top} is not installed; it is needed for {_PURPOSE[extra]}: pip install 'evokeras[{extra}]'",
            name=exc.name,
        ) from exc


def quiet_backends() -> None:
    """Keep TensorFlow's C++ logging (and the absl banner it prints first) off stderr
    unless the user asked for it: sets ``TF_CPP_MIN_LOG_LEVEL=3`` when unset. Only takes
    effect before TensorFlow is imported, so the package calls it before importing Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
