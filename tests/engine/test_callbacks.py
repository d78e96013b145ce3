"""Tests for :mod:`evokeras.engine.callbacks` (hooks, TensorBoard) and
:mod:`evokeras.results.export` (a run store as an Optuna study), on the analytic fake
evaluator (no training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402

from evokeras import Callback, TensorBoard, export_optuna  # noqa: E402
from evokeras.engine.callbacks import candidate_hparams  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402


class Recorder(Callback):
    """Every hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_search_begin(self, search: Search) -> None:
        self.calls.append(("begin", search.out_dir))

    def on_evaluation(self, result: Any, generation: int) -> None:
        self.calls.append(("evaluation", result.key, result.status, generation))

    def on_generation(self, record: Any, front: Any) -> None:
        self.calls.append(("generation", dict(record), sorted(ind.key for ind in front)))

    def on_search_end(self, result: Any) -> None:
        self.calls.append(("end", result.generations_done, sorted(ind.key for ind in result.front)))


def _search(out: Path, callbacks: list[Callback], **overrides: Any) -> Search:
    cfg = small_config(**overrides)
    return Search(cfg, out, evaluate=fake_for(cfg), callbacks=callbacks)


def test_hooks_are_called_in_order_with_what_the_store_holds(tmp_path: Path) -> None:
    rec = Recorder()
    with _search(tmp_path / "run", [rec], generations=3) as search:
        result = search._run()
        evaluations = [(r.key, r.status, gen) for gen, r in search.store.evaluations()]
        records = search.store.generations()
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert kinds.count("begin") == 1 and kinds.count("end") == 1
    assert [c[1:] for c in rec.calls if c[0] == "evaluation"] == evaluations
    assert [c[1] for c in rec.calls if c[0] == "generation"] == records
    # each generation is reported after its evaluations
    gens_seen = [c[3] if c[0] == "evaluation" else c[1]["gen"] for c in rec.calls if c[0] in ("evaluation", "generation")]
    assert gens_seen == sorted(gens_seen)
    assert rec.calls[-1] == ("end", 3, sorted(ind.key for ind in result.front))
    assert [c for c in rec.calls if c[0] == "generation"][-1][2] == rec.calls[-1][2]


def test_callbacks_do_not_change_the_run(tmp_path: Path) -> None:
    with _search(tmp_path / "plain", [], generations=2) as a:
        plain = a._run()
    with _search(tmp_path / "watched", [Recorder(), TensorBoard(tmp_path / "tb")], generations=2) as b:
        watched = b._run()
    assert sorted(i.key for i in plain.front) == sorted(i.key for i in watched.front)
    def figures(logbook: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "elapsed"} for r in logbook]

    assert figures(plain.logbook) == figures(watched.logbook)


def test_resume_takes_callbacks_and_reports_only_new_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with _search(out, [], generations=1) as first:
        first._run()
    rec = Recorder()
    cfg = json.loads((out / "config.json").read_text())["config"]
    cfg["strategy"]["generations"] = 2
    (out / "config.json").write_text(json.dumps({"config": cfg}))
    with Search.resume(out, callbacks=[rec], evaluate=fake_for(small_config(generations=2))) as search:
        search._run()
    assert [c[1]["gen"] for c in rec.calls if c[0] == "generation"] == [2]
    assert {c[3] for c in rec.calls if c[0] == "evaluation"} == {2}


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"] if not tag.startswith("_hparams_")}


def test_tensorboard_scalars_per_generation_and_evaluation(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    with _search(tmp_path / "run", [TensorBoard(tmp_path / "tb")], generations=2) as search:
        result = search._run()
        records = search.store.generations()
        ok = [r for _, r in search.store.evaluations() if r.ok and r.full]
    scalars = _scalars(tmp_path / "tb")
    for name in ("val_error", "flops"):
        for stat in ("min", "avg", "max"):
            assert scalars[f"{name}/{stat}"] == [(r["gen"], pytest.approx(r[name][stat])) for r in records]
        assert [v for _, v in scalars[f"evaluation/{name}"]] == pytest.approx(
            [r.objectives[0 if name == "val_error" else 1] for r in ok])
    assert [v for _, v in scalars["search/evaluations"]] == [r["nevals"] for r in records]
    assert scalars["search/front_size"][-1] == (2, len(result.front))
    # one HParams session per successful candidate: its genes, its objectives
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert sorted(p.name for p in (tmp_path / "tb" / "candidates").iterdir()) == sorted(r.key for r in ok)
    r = ok[0]
    acc = ea.EventAccumulator(str(tmp_path / "tb" / "candidates" / r.key), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert info.group_name == r.key
    assert info.hparams["layers"].number_value == len(r.genome["layers"])
    assert info.hparams["training.optimizer"].string_value == r.genome["training"]["optimizer"]
    assert _scalars(tmp_path / "tb" / "candidates" / r.key)["objective/val_error"] == [(0, pytest.approx(r.objectives[0]))]


def test_candidate_hparams_flattens_a_genome() -> None:
    genome = {"layers": [{"kind": "dense"}, {"kind": "dropout"}], "reduce": "flatten",
              "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64}}
    assert candidate_hparams(genome, 3) == {"generation": 3, "layers": 2.0, "reduce": "flatten",
                                            "training.optimizer": "adam", "training.learning_rate": 0.001,
                                            "training.batch_size": 64}
    program = {"drop": [1, 2], "squeeze": {"3": 0.5}, "cut": 4, "head": "ridge", "finetune": None}
    assert candidate_hparams(program, 0) == {"generation": 0, "drop": 2.0, "squeeze.3": 0.5, "cut": 4,
                                             "head": "ridge"}


def test_export_optuna(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    with _search(tmp_path / "run", [], generations=2) as search:
        search._run()
    with RunStore(tmp_path / "run" / "run.db", readonly=True) as store:
        rows = list(store.evaluations())
    url = f"sqlite:///{tmp_path / 'run.optuna.db'}"
    study = export_optuna(tmp_path / "run", url)
    assert study.study_name == "run"
    loaded = optuna.load_study(study_name="run", storage=url)
    trials = loaded.get_trials(deepcopy=False)
    assert len(trials) == len(rows)
    assert loaded.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    assert loaded.metric_names == ["val_error", "flops"]
    for trial, (gen, r) in zip(trials, rows, strict=True):
        assert trial.user_attrs["key"] == r.key and trial.params == {"generation": gen}
        assert json.loads(trial.user_attrs["genome"]) == r.genome
        assert trial.state == (optuna.trial.TrialState.COMPLETE if r.ok else optuna.trial.TrialState.FAIL)
        if r.ok:
            assert trial.values == list(r.objectives)
    # Optuna's Pareto front is the run's unconstrained front of successful evaluations
    best = {t.user_attrs["key"] for t in loaded.best_trials}
    assert best and best <= {r.key for _, r in rows if r.ok}
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        export_optuna(tmp_path / "run", url)
