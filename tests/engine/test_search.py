"""Tests for :mod:`evokeras.engine.search` with a cheap analytic evaluator (no training),
including resumption after an in-process crash and after ``kill -9``."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, TESTS_DIR, FakeCrash, KeyMod, fake_for, small_config  # noqa: E402

from evokeras.engine.config import ConfigError  # noqa: E402
from evokeras.engine.search import RunError, Search, SearchResult  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.results.plotting import nondominated  # noqa: E402


def _run(tmp: Path, name: str, **overrides) -> tuple[SearchResult, Search]:
    cfg = small_config(**overrides)
    fake = fake_for(cfg)
    search = Search(cfg, tmp / name, evaluate=fake)
    result = search._run()
    search.fake = fake  # type: ignore[attr-defined]
    return result, search


def _front_keys(result: SearchResult) -> list[str]:
    return sorted(ind.key for ind in result.front)


def _store_rows(path: Path) -> dict[str, tuple]:
    with RunStore(path / "run.db", create=False) as store:
        return {r.key: (r.status, r.objectives) for _, r in store.evaluations()}


def _dominates(a, b, weights) -> bool:
    a = np.asarray(a) * -np.sign(weights)
    b = np.asarray(b) * -np.sign(weights)
    return bool(np.all(a <= b) and np.any(a < b))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[SearchResult, Search]:
    """An uninterrupted run: seed 0, 4 generations after the initial one."""
    result, search = _run(tmp_path_factory.mktemp("search"), "ref")
    yield result, search
    search.close()


def test_runs_all_generations(reference) -> None:
    result, search = reference
    assert result.stopped_by == "generations"
    assert result.generations_done == search.config.strategy.generations == 4
    assert [r["gen"] for r in search.store.generations()] == [0, 1, 2, 3, 4]
    assert len(result.logbook) == 5
    assert result.evaluations == search.store.count_evaluations() > search.config.strategy.population
    assert search.store.latest_checkpoint()["gen"] == 4
    config = json.loads((search.out_dir / "config.json").read_text())
    assert config["config"]["seed"] == 0
    assert config["config"]["strategy"]["generations"] == 4
    assert "evokeras" in config["versions"] and "keras_backend" in config["versions"]


def test_front_is_nondominated_and_complete(reference) -> None:
    result, search = reference
    weights = np.array(search.weights)
    front = [tuple(ind.fitness.values) for ind in result.front]
    assert front
    for i, a in enumerate(front):
        for j, b in enumerate(front):
            assert i == j or not _dominates(b, a, weights), (a, b)
    # the front is exactly the non-dominated set of every successful evaluation of the run
    rows = {k: v for k, v in _store_rows(search.out_dir).items() if v[0] == "ok"}
    keys = list(rows)
    points = np.array([rows[k][1] for k in keys]) * -np.sign(weights)
    expected = sorted(k for k, keep in zip(keys, nondominated(points), strict=True) if keep)
    assert _front_keys(result) == expected
    for ind in result.front:
        assert tuple(ind.fitness.values) == rows[ind.key][1]


def test_logbook_csv_one_row_per_generation_and_objective(reference) -> None:
    result, search = reference
    with open(search.out_dir / "logbook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    objectives = list(search.config.objectives)
    assert [(int(r["gen"]), r["objective"]) for r in rows] == [
        (g, name) for g in range(5) for name in objectives
    ]
    records = search.store.generations()
    for r in rows:
        rec = records[int(r["gen"])]
        stats = rec[r["objective"]]
        assert float(r["min"]) == stats["min"] <= float(r["avg"]) <= float(r["max"]) == stats["max"]
        assert int(r["nevals"]) == rec["nevals"]
    assert sum(rec["nevals"] for rec in records) == search.store.count_evaluations()


def test_identical_genomes_are_evaluated_once(reference) -> None:
    result, search = reference
    calls = search.fake.calls
    assert len(calls) == len(set(calls)) == search.store.count_evaluations()
    assert set(calls) == set(_store_rows(search.out_dir))


def test_failed_candidates_are_recorded_and_never_in_the_front(tmp_path: Path) -> None:
    cfg = small_config(generations=3)
    fake = fake_for(cfg, fail_if=KeyMod(3))
    search = Search(cfg, tmp_path / "run", evaluate=fake)
    result = search._run()
    evaluations = [r for _, r in search.store.evaluations()]
    failed = [r for r in evaluations if r.status == "failed"]
    assert failed, "the predicate should fail some candidates"
    assert any(r.ok for r in evaluations)
    for r in failed:
        assert r.error and "simulated candidate failure" in r.error
        assert r.objectives == (1e9, 1e9)
        assert int(r.key, 16) % 3 == 0
    front = set(_front_keys(result))
    assert front and not front & {r.key for r in failed}
    records = search.store.generations()
    assert sum(rec["nfailed"] for rec in records) == len(failed)
    # statistics are over successful candidates only: no worst values leak into them
    for rec in records:
        for name in cfg.objectives:
            assert not rec[name]["max"] >= 1e9
    search.close()


def test_same_seed_same_front_other_seed_other_front(tmp_path: Path, reference) -> None:
    ref, ref_search = reference
    again, search = _run(tmp_path, "same")
    other, other_search = _run(tmp_path, "other", seed=1)
    assert _front_keys(again) == _front_keys(ref)
    assert [tuple(i.fitness.values) for i in again.front] == [tuple(i.fitness.values) for i in ref.front]
    assert set(_store_rows(search.out_dir)) == set(_store_rows(ref_search.out_dir))
    assert _front_keys(other) != _front_keys(ref)
    assert set(_store_rows(other_search.out_dir)) != set(_store_rows(ref_search.out_dir))
    search.close()
    other_search.close()


def test_wall_seconds_stops_early(tmp_path: Path) -> None:
    result, search = _run(tmp_path, "wall", generations=50, wall_seconds=1e-6)
    assert result.stopped_by == "wall_seconds"
    assert result.generations_done == 0
    assert [r["gen"] for r in search.store.generations()] == [0]
    assert (search.out_dir / "logbook.csv").is_file()
    search.close()


def test_existing_run_dir_raises_run_error(tmp_path: Path, reference) -> None:
    _, ref_search = reference
    before = (ref_search.out_dir / "config.json").read_text()
    cfg = small_config()
    with pytest.raises(RunError, match="already holds a run"):
        Search(cfg, ref_search.out_dir, evaluate=fake_for(cfg))
    assert (ref_search.out_dir / "config.json").read_text() == before


def test_resume_of_a_non_run_dir_raises_run_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="not a run directory"):
        Search.resume(tmp_path)
    (tmp_path / "run.db").write_bytes(b"garbage " * 100)
    (tmp_path / "config.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(RunError):
        Search.resume(tmp_path, evaluate=lambda g: None)


def test_resume_a_finished_run_does_nothing(tmp_path: Path) -> None:
    result, search = _run(tmp_path, "done", generations=1)
    search.close()
    cfg = small_config(generations=1)
    fake = fake_for(cfg)
    resumed = Search.resume(tmp_path / "done", evaluate=fake)
    again = resumed._run()
    assert fake.calls == []
    assert again.generations_done == 1
    assert _front_keys(again) == _front_keys(result)
    resumed.close()


# -- resume after a crash ---------------------------------------------------------------------


def _gen_counts(run_dir: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    with RunStore(run_dir / "run.db", create=False) as store:
        for gen, _ in store.evaluations():
            counts[gen] = counts.get(gen, 0) + 1
    return counts


@pytest.mark.parametrize("where", ["gen0", "gen1-start", "gen2"])
def test_resume_after_crash_matches_uninterrupted_run(tmp_path: Path, reference, where: str) -> None:
    ref, ref_search = reference
    counts = _gen_counts(ref_search.out_dir)
    assert counts[0] >= 2 and counts.get(2, 0) >= 2, counts
    crash_after, last_gen = {
        "gen0": (counts[0] // 2, None),  # before any checkpoint
        "gen1-start": (counts[0], 0),  # right after the first checkpoint
        "gen2": (counts[0] + counts[1] + 1, 1),  # at the second new evaluation of generation 2
    }[where]
    cfg = small_config()
    crashing = fake_for(cfg, crash_after=crash_after)
    search = Search(cfg, tmp_path / "crash", evaluate=crashing)
    with pytest.raises(FakeCrash):
        search._run()
    checkpoint = search.store.latest_checkpoint()
    assert (checkpoint and checkpoint["gen"]) == last_gen
    done = set(_store_rows(search.out_dir))
    assert len(done) == crash_after
    search.close()

    fresh = fake_for(cfg)
    resumed = Search.resume(tmp_path / "crash", evaluate=fresh)
    result = resumed._run()
    assert not set(fresh.calls) & done, "evaluations already in the store were redone"
    assert len(fresh.calls) == len(set(fresh.calls))
    assert result.generations_done == 4 and result.stopped_by == "generations"
    assert _front_keys(result) == _front_keys(ref)
    assert _store_rows(resumed.out_dir) == _store_rows(ref_search.out_dir)

    # the logbook of every generation (counts and statistics) is that of the uninterrupted run
    assert _strip(resumed.store.generations(), "elapsed") == _strip(ref_search.store.generations(), "elapsed")
    resumed.close()


def _strip(records: list[dict], *keys: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in keys} for r in records]


def test_resume_keeps_the_evaluation_counts(tmp_path: Path, reference) -> None:
    _, ref_search = reference
    counts = _gen_counts(ref_search.out_dir)
    cfg = small_config()
    search = Search(cfg, tmp_path / "crash", evaluate=fake_for(cfg, crash_after=counts[0] + counts[1] + 1))
    with pytest.raises(FakeCrash):
        search._run()
    search.close()
    resumed = Search.resume(tmp_path / "crash", evaluate=fake_for(cfg))
    resumed._run()
    records = resumed.store.generations()
    assert sum(r["nevals"] for r in records) == resumed.store.count_evaluations()
    assert _strip(records, "elapsed") == _strip(ref_search.store.generations(), "elapsed")
    resumed.close()


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from _fakes import fake_for, small_config
from evokeras.engine.search import Search

cfg = small_config()
Search(cfg, {out!r}, evaluate=fake_for(cfg, {fake_args}))._run()
print("finished")
"""


def _child(out: Path, fake_args: str) -> subprocess.Popen:
    script = textwrap.dedent(_CHILD).format(tests=str(TESTS_DIR), out=str(out), fake_args=fake_args)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count_rows(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            return int(con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        finally:
            con.close()
    except sqlite3.DatabaseError:  # the file or the table may not exist yet
        return 0


def _resume_and_compare(out: Path, reference) -> None:
    ref, ref_search = reference
    done = set(_store_rows(out))
    cfg = small_config()
    fresh = fake_for(cfg)
    resumed = Search.resume(out, evaluate=fresh)
    result = resumed._run()
    assert not set(fresh.calls) & done, "evaluations already in the store were redone"
    assert fresh.calls, "nothing was left to do"
    assert _front_keys(result) == _front_keys(ref)
    assert _store_rows(out) == _store_rows(ref_search.out_dir)
    resumed.close()


def test_resume_after_kill_9_matches_uninterrupted_run(tmp_path: Path, reference) -> None:
    counts = _gen_counts(reference[1].out_dir)
    total = sum(counts.values())
    target = counts[0] + counts[1] + 1  # in generation 2
    out = tmp_path / "killed"
    proc = _child(out, "delay=0.05")
    try:
        deadline = time.monotonic() + 60
        while _count_rows(out / "run.db") < target:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child made no progress"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert target <= len(_store_rows(out)) < total, "the child was not killed mid-run"
    _resume_and_compare(out, reference)


def test_resume_after_hard_exit_matches_uninterrupted_run(tmp_path: Path, reference) -> None:
    """The process ends with ``os._exit`` in the middle of generation 3 (no clean-up at all)."""
    counts = _gen_counts(reference[1].out_dir)
    target = counts[0] + counts[1] + counts[2] + 1
    out = tmp_path / "exited"
    proc = _child(out, f"crash_after={target}, crash='exit'")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert "finished" not in stdout
    assert len(_store_rows(out)) == target
    with RunStore(out / "run.db", create=False) as store:
        assert store.latest_checkpoint()["gen"] == 2
    _resume_and_compare(out, reference)


def test_resume_may_change_only_how_evaluations_run(tmp_path: Path) -> None:
    cfg = small_config()
    Search(cfg, tmp_path / "run", evaluate=fake_for(cfg))._run()
    resumed = Search.resume(tmp_path / "run", parallel={"workers": 2, "backend": "process"}, evaluate=fake_for(cfg))
    assert (resumed.config.parallel.workers, resumed.config.parallel.backend) == (2, "process")
    assert resumed.config.seed == cfg.seed
    resumed.close()
    with pytest.raises(ConfigError, match="'parallel.seed'"):
        Search.resume(tmp_path / "run", parallel={"seed": 5}, evaluate=fake_for(cfg))


def test_one_process_per_run_directory(tmp_path: Path) -> None:
    cfg = small_config()
    first = Search(cfg, tmp_path / "run", evaluate=fake_for(cfg))
    try:
        with pytest.raises(RunError, match="in use"):
            Search.resume(tmp_path / "run", evaluate=fake_for(cfg))
    finally:
        first.close()
    Search.resume(tmp_path / "run", evaluate=fake_for(cfg)).close()
