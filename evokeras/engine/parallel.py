"""Map backends: evaluate many genomes serially, in worker processes, or on a Dask cluster.

Every backend is an object with

* ``backend(fn, genomes)`` -- an iterator of ``fn(genome)`` results *as they finish*
  (any order). :class:`~evokeras.engine.search.Search` uses this form and commits each result
  to the run store as it arrives. A candidate whose worker hangs past the backend's
  ``timeout`` (or keeps dying) gets a failure record (status ``timeout``/``failed``)
  made by ``fn.failure(genome, status, error)`` when ``fn`` has it (as
  :class:`~evokeras.training.evaluator.Evaluator` does), else from ``fn.objectives``;
* ``backend.map(fn, *iterables)`` -- DEAP's ``map`` contract: a list, in order. Register
  it with ``toolbox.register("map", backend.map)`` and DEAP's own algorithms
  (``eaMuPlusLambda``...) evaluate in parallel. Here a timeout or a task that keeps
  killing its worker raises :class:`BackendError`;
* ``backend.close()`` (and ``with backend: ...``). Workers start lazily on first use
  and again after ``close()``.

Backends:

* :class:`SerialBackend` -- in this process, one after another.
* :class:`ProcessBackend` -- ``spawn``-ed worker processes, one model at a time per
  worker. Each worker's environment (Keras backend, thread counts, GPU placement) is
  set before Keras is imported there; a worker that dies is replaced and its task runs
  again; a worker past the time limit is killed. (A small pool of its own rather than
  ``ProcessPoolExecutor``, which can tell neither which task killed a worker nor kill
  one hung worker, and gives every worker the same environment.) As with any
  ``spawn``, workers import the main script as a module: guard its entry point with
  ``if __name__ == "__main__":`` and leave ``import keras`` out of its top level.
* :class:`DaskBackend` -- Dask distributed: an embedded ``LocalCluster`` or an existing
  scheduler (``address="tcp://HOST:PORT"``). The scheduler re-runs the task of a worker
  that dies on another worker. If the scheduler goes away, :class:`SchedulerLost` is
  raised; every result received before is already in the run store, so
  ``evokeras resume DIR`` continues the run later.

:func:`make_backend` builds the backend a :class:`~evokeras.engine.config.SearchConfig` asks
for (keys ``workers``, ``backend``, ``scheduler``).

Workers of an *external* Dask cluster must be able to import ``evokeras`` (and the
evaluate function's module). The backend asks them for the client's Keras backend
(a worker plugin sets ``KERAS_BACKEND`` before the first evaluation); thread counts
are the cluster's own business, and so is GPU placement: start them e.g. with
``OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 dask worker
tcp://HOST:PORT --nthreads 1`` (plus ``CUDA_VISIBLE_DEVICES=N`` and the memory settings
of :func:`gpu_worker_env` for a GPU worker).

Example:
    >>> from evokeras.engine.parallel import ProcessBackend
    >>> with ProcessBackend(workers=2) as backend:          # doctest: +SKIP
    ...     results = list(backend(evaluator, genomes))     # as they finish
    ...     toolbox.register("map", backend.map)            # DEAP, in order
"""

from __future__ import annotations

import collections
import gc
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError
from multiprocessing import connection as mp_connection
from multiprocessing import get_context
from typing import Any

from evokeras._meta import MissingExtraError, optional_dependency
from evokeras.training.records import EvalResult, worst_values

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "DaskBackend",
    "ProcessBackend",
    "SchedulerLost",
    "SerialBackend",
    "cpu_count",
    "detect_gpus",
    "failure_result",
    "gpu_worker_env",
    "hard_timeout",
    "make_backend",
    "serial_map",
    "worker_env",
]

log = logging.getLogger(__name__)

#: Backend names accepted by :func:`make_backend` and the ``backend`` config key.
BACKENDS = ("serial", "process", "dask")


class BackendError(RuntimeError):
    """A map backend cannot go on (workers keep dying, a task timed out in ``map``, ...)."""


class SchedulerLost(BackendError):
    """The Dask scheduler went away; results received before it are kept."""


# -- helpers ---------------------------------------------------------------------------------------
def serial_map(fn: Callable[[Any], Any], genomes: Iterable[Any]) -> Iterator[Any]:
    """Evaluate one after another, yielding each result as soon as it is ready."""
    for g in genomes:
        yield fn(g)


def _pool_shape(
    name: str, gpus: int, workers_per_gpu: int, workers: int | None, threads: int | None, timeout: float | None
) -> tuple[int, int]:
    """Checked ``(workers, threads per worker)``: by default a worker per core (or
    ``workers_per_gpu`` per GPU), and threads so that workers x threads = cores."""
    if workers is None:
        workers = gpus * workers_per_gpu if gpus else cpu_count()
    if workers < 1:
        raise ValueError(f"{name}: workers must be >= 1, got {workers}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"{name}: timeout must be > 0, got {timeout}")
    return int(workers), int(threads or max(1, cpu_count() // int(workers)))


def cpu_count() -> int:
    """CPU cores this process may use (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _keras_backend() -> str | None:
    """The Keras backend of this process, if it is known without importing Keras."""
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return str(keras.backend.backend())
        except Exception:  # a half-imported keras: fall back to the environment
            pass
    return os.environ.get("KERAS_BACKEND")


def worker_env(threads: int, *, backend: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables for a worker that may use ``threads`` CPU threads.

    Set before Keras (and TensorFlow/JAX) is imported in the worker: ``KERAS_BACKEND``
    (this process's backend unless ``backend`` is given), ``OMP_NUM_THREADS`` and
    friends, ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``, and for JAX the
    ``XLA_FLAGS`` that limit its CPU thread pool. ``extra`` is added last.

    >>> worker_env(1, backend="jax")["XLA_FLAGS"]
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    backend = backend or _keras_backend()
    n = str(int(threads))
    env = {
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n,
        "TF_NUM_INTEROP_THREADS": n,
    }
    if backend:
        env["KERAS_BACKEND"] = backend
    if backend == "jax":
        # Only for JAX: TensorFlow's own XLA may not know these flags (unknown flags are fatal).
        flags = "--xla_cpu_multi_thread_eigen=false " if threads == 1 else ""
        flags += f"intra_op_parallelism_threads={n}"
        previous = os.environ.get("XLA_FLAGS", "").strip()
        env["XLA_FLAGS"] = f"{previous} {flags}".strip()
    env.update(extra or {})
    return env


def detect_gpus() -> int:
    """Number of NVIDIA GPUs this process may use (``nvidia-smi -L``; 0 without one).

    ``CUDA_VISIBLE_DEVICES``, when set, limits the count.
    """
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    n = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    visible = _visible_devices()
    return n if visible is None else min(n, len(visible))


def _visible_devices() -> list[str] | None:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return None
    return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]


def gpu_worker_env(
    worker_index: int,
    workers_per_gpu: int,
    n_gpus: int,
    backend: str | None = None,
    *,
    devices: Sequence[str] | None = None,
) -> dict[str, str]:
    """Environment that pins worker ``worker_index`` to one GPU, shared by ``workers_per_gpu``.

    Workers go round-robin over the GPUs (worker ``i`` on GPU ``i % n_gpus``); every
    worker sees only its GPU (``CUDA_VISIBLE_DEVICES``). Memory: TensorFlow grows its
    allocation as needed (``TF_FORCE_GPU_ALLOW_GROWTH``); JAX neither preallocates nor
    takes more than ``0.9 / workers_per_gpu`` of the GPU. Without GPUs (``n_gpus == 0``)
    the worker sees none.

    Args:
        worker_index: the worker's index (0, 1, ...).
        workers_per_gpu: workers sharing one GPU.
        n_gpus: GPUs to spread over.
        backend: Keras backend (``tensorflow``/``jax``; default this process's).
        devices: the device ids to use (default ``CUDA_VISIBLE_DEVICES`` or 0..n_gpus-1).

    >>> gpu_worker_env(3, 2, 2, "jax")["CUDA_VISIBLE_DEVICES"]
    '1'
    """
    if worker_index < 0 or workers_per_gpu < 1 or n_gpus < 0:
        raise ValueError(
            f"gpu_worker_env: need worker_index >= 0, workers_per_gpu >= 1, n_gpus >= 0; "
            f"got {worker_index}, {workers_per_gpu}, {n_gpus}"
        )
    if n_gpus == 0:
        return {"CUDA_VISIBLE_DEVICES": ""}
    ids = list(devices) if devices is not None else (_visible_devices() or [str(i) for i in range(n_gpus)])
    if len(ids) < n_gpus:
        raise ValueError(f"gpu_worker_env: {n_gpus} GPUs asked for, only devices {ids} available")
    backend = backend or _keras_backend() or "tensorflow"
    env = {"CUDA_VISIBLE_DEVICES": ids[worker_index % n_gpus]}
    if backend == "tensorflow":
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    elif backend == "jax":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / workers_per_gpu:.3f}"
    return env


def hard_timeout(seconds: float) -> float:
    """The backend's hard wall limit for an evaluation whose own (soft) limit is ``seconds``.

    The evaluator stops training itself at its limit; the backend only kills workers
    that hang beyond it (with room for a fresh worker's Keras import and data loading).
    """
    return float(seconds) + max(60.0, 0.25 * float(seconds))


def failure_result(fn: Any, genome: Any, status: str, error: str) -> Any:
    """A failure record for ``genome`` from ``fn.failure`` (or ``fn.objectives``)."""
    genome = genome.as_genome() if hasattr(genome, "as_genome") else genome
    failure = getattr(fn, "failure", None)
    if callable(failure):
        return failure(genome, status, error)
    objectives = getattr(fn, "objectives", None)
    if isinstance(objectives, Mapping) and hasattr(genome, "key"):

        return EvalResult(
            key=genome.key,
            genome=genome.to_dict(),
            status=status,
            objectives=worst_values(list(objectives.values())),
            objective_names=tuple(objectives),
            error=error,
        )
    raise BackendError(error)


def _raise_failure(index: int, status: str, error: str) -> Any:
    raise BackendError(f"task {index}: {error}")


class _Star:
    """``fn(*args)`` as a picklable one-argument function (for ``map`` over several iterables)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, args: tuple[Any, ...]) -> Any:
        return self.fn(*args)


OnFail = Callable[[int, str, str], Any]


class Backend:
    """Base class: subclasses implement ``_run(fn, items, on_fail)``, yielding
    ``(index, result)`` pairs as tasks finish; ``on_fail(index, status, error)`` gives the
    result of a task lost to a timeout or to dying workers (or raises)."""

    name = "backend"

    def _run(self, fn: Callable[[Any], Any], items: list[Any], on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def __call__(self, fn: Callable[[Any], Any], genomes: Iterable[Any]) -> Iterator[Any]:
        """Results of ``fn(genome)`` for every genome, as they finish (any order)."""
        genomes = list(genomes)

        def on_fail(i: int, status: str, error: str) -> Any:
            return failure_result(fn, genomes[i], status, error)

        for _, result in self._run(fn, genomes, on_fail):
            yield result

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        """``list(map(fn, *iterables))``, computed by the backend (DEAP's ``toolbox.map``)."""
        if not iterables:
            raise TypeError("map() needs at least one iterable")
        if len(iterables) == 1:
            items, call = list(iterables[0]), fn
        else:
            items, call = list(zip(*iterables, strict=False)), _Star(fn)
        out: list[Any] = [None] * len(items)
        for i, result in self._run(call, items, _raise_failure):
            out[i] = result
        return out

    def connect(self) -> None:
        """Start or reach the workers now rather than on first use; raise
        :class:`BackendError` when they cannot be reached (no-op for local backends)."""

    def close(self) -> None:
        """Release workers (they start again on next use)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SerialBackend(Backend):
    """Evaluate in this process, one after another (no time limit)."""

    name = "serial"

    def _run(self, fn: Callable[[Any], Any], items: list[Any], on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(item)


# -- worker-side function cache ------------------------------------------------------------------
_FN_CACHE: collections.OrderedDict[str, Any] = collections.OrderedDict()


def _cached_fn(token: str, fn: Any) -> Any:
    """The first ``fn`` received with ``token`` in this worker process, so that what it
    caches (an evaluator's data split) lives across tasks."""
    cached = _FN_CACHE.get(token)
    if cached is None:
        _FN_CACHE[token] = cached = fn
        while len(_FN_CACHE) > 4:
            _FN_CACHE.popitem(last=False)
    return cached


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # plain pickle: module-level functions and picklable objects only
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _apply_env(env: Mapping[str, str]) -> None:
    os.environ.update(env)
    # A spawned worker re-imports the parent's main module first (a study script imports
    # Keras): harmless when that Keras runs the backend the worker was meant to get.
    keras = sys.modules.get("keras")
    if keras is not None and "KERAS_BACKEND" in env and keras.backend.backend() != env["KERAS_BACKEND"]:
        log.warning("worker %d: keras was imported with backend %s before its environment (%s) was set",
                    os.getpid(), keras.backend.backend(), env["KERAS_BACKEND"])


# -- process backend -------------------------------------------------------------------------------
def _portable_exception(exc: BaseException) -> BaseException:
    """``exc`` if it pickles, else a :class:`BackendError` with its text; the remote
    traceback is attached as a note."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc = pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = BackendError(f"{type(exc).__name__}: {exc}")
    exc.add_note(f"in worker process {os.getpid()}:\n{text}")
    return exc


def _worker_main(conn: Any, env: Mapping[str, str]) -> None:
    """A worker process: receive ``(task_id, token, fn_bytes | None, item_bytes)``,
    send back ``(task_id, "ok" | "error", payload)``; ``None`` ends it. A message
    without ``item_bytes`` only prepares the function (unpickles it and calls its
    ``warm_up()`` if it has one) and gets no answer: a spare worker starting up."""
    _apply_env(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    conn.send(("ready", os.getpid(), None))
    token, fn = None, None
    answered = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, task_token, fn_bytes, item_bytes = message
        if fn_bytes is not None and task_token != token:
            token, fn, answered = None, None, 0
            gc.unfreeze()  # a new function: what the last one froze may go
        if item_bytes is None:
            try:
                fn = pickle.loads(fn_bytes)
                token = task_token
                getattr(fn, "warm_up", lambda: None)()
            except Exception:
                token, fn = None, None  # the first task (it carries the function too) reports it
            continue
        try:
            if fn_bytes is not None and task_token != token:
                token, fn = task_token, pickle.loads(fn_bytes)
            if task_token != token:
                raise BackendError("worker process received a task without its function")
            out: tuple[str, Any] = ("ok", fn(pickle.loads(item_bytes)))
        except Exception as exc:
            out = ("error", _portable_exception(exc))
        try:
            conn.send((task_id, *out))
        except Exception as exc:  # an unpicklable result
            conn.send((task_id, "error", _portable_exception(exc)))
        answered += 1
        if answered == 1:
            # What survives the function's first task (modules, data, its caches) stays while
            # the function does: freezing it keeps every later garbage collection (Keras's
            # clear_session runs one per evaluation) from walking those millions of objects.
            gc.collect()
            gc.freeze()


class _Worker:
    def __init__(self, ctx: Any, slot: int, env: Mapping[str, str]) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, dict(env)), name=f"evokeras-worker-{slot}", daemon=True)
        self.proc.start()
        child.close()
        self.token: str | None = None
        self.ready = False  # it reached its task loop
        self.ready_at = 0.0
        self.task: tuple[int, int, float] | None = None  # (task id, item index, start)
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


class ProcessBackend(Backend):
    """Worker processes started with ``spawn``; each evaluates one genome at a time.

    Each worker's environment is set before Keras is imported there: the Keras backend
    of this process, ``threads_per_worker`` CPU threads (default: cores // workers, so
    that workers x threads = cores) and, with GPUs, its GPU (see :func:`gpu_worker_env`).
    The function is sent to a worker once and kept there (with what it caches).
    Not thread-safe: one iteration at a time (an abandoned iteration's workers are
    replaced).

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
            last task and prepares the function there (``warm_up()``: an evaluator
            imports Keras and loads its data), so its start-up overlaps that task instead
            of delaying the next; it shares the cores with that task meanwhile (the
            task's inference timing comes at its end, usually after the start-up).
            Validation errors do not change: every evaluation seeds itself from the run
            seed and the genome.
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
        self.workers, self.threads_per_worker = _pool_shape(
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
        backend = _keras_backend()
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

    def _run(self, fn: Callable[[Any], Any], items: list[Any], on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        self._prepare(fn)
        queue = collections.deque(range(len(items)))
        attempts = [0] * len(items)
        busy: dict[int, _Worker] = {}  # slot -> worker running a task
        startup_failures = 0
        try:
            while queue or busy:
                for slot in range(self.workers):
                    if not queue:
                        break
                    if slot in busy:
                        continue
                    w = self._worker(slot)
                    i = queue.popleft()
                    self._next_task += 1
                    first = w.token != self._token
                    try:
                        w.conn.send((self._next_task, self._token, self._fn_bytes if first else None,
                                     pickle.dumps(items[i], protocol=pickle.HIGHEST_PROTOCOL)))
                    except (OSError, ValueError):  # it died while idle: start another
                        self._replace(w)
                        queue.appendleft(i)
                        continue
                    w.token = self._token
                    w.task = (self._next_task, i, time.monotonic())
                    busy[slot] = w
                    if self.recycle_after is not None and w.done + 1 >= self.recycle_after and slot not in self._spares:
                        self._start_spare(slot)
                if not busy:
                    continue
                wait = None
                if self.timeout is not None:
                    wait = max(0.0, min(self._deadline(w) for w in busy.values()) - time.monotonic())
                handles: list[Any] = [w.conn for w in busy.values()] + [w.proc.sentinel for w in busy.values()]
                mp_connection.wait(handles, timeout=wait)
                now = time.monotonic()
                for slot, w in list(busy.items()):
                    task_id, i, _ = w.task  # type: ignore[misc]
                    try:
                        message = w.receive()
                    except (EOFError, OSError):
                        message = None
                    if message is not None:
                        del busy[slot]
                        w.task = None
                        got_id, kind, payload = message
                        if got_id != task_id:
                            raise BackendError(f"worker {slot} answered task {got_id}, expected {task_id}")
                        if kind == "error":
                            raise payload
                        w.done += 1
                        if self.recycle_after is not None and w.done >= self.recycle_after:
                            self._recycle(w)
                        yield i, payload
                    elif not w.proc.is_alive():
                        del busy[slot]
                        code = w.proc.exitcode
                        self._replace(w)
                        if not w.ready:  # it died starting up: not the task's fault
                            startup_failures += 1
                            if startup_failures >= 3:
                                raise BackendError(f"worker processes die while starting (exit code {code}); "
                                                   "see their messages above")
                            queue.appendleft(i)
                            continue
                        attempts[i] += 1
                        if attempts[i] >= self.max_attempts:
                            log.warning("task %d: worker died %d times (exit code %s); giving up", i, attempts[i], code)
                            yield i, on_fail(i, "failed", f"worker process died {attempts[i]} times while evaluating it (last exit code {code})")
                        else:
                            log.warning("task %d: worker %d died (exit code %s); running it again", i, slot, code)
                            queue.appendleft(i)
                    elif self.timeout is not None and now > self._deadline(w) and not w.ready:
                        del busy[slot]
                        self._replace(w)
                        startup_failures += 1
                        if startup_failures >= 3:
                            raise BackendError(f"worker processes do not start within {self._startup_limit():g} s")
                        queue.appendleft(i)
                    elif self.timeout is not None and now > self._deadline(w):
                        del busy[slot]
                        log.warning("task %d: worker %d passed the %g s limit; killing it", i, slot, self.timeout)
                        self._replace(w)
                        yield i, on_fail(i, "timeout", f"evaluation passed the backend's hard limit of {self.timeout:g} s (worker killed)")
        finally:
            for w in busy.values():  # abandoned tasks: their results would be stale
                self._replace(w)

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
        started = w.task[2]  # type: ignore[index]
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


# -- Dask backend ----------------------------------------------------------------------------------
class _TaskOut:
    """What a Dask task sends back: the result, worker-side start/end (``time.time()``),
    the worker's address, and whether it passed the time limit."""

    __slots__ = ("address", "end", "result", "start", "timed_out")

    def __init__(self, result: Any, start: float, end: float, address: str | None, timed_out: bool = False) -> None:
        self.result, self.start, self.end, self.address, self.timed_out = result, start, end, address, timed_out

    def __reduce__(self) -> tuple[Any, ...]:
        return (_TaskOut, (self.result, self.start, self.end, self.address, self.timed_out))


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def _dask_call(token: str, fn: Any, item: Any, timeout: float | None) -> _TaskOut:
    """Run on a Dask worker: ``fn(item)`` with the worker's cached ``fn``; with a
    ``timeout``, in a helper thread that is abandoned when it passes the limit (the
    client then restarts the worker)."""
    fn = _cached_fn(token, fn)
    start = time.time()
    if timeout is None:
        result = fn(item)
        return _TaskOut(result, start, time.time(), _worker_address())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(item)
        except BaseException as exc:  # re-raised in the task's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="evokeras-eval", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return _TaskOut(None, start, time.time(), _worker_address(), timed_out=True)
    if "error" in box:
        raise box["error"]
    return _TaskOut(box["result"], start, time.time(), _worker_address())


def _env_plugin_class() -> type:
    """``_EnvPlugin``: a ``distributed`` worker plugin that sets environment variables
    before a worker's first task (made on first use so that importing this module does
    not import ``distributed``; pickled by name like any module attribute)."""
    global _ENV_PLUGIN
    if _ENV_PLUGIN is None:
        from distributed.diagnostics.plugin import WorkerPlugin

        class _EnvPlugin(WorkerPlugin):
            name = "evokeras-env"

            def __init__(self, env: Mapping[str, str]) -> None:
                self.env = dict(env)

            def setup(self, worker: Any) -> None:
                wanted = self.env.get("KERAS_BACKEND")
                if "keras" in sys.modules and wanted and os.environ.get("KERAS_BACKEND") != wanted:
                    log.warning("dask worker %s imported keras before KERAS_BACKEND=%s was set",
                                worker.address, wanted)
                os.environ.update(self.env)

        _EnvPlugin.__module__ = __name__
        _EnvPlugin.__qualname__ = "_EnvPlugin"
        _ENV_PLUGIN = _EnvPlugin
    return _ENV_PLUGIN


_ENV_PLUGIN: type | None = None


def __getattr__(name: str) -> Any:
    if name == "_EnvPlugin":
        return _env_plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _noop(x: Any) -> Any:
    return x


#: How long a scheduler address may refuse connections before :class:`DaskBackend` gives up
#: (a scheduler that is starting listens within it; ``connect_timeout`` bounds the rest).
REFUSED_SECONDS = 10.0


def _probe(address: str, seconds: float) -> None:
    """Fail (``OSError``) where nothing listens at a ``tcp://``/``tls://`` address for
    ``seconds`` (every connection refused; a scheduler still starting gets that long),
    instead of Dask's retries until ``connect_timeout``; other schemes and a slow or
    silent host are left to Dask."""
    from distributed.comm import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme not in ("tcp", "tls"):
        return
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(parse_host_port(location), timeout=seconds):
                return
        except TimeoutError:
            return  # a slow host: Dask waits for it up to connect_timeout
        except ConnectionRefusedError as exc:
            if time.monotonic() >= deadline:
                raise OSError(f"nothing listens at {location} ({exc.strerror} for {seconds:.0f} s)") from exc
            time.sleep(0.25)


class DaskBackend(Backend):
    """Dask distributed: an embedded ``LocalCluster`` (default) or an existing scheduler.

    Every task is submitted at once (``pure=False``, a unique key) and results are
    yielded with ``as_completed``. When a worker dies, the scheduler runs its tasks on
    another worker (a task whose workers die ``distributed.scheduler.allowed-failures``
    times is recorded as ``failed``). When the scheduler goes away, :class:`SchedulerLost`
    is raised.

    With a ``timeout``, a task that passes it is recorded as ``timeout`` and its worker
    restarted (through its nanny; a worker started with ``--no-nanny`` keeps the hung
    thread).

    The embedded cluster's workers get their environment before Keras is imported
    (:func:`worker_env`; with GPUs, each worker pinned to one by :func:`gpu_worker_env`).

    Args:
        address: scheduler address (``tcp://HOST:PORT``); ``None`` starts a local cluster.
        workers: worker processes of the local cluster (default: GPUs x
            ``workers_per_gpu``, else CPU cores).
        threads_per_worker: threads of each local worker (default cores // workers).
        timeout: hard wall limit in seconds per task (``None``: none).
        env: extra environment variables for the workers.
        connect_timeout: seconds to wait for the scheduler (an address where nothing
            listens fails after :data:`REFUSED_SECONDS`).
        gpus: GPUs of the local cluster (default: :func:`detect_gpus`); 0 for CPU only.
        workers_per_gpu: local workers sharing each GPU.

    Attributes:
        task_times: for the tasks of the last call: ``(submitted, received, started,
            finished)`` in ``time.time()`` seconds (started/finished measured on the worker).
    """

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        connect_timeout: float = 60.0,
        gpus: int | None = None,
        workers_per_gpu: int = 2,
    ) -> None:
        self.gpus = 0 if address is not None else detect_gpus() if gpus is None else int(gpus)
        self.workers_per_gpu = int(workers_per_gpu)
        self.workers, self.threads_per_worker = _pool_shape(
            "DaskBackend", self.gpus, self.workers_per_gpu, workers, threads_per_worker, timeout
        )
        self.address = address
        self.timeout = timeout
        self.env = dict(env or {})
        self.connect_timeout = float(connect_timeout)
        self.task_times: list[tuple[float, float, float, float]] = []
        self._client: Any = None
        self._cluster: Any = None
        self._fn: Any = None
        self._token = ""

    def __repr__(self) -> str:
        where = self.address or (f"local cluster: workers={self.workers}, threads_per_worker="
                                 f"{self.threads_per_worker}, gpus={self.gpus}")
        return f"DaskBackend({where}, timeout={self.timeout})"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (connecting, or starting the cluster, on first use)."""
        if self._client is None:
            self._connect()
        return self._client

    def connect(self) -> None:
        self.client  # noqa: B018 - connects

    def _connect(self) -> None:
        try:
            with optional_dependency():
                from distributed import Client
        except MissingExtraError as exc:
            raise BackendError(str(exc)) from exc
        if self.address is None:
            self._cluster = self._local_cluster()
            self._client = Client(self._cluster, set_as_default=False)
            return
        try:
            _probe(self.address, min(REFUSED_SECONDS, self.connect_timeout))
            self._client = Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerLost(f"cannot reach the Dask scheduler at {self.address}: {exc}") from exc
        env = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"), **self.env}
        backend = _keras_backend()
        if backend:
            env["KERAS_BACKEND"] = backend
        self._client.register_plugin(_env_plugin_class()(env), name="evokeras-env")

    def _local_cluster(self) -> Any:
        from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

        backend = _keras_backend()
        env = worker_env(self.threads_per_worker, backend=backend, extra=self.env)
        if not self.gpus:
            return LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,  # one evaluation at a time per worker; its threads come from env
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # a free port on this host only (None still starts one on 8787)
                env=env,
                silence_logs=logging.WARNING,
            )
        # One environment per worker (its GPU): LocalCluster's workers all share one.
        workers = {
            i: {"cls": Nanny, "options": {
                "nthreads": 1, "host": "127.0.0.1",
                "env": {**env, **gpu_worker_env(i, self.workers_per_gpu, self.gpus, backend), **self.env},
            }}
            for i in range(self.workers)
        }
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}}
        return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.WARNING)

    def _lost(self) -> bool:
        return self._client is None or self._client.status not in ("running", "newly-created")

    def _run(self, fn: Callable[[Any], Any], items: list[Any], on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        if not items:
            return
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client = self.client
        if fn is not self._fn:
            self._fn, self._token = fn, uuid.uuid4().hex
        run_id = uuid.uuid4().hex[:8]
        futures: dict[Any, int] = {}
        submitted: dict[int, float] = {}
        self.task_times = []
        try:
            for i, item in enumerate(items):
                name = getattr(item, "key", None) or str(i)
                submitted[i] = time.time()
                f = client.submit(_dask_call, self._token, fn, item, self.timeout,
                                  key=f"evokeras-{name}-{run_id}-{i}", pure=False)
                futures[f] = i
        except Exception as exc:
            self._cancel(futures)
            if self._lost():
                raise SchedulerLost(f"lost the Dask scheduler {self._where()}: {exc}") from exc
            raise
        done: set[int] = set()
        try:
            for f in as_completed(futures, loop=client.loop):
                i = futures[f]
                try:
                    out: _TaskOut = f.result()
                except KilledWorker as exc:
                    result = on_fail(i, "failed", f"dask workers kept dying while evaluating it: {exc}")
                except (CancelledError, OSError, TimeoutError) as exc:
                    if f.status == "error":  # the function itself raised one of these
                        raise
                    raise SchedulerLost(f"lost the Dask scheduler {self._where()}: {exc}") from exc
                else:
                    self.task_times.append((submitted[i], time.time(), out.start, out.end))
                    if out.timed_out:
                        self._restart(out.address)
                        result = on_fail(i, "timeout", f"evaluation passed the backend's hard limit of "
                                         f"{self.timeout:g} s (worker {out.address} restarted)")
                    else:
                        result = out.result
                done.add(i)
                yield i, result
        finally:
            if len(done) < len(items):
                self._cancel([f for f, i in futures.items() if i not in done])

    def _where(self) -> str:
        return self.address or "(embedded LocalCluster)"

    def _cancel(self, futures: Iterable[Any]) -> None:
        futures = list(futures)
        if futures and not self._lost():
            try:
                self._client.cancel(futures)
            except Exception as exc:  # the scheduler may be gone
                log.debug("cancel failed: %s", exc)

    def _restart(self, address: str | None) -> None:
        if address is None:
            return
        try:
            self.client.restart_workers([address], timeout=120, raise_for_error=False)
        except Exception as exc:
            log.warning("could not restart dask worker %s after a timeout: %s", address, exc)

    def roundtrip_ms(self, n: int = 30) -> list[float]:
        """Milliseconds from submission to result of ``n`` no-op tasks, one at a time."""
        client = self.client
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            client.submit(_noop, 0, pure=False).result()
            out.append(1000 * (time.perf_counter() - t0))
        return out

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        self._fn = None
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception as exc:
                log.debug("closing the dask client: %s", exc)
        if cluster is not None:
            try:
                cluster.close(timeout=30)
            except Exception as exc:
                log.debug("closing the LocalCluster: %s", exc)


# -- from a configuration --------------------------------------------------------------------------
def make_backend(
    config: Any = None,
    *,
    backend: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    timeout: float | None = None,
    recycle_after: int | None = None,
) -> Backend:
    """The backend a :class:`~evokeras.engine.config.SearchConfig` (or the keywords) asks for.

    ``scheduler`` (an address) means Dask on that cluster; else ``backend`` names it;
    else ``workers > 1`` means processes and ``workers == 1`` serial. Keywords override
    the configuration; with a configuration the hard time limit defaults to
    :func:`hard_timeout` of its ``evaluation.timeout``.

    >>> make_backend(workers=1)
    SerialBackend()
    """
    if config is not None:
        backend = backend or config.backend
        workers = workers or config.workers
        scheduler = scheduler or config.scheduler
        if timeout is None:
            timeout = hard_timeout(config.budget().timeout)
        recycle_after = recycle_after or config.recycle_after
    workers = int(workers or 1)
    if scheduler:
        if backend not in (None, "dask"):
            raise ValueError(f"a scheduler address ({scheduler}) needs backend 'dask', not {backend!r}")
        backend = "dask"
    backend = backend or ("process" if workers > 1 else "serial")
    if backend == "serial":
        return SerialBackend()
    if backend == "process":
        return ProcessBackend(workers, timeout=timeout, recycle_after=recycle_after)
    if backend == "dask":
        return DaskBackend(scheduler, workers=workers, timeout=timeout)
    raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")

