"""Hypothesis strategies shared by the fuzz tests: JSON values and one generated change
somewhere inside a parsed JSON document."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(*, allow_nan: bool) -> st.SearchStrategy[Any]:
    """Small JSON-like values (``allow_nan``: NaN and infinities among the floats)."""
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.floats(allow_nan=allow_nan),
                     st.text(max_size=5))
    return st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                  st.dictionaries(st.text(max_size=6), c, max_size=3)),
                        max_leaves=6)


def mutate(value: Any, data: st.DataObject, values: st.SearchStrategy[Any]) -> Any:
    """``value`` (parsed JSON) with one part somewhere inside it replaced by a draw of ``values``."""
    if isinstance(value, dict) and value and data.draw(st.integers(0, 3)):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: mutate(value[key], data, values)}
    if isinstance(value, list) and value and data.draw(st.integers(0, 3)):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate(value[i], data, values), *value[i + 1:]]
    return data.draw(values)
