"""Tests for :class:`evokeras.MLflow`: a search logged to a real MLflow tracking store
(SQLite in ``tmp_path``), read back with ``mlflow.MlflowClient``. The search tests run on
the analytic fake evaluator (no training); the finished run is a tiny real regression."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported
mlflow = pytest.importorskip("mlflow")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import FakeCrash, fake_for, small_config  # noqa: E402

import evokeras  # noqa: E402
from evokeras import MissingExtraError, MLflow  # noqa: E402
from evokeras.engine.callbacks import MLFLOW_META, candidate_hparams, flat_params  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite tracking store; the working directory (MLflow's default artifact
    root ``./mlruns``) is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _run(search: Search) -> Any:
    """The search's own loop (``_run``: the run is finished by ``runner.complete``)."""
    return search._run()


def _search(out: Path, callbacks: list[Any], **overrides: Any) -> Search:
    fake = overrides.pop("fake", {})
    cfg = small_config(**overrides)
    return Search(cfg, out, evaluate=fake_for(cfg, **fake), callbacks=callbacks)


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _children(client: Any, run: Any) -> list[Any]:
    return client.search_runs([run.info.experiment_id], max_results=1000,
                              filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")


def test_search_run_params_generations_and_nested_candidates(uri: str, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    tracker = MLflow(uri, experiment="tests")
    with _search(tmp_path / "run", [tracker], generations=2) as search:
        result = _run(search)
        records = search.store.generations()
        ok = {r.key: (gen, r) for gen, r in search.store.evaluations() if r.ok and r.full}
        assert search.store.get_meta(MLFLOW_META) == {tracker.client.tracking_uri: tracker.run_id}
        config = search.config.to_dict()
    client = mlflow.MlflowClient(uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "RUNNING"  # open until the run is finished or closed
    tracker.close()
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert client.get_experiment(run.info.experiment_id).name == "tests"
    assert run.data.params == flat_params(config)
    assert run.data.params["strategy.population"] == "6" and run.data.params["task"] == "mnist"
    assert run.data.params["space.init_layers"] == "[2, 4]"
    assert run.data.tags["evokeras.version"] == evokeras.__version__
    assert run.data.tags["evokeras.run_dir"] == str((tmp_path / "run").resolve())
    assert run.data.tags["evokeras.stopped_by"] == result.stopped_by
    for name in ("val_error", "flops"):
        for stat in ("min", "avg", "max"):
            assert _history(client, run.info.run_id, f"{name}/{stat}") == [
                (r["gen"], pytest.approx(r[name][stat])) for r in records]
    assert _history(client, run.info.run_id, "search/evaluations") == [(r["gen"], r["nevals"]) for r in records]
    assert _history(client, run.info.run_id, "search/failed") == [(r["gen"], r["nfailed"]) for r in records]
    assert _history(client, run.info.run_id, "search/front_size")[-1] == (2, len(result.front))
    assert [s for s, _ in _history(client, run.info.run_id, "search/elapsed_seconds")] == [0, 1, 2]
    # one finished nested run per successful evaluation: its genes, its objectives
    children = _children(client, run)
    assert sorted(c.data.tags["evokeras.key"] for c in children) == sorted(ok)
    for child in children:
        gen, r = ok[child.data.tags["evokeras.key"]]
        assert child.info.status == "FINISHED" and child.info.run_name == r.key
        assert child.data.params == {k: str(v) for k, v in candidate_hparams(r.genome, gen).items()}
        assert child.data.metrics["val_error"] == pytest.approx(r.objectives[0])
        assert child.data.metrics["flops"] == pytest.approx(r.objectives[1])
        assert child.data.metrics["params"] == r.metrics["params"]
    assert capfd.readouterr().out == ""  # MLflow's banners and links stay quiet


def test_resume_continues_the_same_run(uri: str, tmp_path: Path) -> None:
    """A search that crashed ends KILLED; resumed with a new callback it logs on to the
    same MLflow run (metrics by step without nested runs), which then ends FINISHED."""
    out = tmp_path / "run"
    first = MLflow(uri, nested_candidates=False)
    with pytest.raises(FakeCrash), _search(out, [first], generations=2, fake={"crash_after": 9}) as search:
        _run(search)
    first.close()
    client = mlflow.MlflowClient(uri)
    assert client.get_run(first.run_id).info.status == "KILLED"
    steps = _history(client, first.run_id, "evaluation/val_error")
    assert [s for s, _ in steps] == list(range(len(steps))) and steps
    second = MLflow(uri, nested_candidates=False)
    with Search.resume(out, callbacks=[second], evaluate=fake_for(small_config(generations=2))) as search:
        _run(search)
        records = search.store.generations()
        ok = [r for _, r in search.store.evaluations() if r.ok and r.full]
    assert second.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "RUNNING"
    second.close()
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id])] == [first.run_id]
    assert _history(client, run.info.run_id, "val_error/min") == [
        (r["gen"], pytest.approx(r["val_error"]["min"])) for r in records]
    # the evaluations' steps go on where the first process stopped
    assert _history(client, run.info.run_id, "evaluation/val_error") == [
        (i, pytest.approx(r.objectives[0])) for i, r in enumerate(ok)]
    assert not _children(client, run)


def test_finished_run_logs_test_figures_and_artifacts(uri: str, tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1
    tracker = MLflow(uri, experiment="finished", run_name="regression")
    run_dir = evokeras.search(evokeras.from_arrays(x, y, regression=True), tmp_path / "run", config={
        "population": 2, "offspring": 1, "generations": 1, "final_members": 1, "final_epochs": 2,
        "evaluation": {"epochs": 2, "train_samples": None, "val_samples": None, "time_repeats": 1}},
        callbacks=[tracker], progress=False)
    assert capfd.readouterr().out == ""
    client = mlflow.MlflowClient(uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "regression"
    entries = json.loads((tmp_path / "run" / "hall_of_fame.json").read_text())["members"]
    best = entries[0]
    assert best["status"] == "ok" and run_dir.models
    for name in ("test_loss", "test_mae"):
        assert run.data.metrics[f"hall_of_fame/0/{name}"] == pytest.approx(best[name])
    (member,) = [c for c in _children(client, run) if c.data.tags["evokeras.key"] == best["key"]]
    assert member.data.metrics["test_mae"] == pytest.approx(best["test_mae"])
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"hall_of_fame.json", "config.json", "logbook.csv", "models", "plots"} <= artifacts
    models = {f.path for f in client.list_artifacts(run.info.run_id, "models")}
    assert models == {f"models/{Path(m).name}" for m in run_dir.models}
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {f"plots/{p.name}" for p in (tmp_path / "run" / "plots").glob("*.png")} and plots
    local = Path(client.download_artifacts(run.info.run_id, "hall_of_fame.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text())["members"] == entries


def test_missing_mlflow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ModuleNotFoundError
    tracker = MLflow(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MissingExtraError, match=r"pip install 'evokeras\[mlflow\]'"):
        _ = tracker.client


def test_flat_params() -> None:
    assert flat_params({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2], "f": "x" * 7000, "g": True}) == {
        "a.b": "1", "a.c.d": "null", "e": "[1, 2]", "f": "x" * 6000, "g": "True"}


def test_a_relative_sqlite_uri_is_taken_from_where_the_callback_is_made(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert MLflow("sqlite:///mlflow.db").tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    for uri in (None, "http://localhost:5000", f"sqlite:///{tmp_path}/x.db"):
        assert MLflow(uri).tracking_uri == uri
