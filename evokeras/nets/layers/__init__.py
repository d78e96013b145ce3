"""Custom Keras layers used by decoded genomes (``keras.ops`` only, serialisable).

Importing this package imports neither Keras nor a backend (``evokeras --help``, the
genomes, the operators and the toolbox stay fast): the layers are defined, and registered
with Keras (package ``"evokeras"``, so that saved ``.keras`` files holding them load),
when one of them is first used or as soon as the process imports Keras, whichever comes
first -- whoever imports Keras, once this package is imported, loads a model file holding
them. That import of Keras runs with TensorFlow's native start-up lines kept off stderr
(:func:`evokeras._meta.quiet_backend_import`). Keras without a backend (the core install:
neither the extra ``tensorflow`` nor ``jax``) cannot define a layer: using one raises
:class:`evokeras.MissingExtraError` naming the extras, and the genomes, operators and
toolbox work without a backend.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

from evokeras._meta import BACKEND_MODULES, optional_dependency, quiet_backend_import

__all__ = ["LastStep", "SkipStepCell", "SkipStepRNN", "SpatialResize"]

#: The module (in this package) that defines each layer; importing it imports Keras.
_MODULES = {"LastStep": "_laststep", "SpatialResize": "_resize", "SkipStepCell": "skipstep", "SkipStepRNN": "skipstep"}

_no_backend: ModuleNotFoundError | None = None  # why the layers cannot be defined (no Keras backend)


def _define() -> None:
    """Import the layers' modules (so Keras): defines and registers every layer. Without a
    Keras backend, notes why (:data:`_no_backend`) instead."""
    global _no_backend
    try:
        with quiet_backend_import():
            modules = {m: importlib.import_module(f"{__name__}.{m}") for m in dict.fromkeys(_MODULES.values())}
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in BACKEND_MODULES:
            raise
        _no_backend = exc
        return
    for name, module in _MODULES.items():
        globals()[name] = getattr(modules[module], name)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _no_backend is None:
        _define()
    if _no_backend is not None:
        with optional_dependency():
            raise _no_backend
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _KerasLoader(importlib.abc.Loader):
    """Keras's own loader, with its module run quietly and the layers defined after it."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:  # the rest of the loader's interface
        return getattr(self.loader, name)

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with quiet_backend_import():
            self.loader.exec_module(module)
        try:
            _define()
        except Exception:  # noqa: BLE001 - never Keras's import's failure: the first use of a layer raises it
            pass


class _WhenKerasImports(importlib.abc.MetaPathFinder):
    """A :data:`sys.meta_path` finder, there until Keras is imported: gives Keras's spec
    with :class:`_KerasLoader` around its loader."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        _unhook()
        spec = importlib.util.find_spec(fullname)  # the finders after this one
        if spec is not None and spec.loader is not None:
            spec.loader = _KerasLoader(spec.loader)
        return spec


def _unhook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _WhenKerasImports)]


if "keras" in sys.modules:  # Keras is there already: nothing to save by waiting
    _define()
else:
    _unhook()
    sys.meta_path.insert(0, _WhenKerasImports())
