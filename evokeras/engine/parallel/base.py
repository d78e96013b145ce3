"""The backend contract: :class:`Backend`, its errors, failure records, the serial backend.

A backend runs ``fn`` on items pulled lazily from an iterable, never more than its
``workers`` at a time (an external Dask cluster: its threads, when more) (:class:`Feed`), and yields results as they finish. What a task
lost to a timeout or to dying workers turns into is decided here, once: the
:meth:`~evokeras.training.protocol.EvaluateFunction.failure` record when ``fn`` is an
:class:`~evokeras.training.protocol.EvaluateFunction`, else :class:`BackendError`.
"""

from __future__ import annotations

import collections
import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from evokeras.training.protocol import EvaluateFunction

__all__ = ["UNGUARDED_MAIN_EXIT", "WORKER_NAME", "Backend", "BackendError", "Feed", "SchedulerLost", "SerialBackend",
           "UnguardedMainError", "failure_result", "refuse_while_bootstrapping", "serial_map", "unguarded_main"]


class BackendError(RuntimeError):
    """A map backend cannot go on (workers keep dying, a task timed out in ``map``, ...)."""


class SchedulerLost(BackendError):
    """The Dask scheduler went away; results received before it are kept."""


class UnguardedMainError(RuntimeError):
    """A worker process started by importing the main script, and the script's top level
    started a search again there: the script lacks ``if __name__ == "__main__":``."""


#: The name of the process backend's workers: ``evokeras-worker-SLOT``.
WORKER_NAME = "evokeras-worker-{}"
#: The exit status of a worker that stopped because importing the main script started a
#: search (:func:`refuse_while_bootstrapping`); its parent raises :class:`UnguardedMainError`.
UNGUARDED_MAIN_EXIT = 87


def unguarded_main() -> UnguardedMainError:
    """The error of a main script whose top level starts a search in every worker process."""
    main = sys.modules.get("__mp_main__") or sys.modules.get("__main__")  # (a child: the script it imports)
    script = getattr(main, "__file__", None) or "the main script"
    return UnguardedMainError(
        f"the worker processes started the search again while importing {script}: put the code that starts "
        "the search under `if __name__ == \"__main__\":` (worker processes start by importing the main "
        "script), then run it again: the run directory is kept")


def refuse_while_bootstrapping() -> None:
    """Refuse to start a search in a ``spawn``/``forkserver`` child that is still importing
    its parent's main script (a script without ``if __name__ == "__main__":``): a process
    backend's worker exits at once with :data:`UNGUARDED_MAIN_EXIT`, so that its parent
    says why, once; any other process raises :class:`UnguardedMainError`. Python's own
    check for starting a process there reads the same flag."""
    process = multiprocessing.current_process()
    if not getattr(process, "_inheriting", False):
        return
    if process.name.startswith(WORKER_NAME.format("")):
        raise SystemExit(UNGUARDED_MAIN_EXIT)
    raise unguarded_main()


#: ``on_fail(index, item, status, error)``: the result of a task lost to a timeout or to
#: dying workers (``status`` ``timeout``/``failed``), or an exception.
OnFail = Callable[[int, Any, str, str], Any]


def serial_map(fn: Callable[[Any], Any], genomes: Iterable[Any]) -> Iterator[Any]:
    """Evaluate one after another, yielding each result as soon as it is ready."""
    for g in genomes:
        yield fn(g)


def _plain_genome(genome: Any) -> Any:
    """The genome of a search individual (which carries fitness and parent too)."""
    return genome.as_genome() if hasattr(genome, "as_genome") else genome


def failure_result(fn: Callable[[Any], Any], genome: Any, status: str, error: str) -> Any:
    """The record of ``genome`` lost with ``status``: ``fn.failure(genome, status, error)``
    when ``fn`` is an :class:`~evokeras.training.protocol.EvaluateFunction`; any other
    callable has none, and :class:`BackendError` is raised."""
    if isinstance(fn, EvaluateFunction):
        return fn.failure(_plain_genome(genome), status, error)
    raise BackendError(error)


def _raise_failure(index: int, item: Any, status: str, error: str) -> Any:
    raise BackendError(f"task {index}: {error}")


def _on_fail(fn: Callable[[Any], Any]) -> OnFail:
    """What a lost task of ``fn`` becomes: its failure record (an evaluate function) or
    :class:`BackendError` (any other callable)."""
    if not isinstance(fn, EvaluateFunction):
        return _raise_failure

    def record(index: int, item: Any, status: str, error: str) -> Any:
        return fn.failure(_plain_genome(item), status, error)

    return record


class Feed:
    """``(index, item)`` pairs pulled one at a time from an iterable, tasks to run again first.

    :meth:`next` pulls from the iterable only when called (a backend calls it when a
    worker is free), so a generator may compute its next item from the results already
    received.
    """

    def __init__(self, pairs: Iterable[tuple[int, Any]]) -> None:
        self._pairs = iter(pairs)
        self._again: collections.deque[tuple[int, Any]] = collections.deque()
        self._exhausted = False

    def next(self) -> tuple[int, Any] | None:
        """A task to run again, else the iterable's next pair; ``None`` when there is neither."""
        if self._again:
            return self._again.popleft()
        if self._exhausted:
            return None
        try:
            return next(self._pairs)
        except StopIteration:
            self._exhausted = True
            return None

    def again(self, index: int, item: Any) -> None:
        """Run ``(index, item)`` again, before any new item."""
        self._again.appendleft((index, item))

    @property
    def done(self) -> bool:
        """Whether the iterable is exhausted and nothing waits to run again."""
        return self._exhausted and not self._again


class _Star:
    """``fn(*args)`` as a picklable one-argument function (for ``map`` over several iterables)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, args: tuple[Any, ...]) -> Any:
        return self.fn(*args)


class Backend:
    """Base class: subclasses implement ``_run(fn, items, on_fail)``.

    ``items`` is an iterable of ``(index, item)`` pairs, to be pulled lazily (through a
    :class:`Feed`): the next pair only when a worker is free to take it, never more than
    the backend's workers in flight at once, tasks to run again first. ``_run`` yields
    ``(index, result)`` pairs as tasks finish; ``on_fail(index, item, status, error)``
    gives the result of a task lost to a timeout or to dying workers (or raises).
    """

    name = "backend"
    #: Tasks in flight at most (subclasses set it per instance).
    workers = 1

    def _run(self, fn: Callable[[Any], Any], items: Iterable[tuple[int, Any]],
             on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def __call__(self, fn: Callable[[Any], Any], genomes: Iterable[Any]) -> Iterator[Any]:
        """Results of ``fn(genome)`` for every genome, as they finish (any order).

        ``genomes`` may be any iterable, a generator included: the next genome is pulled
        only when a worker is free (at most ``workers`` in flight), so a generator may
        compute it from the results received so far. A genome whose evaluation is lost
        (timeout, dying workers) gets ``fn.failure(...)`` when ``fn`` is an
        :class:`~evokeras.training.protocol.EvaluateFunction`; for any other ``fn`` the
        backend raises :class:`BackendError`.
        """
        for _, result in self._run(fn, enumerate(genomes), _on_fail(fn)):
            yield result

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        """``list(map(fn, *iterables))``, computed by the backend (DEAP's ``toolbox.map``).

        A task lost to a timeout or to dying workers raises :class:`BackendError`."""
        if not iterables:
            raise TypeError("map() needs at least one iterable")
        if len(iterables) == 1:
            items, call = list(iterables[0]), fn
        else:
            items, call = list(zip(*iterables, strict=False)), _Star(fn)
        out: list[Any] = [None] * len(items)
        for i, result in self._run(call, enumerate(items), _raise_failure):
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

    def _run(self, fn: Callable[[Any], Any], items: Iterable[tuple[int, Any]],
             on_fail: OnFail) -> Iterator[tuple[int, Any]]:
        for i, item in items:
            yield i, fn(item)
