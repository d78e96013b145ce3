"""Declared configuration fields: one checker and one JSON Schema for every section.

A configuration section is a frozen dataclass mixing in :class:`Checked`. Each field
declares its type by its annotation (``int``, ``float``, ``bool``, ``str``,
``dict[str, ...]``, a section class, any of them ``| None``) and its bounds in its
``metadata``, in JSON Schema's words: ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``enum``, ``pattern`` (with ``expected``: how the message words
it); ``shape`` is the dataclass whose fields an object value's keys are (the value is
kept as a dict with its defaults filled in). A section's ``RULES`` are the few checks
across fields. :func:`check` runs on construction (also through ``dataclasses.replace``);
every error is one :class:`ConfigError` naming the full key path, e.g. ``config key
'strategy.population': must be >= 2, got 1``. :func:`schema_of` describes the same
declarations as JSON Schema, with the descriptions of the classes' ``Attributes:``
docstrings.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = ["BOUNDS", "Checked", "ConfigError", "Rule", "check", "check_keys", "describe", "schema_of"]


class ConfigError(ValueError):
    """A configuration key is unknown or has a wrong value; the message names it."""


#: A check across the fields of a section: ``None``, or the key it blames and why.
Rule = Callable[[Any], "tuple[str, str] | None"]

#: Bound keywords of field metadata (JSON Schema's), their words in messages and tests.
BOUNDS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "minimum": (">=", operator.ge),
    "maximum": ("<=", operator.le),
    "exclusiveMinimum": (">", operator.gt),
    "exclusiveMaximum": ("<", operator.lt),
}

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
_WORDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "an object"}


class Checked:
    """Mixin of a configuration dataclass: every field is checked on construction."""

    #: The section's key path (``""``: the top level).
    KEY: ClassVar[str] = ""
    #: Checks across fields, run after each field's own.
    RULES: ClassVar[tuple[Rule, ...]] = ()

    def __post_init__(self) -> None:
        check(self)


def key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def check_keys(cls: type, data: Any, where: str, aliases: Mapping[str, str] | None = None) -> None:
    """``data`` is an object whose keys are all fields of the dataclass ``cls``; an
    unknown key's message suggests the closest known one (``aliases``: other accepted
    names, each with the key path it stands for)."""
    if not isinstance(data, Mapping):
        what = f"config key {where!r}" if where else "config"
        raise ConfigError(f"{what}: expected {'an' if where else 'a JSON'} object, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            paths = {**{name: key_path(where, name) for name in known}, **(aliases or {})}
            close = difflib.get_close_matches(str(key), list(paths), n=1, cutoff=0.75)
            hint = f"; did you mean {paths[close[0]]!r}?" if close else ""
            raise ConfigError(f"unknown config key {key_path(where, str(key))!r} (known: {', '.join(sorted(known))}){hint}")


def check(obj: Any) -> None:
    """Check every field of the section ``obj``, then its rules; a dict field becomes a
    plain dict (a ``shape`` one with its defaults filled in)."""
    hints = _hints(type(obj))  # type: ignore[arg-type]  # a class is hashable
    for f in dataclasses.fields(obj):
        old = getattr(obj, f.name)
        new = _checked(key_path(obj.KEY, f.name), old, hints[f.name], f.metadata)
        if new is not old:
            object.__setattr__(obj, f.name, new)
    for rule in obj.RULES:
        broken = rule(obj)
        if broken is not None:
            raise ConfigError(f"config key {key_path(obj.KEY, broken[0])!r}: {broken[1]}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap(hint: Any) -> tuple[bool, Any]:
    """``(optional, type)`` of an annotation ``T`` or ``T | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(args) < len(typing.get_args(hint)), args[0]
    return False, hint


def _finite(where: str, value: Any) -> None:
    """No NaN or infinity anywhere in a value (``wall_seconds: NaN`` would mean no limit)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {where!r}: expected a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _finite(f"{where}.{k}", v)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _finite(f"{where}[{i}]", v)


def _is(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint) or hint
    if hint is Any:
        return True
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is dict:
        item = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return isinstance(value, Mapping) and all(isinstance(k, str) and _is(v, item) for k, v in value.items())
    return isinstance(value, origin)


def _words(hint: Any) -> str:
    origin = typing.get_origin(hint) or hint
    if origin is dict and typing.get_args(hint) and typing.get_args(hint)[1] is not Any:
        return f"an object of {_words(typing.get_args(hint)[1]).split(' ', 1)[1]}s"
    return _WORDS.get(origin, f"a {getattr(origin, '__name__', origin)}")


def _checked(where: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    """``value`` if it is a valid value of the field at ``where`` (a dict copied, a
    ``shape`` one with its defaults); else :class:`ConfigError`."""
    _finite(where, value)
    optional, hint = _unwrap(hint)
    if value is None and optional:
        return None
    if not _is(value, hint):
        got = "null" if value is None else f"{type(value).__name__} {value!r}"
        raise ConfigError(f"config key {where!r}: expected {_words(hint)}{' or null' if optional else ''}, got {got}")
    for name, (word, holds) in BOUNDS.items():
        if name in meta and not holds(value, meta[name]):
            raise ConfigError(f"config key {where!r}: must be {word} {meta[name]}, got {value!r}")
    if "enum" in meta and value not in meta["enum"]:
        raise ConfigError(f"config key {where!r}: expected one of {', '.join(map(repr, meta['enum']))}, got {value!r}")
    if "pattern" in meta and not re.search(meta["pattern"], value):
        raise ConfigError(f"config key {where!r}: expected {meta.get('expected', 'a match of ' + meta['pattern'])}, "
                          f"got {value!r}")
    if "shape" in meta:
        check_keys(meta["shape"], value, where)
        return dataclasses.asdict(meta["shape"](**value))
    return dict(value) if isinstance(value, Mapping) else value


# -- JSON Schema ---------------------------------------------------------------------------
def schema_of(cls: type) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the section ``cls``: an object of its fields,
    nothing else, each with its type, default, bounds and description."""
    docs = describe(cls)
    hints = _hints(cls)
    properties = {f.name: _field_schema(f, hints[f.name], docs.get(f.name)) for f in dataclasses.fields(cls)}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _field_schema(f: dataclasses.Field, hint: Any, doc: str | None) -> dict[str, Any]:
    optional, hint = _unwrap(hint)
    shape = f.metadata.get("shape", hint if dataclasses.is_dataclass(hint) else None)
    if shape is not None:
        schema = schema_of(shape)
        doc = doc or _summary(shape)
    else:
        origin = typing.get_origin(hint) or hint
        schema = {"type": _JSON_TYPES[origin]} if origin in _JSON_TYPES else {}
        args = typing.get_args(hint)
        if origin is dict and args and args[1] in _JSON_TYPES:
            schema["additionalProperties"] = {"type": _JSON_TYPES[args[1]]}
    if optional and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    schema.update({k: v for k, v in f.metadata.items() if k in BOUNDS or k == "pattern"})
    if "enum" in f.metadata:
        schema["enum"] = [*f.metadata["enum"], *([None] if optional else [])]
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if default is not dataclasses.MISSING:
        is_instance = dataclasses.is_dataclass(default) and not isinstance(default, type)
        schema["default"] = dataclasses.asdict(default) if is_instance else default
    if doc:
        schema["description"] = doc
    return schema


def _summary(cls: type) -> str:
    return _plain(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " "))


def _plain(text: str) -> str:
    """Docstring markup as the text of a JSON file's description: ``:role:`~a.b.Name``` ->
    ```Name``` (a module keeps its dotted name), double backquotes -> single, Python's
    ``None`` -> JSON's ``null``."""
    text = re.sub(r":(\w+):`~?([\w.]+)`", lambda m: f"`{m[2] if m[1] == 'mod' else m[2].rsplit('.', 1)[-1]}`", text)
    return text.replace("``None``", "`null`").replace("``", "`")


def describe(cls: type) -> dict[str, str]:
    """Field name -> description, from the ``Attributes:`` sections of the docstrings of
    ``cls`` and its bases (``name: text`` or ``a, b: text``; indented lines continue it)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").splitlines()
        if "Attributes:" not in lines:
            continue
        names: list[str] = []
        for line in [*lines[lines.index("Attributes:") + 1:], "END"]:
            item = re.match(r" {4}(\w+(?:, \w+)*): (.*)", line)
            if item or (line and not line.startswith(" ")):
                out.update({n: _plain(out[n]) for n in names})
                if not item:
                    break
                names = item.group(1).split(", ")
                out.update(dict.fromkeys(names, item.group(2)))
            elif line.strip() and names:
                out.update({n: f"{out[n]} {line.strip()}" for n in names})
    return out
