"""Your own task end to end, from Python and from the command line: arrays searched,
killed, resumed, plotted and reported from fresh processes; a changed data file refused;
a character-level language model on a string; gymnasium environments other than CartPole;
importable factories trusted only when named; the studies shipped in the package."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, TESTS_DIR  # noqa: E402

import evokeras  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402

EVOKERAS = [sys.executable, "-m", "evokeras"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
       "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}

#: A search small enough for a test (seconds per generation on 2 CPU cores).
TINY_IMAGES = {
    "population": 3, "offspring": 2, "generations": 2, "objectives": {"val_error": -1.0, "flops": -1.0},
    "evaluation": {"epochs": 1, "train_samples": 80, "val_samples": 14, "seconds": 20, "timeout": 120,
                   "time_repeats": 1},
    "space": {"max_params": 20_000, "max_layers": 4, "init_layers": [1, 3]},
    "max_val_error": 1.0, "final_epochs": 1, "final_train_samples": 100, "final_members": 1,
}


def evokeras_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*EVOKERAS, *args], env=ENV, capture_output=True, text=True, timeout=timeout)


def _error_line(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _images(path: Path) -> Path:
    """Non-square 3-channel images of 7 classes, the class drawn as a bright row."""
    rng = np.random.default_rng(0)
    y = np.arange(140) % 7
    x = rng.integers(0, 100, (140, 10, 14, 3), dtype=np.uint8)
    x[np.arange(140), y, :, :] = 255
    np.savez(path, x_train=x, y_train=y)
    return path


def _checkpoints(run: Path) -> int:
    if not (run / "run.db").is_file():
        return 0
    try:
        with RunStore(run / "run.db", readonly=True) as store:
            return len(store.generations())
    except Exception:  # the database is being created
        return 0


def test_arrays_killed_resumed_plotted_reported(tmp_path: Path) -> None:
    data = _images(tmp_path / "images.npz")
    config = tmp_path / "images.json"
    config.write_text(json.dumps({"task": "arrays", "task_options": {"path": str(data)}, **TINY_IMAGES}))
    run = tmp_path / "run"
    proc = subprocess.Popen([*EVOKERAS, "run", str(config), "--out", str(run), "--no-progress"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _checkpoints(run) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "hall_of_fame.json").exists() and 1 <= _checkpoints(run) <= 2
    recorded = json.loads((run / "config.json").read_text())["config"]
    assert recorded["task"] == "arrays" and recorded["task_options"]["path"] == str(data)
    assert len(recorded["task_options"]["sha256"]) == 64 and recorded["task_options"]["n_classes"] == 7

    # the data changes: refused with one line naming the file, nothing written
    original = data.read_bytes()
    _images(tmp_path / "other.npz")
    data.write_bytes((tmp_path / "other.npz").read_bytes()[:-8] + b"\0" * 8)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    line = _error_line(evokeras_cli("resume", str(run), "--no-progress"))
    assert str(data) in line and "changed" in line
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before

    data.write_bytes(original)
    resumed = evokeras_cli("resume", str(run), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "Pareto front" in resumed.stdout
    plotted = evokeras_cli("plot", str(run))
    assert plotted.returncode == 0, plotted.stderr
    assert {Path(p).name for p in plotted.stdout.split()} >= {"stats.png", "pareto.png", "hypervolume.png"}
    report = evokeras_cli("report", str(run), "--json")
    assert report.returncode == 0, report.stderr
    members = json.loads(report.stdout)["members"]
    finished = [m for m in members if m["status"] == "ok"]
    assert finished and 0.0 <= finished[0]["test_error"] <= 1.0 and (run / finished[0]["model"]).is_file()


def test_char_lm_on_a_string(tmp_path: Path) -> None:
    text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60))
    config = {"population": 2, "offspring": 1, "generations": 1, "objectives": {"val_bpc": -1.0, "params": -1.0},
              "evaluation": {"epochs": 1, "train_samples": 24, "val_samples": 5, "seconds": 30, "timeout": 120,
                             "time_repeats": 1},
              "space": {"cell_units": [8, 16], "max_layers": 1, "init_layers": [1, 1]},
              "final_epochs": 1, "final_train_samples": 30}
    run = evokeras.search(evokeras.from_text(text, seq_len=32), tmp_path / "lm", config=config)
    assert (tmp_path / "lm" / "data.txt").read_text(encoding="utf-8") == text
    best = run.front[0]
    assert best["status"] == "ok" and 0 < best["test_bpc"] < 10 and run.models[0].is_file()
    assert run.load_model().output_shape[-1] == len(set(text))
    report = evokeras_cli("report", str(tmp_path / "lm"))
    assert report.returncode == 0 and best["key"] in report.stdout


def test_gym_environment_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "car.json"
    config.write_text(json.dumps({
        "task": "gym", "task_options": {"env_id": "MountainCar-v0"},  # no vector entry point, 3 actions
        "objectives": {"return": 1.0, "params": -1.0},
        "budgets": {"smoke": {"population": 4, "offspring": 4, "generations": 1,
                              "evaluation": {"episodes": 2, "timeout": 60}},
                    "longer": {"generations": 5}}}))
    proc = evokeras_cli("run", str(config), "--out", str(tmp_path / "car"), "--no-progress", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    hof = json.loads((tmp_path / "car" / "hall_of_fame.json").read_text())
    assert hof["members"][0]["test_return"] <= -100 and (tmp_path / "car" / "plots" / "policy.gif").is_file()
    recorded = json.loads((tmp_path / "car" / "config.json").read_text())["config"]
    assert recorded["task_options"]["env_id"] == "MountainCar-v0" and recorded["seed"] == 3
    assert recorded["study"] == "car" and recorded["budget_name"] == "smoke"
    line = _error_line(evokeras_cli("run", str(config), "--budget", "huge", "--out", str(tmp_path / "x")))
    assert "'huge'" in line and not (tmp_path / "x").exists()


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "Pendulum-v1"])
def test_other_environments_from_python(tmp_path: Path, env_id: str) -> None:
    config = {"population": 3, "offspring": 2, "generations": 1, "objectives": {"return": 1.0, "params": -1.0},
              "evaluation": {"episodes": 1, "timeout": 60}}
    run = evokeras.search(evokeras.from_gym(env_id), tmp_path / "run", config=config, seed=1)
    member = run.front[0]
    assert member["status"] == "ok" and isinstance(member["test_return"], float)
    assert run.load_model().output_shape == (None, 3 if env_id == "Acrobot-v1" else 1)


def test_process_workers_get_the_task(tmp_path: Path) -> None:
    config = {"population": 4, "offspring": 4, "generations": 1, "evaluation": {"episodes": 2, "timeout": 120}}
    serial = evokeras.search(evokeras.from_gym("MountainCar-v0"), tmp_path / "serial", config=config)
    parallel = evokeras.search(evokeras.from_gym("MountainCar-v0"), tmp_path / "parallel", config=config, workers=2)
    assert json.loads((tmp_path / "parallel" / "config.json").read_text())["config"]["parallel"]["workers"] == 2
    assert [m["key"] for m in parallel.front] == [m["key"] for m in serial.front]
    assert [m["objectives"] for m in parallel.front] == [m["objectives"] for m in serial.front]


def test_factory_fails_fast_and_is_trusted_only_when_named(tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text(json.dumps({"task": "_own_tasks:wrong_input", "population": 3, "offspring": 3,
                                  "generations": 3, "objectives": {"return": 1.0, "params": -1.0},
                                  "evaluation": {"episodes": 1, "timeout": 60}}))
    run = tmp_path / "broken"
    line = _error_line(evokeras_cli("run", str(config), "--out", str(run), "--no-progress"), status=1)
    assert "all 3 candidates of generation 0 failed with ValueError" in line
    assert _checkpoints(run) == 0
    untrusted = _error_line(evokeras_cli("resume", str(run), "--no-progress"))
    assert "--factory _own_tasks:wrong_input" in untrusted
    assert evokeras_cli("report", str(run)).returncode == 0
    again = evokeras_cli("resume", str(run), "--no-progress", "--factory", "_own_tasks:wrong_input")
    assert "failed with ValueError" in _error_line(again, status=1)
    bad = _error_line(evokeras_cli("report", str(run), "--factory", "no_such_module:f"))
    assert "no_such_module" in bad


def test_bad_run_config(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"task": "gym", "task_options": {"env_id": "MountainCar-v0"}}))
    assert "no 'budgets'" in _error_line(evokeras_cli("run", str(plain), "--budget", "smoke", "--out", str(tmp_path / "a")))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": "gym", "task_options": {"env_id": "os:Evil-v0"}}))
    assert "would import a module" in _error_line(evokeras_cli("run", str(bad), "--out", str(tmp_path / "b")))
    missing = tmp_path / "missing.json"
    assert str(missing) in _error_line(evokeras_cli("run", str(missing)))
    data = tmp_path / "nodata.json"
    data.write_text(json.dumps({"task": "arrays", "task_options": {"path": str(tmp_path / "none.npz")}}))
    assert "none.npz" in _error_line(evokeras_cli("run", str(data), "--out", str(tmp_path / "c")))
    assert not any((tmp_path / d).exists() for d in "abc")


def test_shipped_study(tmp_path: Path) -> None:
    override = tmp_path / "short.json"
    override.write_text(json.dumps({"generations": 0, "population": 4, "offspring": 4}))
    proc = evokeras_cli("study", "cartpole", "--budget", "smoke", "--config", str(override),
                        "--out", str(tmp_path / "cp"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cp" / "hall_of_fame.json").is_file()
    module = subprocess.run([sys.executable, "-m", "evokeras.studies.mnist", "--budget", "nope"], env=ENV,
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "'nope'" in _error_line(module)


@pytest.mark.slow
def test_installed_package_runs_the_main_study(tmp_path: Path) -> None:
    """``pip install .`` (not editable; here into a target directory beside the test
    environment's dependencies), then the README's main command from outside the
    checkout: the studies ship in the package."""
    source, target = tmp_path / "source", tmp_path / "site"  # a copy: building writes build/ and *.egg-info
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", "plots", "benchmarks"))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    assert (target / "evokeras" / "studies" / "mnist.py").is_file() and (target / "bin" / "evokeras").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "short.json").write_text(json.dumps({"generations": 0, "population": 2, "offspring": 2}))
    env = {**ENV, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import evokeras; print(evokeras.__file__)"], env=env,
                           capture_output=True, text=True, timeout=120, cwd=elsewhere)
    assert where.stdout.strip().startswith(str(target)), where.stdout
    proc = subprocess.run([sys.executable, "-m", "evokeras", "study", "mnist", "--budget", "smoke", "--config",
                           "short.json", "--no-progress"], env=env, capture_output=True, text=True, timeout=600,
                          cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (elsewhere / "runs" / "mnist-smoke-seed0" / "hall_of_fame.json").is_file()
