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

__all__ = ["Run", "RunError", "lock_run_dir", "read_checkpoint", "versions", "write_logbook_csv"]


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


def lock_run_dir(out_dir: Path, *, create: bool = False) -> Any:
    """Take ``out_dir/.lock`` (``flock``, exclusive): the open file, held until it is
    closed. A search holds it while it lives; ``evokeras plot`` while it draws. Raises
    :class:`RunError` when another process holds it or the directory is unusable
    (``create``: make the directory first)."""
    import fcntl

    try:
        if create:
            out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(out_dir / ".lock", "w")  # noqa: SIM115 - held until closed
    except OSError as exc:
        raise RunError(f"cannot use {out_dir} as a run directory: {exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"{out_dir} is in use by another evokeras process") from None
    return handle


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
        directory first). On failure nothing it made is left behind."""
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
            write_json_atomic(out_dir / "config.json", {"config": config.to_dict(), "versions": versions()})
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
        """The configuration stored in ``out_dir`` (migrated; never where to evaluate)."""
        out_dir = Path(out_dir)
        cfg_path = out_dir / "config.json"
        if not (out_dir / "run.db").is_file() or not cfg_path.is_file():
            raise RunError(f"{out_dir} is not a run directory (no run.db/config.json)")
        try:
            stored = read_json(cfg_path, max_bytes=MAX_CONFIG_BYTES)
            if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
                raise ConfigError("expected {\"config\": {...}, ...}")
            return load_stored(stored["config"])
        except (UnreadableFile, ConfigError) as exc:
            raise RunError(f"cannot read {cfg_path}: {exc}") from exc

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
