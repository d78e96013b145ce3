"""Run directories written by the previous release (0.3.0, before the package was split
into layers) still work: ``evokeras report`` reads them, ``evokeras resume`` continues
them, and the genome keys they hold are the keys the current code computes.

The stored directories (``tests/data``), written by the old flat package
(``evokeras.config.SearchConfig``, ``evokeras.search.Search``, ``evokeras.study.finish``;
commit ec017d0) with the TensorFlow backend and this configuration::

    {"study": "mnist", "task": "mnist", "budget_name": "custom", "seed": 0,
     "population": 2, "offspring": 2, "generations": 0,
     "evaluation": {"epochs": 1, "train_samples": 128, "val_samples": 64,
                    "patience": 0, "time_repeats": 1},
     "final_epochs": 1, "final_train_samples": 128}

* ``run_v030``: ``finish(Search(config, dir))`` -- searched, final models trained and
  tested (``hall_of_fame.json``, ``models/``), marked finished; ``plots/`` dropped.
* ``run_v030_partial``: ``Search(config, dir)._run()`` only -- generation 0 evaluated and
  checkpointed, no final models; then ``config.json``'s ``generations`` set to 1 (key
  order kept) so that ``resume`` has one generation to do.

``.lock`` and the empty ``run.db-wal``/``run.db-shm`` were left out. The tests work on
copies in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from evokeras.app.cli import main  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.genomes.network import Genome  # noqa: E402
from evokeras.results.report import format_report, read_front  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
FINISHED_KEYS = ["2d2f3684ca32d8dc", "a0e34ba65cce9600"]


def _copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(DATA / name, dest)
    return dest


def _rows(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    """The evaluations of ``run.db`` by key: the whole row (id, finish time and all)."""
    with sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True) as db:
        return {row[1]: row for row in db.execute("SELECT * FROM evaluations ORDER BY id")}


def _checkpoint_genomes(run_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True) as db:
        states = [json.loads(s) for (s,) in db.execute("SELECT state FROM checkpoints")]
    return [item["genome"] for state in states for part in ("population", "front") for item in state[part]]


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    return _copy(tmp_path, "run_v030")


@pytest.fixture
def partial(tmp_path: Path) -> Path:
    return _copy(tmp_path, "run_v030_partial")


def test_stored_directories_are_small_and_as_described() -> None:
    files = [p for p in DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert not [p for p in files if p.name in {".lock", "run.db-wal", "run.db-shm"}]
    for name, generations in (("run_v030", 0), ("run_v030_partial", 1)):
        config = json.loads((DATA / name / "config.json").read_text())
        assert config["versions"]["evokeras"] == "0.3.0"
        assert config["config"]["generations"] == generations
        assert list(config["config"]["objectives"]) == ["val_error", "exec_time"]
    assert not (DATA / "run_v030_partial" / "hall_of_fame.json").exists()


@pytest.mark.parametrize("name", ["run_v030", "run_v030_partial"])
def test_stored_keys_are_the_current_genome_keys(name: str, tmp_path: Path) -> None:
    run_dir = _copy(tmp_path, name)  # even a read-only open of a WAL database writes -shm
    rows = _rows(run_dir)
    assert sorted(rows) == FINISHED_KEYS
    for key, row in rows.items():
        assert Genome.from_dict(json.loads(row[3])).key == key  # column `genome`
    genomes = _checkpoint_genomes(run_dir)
    assert len(genomes) == 4  # population 2 + front 2 of generation 0
    assert {Genome.from_dict(g).key for g in genomes} == set(FINISHED_KEYS)
    hof = run_dir / "hall_of_fame.json"
    if hof.is_file():
        members = json.loads(hof.read_text())["members"]
        assert sorted(m["key"] for m in members) == FINISHED_KEYS
        for m in members:
            assert Genome.from_dict(m["genome"]).key == m["key"]
            assert (run_dir / m["model"]).is_file()


def test_report_of_finished_run(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(finished)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Pareto front of {finished}\n"), out
    for key in FINISHED_KEYS:
        assert key in out
    assert "test_accuracy" in out and "not finished" not in out
    assert format_report(finished) in out
    front = read_front(finished)
    assert front == json.loads((finished / "hall_of_fame.json").read_text())
    assert list(front["objectives"]) == ["val_error", "exec_time"]
    assert main(["report", "--json", str(finished)]) == 0
    assert json.loads(capsys.readouterr().out) == front


def test_report_of_unfinished_run(partial: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(partial)]) == 0
    out = capsys.readouterr().out
    assert "search not finished" in out, out
    for key in FINISHED_KEYS:
        assert key in out
    front = read_front(partial)
    assert front["final"] is False
    assert sorted(m["key"] for m in front["members"]) == FINISHED_KEYS


def test_resume_of_finished_run_does_nothing(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _rows(finished)
    hof = (finished / "hall_of_fame.json").read_bytes()
    assert main(["resume", str(finished), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for key in FINISHED_KEYS:
        assert key in out
    assert _rows(finished) == before
    assert (finished / "hall_of_fame.json").read_bytes() == hof


def test_search_resume_reads_old_config_and_checkpoint(partial: Path) -> None:
    with Search.resume(partial) as search:
        assert search.config.strategy.generations == 1
        assert search.config.strategy.population == 2 and search.config.seed == 0
        assert list(search.config.objectives) == ["val_error", "exec_time"]
        checkpoint = search.store.latest_checkpoint()
        assert checkpoint is not None and checkpoint["gen"] == 0
        assert search.store.count_evaluations() == 2
        assert not search.store.get_meta("finished")
        # keys added in 0.4 keep the old behaviour: no constraint on the front (its members
        # have validation errors of 0.8-0.9), a constant final learning rate
        assert search.config.max_val_error == 1.0 and search.config.final.schedule == "constant"
        assert search.config.final.augment == 0
        assert search.store.get_meta("max_val_error") == 1.0


def test_resume_of_partial_run_keeps_old_evaluations(partial: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _rows(partial)
    assert main(["resume", str(partial), "--no-progress"]) == 0
    out = capsys.readouterr().out
    after = _rows(partial)
    # the generation-0 evaluations are still there, unchanged: not evaluated again
    assert {k: after[k] for k in before} == before
    with sqlite3.connect(f"file:{partial / 'run.db'}?mode=ro", uri=True) as db:
        gens = dict(db.execute("SELECT generation, COUNT(*) FROM evaluations GROUP BY generation"))
        (n_old,) = db.execute(
            f"SELECT COUNT(*) FROM evaluations WHERE key IN ({','.join('?' * len(before))})", list(before)
        ).fetchone()
        checkpoints = [g for (g,) in db.execute("SELECT gen FROM checkpoints ORDER BY gen")]
    assert n_old == 2 and gens[0] == 2
    assert sum(gens.values()) == len(after) <= 2 + 2  # at most the 2 offspring of generation 1
    assert checkpoints == [0, 1]
    for key, row in after.items():
        assert Genome.from_dict(json.loads(row[3])).key == key
    # finished: final models, hall of fame, report
    hof = json.loads((partial / "hall_of_fame.json").read_text())
    assert hof["members"] and all((partial / m["model"]).is_file() for m in hof["members"])
    assert list(hof["objectives"]) == ["val_error", "exec_time"]
    assert "Pareto front of" in out
    assert main(["report", str(partial)]) == 0
    report = capsys.readouterr().out
    for m in hof["members"]:
        assert m["key"] in report
