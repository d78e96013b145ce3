"""Nothing read is trusted: generated malformed configuration files, run-store rows and
run-directory files fed to the command-line entry points (in this process, so that
hypothesis can try many) give exit status 2 with one ``error:`` line and write nothing;
a run directory never chooses where its evaluations run.

The real subprocess forms of these cases, and signals and full disks on real runs, are
in ``test_reliability.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402
from _fuzz import json_values  # noqa: E402
from _fuzz import mutate as mutate_json  # noqa: E402

from evokeras._io import atomic_path, read_json, write_json_atomic  # noqa: E402
from evokeras.app.cli import main as cli_main  # noqa: E402
from evokeras.app.study import run_study  # noqa: E402
from evokeras.engine.config import FLAT_KEYS, SearchConfig, config_schema  # noqa: E402
from evokeras.engine.parallel import SerialBackend  # noqa: E402
from evokeras.engine.search import RunError, Search, lock_run_dir  # noqa: E402
from evokeras.genomes.keyed import key_of  # noqa: E402

BUDGETS = {"smoke": {"task": "mnist", "population": 2, "offspring": 2, "generations": 1,
                     "objectives": {"val_error": -1.0, "flops": -1.0},
                     "evaluation": {"epochs": 1, "train_samples": 300, "val_samples": 200}}}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)

json_value = json_values(allow_nan=False)


def mutate(value: Any, data: st.DataObject) -> Any:
    """``value`` (parsed JSON) with one generated change somewhere inside it."""
    return mutate_json(value, data, json_value)


def call(fn: Any, *args: Any) -> tuple[int, str, str]:
    """``fn(*args)`` (an entry point returning its exit status) with stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = fn(*args)
        except SystemExit as exc:  # argparse
            code = exc.code
    return int(code), out.getvalue(), err.getvalue()


def one_error_line(code: int, err: str) -> str:
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def snapshot(run_dir: Path) -> dict[str, Any]:
    """Every file of a run directory (``run.db`` as its SQL dump: the same rows whatever
    the pages look like)."""
    out: dict[str, Any] = {}
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and p.name not in ("run.db-wal", "run.db-shm", ".lock"):
            out[str(p.relative_to(run_dir))] = p.read_bytes() if p.name != "run.db" else None
    db = sqlite3.connect(run_dir / "run.db")
    try:
        out["run.db"] = list(db.iterdump())
    except sqlite3.DatabaseError:
        out["run.db"] = (run_dir / "run.db").read_bytes()
    finally:
        db.close()
    return out


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> Path:
    """A small searched run (fake evaluator) with a hall of fame written from its front."""
    cfg = small_config(generations=1)
    out = tmp_path_factory.mktemp("untrusted") / "run"
    with Search(cfg, out, evaluate=fake_for(cfg)) as search:
        result = search._run()
        members = [{"key": ind.key, "genome": ind.to_dict(), "status": "ok", "metrics": {"params": 10},
                    "objectives": dict(zip(cfg.objectives, ind.fitness.values, strict=True)),
                    "test_accuracy": 0.5, "model": f"models/{ind.key}.keras"} for ind in result.front]
    write_json_atomic(out / "hall_of_fame.json", {"objectives": cfg.objectives, "members": members})
    return out


@contextlib.contextmanager
def copy_of(run_dir: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "run"
        shutil.copytree(run_dir, target)
        yield target


# -- configuration files -------------------------------------------------------------------------

_BAD_RANGES = {"population": st.integers(-3, 1), "offspring": st.integers(-3, 0), "generations": st.integers(-9, -1),
               "seed": st.integers(-2**40, -1), "final_epochs": st.integers(-3, 0), "workers": st.integers(-3, 0),
               "cxpb": st.floats(1.01, 9), "wall_seconds": st.floats(-9, 0), "max_val_error": st.floats(1.01, 9)}
_WRONG_TYPE = {"integer": st.one_of(st.text(max_size=3), st.floats(0.5, 9), st.booleans(), st.lists(st.none(), max_size=1)),
               "number": st.one_of(st.text(max_size=3), st.booleans(), st.dictionaries(st.text(max_size=2), st.none())),
               "string": st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)),
               "boolean": st.one_of(st.integers(), st.text(max_size=3)),
               "object": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))}


def _key_types(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Every configuration key (a path: section, key) with its JSON type (from the schema)."""
    out: dict[tuple[str, ...], str] = {}
    for key, sub in schema["properties"].items():
        if key in ("$schema", "budgets"):
            continue
        kind = sub.get("type")
        if "properties" in sub:
            out.update(_key_types(sub, (*prefix, key)))
        elif kind is not None:
            out[(*prefix, key)] = kind[0] if isinstance(kind, list) else kind
    return out


_SCHEMA = config_schema()
_KEY_TYPES = _key_types(_SCHEMA)
_KNOWN_KEYS = set(_SCHEMA["properties"]) | set(FLAT_KEYS)


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {path[0]: value if len(path) == 1 else _nested(path[1:], value)}


@st.composite
def bad_config_file(draw: st.DrawFn) -> bytes:
    """The bytes of a configuration file that must be refused."""
    kind = draw(st.sampled_from(["unknown_key", "wrong_type", "range", "non_finite", "not_object", "bytes",
                                 "deep", "huge"]))
    base: dict[str, Any] = dict(draw(st.dictionaries(st.sampled_from(["population", "generations", "seed"]),
                                                     st.integers(2, 3), max_size=2)))
    if kind == "unknown_key":
        base[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in _KNOWN_KEYS))] = draw(json_value)
    elif kind == "wrong_type":
        path = draw(st.sampled_from(sorted(_KEY_TYPES)))
        base.update(_nested(path, draw(_WRONG_TYPE[_KEY_TYPES[path]])))
    elif kind == "range":
        key = draw(st.sampled_from(sorted(_BAD_RANGES)))
        base[key] = draw(_BAD_RANGES[key])
    elif kind == "non_finite":  # as Python writes them: NaN, Infinity (not JSON)
        where = draw(st.sampled_from(["wall_seconds", "cxpb", "evaluation", "objectives", "max_val_error"]))
        constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        inner = {"evaluation": '{"seconds": %s}', "objectives": '{"val_error": %s}'}.get(where, "%s")
        return f'{{"{where}": {inner % constant}}}'.encode()
    elif kind == "not_object":
        return json.dumps(draw(st.one_of(st.lists(json_value, max_size=2), st.integers(), st.text()))).encode()
    elif kind == "bytes":  # not UTF-8 (a lone continuation byte), or not JSON
        return draw(st.sampled_from([b'{"seed": "\xff"}', b"\x80\x81", b"{not json", b"", b'{"seed": 1,}']))
    elif kind == "deep":
        depth = draw(st.sampled_from([100, 5000, 200_000]))
        return b'{"task_options": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    else:  # larger than any configuration needs
        return b'{"study": "' + b"x" * (2**20 + 10) + b'"}'
    return json.dumps(base).encode()


@FUZZ
@given(content=bad_config_file())
def test_fuzzed_config_files_exit_2_and_write_nothing(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "c.json", Path(tmp) / "run"
        path.write_bytes(content)
        code, _, err = call(run_study, "fuzz", BUDGETS, ["--config", str(path), "--out", str(out), "--no-progress"])
        one_error_line(code, err)
        assert not out.exists()


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--seed", "x"], ["--workers", "0"], ["--budget", "nope"]])
def test_bad_command_line_values(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "run"
    code, _, err = call(run_study, "fuzz", BUDGETS, [*args, "--out", str(out), "--no-progress"])
    assert code == 2 and "Traceback" not in err, err
    assert not out.exists()


# -- run-store rows and run-directory files ------------------------------------------------------------


def _set(run_dir: Path, sql: str, *args: Any) -> None:
    db = sqlite3.connect(run_dir / "run.db")
    with db:
        db.execute(sql, args)
    db.close()


def _get(run_dir: Path, sql: str) -> Any:
    db = sqlite3.connect(run_dir / "run.db")
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def _check_entry_points(run_dir: Path, config: SearchConfig) -> None:
    """``resume`` (up to the start of the run), ``report`` and ``report --json``: exit 0
    or 2 with one error line; nothing written."""
    before = snapshot(run_dir)
    try:
        Search.resume(run_dir, evaluate=fake_for(config)).close()
    except RunError as exc:
        assert "\n" not in str(exc)
    for args in (["report", str(run_dir)], ["report", str(run_dir), "--json"]):
        code, out, err = call(cli_main, args)
        if code:
            one_error_line(code, err)
        elif "--json" in args:
            json.loads(out)
    assert snapshot(run_dir) == before


@FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_rows(fake_run: Path, data: st.DataObject) -> None:
    with copy_of(fake_run) as run_dir:
        (run_dir / "hall_of_fame.json").unlink()  # report reads the checkpoint
        state = json.loads(_get(run_dir, "SELECT state FROM checkpoints ORDER BY gen DESC LIMIT 1"))
        text = json.dumps(mutate(state, data)) if data.draw(st.booleans()) else data.draw(st.text(max_size=20))
        _set(run_dir, "UPDATE checkpoints SET state = ?", text)
        _check_entry_points(run_dir, small_config(generations=1))


@FUZZ
@given(data=st.data(), column=st.sampled_from(["genome", "status", "objectives", "objective_names", "metrics",
                                               "times", "error", "key"]))
def test_fuzzed_evaluation_rows(fake_run: Path, data: st.DataObject, column: str) -> None:
    with copy_of(fake_run) as run_dir:
        value = _get(run_dir, f"SELECT {column} FROM evaluations LIMIT 1")
        try:
            changed = json.dumps(mutate(json.loads(value), data))
        except (TypeError, ValueError):
            changed = data.draw(st.one_of(st.text(max_size=10), st.integers(-2**63, 2**63 - 1), st.none()))  # SQLite INTEGER
        with contextlib.suppress(sqlite3.IntegrityError):  # NOT NULL, UNIQUE
            _set(run_dir, f"UPDATE evaluations SET {column} = ? WHERE id = (SELECT MIN(id) FROM evaluations)", changed)
        _check_entry_points(run_dir, small_config(generations=1))


@FUZZ
@given(data=st.data())
def test_fuzzed_hall_of_fame(fake_run: Path, data: st.DataObject) -> None:
    with copy_of(fake_run) as run_dir:
        hof = json.loads((run_dir / "hall_of_fame.json").read_text())
        text = json.dumps(mutate(hof, data)) if data.draw(st.booleans()) else data.draw(st.text(max_size=20))
        (run_dir / "hall_of_fame.json").write_text(text)
        _check_entry_points(run_dir, small_config(generations=1))


@pytest.mark.parametrize("hof", ['{"objectives": {"val_error": -1}, "members": [{"key": 1}]}',
                                 '{"objectives": {"val_error": -1}, "members": [{"key": "k", "genome": {}, '
                                 '"objectives": {"val_error": "x"}}]}',
                                 '[]', '{"objectives": {"val_error": NaN}, "members": []}'])
def test_malformed_hall_of_fame_is_refused(fake_run: Path, hof: str) -> None:
    with copy_of(fake_run) as run_dir:
        (run_dir / "hall_of_fame.json").write_text(hof)
        for args in (["report", str(run_dir)], ["report", str(run_dir), "--json"], ["plot", str(run_dir)]):
            code, out, err = call(cli_main, args)
            assert "hall_of_fame.json" in one_error_line(code, err) and out == ""


@pytest.mark.parametrize("command", ["report", "plot"])
def test_garbage_run_db_beside_a_hall_of_fame(fake_run: Path, command: str) -> None:
    """The run store is checked (SQLite's quick_check) even when hall_of_fame.json exists."""
    with copy_of(fake_run) as run_dir:
        for name in ("run.db-wal", "run.db-shm"):
            (run_dir / name).unlink(missing_ok=True)
        (run_dir / "run.db").write_bytes(bytes(range(256)) * 64)
        code, out, err = call(cli_main, [command, str(run_dir)])
        assert "run.db" in one_error_line(code, err) and out == ""
        assert not (run_dir / "plots").exists()


def test_damaged_run_db_pages(fake_run: Path) -> None:
    """A store whose header is intact but whose pages are overwritten fails quick_check."""
    with copy_of(fake_run) as run_dir:
        db = sqlite3.connect(run_dir / "run.db")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        raw = bytearray((run_dir / "run.db").read_bytes())
        page = 4096
        raw[page:] = bytes((i * 7) % 251 for i in range(len(raw) - page))
        (run_dir / "run.db").write_bytes(raw)
        code, _, err = call(cli_main, ["report", str(run_dir)])
        assert "run.db" in one_error_line(code, err)


# -- a run directory is data, never instructions ------------------------------------------------------


def test_resume_never_connects_to_a_stored_scheduler(fake_run: Path) -> None:
    """A crafted config.json naming a Dask scheduler (whose results the client would
    unpickle) is not followed: resume evaluates where the caller says (here: serially)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    connections: list[Any] = []
    stop = threading.Event()

    def accept() -> None:  # a "scheduler" that records and hangs up on whoever calls
        while not stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            connections.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with copy_of(fake_run) as run_dir:
            stored = json.loads((run_dir / "config.json").read_text())
            stored["config"]["parallel"].update(backend="dask", scheduler=address, workers=1)
            (run_dir / "config.json").write_text(json.dumps(stored))
            search = Search.resume(run_dir, progress=False)
            try:
                assert isinstance(search._backend, SerialBackend)
                assert search.config.parallel.scheduler is None and search.config.parallel.backend is None
                assert list(search._backend(len, [[1], [2, 3]])) == [1, 2]  # evaluates here
            finally:
                search.close()
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert connections == []


def test_embedded_dask_cluster_listens_on_localhost_only() -> None:
    """The embedded cluster's scheduler and dashboard (in this process) and its workers
    listen on 127.0.0.1 only."""
    pytest.importorskip("distributed")
    import psutil

    from evokeras.engine.parallel import DaskBackend

    backend = DaskBackend(workers=1, gpus=0)
    try:
        backend.connect()
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = {(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN}
        assert len(listening) >= 2  # scheduler, dashboard (and the worker's)
        assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
    finally:
        backend.close()


# -- files: atomic writes, the run lock --------------------------------------------------------------


def test_atomic_writes_use_unique_temporary_names(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.suffix == b.suffix == ".json"
        a.write_text("[1]")
        b.write_text("[2]")
    assert read_json(target) == [1]  # the outer write finished last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_plot_waits_for_no_one_while_a_run_holds_the_lock(fake_run: Path) -> None:
    with copy_of(fake_run) as run_dir:
        (run_dir / "hall_of_fame.json").unlink()
        lock = lock_run_dir(run_dir)
        try:
            code, _, err = call(cli_main, ["plot", str(run_dir)])
            assert "in use by another evokeras process" in one_error_line(code, err)
            assert not (run_dir / "plots").exists()
        finally:
            lock.close()
        code, out, err = call(cli_main, ["plot", str(run_dir)])
        assert code == 0, err
        assert {Path(line).name for line in out.split()} == {"stats.png", "pareto.png", "hypervolume.png"}


def test_checkpoint_genome_keys_are_content_keys(fake_run: Path) -> None:
    """``report`` names checkpoint members by the key of their genome (not a stored key)."""
    with copy_of(fake_run) as run_dir:
        (run_dir / "hall_of_fame.json").unlink()
        code, out, _ = call(cli_main, ["report", str(run_dir), "--json"])
        assert code == 0
        assert all(m["key"] == key_of(m["genome"]) for m in json.loads(out)["members"])
