"""Custom Keras layers used by decoded genomes (``keras.ops`` only, serialisable)."""

from __future__ import annotations

from evokeras.build.layers._laststep import LastStep
from evokeras.build.layers._resize import SpatialResize
from evokeras.build.layers.skipstep import SkipStepCell

__all__ = ["LastStep", "SkipStepCell", "SpatialResize"]
