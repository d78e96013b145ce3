"""Files of a run directory: atomic writes (a file is either complete or absent, never
half-written) and checked reads (nothing read is trusted: size, encoding, nesting and
JSON's grammar are checked, and every failure is one :class:`UnreadableFile` naming the path)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["UnreadableFile", "atomic_path", "loads_json", "read_json", "write_json_atomic", "write_text_atomic"]

#: The largest JSON file :func:`read_json` reads by default (a hall of fame).
MAX_JSON_BYTES = 64 * 2**20
#: The largest configuration file (``--config``, a run's ``config.json``).
MAX_CONFIG_BYTES = 2**20
#: The deepest nesting of lists and objects :func:`loads_json` accepts.
MAX_JSON_DEPTH = 64


class UnreadableFile(ValueError):
    """A file is missing, too large, not UTF-8 or not the JSON it should be; the message names it."""


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it is flushed to
    disk and replaces ``path``.

    The temporary name is unique to this call (process id and a random part), so two
    writers of the same file never share one. On an exception the temporary file is
    removed and ``path`` is left as it was. A write error that names no file (a full
    disk) is raised again naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (key order kept; NaN/inf as ``null``)."""
    write_text_atomic(path, json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str | bytes, *, where: str, constants: bool = False) -> Any:
    """Parse JSON text strictly (UTF-8; bounded nesting; no ``NaN``/``Infinity`` unless
    ``constants``, as Python writes them); raise :class:`UnreadableFile` naming ``where``
    on any failure."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = json.loads(text) if constants else json.loads(text, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise UnreadableFile(f"{where}: JSON nested too deeply") from None
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError included; TypeError: not text
        raise UnreadableFile(f"{where}: not valid JSON ({exc})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise UnreadableFile(f"{where}: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def read_json(path: str | Path, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``path``, read with every check of :func:`loads_json` and at most
    ``max_bytes`` long; raise :class:`UnreadableFile` naming ``path`` otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise UnreadableFile(f"{path}: larger than {max_bytes} bytes")
    return loads_json(data, where=str(path))
