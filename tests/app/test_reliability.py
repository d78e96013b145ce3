"""Real runs stopped by signals and full disks resume to the same front; bad input on the
real command line exits 2 with one line.

A tiny MNIST study (3 + 3 x 2 candidates, 300 training images, FLOPs as the cost
objective: deterministic) is the reference; each test stops a run of it somewhere
(a seeded random moment, a disk that fills) and checks that ``evokeras resume`` ends
with the reference's hall of fame (keys and search objectives).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT  # noqa: E402

STUDY = str(REPO_ROOT / "studies" / "mnist.py")
EVOKERAS = [sys.executable, "-m", "evokeras"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
TINY = {"population": 3, "offspring": 3, "generations": 2,
        "evaluation": {"train_samples": 300, "val_samples": 200, "seconds": 600, "timeout": 1200},  # no time limits: load-independent
        "final_train_samples": 300}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error:", "stopped"))]


def start(out: Path, tmp: Path) -> subprocess.Popen:
    config = tmp / "tiny.json"
    config.write_text(json.dumps(TINY))
    return subprocess.Popen([sys.executable, STUDY, "--no-progress", "--config", str(config), "--out", str(out)],
                            cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_run(out: Path, proc: subprocess.Popen) -> None:
    """Until the study has made its run directory (imports take seconds; a signal before
    is Python's default: nothing is written yet)."""
    deadline = time.monotonic() + 300
    while not (out / "config.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def resume(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*EVOKERAS, "resume", str(out), "--no-progress"], cwd=REPO_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def front(out: Path) -> dict[str, dict[str, float]]:
    """The hall of fame's members: key -> search objectives (test figures depend on timing)."""
    hof = json.loads((out / "hall_of_fame.json").read_text())
    return {m["key"]: m["objectives"] for m in hof["members"]}


def _finished(out: Path) -> bool:
    """Whether the run in ``out`` is marked finished."""
    if not (out / "run.db").is_file():
        return False
    db = sqlite3.connect(out / "run.db")
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'finished'").fetchone()
    finally:
        db.close()
    return row is not None and json.loads(row[0]) is True


def assert_complete(out: Path) -> None:
    """A finished run: its store sound, every model and plot there, marked finished."""
    db = sqlite3.connect(out / "run.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert json.loads(db.execute("SELECT value FROM meta WHERE name = 'finished'").fetchone()[0]) is True
    finally:
        db.close()
    hof = json.loads((out / "hall_of_fame.json").read_text())
    assert all(m["status"] == "ok" and (out / m["model"]).is_file() for m in hof["members"])
    assert {p.name for p in (out / "plots").iterdir()} >= {"stats.png", "pareto.png", "hypervolume.png"}
    assert not [p for p in out.rglob(".*.tmp*")]  # no temporary file left behind


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    proc = start(tmp / "run", tmp)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    assert_complete(tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def reference(reference_run: Path) -> dict[str, dict[str, float]]:
    return front(reference_run)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "seed"), [(signal.SIGINT, 1), (signal.SIGTERM, 2), (signal.SIGINT, 3)])
def test_signal_at_a_random_moment_then_resume(tmp_path: Path, reference, signum: int, seed: int) -> None:
    out = tmp_path / "run"
    proc = start(out, tmp_path)
    wait_for_run(out, proc)
    time.sleep(random.Random(seed).uniform(0.0, 20.0))  # the run takes ~25 s
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    if proc.returncode in (0, -signum) and _finished(out):
        # finished before the signal (or the signal came while the interpreter shut down,
        # after the entry point had restored the default handlers): nothing to resume
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert _errors(err) == [f"stopped by {signal.Signals(signum).name}: everything finished so far is saved in "
                            f"{out}; continue with: evokeras resume {out}"]
    done = resume(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert front(out) == reference
    assert_complete(out)


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once(tmp_path: Path, reference) -> None:
    out = tmp_path / "run"
    proc = start(out, tmp_path)
    wait_for_run(out, proc)
    time.sleep(5.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 130: the second signal came while the run stopped (our handler's exit); -SIGINT: it came
    # after, while the process exited (the system's default action; a shell shows 130 for both)
    assert proc.returncode in (130, -signal.SIGINT), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    done = resume(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert front(out) == reference
    assert_complete(out)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 160 KiB tmpfs (skipped where mounting is not allowed); grown by ``grow()``."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

    try:
        yield mnt, grow
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
def test_full_disk_stops_the_run_and_resume_finishes_it(tmp_path: Path, reference, small_disk) -> None:
    mnt, grow = small_disk
    out = mnt / "run"
    proc = start(out, tmp_path)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 4, err[-3000:]
    assert "Traceback" not in err
    (line,) = _errors(err)
    assert line.startswith("error: cannot write") and str(out) in line and line.endswith(f"continue with: evokeras resume {out}")
    grow()  # space is freed
    done = resume(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert front(out) == reference
    assert_complete(out)


@pytest.mark.slow
def test_resume_completes_missing_final_models_and_plots(tmp_path: Path, reference_run: Path, reference) -> None:
    """A run whose finish was cut short (a model and a plot missing, not marked finished)
    is completed by resume: only what is missing is redone."""
    out = tmp_path / "run"
    shutil.copytree(reference_run, out)
    hof = json.loads((out / "hall_of_fame.json").read_text())
    lost = out / hof["members"][0]["model"]
    kept = {m["model"]: (out / m["model"]).stat().st_mtime_ns for m in hof["members"][1:]}
    lost.unlink()
    (out / "plots" / "pareto.png").unlink()
    db = sqlite3.connect(out / "run.db")
    with db:
        db.execute("DELETE FROM meta WHERE name = 'finished'")
    db.close()
    done = resume(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert lost.is_file() and (out / "plots" / "pareto.png").is_file()
    assert {m: (out / m).stat().st_mtime_ns for m in kept} == kept  # not redone
    assert front(out) == reference
    assert_complete(out)


# -- bad input on the real command line ----------------------------------------------------------


def _one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    return line


def test_nan_wall_seconds_and_negative_seed(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"wall_seconds": NaN}')
    out = tmp_path / "run"
    line = _one_error(subprocess.run([sys.executable, STUDY, "--config", str(config), "--out", str(out)],
                                     env=ENV, capture_output=True, text=True, timeout=120))
    assert str(config) in line and "NaN" in line
    line = _one_error(subprocess.run([sys.executable, STUDY, "--seed", "-1", "--out", str(out)],
                                     env=ENV, capture_output=True, text=True, timeout=120))
    assert "'seed'" in line
    assert not out.exists()
