"""Custom Keras layers used by decoded genomes (``keras.ops`` only, serialisable)."""

from __future__ import annotations

from ._laststep import LastStep
from ._resize import SpatialResize
from .skipstep import SkipStepCell

__all__ = ["LastStep", "SkipStepCell", "SpatialResize"]
