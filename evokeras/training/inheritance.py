"""Weight inheritance: a cache of trained weights by genome key (config key ``evaluation.inherit_weights``).

A child starts from its parent's trained weights where a layer (same name: same position
and kind) has weights of the same shapes. Weights are stored as ``<dir>/<key>.npz`` with
one array per ``<layer name>/<index>``. A cached file is data: it is read without
unpickling, and one that cannot be read as such (truncated, tampered, not numbers) is
skipped (``parent_weights = "unreadable"``): the child trains from its initial weights.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import atomic_path

__all__ = ["WeightCache"]


class WeightCache:
    """Trained weights by genome key in ``directory`` (shared by the run's workers)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"WeightCache({str(self.directory)!r})"

    def inherit(self, model: Any, parent: str | None) -> dict[str, Any]:
        """Set ``model``'s matching layers from ``parent``'s cached weights.

        Returns the figures to record: ``inherited_layers`` (0 without a parent),
        ``parent``, and ``parent_weights`` ``"missing"`` when the parent is not cached,
        ``"unreadable"`` when its file is not an ``.npz`` of numeric ``<layer>/<index>`` arrays.
        """
        metrics: dict[str, Any] = {"inherited_layers": 0}
        if parent is None:
            return metrics
        metrics["parent"] = parent
        path = self.directory / f"{parent}.npz"
        if not path.is_file():
            metrics["parent_weights"] = "missing"
            return metrics
        arrays: dict[str, list[tuple[int, np.ndarray]]] = {}
        try:
            with np.load(path, allow_pickle=False) as stored:
                for name in stored.files:
                    layer, slash, index = name.rpartition("/")
                    array = stored[name]
                    if not slash or not index.isdigit() or array.dtype.kind not in "fiu":
                        raise ValueError(f"{name!r}: not a numeric <layer>/<index> array")
                    arrays.setdefault(layer, []).append((int(index), array))
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            metrics["parent_weights"] = "unreadable"
            return metrics
        count = 0
        for layer in model.layers:
            old = [a for _, a in sorted(arrays.get(layer.name, []), key=lambda t: t[0])]
            current = layer.get_weights()
            if current and len(old) == len(current) and all(a.shape == b.shape for a, b in zip(old, current, strict=True)):
                layer.set_weights(old)
                count += 1
        metrics["inherited_layers"] = count
        return metrics

    def save(self, model: Any, key: str) -> None:
        """Cache ``model``'s trained weights as ``<key>.npz``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
        with atomic_path(self.directory / f"{key}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def keep_only(self, keys: set[str]) -> None:
        """Forget the weights of every genome not in ``keys`` (the next parents)."""
        if self.directory.is_dir():
            for path in self.directory.glob("*.npz"):
                if path.stem not in keys:
                    path.unlink(missing_ok=True)
