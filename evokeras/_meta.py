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

import importlib
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BACKEND_MODULES", "EXTRA_OF", "MissingExtraError", "RenamedPackage", "__version__", "optional_dependency", "quiet_backend_import", "quiet_backends"]

__version__ = "0.16.0"

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
    "mlflow": "mlflow",
}

#: The Keras backends' modules: Keras imports one of them when it is imported.
BACKEND_MODULES: frozenset[str] = frozenset({"tensorflow", "jax", "jaxlib"})

#: What each extra is for, in the error message.
_PURPOSE: dict[str, str] = {
    "tensorflow": "Keras' default backend; for JAX instead: pip install 'evokeras[jax]', KERAS_BACKEND=jax",
    "jax": "the JAX Keras backend",
    "rl": "the CartPole task",
    "dask": "the Dask evaluation backend",
    "data": "the packaged data sets (MNIST, Fashion-MNIST, the Bible)",
    "tensorboard": "the TensorBoard callback",
    "optuna": "the export of a run to an Optuna study",
    "mlflow": "the MLflow callback",
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
            f"{top} is not installed: pip install 'evokeras[{extra}]' (needed for {_PURPOSE[extra]})",
            name=exc.name,
        ) from exc


@contextmanager
def quiet_backend_import() -> Iterator[None]:
    """Import Keras (and so TensorFlow) with the process's native stderr sent to /dev/null.

    TensorFlow's shared libraries write an absl banner and a oneDNN notice straight to
    file descriptor 2 while they load, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. This
    silences them, and only them: it does nothing once TensorFlow is imported or when
    ``TF_CPP_MIN_LOG_LEVEL`` is not ``3`` (the user asked for TensorFlow's logs). Python's
    own ``sys.stderr`` is flushed first; an import error is raised after stderr is back.
    """
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable descriptor 2: nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_backends() -> None:
    """Keep TensorFlow's C++ logging (and the absl banner it prints first) off stderr
    unless the user asked for it: sets ``TF_CPP_MIN_LOG_LEVEL=3`` when unset. Only takes
    effect before TensorFlow is imported, so the package calls it before importing Keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class RenamedPackage:
    """A :data:`sys.meta_path` finder that keeps an old package name importable for one
    release: ``import evokeras.build.decode`` warns (:class:`DeprecationWarning`) and
    gives the module ``evokeras.nets.decode`` itself (one module object, two names)."""

    def __init__(self, old: str, new: str, since: str) -> None:
        self.old, self.new, self.since = old, new, since
        self._specs: dict[str, object] = {}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != self.old and not fullname.startswith(self.old + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: object) -> object:
        name = spec.name  # type: ignore[attr-defined]
        new = self.new + name[len(self.old):]
        warnings.warn(f"{name} was renamed {new} in {self.since}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._specs[name] = module.__spec__  # the import system sets the old name's spec on it
        return module

    def exec_module(self, module: object) -> None:
        """The module was run under its new name already: give it its own spec back."""
        spec = self._specs.pop(module.__spec__.name)  # type: ignore[attr-defined]
        module.__spec__ = spec  # type: ignore[attr-defined]
        if spec.submodule_search_locations is None and hasattr(module, "__path__"):  # type: ignore[attr-defined]
            del module.__path__  # type: ignore[attr-defined]  # a module, not a package
