"""The run store: one SQLite file (stdlib ``sqlite3``, WAL) per run directory.

Tables:

* ``meta(name, value)`` -- JSON values (the resolved configuration, versions, ...);
* ``evaluations`` -- one row per evaluation, committed as soon as it finishes:
  genome JSON, key (unique), generation, status, objectives, metrics, error, times;
* ``generations(gen, record)`` -- the logbook record of each generation (JSON);
* ``checkpoints(gen, state)`` -- the engine's checkpoint after each generation, as JSON
  (never pickle); the store does not know its shape (:mod:`evokeras.engine.run` does).

Every write is its own transaction, so a ``kill -9`` at any moment leaves the file
consistent: a row is either committed or absent.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evokeras._io import UnreadableFile, loads_json
from evokeras.training.records import EvalResult

#: Statuses an evaluation row may have.
STATUSES = ("ok", "failed", "nan", "oom", "timeout", "pruned")

__all__ = ["RunStore", "StoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    generation INTEGER NOT NULL,
    genome TEXT NOT NULL,
    status TEXT NOT NULL,
    objectives TEXT NOT NULL,
    objective_names TEXT NOT NULL,
    metrics TEXT NOT NULL,
    error TEXT,
    times TEXT NOT NULL,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (gen INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (gen INTEGER PRIMARY KEY, state TEXT NOT NULL, saved REAL NOT NULL);
"""


class StoreError(RuntimeError):
    """The run store is missing or unreadable; the message names the path."""


class RunStore:
    """A run's SQLite store.

    Args:
        path: the database file (``DIR/run.db``).
        create: create the file if missing; otherwise a missing file raises
            :class:`StoreError`.
        readonly: open an existing store for reading only (``plot``, ``report``): the
            run directory is left as it was found (:func:`_readonly_uri`).
    """

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        if (not create or readonly) and not self.path.is_file():
            raise StoreError(f"no run store at {self.path}")
        try:
            if readonly:
                self._db = sqlite3.connect(_readonly_uri(self.path), uri=True, timeout=30.0)
            else:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            if not create or readonly:
                self._check_file()
            if readonly:
                return
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read run store {self.path}: {exc}") from exc

    def _check_file(self) -> None:
        """An existing file must be a sound SQLite database (``PRAGMA quick_check``) with
        the tables of a run store."""
        try:
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StoreError(f"run store {self.path} is damaged: {'; '.join(map(str, problems[:3]))}")
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except BaseException:
            self._db.close()
            raise
        missing = {"meta", "evaluations", "generations", "checkpoints"} - tables
        if missing:
            self._db.close()
            raise StoreError(f"{self.path} is not an evokeras run store (no table {sorted(missing)[0]!r})")

    def _json(self, text: Any, where: str, kind: type | tuple[type, ...] = object) -> Any:
        """A JSON column's value, checked: nothing read from the file is trusted."""
        try:
            value = loads_json(text, where=f"run store {self.path}: {where}", constants=True)
        except UnreadableFile as exc:
            raise StoreError(str(exc)) from None
        if not isinstance(value, kind):
            raise StoreError(f"run store {self.path}: {where}: expected {_kind_name(kind)}, "
                             f"got {type(value).__name__}")
        return value

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ----------------------------------------------------------------------------
    def set_meta(self, name: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``name``; nothing is written when it is already there
        (opening a run, e.g. a ``resume`` that then refuses it, leaves the store as it was)."""
        text = json.dumps(value)
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] != text:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, text))

    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return self._json(row[0], f"meta {name!r}") if row else default

    # -- evaluations -----------------------------------------------------------------------
    def add_evaluation(self, result: EvalResult, generation: int) -> None:
        """Commit one evaluation (a second one with the same key is ignored)."""
        self._db.execute(
            "INSERT OR IGNORE INTO evaluations (key, generation, genome, status, objectives, objective_names,"
            " metrics, error, times, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.key,
                int(generation),
                json.dumps(result.genome, sort_keys=True),
                result.status,
                json.dumps(list(result.objectives)),
                json.dumps(list(result.objective_names)),
                json.dumps(result.metrics, sort_keys=True),
                result.error,
                json.dumps(result.times, sort_keys=True),
                time.time(),
            ),
        )

    def forget_evaluations(self, *, generation: int) -> None:
        """Delete the evaluations of ``generation`` (a first generation that failed as a
        whole is evaluated again on resume)."""
        self._db.execute("DELETE FROM evaluations WHERE generation = ?", (int(generation),))

    def _row_to_result(self, row: tuple[Any, ...]) -> EvalResult:
        """An evaluation row as an :class:`EvalResult`, every column checked."""
        key, genome, status, objectives, names, metrics, error, times = row
        where = f"evaluation {str(key)[:80]!r}"
        if not isinstance(key, str) or status not in STATUSES or not isinstance(error, str | None):
            raise StoreError(f"run store {self.path}: {where}: malformed key, status or error")
        objectives = self._json(objectives, f"{where} objectives", list)
        names = self._json(names, f"{where} objective_names", list)
        metrics = self._json(metrics, f"{where} metrics", dict)
        times = self._json(times, f"{where} times", dict)
        if (len(objectives) != len(names) or not all(map(is_number, objectives))
                or not all(isinstance(n, str) for n in names)
                or not all(map(is_number, times.values()))
                or not (metrics.get("val_error") is None or is_number(metrics["val_error"]))):
            raise StoreError(f"run store {self.path}: {where}: malformed objectives, metrics or times")
        return EvalResult(
            key=key,
            genome=self._json(genome, f"{where} genome", dict),
            status=status,
            objectives=tuple(float(v) for v in objectives),
            objective_names=tuple(names),
            metrics=metrics,
            error=error,
            times=times,
        )

    _COLUMNS = "key, genome, status, objectives, objective_names, metrics, error, times"

    def get_evaluation(self, key: str) -> EvalResult | None:
        row = self._db.execute(f"SELECT {self._COLUMNS} FROM evaluations WHERE key = ?", (key,)).fetchone()
        return self._row_to_result(row) if row else None

    def evaluations(self) -> Iterator[tuple[int, EvalResult]]:
        """``(generation, result)`` for every evaluation, in the order they finished."""
        rows = self._db.execute(f"SELECT generation, {self._COLUMNS} FROM evaluations ORDER BY id").fetchall()
        for row in rows:
            yield int(row[0]), self._row_to_result(row[1:])

    def count_evaluations(self, generation: int | None = None, *, failed: bool = False) -> int:
        """Evaluations run (in ``generation`` if given; only failed ones if ``failed``).

        Records of candidates ``pruned`` by successive halving are not runs (their
        low-fidelity run is recorded as ``<key>@<fraction>``) and are not counted."""
        sql, args = "SELECT COUNT(*) FROM evaluations WHERE status != 'pruned'", []
        if generation is not None:
            sql += " AND generation = ?"
            args.append(int(generation))
        if failed:
            sql += " AND status != 'ok'"  # 'pruned' is excluded above
        return int(self._db.execute(sql, args).fetchone()[0])

    # -- generations and checkpoints ---------------------------------------------------------
    def end_generation(self, gen: int, record: dict[str, Any], state: dict[str, Any]) -> None:
        """Commit a generation's logbook record and its checkpoint in one transaction."""
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO generations VALUES (?, ?)", (int(gen), json.dumps(record))
            )
            self._db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)", (int(gen), json.dumps(state), time.time())
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def generations(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT gen, record FROM generations ORDER BY gen").fetchall()
        return [self._json(r[1], f"generation {r[0]} record", dict) for r in rows]

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint: a JSON object, opaque here (:func:`evokeras.engine.run.read_checkpoint`
        checks and migrates it)."""
        row = self._db.execute("SELECT gen, state FROM checkpoints ORDER BY gen DESC LIMIT 1").fetchone()
        return self._json(row[1], f"checkpoint of generation {row[0]}", dict) if row else None


def _readonly_uri(path: Path) -> str:
    """The URI that opens ``path`` for reading and writes nothing beside it.

    SQLite opens a WAL database read-only (``mode=ro``) only with its ``-wal`` and
    ``-shm`` files, which it creates when missing and, read-only, cannot remove again.
    So where they are missing -- no connection is open, nothing is waiting in a
    write-ahead log -- the file is opened ``immutable`` (no lock, no file created).
    Otherwise (a run that is writing; a run killed with transactions still in its log)
    the existing files are used and kept: a process writing the store meanwhile is not
    disturbed. (A writer that starts after an immutable open writes to its own log;
    only its checkpoint, after 1000 pages or when it closes, could change the pages
    read.)"""
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    try:
        logged = wal.stat().st_size > 0 or shm.exists()
    except FileNotFoundError:
        logged = False
    return f"{path.resolve().as_uri()}?mode=ro" + ("" if logged else "&immutable=1")


def is_number(value: Any) -> bool:
    """A JSON number (``bool`` is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {list: "a JSON list", dict: "a JSON object"}.get(kind, str(kind))  # type: ignore[call-overload]
