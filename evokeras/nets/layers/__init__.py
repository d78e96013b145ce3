"""Custom Keras layers used by decoded genomes (``keras.ops`` only, serialisable).

Importing this package registers the layers with Keras (package ``"evokeras"``), so that
saved ``.keras`` files holding them load. Keras without a backend (the core install:
neither the extra ``tensorflow`` nor ``jax``) cannot define a layer: the package then
imports without its layers, and using one raises :class:`evokeras.MissingExtraError`
naming the extras, so that the genomes, operators and toolbox work without a backend.
"""

from __future__ import annotations

from typing import Any

from evokeras._meta import BACKEND_MODULES, optional_dependency, quiet_backend_import

__all__ = ["LastStep", "SkipStepCell", "SkipStepRNN", "SpatialResize"]

try:
    with quiet_backend_import():  # the first Keras import of the package, mostly
        from evokeras.nets.layers._laststep import LastStep
        from evokeras.nets.layers._resize import SpatialResize
        from evokeras.nets.layers.skipstep import SkipStepCell, SkipStepRNN
except ModuleNotFoundError as _exc:
    if (_exc.name or "").partition(".")[0] not in BACKEND_MODULES:
        raise
    _no_backend: ModuleNotFoundError = _exc

    def __getattr__(name: str) -> Any:
        if name in __all__:
            with optional_dependency():
                raise _no_backend
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
