"""A run: its directory, the lock, the store, resume, and the migrations of old run directories.

:class:`Run` owns ``DIR/.lock`` (one process per run directory), ``DIR/run.db`` (the
:class:`~evokeras.engine.store.RunStore`), ``DIR/config.json`` and ``DIR/logbook.csv``.
Everything read back from an older run directory is migrated here and nowhere else: its
configuration (:func:`~evokeras.engine.config.load_stored`) and its checkpoints
(:func:`read_checkpoint`: a checkpoint written before strategies existed is NSGA-II's).

A checkpoint is an envelope the engine writes after each generation::

    {"gen": int, "elapsed": seconds, "fit_seconds": seconds, "told": results told,
     "front": [{genome, fitness, status}], "strategy": name, "state": {...}}

where ``state`` is the strategy's own JSON blob (:meth:`Strategy.state
<evokeras.engine.strategies.base.Strategy.state>`), which neither the run nor the store
reads.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from evokeras._io import (
    MAX_CONFIG_BYTES,
    UnreadableFile,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from evokeras._meta import __version__
from evokeras.engine.config import ConfigError, SearchConfig, load_stored
from evokeras.engine.store import RunStore, StoreError, is_number
from evokeras.genomes.keyed import is_int
from evokeras.tasks.arrays import recorded_task_options, task_options_to_record

__all__ = ["Run", "RunError", "RunLock", "lock_run_dir", "read_checkpoint", "versions", "write_logbook_csv"]


class RunError(RuntimeError):
    """A run directory is missing, unreadable or already holds another run."""


def versions() -> dict[str, str]:
    """The library, Keras and backend versions a run is written with (``config.json``)."""
    import importlib.metadata as md

    out = {"evokeras": __version__}  # this source's, even where an older install's metadata lingers
    for pkg in ("keras", "tensorflow-cpu", "tensorflow", "jax", "deap", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    out["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return out


def lock_run_dir(out_dir: Path, *, create: bool = False) -> RunLock:
    """Take ``out_dir/.lock`` (``flock``, exclusive): a :class:`RunLock`, held until it is
    closed. A search holds it while it lives; ``evokeras plot`` and ``report --html``
    while they read. A ``.lock`` this call made is removed again when it is closed, so
    that reading a run leaves its directory as it was found. Raises :class:`RunError`
    when another process holds it or the directory is unusable (``create``: make the
    directory first)."""
    import fcntl

    try:
        if create:
            out_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # a holder that removes the file as we open it: open it again
            path = Path(os.path.abspath(out_dir)) / ".lock"
            try:
                fd, made = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                try:
                    fd, made = os.open(path, os.O_WRONLY), False
                except FileNotFoundError:
                    continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunError(f"{out_dir} is in use by another evokeras process") from None
            if _same_file(fd, path):
                return RunLock(path, fd, made)
            os.close(fd)  # locked a .lock that its holder removed meanwhile
    except OSError as exc:
        raise RunError(f"cannot use {out_dir} as a run directory: {exc}") from exc
    raise RunError(f"cannot use {out_dir} as a run directory: its .lock keeps being replaced")


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class RunLock:
    """A held ``DIR/.lock`` (:func:`lock_run_dir`); :meth:`close` releases it and removes
    the file if this lock made it (removed while still held: whoever opened it meanwhile
    finds, once it has the lock, that the path is no longer its file, and opens again)."""

    def __init__(self, path: Path, fd: int, made: bool) -> None:
        self.path, self._fd, self.made = path, fd, made

    @property
    def closed(self) -> bool:
        return self._fd is None

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the run lock is released")
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.made and _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def __del__(self) -> None:  # as an open file is closed when dropped (a Search never closed)
        try:
            self.close()
        except (OSError, TypeError, AttributeError):  # at interpreter exit
            pass


def _items_ok(items: Any) -> bool:
    return isinstance(items, list) and all(
        isinstance(item, dict) and isinstance(item.get("genome"), dict)
        and isinstance(item.get("fitness"), list) and all(map(is_number, item["fitness"]))
        and isinstance(item.get("status", "ok"), str) for item in items)


def read_checkpoint(store: RunStore) -> dict[str, Any] | None:
    """The last checkpoint as an envelope (see the module docstring), migrated from the
    0.3-0.10 form (``population``, ``front`` and ``rng`` at the top: NSGA-II's); ``None``
    before the first. :class:`StoreError` when it has not that structure (the genomes
    and the strategy's state are checked by whoever reads them)."""
    state = store.latest_checkpoint()
    if state is None:
        return None
    if "strategy" not in state:  # written by 0.10 or earlier: NSGA-II
        state = {k: v for k, v in state.items() if k not in ("population", "rng")} | {
            "strategy": "nsga2", "state": {"population": state.get("population"), "rng": state.get("rng")}}
        ok = _items_ok(state["state"]["population"]) and isinstance(state["state"]["rng"], dict)
    else:
        ok = isinstance(state.get("strategy"), str) and isinstance(state.get("state"), dict)
    ok = (ok and is_int(state.get("gen"))
          and is_number(state.get("elapsed")) and is_number(state.get("fit_seconds", 0.0))
          and is_int(state.get("told", 0))
          and _items_ok(state.get("front")))
    if not ok:
        raise StoreError(f"run store {store.path}: checkpoint of generation {state.get('gen')!r} is malformed")
    return state


def write_logbook_csv(path: Path, records: list[dict[str, Any]], objectives: list[str]) -> None:
    """One row per generation and objective: gen, objective, min, avg, max, std, nevals, nfailed."""
    lines = ["gen,objective,min,avg,max,std,nevals,nfailed,elapsed"]
    for r in records:
        for name in objectives:
            s = r[name]
            lines.append(
                f"{r['gen']},{name},{s['min']!r},{s['avg']!r},{s['max']!r},{s['std']!r},"
                f"{r['nevals']},{r['nfailed']},{r['elapsed']}"
            )
    write_text_atomic(path, "\n".join(lines) + "\n")


class Run:
    """A run directory held by this process: the lock, the store and ``config.json``.

    Use :meth:`create` for a new run and :meth:`open` for an existing one; :meth:`close`
    releases both.
    """

    def __init__(self, out_dir: Path, lock: Any, store: RunStore, config: SearchConfig) -> None:
        self.out_dir = out_dir
        self._lock = lock
        self.store = store
        self.config = config

    @classmethod
    def create(cls, out_dir: str | Path, config: SearchConfig, task: Any) -> Run:
        """A new run in ``out_dir`` (created): ``run.db`` and ``config.json`` -- the
        configuration with the task's :meth:`~evokeras.tasks.base.Task.recipe`, so that
        a new process rebuilds the same task (data in memory is written to the run
        directory first, and recorded relative to it:
        :func:`~evokeras.tasks.arrays.task_options_to_record`). On failure nothing it
        made is left behind."""
        out_dir = Path(out_dir)
        if (out_dir / "run.db").exists():
            raise RunError(f"{out_dir} already holds a run: use `evokeras resume {out_dir}`")
        lock = lock_run_dir(out_dir, create=True)
        before = set(out_dir.iterdir())
        store = None
        try:
            spec = task.recipe(out_dir)
            if spec is not None:
                config = dataclasses.replace(config, task=spec["task"], task_options=dict(spec["task_options"]))
                config.check()
            store = RunStore(out_dir / "run.db")
            store.set_meta("objectives", config.objectives)
            stored = dataclasses.replace(config, task_options=task_options_to_record(config.task, config.task_options,
                                                                                       out_dir))
            write_json_atomic(out_dir / "config.json", {"config": stored.to_dict(), "versions": versions()})
        except BaseException as exc:  # a signal included: no half-made run is left behind
            try:
                if store is not None:
                    store.close()
                for path in set(out_dir.iterdir()) - before:
                    if path.is_file():
                        path.unlink(missing_ok=True)
            finally:
                lock.close()
            if isinstance(exc, OSError | StoreError | ConfigError):
                raise RunError(f"cannot create a run in {out_dir}: {exc}") from exc
            raise
        return cls(out_dir, lock, store, config)

    @staticmethod
    def read_config(out_dir: str | Path) -> SearchConfig:
        """The configuration stored in ``out_dir`` (migrated; never where to evaluate),
        its task's data file found in ``out_dir`` wherever the directory has moved
        (:func:`~evokeras.tasks.arrays.recorded_task_options`)."""
        out_dir = Path(out_dir)
        cfg_path = out_dir / "config.json"
        if not (out_dir / "run.db").is_file() or not cfg_path.is_file():
            raise RunError(f"{out_dir} is not a run directory (no run.db/config.json)")
        try:
            stored = read_json(cfg_path, max_bytes=MAX_CONFIG_BYTES)
            if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
                raise ConfigError("expected {\"config\": {...}, ...}")
            config = load_stored(stored["config"])
        except (UnreadableFile, ConfigError) as exc:
            raise RunError(f"cannot read {cfg_path}: {exc}") from exc
        options = recorded_task_options(config.task, config.task_options, out_dir)  # the data beside it
        return config if options is config.task_options else dataclasses.replace(config, task_options=options)

    @classmethod
    def open(cls, out_dir: str | Path, config: SearchConfig) -> Run:
        """The existing run in ``out_dir`` (its configuration read by :meth:`read_config`)."""
        out_dir = Path(out_dir)
        lock = lock_run_dir(out_dir)
        try:
            store = RunStore(out_dir / "run.db", create=False)
        except BaseException:
            lock.close()
            raise
        return cls(out_dir, lock, store, config)

    def checkpoint(self) -> dict[str, Any] | None:
        return read_checkpoint(self.store)

    def end_generation(self, gen: int, record: dict[str, Any], envelope: dict[str, Any]) -> None:
        """Commit a generation's record and checkpoint, then rewrite ``logbook.csv``."""
        self.store.end_generation(gen, record, envelope)
        write_logbook_csv(self.out_dir / "logbook.csv", self.store.generations(), list(self.config.objectives))

    def close(self) -> None:
        self.store.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
