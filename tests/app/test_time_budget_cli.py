"""``evokeras run CONFIG.json --time-budget T``: the budget derived from the time and the
data, recorded in the run directory; a bad time is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
       "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def _config(tmp_path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    np.savez(tmp_path / "vectors.npz", x_train=(rng.normal(size=(n, 6)) + y[:, None]).astype(np.float32), y_train=y)
    config = tmp_path / "vectors.json"
    config.write_text(json.dumps({"task": "arrays", "task_options": {"path": str(tmp_path / "vectors.npz")}}))
    return config


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evokeras", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("bad", ["soon", "20s"])
def test_a_bad_time_budget_is_one_line_and_writes_nothing(tmp_path: Path, bad: str) -> None:
    proc = _cli("run", str(_config(tmp_path)), "--time-budget", bad, "--out", str(tmp_path / "run"))
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "time_budget" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_time_budget_alone_runs_a_configuration_file(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = _cli("run", str(_config(tmp_path)), "--time-budget", "1m", "--out", str(tmp_path / "run"), "--no-progress")
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert seconds <= 1.2 * 60 + 15, seconds  # + the interpreter's start-up and imports
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert stored["strategy"]["name"] == "lineage" and stored["evaluation"]["inherit_weights"]
    assert stored["evaluation"]["train_samples"] <= 300 and stored["final"]["members"] == 1
    hof = json.loads((tmp_path / "run" / "hall_of_fame.json").read_text())
    assert hof["members"] and (tmp_path / "run" / hof["members"][0]["model"]).is_file()
