"""The worker side of :class:`~evokeras.engine.parallel.process.ProcessBackend`.

:func:`worker_main` is the ``spawn``-ed worker process's target: it is pickled by name
(``evokeras.engine.parallel.worker.worker_main``), so the worker imports this module
(and so this package) before anything else -- nothing here imports Keras -- and sets
its environment before the function it is sent imports Keras.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import traceback
from collections.abc import Mapping
from typing import Any

from evokeras.engine.parallel.base import BackendError
from evokeras.engine.parallel.environment import apply_env
from evokeras.training.protocol import EvaluateFunction

__all__ = ["portable_exception", "worker_main"]


def portable_exception(exc: BaseException) -> BaseException:
    """``exc`` if it pickles, else a :class:`BackendError` with its text; the remote
    traceback is attached as a note."""
    text = "".join(traceback.format_exception(exc))
    try:
        exc = pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = BackendError(f"{type(exc).__name__}: {exc}")
    exc.add_note(f"in worker process {os.getpid()}:\n{text}")
    return exc


def _warm_up(fn_bytes: bytes) -> Any:
    """The function of a start-up message, unpickled and warmed up
    (:meth:`~evokeras.training.protocol.EvaluateFunction.warm_up`)."""
    fn = pickle.loads(fn_bytes)
    if isinstance(fn, EvaluateFunction):
        fn.warm_up()
    return fn


def _answer(fn: Any, item_bytes: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(pickle.loads(item_bytes))
    except Exception as exc:
        return "error", portable_exception(exc)


def worker_main(conn: Any, env: Mapping[str, str]) -> None:
    """A worker process: receive ``(task_id, token, fn_bytes | None, item_bytes)``,
    send back ``(task_id, "ok" | "error", payload)``; ``None`` ends it. A message
    without ``item_bytes`` only prepares the function (unpickles it and, for an
    :class:`~evokeras.training.protocol.EvaluateFunction`, calls its ``warm_up()``)
    and gets no answer: a spare worker starting up."""
    apply_env(env)
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
                fn, token = _warm_up(fn_bytes), task_token
            except Exception:
                token, fn = None, None  # the first task (it carries the function too) reports it
            continue
        try:
            if fn_bytes is not None and task_token != token:
                token, fn = task_token, pickle.loads(fn_bytes)
            if task_token != token:
                raise BackendError("worker process received a task without its function")
            out: tuple[str, Any] = _answer(fn, item_bytes)
        except Exception as exc:
            out = ("error", portable_exception(exc))
        try:
            conn.send((task_id, *out))
        except Exception as exc:  # an unpicklable result
            conn.send((task_id, "error", portable_exception(exc)))
        answered += 1
        if answered == 1:
            # What survives the function's first task (modules, data, its caches) stays while
            # the function does: freezing it keeps every later garbage collection (Keras's
            # clear_session runs one per evaluation) from walking those millions of objects.
            gc.collect()
            gc.freeze()
