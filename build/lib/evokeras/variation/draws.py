"""Random draws shared by the genome operators (:mod:`evokeras.variation.network`) and the cell
operators (:mod:`evokeras.variation.cell`); every draw takes the caller's ``numpy`` generator."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    """One element of ``seq``, uniformly."""
    return seq[int(rng.integers(len(seq)))]


def weighted(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """A name drawn with probability proportional to its (positive) weight."""
    names = [k for k, w in weights.items() if w > 0]
    p = np.array([weights[k] for k in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def nearest(value: Any, choices: Sequence[Any]) -> Any:
    """The choice closest to ``value`` (ties: the smaller)."""
    return min(choices, key=lambda c: (abs(c - value), c))


def first_change(
    parent: T,
    table: Mapping[str, Callable[..., T | None]],
    weights: Mapping[str, float],
    rng: np.random.Generator,
    *args: Any,
    who: str,
) -> T | None:
    """Draw mutations from ``table`` by ``weights`` until one changes ``parent``; a
    mutation that does not apply (``None`` or no change) is not drawn again. Returns the
    child, or ``None`` if none applies. Unknown names raise ``ValueError`` naming ``who``."""
    weights = dict(weights)
    unknown = set(weights) - set(table)
    if unknown:
        raise ValueError(f"{who}: unknown mutation {sorted(unknown)[0]!r} (known: {sorted(table)})")
    while any(w > 0 for w in weights.values()):
        name = weighted(rng, weights)
        child = table[name](parent, rng, *args)
        if child is not None and child != parent:
            return child
        weights[name] = 0.0
    return None
