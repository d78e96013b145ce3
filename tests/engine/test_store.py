"""Tests for :mod:`evokeras.engine.store`: the SQLite run store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from evokeras.engine.store import RunStore, StoreError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.training.records import EvalResult, worst_values


def _result(units: int = 16, status: str = "ok") -> EvalResult:
    g = Genome((LayerGene("conv", units=8), LayerGene("pool"), LayerGene("dense", units=units)),
               training=TrainingGenes("sgd", 0.01, 64))
    if status != "ok":
        return EvalResult(g.key, g.to_dict(), status, worst_values([-1.0, -1.0]), ("val_error", "flops"),
                          metrics={"params": 123}, error="ValueError: boom")
    return EvalResult(
        key=g.key,
        genome=g.to_dict(),
        status="ok",
        objectives=(0.125, 16384.0),
        objective_names=("val_error", "flops"),
        metrics={"params": 1234, "flops": 16384, "val_error": 0.125, "val_loss": 0.4, "epochs": 2},
        times={"build": 0.1, "fit": 1.5, "total": 1.75},
    )


@pytest.fixture
def store(tmp_path: Path):
    with RunStore(tmp_path / "run.db") as s:
        yield s


def test_evaluation_round_trip(store: RunStore) -> None:
    ok, failed = _result(16), _result(32, status="failed")
    store.add_evaluation(ok, 0)
    store.add_evaluation(failed, 1)
    assert store.get_evaluation(ok.key) == ok
    assert store.get_evaluation(failed.key) == failed
    assert store.get_evaluation("0" * 16) is None
    assert list(store.evaluations()) == [(0, ok), (1, failed)]
    assert store.count_evaluations() == 2
    # the record survives a fresh connection (committed, not just cached)
    with RunStore(store.path, create=False) as again:
        assert again.get_evaluation(ok.key) == ok
        assert Genome.from_dict(again.get_evaluation(ok.key).genome).key == ok.key
        assert EvalResult.from_dict(ok.to_dict()) == ok


def test_duplicate_key_is_ignored(store: RunStore) -> None:
    first = _result(16)
    store.add_evaluation(first, 0)
    second = EvalResult(first.key, first.genome, "failed", (1e9, 1e9), first.objective_names, error="later")
    store.add_evaluation(second, 3)
    assert store.count_evaluations() == 1
    assert list(store.evaluations()) == [(0, first)]


def test_meta_round_trip(store: RunStore) -> None:
    assert store.get_meta("objectives") is None
    assert store.get_meta("objectives", {}) == {}
    store.set_meta("objectives", {"val_error": -1.0, "flops": -1.0})
    store.set_meta("finished", True)
    store.set_meta("finished", False)
    assert store.get_meta("objectives") == {"val_error": -1.0, "flops": -1.0}
    assert store.get_meta("finished") is False
    # setting a value already there writes nothing (a refused resume leaves the store as it was)
    dump = list(store._db.iterdump())
    store.set_meta("objectives", {"val_error": -1.0, "flops": -1.0})
    assert list(store._db.iterdump()) == dump


def test_end_generation_commits_record_and_checkpoint(store: RunStore) -> None:
    assert store.latest_checkpoint() is None
    assert store.generations() == []
    store.end_generation(0, {"gen": 0, "nevals": 4}, {"gen": 0, "population": [1, 2]})
    store.end_generation(1, {"gen": 1, "nevals": 3}, {"gen": 1, "population": [3]})
    assert store.generations() == [{"gen": 0, "nevals": 4}, {"gen": 1, "nevals": 3}]
    assert store.latest_checkpoint() == {"gen": 1, "population": [3]}


def test_end_generation_is_atomic(store: RunStore) -> None:
    store.end_generation(0, {"gen": 0}, {"gen": 0})
    # a checkpoint that cannot be serialised must not leave its logbook record behind
    with pytest.raises(TypeError):
        store.end_generation(1, {"gen": 1}, {"gen": 1, "bad": object()})
    assert store.generations() == [{"gen": 0}]
    assert store.latest_checkpoint() == {"gen": 0}
    # a failure inside the transaction (after the record was written) rolls it back
    store._db.execute("CREATE TRIGGER no_gen2 BEFORE INSERT ON checkpoints WHEN NEW.gen = 2 "
                      "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.end_generation(2, {"gen": 2}, {"gen": 2})
    assert store.generations() == [{"gen": 0}]
    assert store.latest_checkpoint() == {"gen": 0}
    # and the store is usable afterwards (no transaction left open)
    store.end_generation(1, {"gen": 1}, {"gen": 1})
    assert [r["gen"] for r in store.generations()] == [0, 1]


def test_missing_store_without_create_raises(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "run.db"
    with pytest.raises(StoreError, match="nothing"):
        RunStore(path, create=False)
    assert not path.exists()


def test_garbage_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError, match="run.db"):
        RunStore(path, create=False)
    with pytest.raises(StoreError):
        RunStore(path)


def test_create_makes_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with RunStore(path) as s:
        assert s.count_evaluations() == 0
    assert path.is_file()
    with RunStore(path, create=False) as s:
        assert s.count_evaluations() == 0


def test_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE other (x INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an evokeras run store"):
        RunStore(path, create=False)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"other"}
