"""Weight inheritance: a cache of trained weights by genome key (config key ``evaluation.inherit_weights``).

Weights are stored as ``<dir>/<key>.npz`` with one array per ``<layer name>/<index>``,
and, as JSON bytes (``_meta/0``), the genome they belong to and the training they have
had along their lineage (``steps``, ``seconds``). A child starts from its parent's
trained weights through the network morphism between the two genomes
(:func:`evokeras.nets.morph.transfer`); a file without a genome (written before 0.12, or
without one given) passes layer by layer where a layer of the same name has weights of
the same shapes. A cached file is data: it is read without unpickling, and one that
cannot be read as such (truncated, tampered, not numbers, meta that is not a JSON
object) is skipped (``parent_weights = "unreadable"``): the child trains from its
initial weights."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import atomic_path, loads_json
from evokeras.genomes.network import Genome, GenomeError
from evokeras.nets.morph import transfer

#: The layer name under which a file keeps its meta (JSON bytes): genome, lineage.
_META = "_meta"

__all__ = ["WeightCache"]


class WeightCache:
    """Trained weights by genome key in ``directory`` (shared by the run's workers)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"WeightCache({str(self.directory)!r})"

    def read(self, key: str) -> tuple[dict[str, list[np.ndarray]], dict[str, Any]] | str:
        """``(arrays by layer name, meta)`` of ``key``'s file, or why not: ``"missing"``,
        or ``"unreadable"`` when it is not an ``.npz`` of numeric ``<layer>/<index>``
        arrays (its meta, a JSON object, must parse too)."""
        path = self.directory / f"{key}.npz"
        if not path.is_file():
            return "missing"
        arrays: dict[str, list[tuple[int, np.ndarray]]] = {}
        try:
            with np.load(path, allow_pickle=False) as stored:
                for name in stored.files:
                    layer, slash, index = name.rpartition("/")
                    array = stored[name]
                    if not slash or not index.isdigit() or array.dtype.kind not in "fiu":
                        raise ValueError(f"{name!r}: not a numeric <layer>/<index> array")
                    arrays.setdefault(layer, []).append((int(index), array))
            meta_arrays = arrays.pop(_META, [])
            meta = loads_json(meta_arrays[0][1].astype(np.uint8).tobytes(), where=str(path)) if meta_arrays else {}
            if not isinstance(meta, dict):
                raise ValueError("meta: not a JSON object")
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # UnreadableFile is a ValueError
            return "unreadable"
        return {layer: [a for _, a in sorted(parts, key=lambda t: t[0])] for layer, parts in arrays.items()}, meta

    def lineage(self, key: str | None) -> dict[str, float]:
        """The training ``key``'s weights have had along their lineage: ``steps`` and
        ``seconds`` (0 for no key, or a file without them)."""
        read = self.read(key) if key is not None else "missing"
        meta = read[1] if isinstance(read, tuple) else {}
        return {k: float(v) if isinstance(v := meta.get(k), int | float) and math.isfinite(v) and v >= 0 else 0.0
                for k in ("steps", "seconds")}

    def inherit(self, model: Any, parent: str | None, *, genome: Any = None, stem_channels: int | None = None) -> dict[str, Any]:
        """Set ``model`` from ``parent``'s cached weights.

        With the child's ``genome`` (and the channels of the task's stem) and a parent
        file that names its genome, through the morphism between them
        (:func:`evokeras.nets.morph.transfer`); else layer by layer where a layer of the
        same name has weights of the same shapes.

        Returns the figures to record: ``inherited_layers`` (0 without a parent),
        ``parent``, with a morphism ``identity_layers``, and ``parent_weights`` ``"missing"``
        when the parent is not cached, ``"unreadable"`` when its file is not an ``.npz``
        of numeric ``<layer>/<index>`` arrays.
        """
        metrics: dict[str, Any] = {"inherited_layers": 0}
        if parent is None:
            return metrics
        metrics["parent"] = parent
        read = self.read(parent)
        if isinstance(read, str):
            metrics["parent_weights"] = read
            return metrics
        arrays, meta = read
        if genome is not None and stem_channels is not None and isinstance(meta.get("genome"), dict):
            try:
                parent_genome = Genome.from_dict(meta["genome"])
            except (GenomeError, TypeError, ValueError):
                metrics["parent_weights"] = "unreadable"
                return metrics
            fresh = model.get_weights()
            try:
                metrics.update(transfer(model, genome, parent_genome, arrays, stem_channels=stem_channels))
            except (ValueError, IndexError, TypeError):  # arrays that do not fit the genome they name
                model.set_weights(fresh)
                metrics["parent_weights"] = "unreadable"
            return metrics
        count = 0
        for layer in model.layers:
            old = arrays.get(layer.name, [])
            current = layer.get_weights()
            if current and len(old) == len(current) and all(a.shape == b.shape for a, b in zip(old, current, strict=True)):
                layer.set_weights(old)
                count += 1
        metrics["inherited_layers"] = count
        return metrics

    def save(self, model: Any, key: str, *, genome: Any = None, steps: float = 0.0, seconds: float = 0.0) -> None:
        """Cache ``model``'s trained weights as ``<key>.npz``; with its ``genome`` (a
        child can then inherit through a morphism) and the ``steps`` and ``seconds`` of
        training its weights have had along their lineage."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
        meta: dict[str, Any] = {"steps": float(steps), "seconds": float(seconds)}
        if genome is not None:
            meta["genome"] = genome.to_dict()
        arrays[f"{_META}/0"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with atomic_path(self.directory / f"{key}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def keep_only(self, keys: set[str]) -> None:
        """Forget the weights of every genome not in ``keys`` (the next parents)."""
        if self.directory.is_dir():
            for path in self.directory.glob("*.npz"):
                if path.stem not in keys:
                    path.unlink(missing_ok=True)
