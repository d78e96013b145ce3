"""The Pareto front of a run as a table (or JSON)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evokeras._io import UnreadableFile, read_json
from evokeras.engine.run import read_checkpoint
from evokeras.engine.store import RunStore
from evokeras.genomes.keyed import key_of

__all__ = ["check_front", "format_figure", "format_report", "front_table", "read_front", "report_title"]


def read_front(run_dir: str | Path) -> dict[str, Any]:
    """The front of a run: ``hall_of_fame.json`` if written, else the last checkpoint's front.

    Nothing is trusted: the run store must pass SQLite's ``quick_check`` (also when the
    hall of fame exists) and the hall of fame its schema (:func:`check_front`); else
    :class:`~evokeras.engine.store.StoreError` or :class:`~evokeras._io.UnreadableFile`
    naming the file.
    """

    run_dir = Path(run_dir)
    hof = run_dir / "hall_of_fame.json"
    with RunStore(run_dir / "run.db", readonly=True) as store:
        if hof.is_file():
            return check_front(read_json(hof), hof)
        state = read_checkpoint(store) or {"front": []}
        objectives = store.get_meta("objectives") or {}
    members = []
    for item in state["front"]:
        members.append({"key": key_of(item["genome"]), "genome": item["genome"], "objectives": dict(zip(objectives, item["fitness"], strict=False))})
    return check_front({"objectives": objectives, "members": members, "final": False}, run_dir / "run.db")


def check_front(data: Any, where: str | Path) -> dict[str, Any]:
    """``data`` if it has the shape of ``hall_of_fame.json``; else :class:`UnreadableFile`
    naming ``where`` and the first offending entry.

    ``{"objectives": {name: non-zero weight}, "members": [{"key": str, "genome": {...},
    "objectives": {name: number or null for every objective}, "metrics": {...}?,
    "status": str?, "model": str?, "error": str?, "test_*": number, bool, str or null}]}``.
    """

    def bad(path: str, expected: str, value: Any) -> UnreadableFile:
        return UnreadableFile(f"{where}: {path}: expected {expected}, got {type(value).__name__} {str(value)[:60]!r}")

    if not isinstance(data, dict):
        raise bad("the file", "a JSON object", data)
    objectives = data.get("objectives")
    if not isinstance(objectives, dict) or not all(_number(w) and w for w in objectives.values()):
        raise bad("objectives", "{name: non-zero weight}", objectives)
    members = data.get("members")
    if not isinstance(members, list):
        raise bad("members", "a list", members)
    for i, m in enumerate(members):
        at = f"members[{i}]"
        if not isinstance(m, dict):
            raise bad(at, "an object", m)
        if not isinstance(m.get("key"), str):
            raise bad(f"{at}.key", "a string", m.get("key"))
        genome = m.get("genome")
        if not isinstance(genome, dict) or not isinstance(genome.get("layers", []), list) \
                or not isinstance(genome.get("drop", []), list) or not isinstance(genome.get("squeeze", {}), dict):
            raise bad(f"{at}.genome", "a genome object", genome)
        values = m.get("objectives")
        if not isinstance(values, dict):
            raise bad(f"{at}.objectives", "an object", values)
        for name in objectives:
            if not (values.get(name) is None or _number(values[name])):
                raise bad(f"{at}.objectives.{name}", "a number", values.get(name))
        if not isinstance(m.get("metrics", {}), dict):
            raise bad(f"{at}.metrics", "an object", m.get("metrics"))
        for name in ("status", "model", "error"):
            if not isinstance(m.get(name, ""), str):
                raise bad(f"{at}.{name}", "a string", m.get(name))
        for name, value in m.items():
            if name.startswith("test_") and not (value is None or isinstance(value, int | float | str)):
                raise bad(f"{at}.{name}", "a number", value)
    return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _program_steps(program: dict[str, Any]) -> int:
    """Steps of an edit program's dictionary (``len(EditProgram)``: drops, squeezes, cut,
    head fit, fine-tuning)."""
    return len(program.get("drop", [])) + len(program.get("squeeze", {})) + 2 + (1 if program.get("finetune") else 0)


def format_figure(name: str, value: Any) -> str:
    """One figure of a member with its unit, as the reports show it: errors and
    accuracies (fractions) as percentages, times (stored in seconds: ``exec_time`` per
    sample, ``*_seconds``) in us, ms, s, min or h, parameters and FLOPs in k, M or G,
    other numbers (losses, bits per character, perplexity, returns) plain; flags as
    yes/no, a missing one as ``-``, text as it is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if not isinstance(value, int | float):
        return "-"
    if not math.isfinite(value):
        return str(value)
    if name.endswith(("_error", "accuracy")):
        return f"{value * 100:.2f} %"
    if name.endswith(("exec_time", "seconds")):
        return _duration(float(value))
    if name.endswith(("params", "flops")):
        return _count(value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _duration(seconds: float) -> str:
    for limit, factor, unit in ((1e-3, 1e6, "us"), (1.0, 1e3, "ms"), (600.0, 1.0, "s"), (3 * 3600.0, 1 / 60, "min")):
        if abs(seconds) < limit:
            return f"{seconds * factor:.2f} {unit}"
    return f"{seconds / 3600:.2f} h"


def _count(n: float) -> str:
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.{1 if factor == 1e3 else 2}f} {unit}"
    return f"{n:g}"


def front_table(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The column names and the formatted rows of the front ``data`` (:func:`read_front`),
    one row per member, as :func:`format_report` and the HTML report show them."""
    names = list(data["objectives"])
    tests = sorted({k for m in data["members"] for k in m if k.startswith("test_") and k != "test_loss"})
    if not tests:
        tests = ["test_accuracy", "test_exec_time"]
    extra = [] if "params" in names else ["params"]
    size = "layers" if all("layers" in m["genome"] for m in data["members"]) else "size"
    cols = ["key", size, *names, *extra, *tests]
    rows = []
    for m in data["members"]:
        metrics = m.get("metrics", {})
        g = m["genome"]
        row = [m["key"], str(len(g["layers"]) if "layers" in g else _program_steps(g))]
        row += [format_figure(n, m["objectives"].get(n)) for n in names]
        row += [format_figure("params", metrics.get("params"))] * len(extra)
        row += [format_figure(k, m.get(k)) for k in tests]
        rows.append(row)
    return cols, rows


def report_title(run_dir: str | Path, data: dict[str, Any]) -> str:
    """``Pareto front of DIR``, noting a search that has not finished."""
    return ("Pareto front" + ("" if data.get("final", True) else " (search not finished: no test figures yet)")
            + f" of {Path(run_dir)}")


def format_report(run_dir: str | Path) -> str:
    """A plain-text table of the front, one member per row."""
    data = read_front(run_dir)
    cols, rows = front_table(data)
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return report_title(run_dir, data) + "\n" + "\n".join(lines)
