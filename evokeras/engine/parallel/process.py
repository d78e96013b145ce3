"""The process backend: ``spawn``-ed worker processes of its own, one task at a time each.

A small pool of its own rather than ``concurrent.futures.ProcessPoolExecutor`` (or
``loky``/``pebble``, see ``docs/architecture.md``): each worker gets an environment of
its own (its GPU), a worker that dies is replaced and its task runs again, a worker past
the time limit is killed alone, and a worker retired after ``recycle_after`` tasks has a
successor warming up during its last one.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing import get_context
from typing import Any

from evokeras.engine.parallel.base import (
    UNGUARDED_MAIN_EXIT,
    WORKER_NAME,
    Backend,
    BackendError,
    Feed,
    OnFail,
    unguarded_main,
)
from evokeras.engine.parallel.environment import (
    detect_gpus,
    gpu_worker_env,
    keras_backend,
    pool_shape,
    worker_env,
)
from evokeras.engine.parallel.worker import worker_main

__all__ = ["ProcessBackend"]

log = logging.getLogger(__name__)


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # plain pickle: module-level functions and picklable objects only
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass
class _Task:
    """A task given to a worker: its message id, its index and item, when it was sent."""

    id: int
    index: int
    item: Any
    start: float


class _Worker:
    """The parent's handle on one worker process (its pipe, its task)."""

    def __init__(self, ctx: Any, slot: int, env: Mapping[str, str]) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, dict(env)), name=WORKER_NAME.format(slot), daemon=True)
        self.proc.start()
        child.close()
        self.token: str | None = None
        self.ready = False  # it reached its task loop
        self.ready_at = 0.0
        self.task: _Task | None = None
        self.done = 0  # tasks answered

    def receive(self) -> tuple[Any, ...] | None:
        """The next task message, if one is waiting (start-up messages are consumed)."""
        while self.conn.poll():
            message = self.conn.recv()
            if message[0] == "ready":
                self.ready, self.ready_at = True, time.monotonic()
                continue
            return message
        return None

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self.conn.close()

    def retire(self) -> None:
        """Ask it to exit after its task loop (joined later by :meth:`stop`)."""
        try:
            self.conn.send(None)
        except OSError:
            pass

    def stop(self) -> None:
        self.retire()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class _Round:
    """What one iteration of :meth:`ProcessBackend._run` tracks: its function, the items
    still to come, the workers busy (by slot), each task's runs so far, start-up failures."""

    def __init__(self, fn: Callable[[Any], Any], items: Iterable[tuple[int, Any]], on_fail: OnFail) -> None:
        self.fn = fn
        self.feed = Feed(items)
        self.on_fail = on_fail
        self.busy: dict[int, _Worker] = {}
        self.attempts: dict[int, int] = {}
        self.startup_failures = 0


class ProcessBackend(Backend):
    """Worker processes started with ``spawn``; each evaluates one genome at a time.

    Each worker's environment is set before Keras is imported there: the Keras backend
    of this process, ``threads_per_worker`` CPU threads (default: cores // workers, so
    that workers x threads = cores) and, with GPUs, its GPU (see :func:`gpu_worker_env`).
    The function is sent to a worker once and kept there (with what it caches).
    Items are pulled from the iterable as workers become free (at most ``workers`` in
    flight). Not thread-safe: one iteration at a time (an abandoned iteration's workers
    are replaced).

    A worker that dies is replaced and its task runs again (at most ``max_attempts``
    times; then the candidate is recorded as ``failed``). A task running longer than
    ``timeout`` seconds (from when its worker was ready: a fresh worker's start-up is
    not counted) gets its worker killed and is recorded as ``timeout``.

    Args:
        workers: worker processes (default: GPUs x ``workers_per_gpu``, else CPU cores).
        threads_per_worker: CPU threads of each worker.
        env: extra environment variables for every worker.
        timeout: hard wall limit in seconds per task (``None``: none).
        gpus: GPUs to use (default: :func:`detect_gpus`); 0 for CPU only.
        workers_per_gpu: workers sharing each GPU.
        max_attempts: runs of a task whose worker keeps dying before it is given up.
        recycle_after: replace a worker by a fresh process after it has answered this
            many tasks (``None``: never). Bounds what a long-lived process accumulates:
            TensorFlow keeps every traced graph of every model alive after
            ``clear_session``, so a worker's memory and the per-evaluation clean-up time
            grow with each candidate. The successor starts when the worker is given its
            last task and prepares the function there (``warm_up()`` of an
            :class:`~evokeras.training.protocol.EvaluateFunction`: an evaluator imports
            Keras and loads its data), so its start-up overlaps that task instead of
            delaying the next; it shares the cores with that task meanwhile (the task's
            inference timing comes at its end, usually after the start-up). Validation
            errors do not change: every evaluation seeds itself from the run seed and
            the genome.
    """

    name = "process"

    def __init__(
        self,
        workers: int | None = None,
        *,
        threads_per_worker: int | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        gpus: int | None = None,
        workers_per_gpu: int = 2,
        max_attempts: int = 3,
        recycle_after: int | None = None,
    ) -> None:
        self.gpus = detect_gpus() if gpus is None else int(gpus)
        self.workers_per_gpu = int(workers_per_gpu)
        self.workers, self.threads_per_worker = pool_shape(
            "ProcessBackend", self.gpus, self.workers_per_gpu, workers, threads_per_worker, timeout
        )
        if max_attempts < 1:
            raise ValueError(f"ProcessBackend: max_attempts must be >= 1, got {max_attempts}")
        self.env = dict(env or {})
        self.timeout = timeout
        self.max_attempts = int(max_attempts)
        if recycle_after is not None and recycle_after < 1:
            raise ValueError(f"ProcessBackend: recycle_after must be >= 1 or None, got {recycle_after}")
        self.recycle_after = recycle_after
        self._retired: list[_Worker] = []
        self._spares: dict[int, _Worker] = {}  # slot -> a fresh worker starting up to replace a retiring one
        self._ctx = get_context("spawn")
        self._pool: list[_Worker | None] = [None] * self.workers
        self._fn: Any = None
        self._token = ""
        self._fn_bytes = b""
        self._next_task = 0

    def __repr__(self) -> str:
        return (f"ProcessBackend(workers={self.workers}, threads_per_worker={self.threads_per_worker}, "
                f"gpus={self.gpus}, timeout={self.timeout}, recycle_after={self.recycle_after})")

    def worker_env(self, slot: int) -> dict[str, str]:
        """The environment of worker ``slot``."""
        backend = keras_backend()
        extra = dict(self.env)
        if self.gpus:
            extra = {**gpu_worker_env(slot, self.workers_per_gpu, self.gpus, backend), **extra}
        return worker_env(self.threads_per_worker, backend=backend, extra=extra)

    def _worker(self, slot: int) -> _Worker:
        w = self._pool[slot]
        # (a task still set: left running by an abandoned iteration; its answer would be stale)
        if w is None or w.task is not None or not w.proc.is_alive():
            if w is not None:
                w.kill()
            spare = self._spares.pop(slot, None)
            if spare is not None and not spare.proc.is_alive():
                log.warning("worker %d's spare process died while waiting (exit code %s); starting another",
                            slot, spare.proc.exitcode)
                spare.kill()
                spare = None
            w = self._pool[slot] = spare or _Worker(self._ctx, slot, self.worker_env(slot))
        return w

    def _replace(self, w: _Worker) -> None:
        w.kill()
        if self._pool[w.slot] is w:
            self._pool[w.slot] = None

    def _prepare(self, fn: Any) -> None:
        if fn is not self._fn:
            try:
                self._fn_bytes = _dumps(fn)
            except Exception as exc:
                raise TypeError(f"ProcessBackend needs a picklable function, got {fn!r}: {exc}") from exc
            self._fn, self._token = fn, uuid.uuid4().hex

    def _run(self, fn: Callable[[Any], Any], items: Iterable[tuple[int, Any]],
             on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        run = _Round(fn, items, on_fail)
        try:
            while True:
                self._dispatch(run)
                if not run.busy:
                    if run.feed.done:
                        return
                    continue  # a worker died while idle: its task goes to another
                wait = None
                if self.timeout is not None:
                    wait = max(0.0, min(self._deadline(w) for w in run.busy.values()) - time.monotonic())
                handles: list[Any] = [w.conn for w in run.busy.values()] + [w.proc.sentinel for w in run.busy.values()]
                mp_connection.wait(handles, timeout=wait)
                now = time.monotonic()
                for slot, w in list(run.busy.items()):
                    yield from self._check(run, slot, w, now)
        finally:
            for w in run.busy.values():  # abandoned tasks: their results would be stale
                self._replace(w)

    def _dispatch(self, run: _Round) -> None:
        """Give every idle slot the next task (pulled from the iterable only now)."""
        for slot in range(self.workers):
            if slot in run.busy:
                continue
            task = run.feed.next()
            if task is None:
                return
            i, item = task
            self._prepare(run.fn)  # (once per function; not before there is an item)
            w = self._worker(slot)
            self._next_task += 1
            first = w.token != self._token
            try:
                w.conn.send((self._next_task, self._token, self._fn_bytes if first else None,
                             pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)))
            except (OSError, ValueError):  # it died while idle: start another
                self._replace(w)
                run.feed.again(i, item)
                continue
            w.token = self._token
            w.task = _Task(self._next_task, i, item, time.monotonic())
            run.busy[slot] = w
            if self.recycle_after is not None and w.done + 1 >= self.recycle_after and slot not in self._spares:
                self._start_spare(slot)

    def _check(self, run: _Round, slot: int, w: _Worker, now: float) -> Iterator[tuple[int, Any]]:
        """What became of the task of busy worker ``w``: its answer, its worker's death,
        or its time limit passed (yielding ``(index, result)`` when the task is done)."""
        task = w.task
        assert task is not None
        try:
            message = w.receive()
        except (EOFError, OSError):
            message = None
        if message is not None:
            del run.busy[slot]
            w.task = None
            got_id, kind, payload = message
            if got_id != task.id:
                raise BackendError(f"worker {slot} answered task {got_id}, expected {task.id}")
            if kind == "error":
                raise payload
            w.done += 1
            if self.recycle_after is not None and w.done >= self.recycle_after:
                self._recycle(w)
            yield task.index, payload
        elif not w.proc.is_alive():
            del run.busy[slot]
            yield from self._died(run, w, task)
        elif self.timeout is not None and now > self._deadline(w):
            del run.busy[slot]
            self._replace(w)
            if not w.ready:  # it never started: not the task's fault
                self._startup_failed(run, f"do not start within {self._startup_limit():g} s")
                run.feed.again(task.index, task.item)
                return
            log.warning("task %d: worker %d passed the %g s limit; killing it", task.index, slot, self.timeout)
            yield task.index, run.on_fail(task.index, task.item, "timeout",
                                          f"evaluation passed the backend's hard limit of {self.timeout:g} s "
                                          "(worker killed)")

    def _died(self, run: _Round, w: _Worker, task: _Task) -> Iterator[tuple[int, Any]]:
        """``w`` died running ``task``: run it again, or give it up after ``max_attempts``."""
        code = w.proc.exitcode
        self._replace(w)
        if not w.ready:  # it died starting up: not the task's fault
            if code == UNGUARDED_MAIN_EXIT:  # importing the main script started a search there
                raise unguarded_main()
            self._startup_failed(run, f"die while starting (exit code {code}); see their messages above")
            run.feed.again(task.index, task.item)
            return
        i = task.index
        run.attempts[i] = attempts = run.attempts.get(i, 0) + 1
        if attempts >= self.max_attempts:
            log.warning("task %d: worker died %d times (exit code %s); giving up", i, attempts, code)
            yield i, run.on_fail(i, task.item, "failed",
                                 f"worker process died {attempts} times while evaluating it (last exit code {code})")
        else:
            log.warning("task %d: worker %d died (exit code %s); running it again", i, w.slot, code)
            run.feed.again(i, task.item)

    @staticmethod
    def _startup_failed(run: _Round, why: str) -> None:
        run.startup_failures += 1
        if run.startup_failures >= 3:
            raise BackendError(f"worker processes {why}")

    def _start_spare(self, slot: int) -> None:
        """Start the successor of the worker in ``slot``, which was just given its last
        task: it imports, unpickles the function and warms it up (an
        :class:`~evokeras.training.evaluator.Evaluator` imports Keras and loads its data)
        while that task runs, instead of after it. Only an optimisation: a spare that
        cannot start is skipped."""
        try:
            spare = _Worker(self._ctx, slot, self.worker_env(slot))
            spare.conn.send((0, self._token, self._fn_bytes, None))
        except (OSError, ValueError) as exc:
            log.warning("could not start a spare for worker %d (%s); it starts when needed", slot, exc)
            return
        self._spares[slot] = spare

    def _recycle(self, w: _Worker) -> None:
        """Retire ``w`` (it exits once idle); its slot starts a fresh worker when next used."""
        w.retire()
        self._retired.append(w)
        if self._pool[w.slot] is w:
            self._pool[w.slot] = None
        for old in [r for r in self._retired if not r.proc.is_alive()]:
            old.proc.join(0)
            old.conn.close()
            self._retired.remove(old)

    def _startup_limit(self) -> float:
        return max(120.0, self.timeout or 0.0)

    def _deadline(self, w: _Worker) -> float:
        """When ``w``'s task passes the time limit (counted from when the worker was
        ready: a fresh worker's start-up has its own, longer limit)."""
        started = w.task.start  # type: ignore[union-attr]
        if not w.ready:
            return started + self._startup_limit()
        return max(started, w.ready_at) + self.timeout  # type: ignore[operator]

    def close(self) -> None:
        for slot, w in enumerate(self._pool):
            if w is not None:
                w.stop()
                self._pool[slot] = None
        for w in self._retired:
            w.stop()
        for w in self._spares.values():  # no state to keep; may still be starting up
            w.kill()
        self._retired.clear()
        self._spares.clear()
        self._fn, self._fn_bytes = None, b""
