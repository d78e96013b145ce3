"""Content keys and checks shared by every genome kind (network genome, cell, edit program)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["GenomeError", "Keyed", "check_keys", "is_int", "key_of"]


class GenomeError(ValueError):
    """A genome (or its dictionary form) is malformed; the message names the field."""


def key_of(data: Mapping[str, Any]) -> str:
    """The content key of a genome (or edit program) from its dictionary form."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class Keyed:
    """Canonical JSON and a content key for records with ``to_dict``/``from_dict``
    (genomes and evolved cells)."""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the basis of :attr:`key`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))  # type: ignore[attr-defined]


    @classmethod
    def from_json(cls, text: str) -> Any:
        return cls.from_dict(json.loads(text))  # type: ignore[attr-defined]

    @property
    def key(self) -> str:
        """A stable 16-hex-digit content hash: equal contents, equal keys, across runs."""
        return key_of(self.to_dict())  # type: ignore[attr-defined]


def check_keys(data: Any, known: set[str], where: str) -> None:
    """Raise :class:`GenomeError` unless ``data`` is a mapping with only ``known`` keys."""
    if not isinstance(data, Mapping):
        raise GenomeError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise GenomeError(f"{where}: unknown key {unknown[0]!r} (known: {sorted(known)})")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
