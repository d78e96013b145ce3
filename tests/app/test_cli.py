"""Tests of the command line: ``python studies/mnist.py`` and the ``evokeras`` console script.

Bad input exits with status 2, one message naming the offending key or path, and writes
nothing. One real smoke run (slow) checks the run-directory contract end to end.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, fake_for, small_config  # noqa: E402

from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.genomes.network import Genome  # noqa: E402

STUDY = str(REPO_ROOT / "studies" / "mnist.py")
_SCRIPT = Path(sys.executable).with_name("evokeras")
EVOKERAS = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "evokeras.app.cli"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def run(args: list[str], timeout: float = 120, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def study(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run([sys.executable, STUDY, "--no-progress", *args], timeout=timeout)


def evokeras(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run([*EVOKERAS, *args], timeout=timeout)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a status-2 exit (other lines may be backend start-up noise)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _config_file(tmp_path: Path, data) -> Path:
    path = tmp_path / "override.json"
    path.write_text(json.dumps(data))
    return path


# -- bad input: status 2, nothing written ------------------------------------------------------


def test_unknown_budget(tmp_path: Path) -> None:
    out = tmp_path / "run"
    line = _error_line(study("--budget", "huge", "--out", str(out)))
    assert "'huge'" in line and "smoke" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"populaton": 4}, "'populaton'"),
        ({"evaluation": {"epocs": 1}}, "'evaluation.epocs'"),
        ({"strategy": {"populaton": 4}}, "'strategy.populaton'"),
        ({"space": {"max_layerz": 3}}, "max_layerz"),
        ({"objectives": {"val_error": -1.0, "accuracy_gain": 1.0}}, "'accuracy_gain'"),
        ({"task": "imagenet"}, "'imagenet'"),
    ],
)
def test_unknown_config_key(tmp_path: Path, data, named: str) -> None:
    out = tmp_path / "run"
    line = _error_line(study("--config", str(_config_file(tmp_path, data)), "--out", str(out)))
    assert named in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"population": "8"}, "'strategy.population'"),
        ({"generations": 1.5}, "'strategy.generations'"),
        ({"wall_seconds": "soon"}, "'strategy.wall_seconds'"),
        ({"evaluation": {"epochs": "1"}}, "'evaluation.epochs'"),
        ({"evaluation": {"train_samples": -5}}, "'evaluation.train_samples'"),
        ({"population": 1}, "'strategy.population'"),
        ({"strategy": {"population": 1}}, "'strategy.population'"),
        ({"cxpb": 0.8, "mutpb": 0.8}, "'strategy.cxpb'"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_wrong_config_type(tmp_path: Path, data, named: str) -> None:
    out = tmp_path / "run"
    line = _error_line(study("--config", str(_config_file(tmp_path, data)), "--out", str(out)))
    assert named in line
    assert not out.exists()


def test_unreadable_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = tmp_path / "run"
    assert str(bad) in _error_line(study("--config", str(bad), "--out", str(out)))
    missing = tmp_path / "missing.json"
    assert str(missing) in _error_line(study("--config", str(missing), "--out", str(out)))
    assert not out.exists()


def test_missing_dataset(tmp_path: Path) -> None:
    """A missing data set is the run's error (status 2), checked before anything is written."""
    out = tmp_path / "run"
    cfg = _config_file(tmp_path, {"task": "fashion_mnist"})
    script = textwrap.dedent(f"""
        import runpy, sys
        from pathlib import Path
        from evokeras.data import images as image_data
        from evokeras.app.study import run_study
        image_data.FASHION_MNIST_DIR = Path({str(tmp_path / "nowhere")!r})
        budgets = runpy.run_path({STUDY!r})["BUDGETS"]
        sys.exit(run_study("mnist", budgets, ["--no-progress", "--config", {str(cfg)!r}, "--out", {str(out)!r}]))
    """)
    line = _error_line(run([sys.executable, "-c", script]))
    assert "Fashion-MNIST" in line and "nowhere" in line
    assert not out.exists()


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> Path:
    """A small finished search (fake evaluator: no hall of fame, no models)."""
    cfg = small_config(generations=1)
    out = tmp_path_factory.mktemp("cli") / "fake-run"
    search = Search(cfg, out, evaluate=fake_for(cfg))
    search._run()
    search.close()
    return out


def test_existing_run_dir(fake_run: Path) -> None:
    before = {p.name: p.read_bytes() for p in fake_run.iterdir() if p.is_file()}
    line = _error_line(study("--out", str(fake_run)))
    assert str(fake_run) in line and "evokeras resume" in line
    assert {p.name: p.read_bytes() for p in fake_run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("command", ["resume", "plot", "report"])
def test_commands_on_a_non_run_dir(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(empty) in _error_line(evokeras(command, str(empty)))
    missing = tmp_path / "missing"
    assert str(missing) in _error_line(evokeras(command, str(missing)))
    assert not missing.exists()
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("command", ["plot", "report"])
def test_commands_on_a_garbage_run_db(tmp_path: Path, command: str) -> None:
    (tmp_path / "run.db").write_bytes(b"not a database\n" * 500)
    assert "run.db" in _error_line(evokeras(command, str(tmp_path)))


def test_resume_with_garbage_run_db(tmp_path: Path) -> None:
    (tmp_path / "run.db").write_bytes(b"not a database\n" * 500)
    (tmp_path / "config.json").write_text(json.dumps({"config": small_config().to_dict()}))
    assert "run.db" in _error_line(evokeras("resume", str(tmp_path), "--no-progress"))


def test_resume_with_bad_config_json(fake_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    run_dir.mkdir()
    (run_dir / "run.db").write_bytes((fake_run / "run.db").read_bytes())
    (run_dir / "config.json").write_text(json.dumps({"config": {"populaton": 3}}))
    line = _error_line(evokeras("resume", str(run_dir), "--no-progress"))
    assert "config.json" in line and "'populaton'" in line


def test_report_before_final_models(fake_run: Path) -> None:
    """A run without hall_of_fame.json reports the front of its last checkpoint."""
    proc = evokeras("report", str(fake_run), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["final"] is False
    assert data["objectives"] == {"val_error": -1.0, "flops": -1.0}
    with RunStore(fake_run / "run.db", create=False) as store:
        front = store.latest_checkpoint()["front"]
    assert sorted(m["key"] for m in data["members"]) == sorted(Genome.from_dict(f["genome"]).key for f in front)
    table = evokeras("report", str(fake_run))
    assert table.returncode == 0 and "search not finished" in table.stdout


# -- one real smoke run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("smoke") / "mnist-smoke"
    proc = study("--budget", "smoke", "--out", str(out), timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.mark.slow
def test_smoke_run_directory_contract(smoke_run) -> None:
    out, proc = smoke_run
    assert "Pareto front" in proc.stdout and str(out) in proc.stdout
    # config.json: the resolved configuration, seed included, and versions
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["seed"] == 0
    assert config["config"]["budget_name"] == "smoke" and config["config"]["study"] == "mnist"
    assert config["config"]["objectives"] == {"val_error": -1.0, "flops": -1.0}
    versions = config["versions"]
    assert {"evokeras", "keras", "deap", "numpy", "keras_backend"} <= set(versions)
    assert versions["keras_backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")
    # run.db: evaluations, one logbook record and one checkpoint per generation
    with RunStore(out / "run.db", create=False) as store:
        evaluations = [r for _, r in store.evaluations()]
        assert evaluations and any(r.ok for r in evaluations)
        assert [r["gen"] for r in store.generations()] == [0, 1, 2]
        assert store.latest_checkpoint()["gen"] == 2
        assert store.get_meta("finished") is True
    assert len({r.key for r in evaluations}) == len(evaluations)
    for r in evaluations:
        assert r.status in ("ok", "failed", "nan", "oom", "timeout")
        assert (r.error is None) == r.ok
        assert r.objective_names == ("val_error", "flops")
    # logbook.csv: one row per generation and objective
    with open(out / "logbook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["gen"]), r["objective"]) for r in rows] == [
        (g, o) for g in range(3) for o in ("val_error", "flops")
    ]
    # plots
    for name in ("stats.png", "pareto.png"):
        assert (out / "plots" / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_smoke_hall_of_fame(smoke_run) -> None:
    import keras

    import evokeras.nets.layers  # noqa: F401  (registers the custom layers for loading)

    out, _ = smoke_run
    hof = json.loads((out / "hall_of_fame.json").read_text())
    assert hof["objectives"] == {"val_error": -1.0, "flops": -1.0}
    members = hof["members"]
    assert members
    with RunStore(out / "run.db", create=False) as store:
        for m in members:
            genome = Genome.from_dict(m["genome"])
            assert genome.key == m["key"]
            record = store.get_evaluation(m["key"])
            assert record is not None and record.ok
            assert m["objectives"] == dict(zip(record.objective_names, record.objectives, strict=True))
            assert m["metrics"] == record.metrics
            assert 0.0 <= m["test_accuracy"] <= 1.0
            assert m["model"] == f"models/{m['key']}.keras"
            model = keras.models.load_model(out / m["model"])
            assert model.count_params() == m["metrics"]["params"]
            assert tuple(model.output_shape) == (None, 10)
    # the members are mutually non-dominated (both objectives minimised)
    points = [tuple(m["objectives"].values()) for m in members]
    for a in points:
        for b in points:
            assert not (all(x <= y for x, y in zip(b, a, strict=True)) and b != a)


@pytest.mark.slow
def test_smoke_report_and_plot(smoke_run) -> None:
    out, _ = smoke_run
    proc = evokeras("report", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    hof = json.loads((out / "hall_of_fame.json").read_text())
    assert data == hof
    table = evokeras("report", str(out))
    assert table.returncode == 0, table.stderr
    for m in hof["members"]:
        assert m["key"] in table.stdout
    pareto = out / "plots" / "pareto.png"
    pareto.unlink()
    proc = evokeras("plot", str(out))
    assert proc.returncode == 0, proc.stderr
    printed = [Path(line) for line in proc.stdout.split()]
    assert pareto in printed and (out / "plots" / "stats.png") in printed
    assert pareto.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_resume_of_a_finished_run_only_reports(smoke_run) -> None:
    out, _ = smoke_run
    before = (out / "hall_of_fame.json").stat().st_mtime_ns
    proc = evokeras("resume", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Pareto front" in proc.stdout
    assert (out / "hall_of_fame.json").stat().st_mtime_ns == before


def test_out_path_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    line = _error_line(study("--budget", "smoke", "--out", str(target)))
    assert str(target) in line
    assert target.read_text() == "x"


@pytest.mark.parametrize(("bad", "path"), [({"final_epochs": 0}, "final.epochs"),
                                           ({"final": {"train_samples": 2.5}}, "final.train_samples"),
                                           ({"wall_seconds": -1}, "strategy.wall_seconds")])
def test_bad_final_and_wall_keys(tmp_path: Path, bad: dict, path: str) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(bad))
    line = _error_line(study("--budget", "smoke", "--config", str(cfg), "--out", str(tmp_path / "run")))
    assert f"config key {path!r}" in line


def test_a_stop_raised_where_python_cannot_propagate_it_is_quiet(monkeypatch) -> None:
    """Under ``guarded``, an :class:`Interrupted` raised inside a finalizer (where the signal
    handler may fire) is not reported as "Exception ignored"; other such errors still are."""
    import gc

    from evokeras.app.study import guarded
    from evokeras.engine.search import Interrupted

    class Raises:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def __del__(self) -> None:
            raise self.exc

    def entry() -> int:
        Raises(Interrupted(2))
        Raises(ValueError("kept"))
        gc.collect()
        return 0

    reported: list[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    hook = sys.unraisablehook
    assert guarded(entry) == 0
    assert [type(e) for e in reported] == [ValueError]
    assert sys.unraisablehook is hook


# --------------------------------------------------------------------------- #
# evokeras specialize MODEL.keras --task ...                                   #
# --------------------------------------------------------------------------- #
SPECIALIZE_CONFIG = {
    "population": 2, "offspring": 2, "generations": 0,
    "objectives": {"val_error": -1, "params": -1},
    "evaluation": {"train_samples": 64, "val_samples": 32, "time_repeats": 1, "time_batch": 16},
    "space": {"finetune": [0, 1], "importance": ["taylor"]},
    "task_options": {"teacher_epochs": 0, "importance_samples": 32},
    "final_train_samples": 64, "final_members": 1,
}


@pytest.mark.slow  # a real specialization search end to end (~40 s): the engine and CLI, once, on TensorFlow
def test_cli_specialize_end_to_end_and_bad_input(tmp_path, capsys) -> None:
    keras = pytest.importorskip("keras")
    from evokeras.app.cli import main
    from evokeras.nets import zoo

    keras.utils.set_random_seed(0)
    model_path = tmp_path / "tiny.keras"
    zoo.plain_cnn((28, 28, 1), 2, widths=(2, 4), dense=8, activation="sigmoid").save(model_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(SPECIALIZE_CONFIG))
    # bad input: one line naming the path, flag or key; status 2; nothing written
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPECIALIZE_CONFIG, "space": {"importance": "taylor"}}))
    for argv, named in (([str(tmp_path / "none.keras"), "--task", "mnist"], "none.keras"),
                        ([str(cfg), "--task", "mnist"], "cfg.json"),
                        ([str(model_path), "--task", "no_such_task"], "--task"),
                        ([str(model_path), "--task", "mnist", "--config", str(tmp_path / "nope.json")], "nope.json"),
                        ([str(model_path), "--task", "mnist", "--config", str(bad)], "importance"),
                        ([str(model_path), "--task", "fashion_mnist", "--config", str(cfg), "--out", str(cfg)], "--out")):
        out = tmp_path / "bad_run"
        assert main(["specialize", *argv, "--no-progress", *([] if "--out" in argv else ["--out", str(out)])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and named in err[0], err
        assert not out.exists()
    out = tmp_path / "run"
    assert main(["specialize", str(model_path), "--task", "mnist", "--config", str(cfg), "--out", str(out),
                 "--no-progress", "--compare-pruning"]) == 0
    printed = capsys.readouterr().out
    # the opt-in comparison: the base pruned to three levels of its MACs, fine-tuned, timed with the front
    pruning = json.loads((out / "pruning.json").read_text())
    assert [r["level"] for r in pruning["levels"]] == [0.5, 0.25, 0.125]
    # this tiny base (2 and 4 filters) cannot go down to 12.5% of its MACs: said, not raised
    reached = [r for r in pruning["levels"] if "error" not in r]
    assert [r["level"] for r in reached] == [0.5, 0.25] and "0.125" in pruning["levels"][2]["error"]
    macs = [pruning["methods"][r["method"]]["macs"] for r in reached]
    assert macs[0] > macs[1] and macs[0] <= 0.5 * pruning["source"]["macs"] and macs[1] <= 0.25 * pruning["source"]["macs"]
    for r in reached:
        assert 0 <= r["test_error"] <= 1 and r["exec_time"] > 0
        assert r["dominated"] == (r["front_member"] is not None and r["front_member_test_error"] < r["test_error"])
    assert pruning["dominates"] == all(r["dominated"] for r in reached)
    finished = [m for m in json.loads((out / "hall_of_fame.json").read_text())["members"] if "test_error" in m]
    assert set(pruning["members"]) == {m["key"] for m in finished}
    assert "dominated" in printed and "not reached" in printed
    hof = json.loads((out / "hall_of_fame.json").read_text())
    member = hof["members"][0]
    assert member["genome"]["program"] == "edit" and (out / member["model"]).is_file()
    assert (out / "base.keras").is_file() and member["key"] in printed
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["task"] == "specialize" and config["task_options"]["target"] == "mnist"
    assert config["task_options"]["teacher_epochs"] == 0


def test_version() -> None:
    import evokeras

    proc = subprocess.run([*EVOKERAS, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"evokeras {evokeras.__version__}", proc.stderr[-1000:]
