"""Map backends: evaluate many genomes serially, in worker processes, or on a Dask cluster.

Every backend is an object with

* ``backend(fn, genomes)`` -- an iterator of ``fn(genome)`` results *as they finish*
  (any order). :class:`~evokeras.engine.search.Search` uses this form and commits each result
  to the run store as it arrives. ``genomes`` may be any iterable, a generator included:
  the backend pulls the next genome only when a worker is free (never more than its
  ``workers`` in flight -- an external Dask cluster: its threads, when more; a task to
  run again goes first), so a generator may make its
  next genome from the results already received. A candidate whose worker hangs past
  the backend's ``timeout`` (or keeps dying) gets a failure record (status
  ``timeout``/``failed``) made by ``fn.failure(genome, status, error)`` when ``fn`` is an
  :class:`~evokeras.training.protocol.EvaluateFunction` (as
  :class:`~evokeras.training.evaluator.Evaluator` is; wrap a plain function in
  :class:`~evokeras.training.protocol.PlainEvaluate`); for any other ``fn`` the backend
  raises :class:`BackendError`;
* ``backend.map(fn, *iterables)`` -- DEAP's ``map`` contract: a list, in order. Register
  it with ``toolbox.register("map", backend.map)`` and DEAP's own algorithms
  (``eaMuPlusLambda``...) evaluate in parallel. Here a timeout or a task that keeps
  killing its worker raises :class:`BackendError`;
* ``backend.close()`` (and ``with backend: ...``). Workers start lazily on first use
  and again after ``close()``.

Backends (one module each; :mod:`~evokeras.engine.parallel.base` has the contract,
:mod:`~evokeras.engine.parallel.environment` the workers' environment):

* :class:`SerialBackend` -- in this process, one after another.
* :class:`ProcessBackend` (:mod:`~evokeras.engine.parallel.process`; the worker's loop in
  :mod:`~evokeras.engine.parallel.worker`) -- ``spawn``-ed worker processes, one model at
  a time per worker. Each worker's environment (Keras backend, thread counts, GPU
  placement) is set before Keras is imported there; a worker that dies is replaced and
  its task runs again; a worker past the time limit is killed. (A small pool of its own
  rather than ``ProcessPoolExecutor``, which can tell neither which task killed a worker
  nor kill one hung worker, and gives every worker the same environment.) As with any
  ``spawn``, workers import the main script as a module: guard its entry point with
  ``if __name__ == "__main__":`` and leave ``import keras`` out of its top level (a
  script whose top level starts the search gets one :class:`UnguardedMainError`, not a
  search started again in every worker).
* :class:`DaskBackend` (:mod:`~evokeras.engine.parallel.dask`) -- Dask distributed: an
  embedded ``LocalCluster`` or an existing scheduler (``address="tcp://HOST:PORT"``).
  The scheduler re-runs the task of a worker that dies on another worker. If the
  scheduler goes away, :class:`SchedulerLost` is raised; every result received before
  is already in the run store, so ``evokeras resume DIR`` continues the run later.

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

from typing import Any

from evokeras.engine.parallel.base import (
    Backend,
    BackendError,
    SchedulerLost,
    SerialBackend,
    UnguardedMainError,
    failure_result,
    refuse_while_bootstrapping,
    serial_map,
)
from evokeras.engine.parallel.dask import REFUSED_SECONDS, DaskBackend
from evokeras.engine.parallel.environment import (
    cpu_count,
    detect_gpus,
    gpu_worker_env,
    hard_timeout,
    quiet_loggers,
    require_keras_backend,
    worker_env,
)
from evokeras.engine.parallel.process import ProcessBackend

__all__ = [
    "BACKENDS",
    "REFUSED_SECONDS",
    "Backend",
    "BackendError",
    "DaskBackend",
    "ProcessBackend",
    "SchedulerLost",
    "SerialBackend",
    "UnguardedMainError",
    "cpu_count",
    "detect_gpus",
    "failure_result",
    "gpu_worker_env",
    "hard_timeout",
    "make_backend",
    "quiet_loggers",
    "require_keras_backend",
    "serial_map",
    "worker_env",
]

#: Backend names accepted by :func:`make_backend` and the ``backend`` config key.
BACKENDS = ("serial", "process", "dask")


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
    else ``workers > 1`` means processes and ``workers == 1`` serial (config keys
    ``parallel.workers``, ``parallel.backend``, ``parallel.scheduler``,
    ``parallel.recycle_after``). Keywords override the configuration; with a
    configuration the hard time limit defaults to :func:`hard_timeout` of its
    ``evaluation.timeout``.

    In a worker process still importing its parent's main script (one without
    ``if __name__ == "__main__":``) no backend is made: see :func:`refuse_while_bootstrapping`.

    >>> make_backend(workers=1)
    SerialBackend()
    """
    refuse_while_bootstrapping()
    if config is not None:
        section = config.parallel
        backend = backend or section.backend
        workers = workers or section.workers
        scheduler = scheduler or section.scheduler
        if timeout is None:
            timeout = hard_timeout(config.budget().timeout)
        recycle_after = recycle_after or section.recycle_after
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
