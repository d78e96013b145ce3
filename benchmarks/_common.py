"""Shared helpers of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from importlib import import_module
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _version(module: str) -> str | None:
    try:
        return str(import_module(module).__version__)
    except Exception:  # not installed, or broken install
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU (and current load) and library versions, Keras backend included."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "numpy": _version("numpy"),
        "keras": _version("keras"),
        "tensorflow": _version("tensorflow"),
        "jax": _version("jax"),
    }
    try:
        import keras

        info["keras_backend"] = keras.backend.backend()
    except Exception:
        info["keras_backend"] = None
    return info


def study_budgets(name: str) -> dict[str, Any]:
    """``BUDGETS`` of ``studies/<name>.py``, loaded by path (a benchmark may share its name)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "studies" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BUDGETS


def read_result(name: str) -> dict[str, Any]:
    """``benchmarks/results/<name>.json`` as written by :func:`write_result` (``{}`` when absent)."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``benchmarks/results/<name>.json`` atomically; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=RESULTS_DIR)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of ``a`` and ``b`` (tied values share their mean rank)."""
    import numpy as np

    def ranks(v: list[float]) -> Any:
        v = np.asarray(v, dtype=float)
        r = np.empty(len(v))
        r[np.argsort(v, kind="stable")] = np.arange(len(v), dtype=float)
        for x in np.unique(v):
            r[v == x] = r[v == x].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])
