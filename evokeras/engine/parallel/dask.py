"""The Dask backend: an embedded ``LocalCluster`` or an existing scheduler.

``distributed`` is imported inside functions only (it is an extra). What Dask workers
unpickle by name lives here at module level: :func:`_dask_call` (the task),
:class:`_TaskOut` (its result) and ``_EnvPlugin`` (the worker plugin, made on first use
and found through the module's ``__getattr__``); workers of an external cluster import
``evokeras.engine.parallel.dask`` to run them.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import CancelledError
from typing import Any

from evokeras._meta import MissingExtraError, optional_dependency
from evokeras.engine.parallel.base import Backend, BackendError, Feed, OnFail, SchedulerLost
from evokeras.engine.parallel.environment import (
    detect_gpus,
    gpu_worker_env,
    keras_backend,
    pool_shape,
    quiet_loggers,
    worker_env,
)

__all__ = ["REFUSED_SECONDS", "DaskBackend"]

log = logging.getLogger(__name__)

#: How long a scheduler address may refuse connections before :class:`DaskBackend` gives up
#: (a scheduler that is starting listens within it; ``connect_timeout`` bounds the rest).
REFUSED_SECONDS = 10.0

#: How often :class:`DaskBackend` asks an external cluster for its thread count (the
#: tasks it keeps in flight).
SLOTS_SECONDS = 5.0


# -- the worker side -------------------------------------------------------------------------------
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


def _nothing() -> None:
    pass


def _noop(x: Any) -> Any:
    return x


# -- the client side -------------------------------------------------------------------------------
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


class _Round:
    """One iteration of :meth:`DaskBackend._run`: its function, the items still to come,
    the futures in flight (``future -> (index, item, submitted)``), the iterator over
    their completions."""

    def __init__(self, fn: Callable[[Any], Any], feed: Feed, on_fail: OnFail, completed: Any) -> None:
        self.fn, self.feed, self.on_fail, self.completed = fn, feed, on_fail, completed
        self.pending: dict[Any, tuple[int, Any, float]] = {}
        self.id = uuid.uuid4().hex[:8]
        self.slots, self.slots_at = 0, -float("inf")


class DaskBackend(Backend):
    """Dask distributed: an embedded ``LocalCluster`` (default) or an existing scheduler.

    Tasks are submitted as items are pulled (``pure=False``, a unique key): ``workers``
    at first (for an external cluster, its thread count when that is larger), then one
    more as each finishes; results are yielded with ``as_completed``. When a worker
    dies, the scheduler runs its tasks on another worker (a task whose workers die
    ``distributed.scheduler.allowed-failures`` times is recorded as ``failed``). When
    the scheduler goes away, :class:`SchedulerLost` is raised.

    With a ``timeout``, a task that passes it is recorded as ``timeout`` and its worker
    restarted (through its nanny; a worker started with ``--no-nanny`` keeps the hung
    thread).

    The embedded cluster's workers get their environment before Keras is imported
    (:func:`worker_env`; with GPUs, each worker pinned to one by :func:`gpu_worker_env`).

    Args:
        address: scheduler address (``tcp://HOST:PORT``); ``None`` starts a local cluster.
        workers: worker processes of the local cluster (default: GPUs x
            ``workers_per_gpu``, else CPU cores); for an external cluster, the fewest
            tasks kept in flight.
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
        self.workers, self.threads_per_worker = pool_shape(
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
        self._loud_again: Callable[[], None] = _nothing  # gives distributed's loggers their levels back

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
        self._loud_again()
        self._loud_again = quiet_loggers("distributed")  # no INFO lines unless logging asks for them
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
        backend = keras_backend()
        if backend:
            env["KERAS_BACKEND"] = backend
        self._client.register_plugin(_env_plugin_class()(env), name="evokeras-env")

    def _local_cluster(self) -> Any:
        from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

        backend = keras_backend()
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

    def _slots(self) -> int:
        """Tasks to keep in flight: ``workers``; on an external cluster, its thread count
        when that is larger (workers may join it during a run)."""
        if self.address is None or self._lost():
            return self.workers
        try:
            info = self.client.scheduler_info()
        except Exception as exc:  # the scheduler may be gone: the next submission says so
            log.debug("scheduler_info failed: %s", exc)
            return self.workers
        threads = info.get("total_threads")
        if threads is None:
            threads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        return max(self.workers, int(threads))

    def _run(self, fn: Callable[[Any], Any], items: Iterable[tuple[int, Any]],
             on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        feed = Feed(items)
        first = feed.next()
        if first is None:
            return
        feed.again(*first)  # (pulled before connecting: nothing to do, no cluster started)
        from distributed import as_completed

        client = self.client
        if fn is not self._fn:
            self._fn, self._token = fn, uuid.uuid4().hex
        run = _Round(fn, feed, on_fail, as_completed(loop=client.loop))
        self.task_times = []
        try:
            self._fill(run)
            for f in run.completed:
                i, item, submitted = run.pending.pop(f)
                yield i, self._outcome(run, f, i, item, submitted)
                self._fill(run)  # the next item is pulled once the consumer has this result
        finally:
            self._cancel(run.pending)

    def _fill(self, run: _Round) -> None:
        """Submit items until ``_slots()`` tasks are in flight (asked again every
        :data:`SLOTS_SECONDS`) or the items run out."""
        if time.monotonic() - run.slots_at > SLOTS_SECONDS:
            run.slots, run.slots_at = self._slots(), time.monotonic()
        while len(run.pending) < run.slots:
            task = run.feed.next()
            if task is None:
                return
            i, item = task
            name = getattr(item, "key", None) or str(i)
            submitted = time.time()
            try:
                f = self.client.submit(_dask_call, self._token, run.fn, item, self.timeout,
                                       key=f"evokeras-{name}-{run.id}-{i}", pure=False)
            except Exception as exc:
                if self._lost():
                    raise SchedulerLost(f"lost the Dask scheduler {self._where()}: {exc}") from exc
                raise
            run.pending[f] = (i, item, submitted)
            run.completed.add(f)

    def _outcome(self, run: _Round, f: Any, i: int, item: Any, submitted: float) -> Any:
        """The result of the finished future ``f`` (task ``i``), or its failure record."""
        from distributed.scheduler import KilledWorker

        try:
            out: _TaskOut = f.result()
        except KilledWorker as exc:
            return run.on_fail(i, item, "failed", f"dask workers kept dying while evaluating it: {exc}")
        except (CancelledError, OSError, TimeoutError) as exc:
            if f.status == "error":  # the function itself raised one of these
                raise
            raise SchedulerLost(f"lost the Dask scheduler {self._where()}: {exc}") from exc
        self.task_times.append((submitted, time.time(), out.start, out.end))
        if out.timed_out:
            self._restart(out.address)
            return run.on_fail(i, item, "timeout", f"evaluation passed the backend's hard limit of "
                               f"{self.timeout:g} s (worker {out.address} restarted)")
        return out.result

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
            # (a worker slow to exit is killed: nothing to warn about once the run is done)
            loud_nanny = quiet_loggers("distributed.nanny", level=logging.ERROR)
            try:
                cluster.close(timeout=30)
            except Exception as exc:
                log.debug("closing the LocalCluster: %s", exc)
            finally:
                loud_nanny()
        self._loud_again()
        self._loud_again = _nothing
