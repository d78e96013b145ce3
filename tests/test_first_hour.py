"""The first hour of a new user: ``evokeras.search(evokeras.from_arrays(x, y), out,
time_budget=...)`` with no other key, on 500 and on 60,000 examples, images and vectors,
in a fresh interpreter started in an empty directory (no test fixtures, no conftest).
Each run finishes within its time budget plus 20% and returns a front with its model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BUDGET_SECONDS = 90

SCRIPT = textwrap.dedent(f"""
    import json, sys, time
    import numpy as np
    import evokeras

    def data(n, kind, rng):
        if kind == "images":  # each class brightens its own band of rows
            y = rng.integers(0, 5, n)
            x = rng.random((n, 16, 16, 1), dtype=np.float32) * 0.5
            for c in range(5):
                x[y == c, 3 * c:3 * c + 3, :, 0] += 0.5
            return x, y
        y = rng.integers(0, 3, n)
        return rng.normal(size=(n, 20)).astype(np.float32) + 0.7 * y[:, None], y

    out = {{}}
    for n, kind in [(500, "images"), (500, "vectors"), (60_000, "images"), (60_000, "vectors")]:
        x, y = data(n, kind, np.random.default_rng(0))
        start = time.perf_counter()
        run = evokeras.search(evokeras.from_arrays(x, y), f"runs/{{kind}}-{{n}}", time_budget="{BUDGET_SECONDS}s")
        out[f"{{kind}}-{{n}}"] = {{"seconds": time.perf_counter() - start, "front": len(run.front),
                                  "test_error": run.front[0].get("test_error"),
                                  "model": str(run.models[0]) if run.models else None}}
    print("RESULT " + json.dumps(out))
""")


def test_a_time_budget_alone_runs_on_small_and_large_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # no fixture, no conftest
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    env.setdefault("KERAS_BACKEND", "tensorflow")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=8 * BUDGET_SECONDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    results = json.loads(line.removeprefix("RESULT "))
    assert set(results) == {"images-500", "vectors-500", "images-60000", "vectors-60000"}
    for name, r in results.items():
        assert r["seconds"] <= 1.2 * BUDGET_SECONDS, (name, r)
        assert r["front"] >= 1 and r["model"] and (tmp_path / r["model"]).is_file(), (name, r)
        assert r["test_error"] is not None and r["test_error"] < 0.5, (name, r)  # it learned something
