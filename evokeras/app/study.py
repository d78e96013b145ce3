"""Running a study from the command line: budgets, run directory, final models, plots.

A study script defines its budget presets and calls :func:`run_study`::

    BUDGETS = {"smoke": {...}, "default": {...}, "full": {...}}
    if __name__ == "__main__":
        raise SystemExit(run_study("mnist", BUDGETS))

Exit status: 0 on success, 2 on bad input (unknown budget or config key, wrong type,
missing data set, missing extra such as a Keras backend, unreadable or occupied run
directory) with one message on stderr;
nothing is written in that case. 3 when the evaluation backend is lost mid-run (the
Dask scheduler went away), 4 when the disk refuses a write (full, read-only, permission
lost), 5 when a front member's final model failed, 130 / 143 on SIGINT / SIGTERM: every
evaluation finished so far is in the run store, and ``evokeras resume DIR`` continues
the run (the message says so).

Parallel evaluation: ``--workers N`` (process workers), ``--backend serial|process|dask``,
``--scheduler tcp://HOST:PORT`` (an existing Dask cluster); they override the config keys
``parallel.workers``, ``parallel.backend`` and ``parallel.scheduler``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from evokeras._io import MAX_CONFIG_BYTES, UnreadableFile, read_json
from evokeras._meta import MissingExtraError
from evokeras.data import DatasetNotFoundError
from evokeras.engine.budgeting import fit_to_data, wants_time_budget, with_time_budget
from evokeras.engine.config import ConfigError, SearchConfig, overlay
from evokeras.engine.parallel import BACKENDS, UnguardedMainError
from evokeras.engine.runner import complete
from evokeras.engine.search import Interrupted, RunError, Search
from evokeras.results.plotting import save_plots
from evokeras.results.report import format_report
from evokeras.tasks import is_factory_name, register_factory

__all__ = ["add_study_arguments", "finish", "guarded", "run_config", "run_study", "start_study", "study_command",
           "study_prog"]

#: The program name of the study being run by ``evokeras study NAME`` (:func:`study_command`).
_command: ContextVar[str | None] = ContextVar("evokeras_study_command", default=None)


@contextmanager
def study_command(prog: str) -> Iterator[None]:
    """Within it, a study's command line calls itself ``prog`` (``evokeras study NAME``)."""
    token = _command.set(prog)
    try:
        yield
    finally:
        _command.reset(token)


def study_prog(name: str) -> str:
    """The program name in the usage and errors of study ``name``'s command line:
    ``studies/NAME.py``, or what the console script set (:func:`study_command`)."""
    return _command.get() or f"studies/{name}.py"


def _parser(name: str, budgets: Mapping[str, Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=study_prog(name), description=f"evokeras study: {name}")
    add_study_arguments(p, budgets, config=True)
    return p


def add_study_arguments(p: argparse.ArgumentParser, budgets: Mapping[str, Any], *, config: bool) -> None:
    """The flags of a study (``evokeras run`` too): ``--budget``, ``--out``, ``--seed``,
    ``--config`` (with ``config``), the parallel flags, ``--no-progress``, ``-v``."""
    default = _default_budget(budgets)
    p.add_argument("--budget", default=None, help=f"one of {', '.join(budgets) or 'the budgets'} (default: {default})")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<study>-<budget>-seed<N>)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default: 0)")
    if config:
        p.add_argument("--config", type=Path, default=None, help="JSON file of config keys overriding the budget")
    add_parallel_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log each generation")


def _default_budget(budgets: Mapping[str, Any]) -> str:
    return "smoke" if "smoke" in budgets or not budgets else next(iter(budgets))


def add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--backend``, ``--scheduler`` (shared by studies and ``evokeras resume``)."""
    p.add_argument("--workers", type=int, default=None, help="evaluations at once (config key 'parallel.workers')")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="map backend (default: process when --workers > 1, else serial)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of a running Dask scheduler, tcp://HOST:PORT (implies --backend dask)")


def parallel_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The keys of the ``parallel`` section that the flags set (``workers``, ``backend``,
    ``scheduler``; empty when none was given)."""
    flags = {k: getattr(args, k) for k in ("workers", "backend", "scheduler") if getattr(args, k) is not None}
    if args.scheduler is not None and args.backend is None:
        flags["backend"] = "dask"
    if args.backend not in (None, "dask") and args.scheduler is None:
        flags["scheduler"] = None  # --backend process|serial overrides a configured scheduler
    return flags


def fail(message: str) -> int:
    """Print one error line and return exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_study(name: str, budgets: Mapping[str, Mapping[str, Any]], argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the search, finalize and plot. Returns the exit status."""
    return guarded(lambda: start_study(name, budgets, _parser(name, budgets).parse_args(argv)))


def start_study(name: str, budgets: Mapping[str, Mapping[str, Any]], args: argparse.Namespace) -> int:
    """Run the study ``name`` with parsed flags (:func:`add_study_arguments`): the budget's
    configuration, run directory, search, final models, plots, report; the exit status."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    args.budget = args.budget or _default_budget(budgets)
    if args.budget not in budgets:
        return fail(f"unknown budget {args.budget!r} (known: {', '.join(budgets)})")
    config_file = getattr(args, "config", None)
    try:
        overrides = read_json(config_file, max_bytes=MAX_CONFIG_BYTES) if config_file else {}
    except UnreadableFile as exc:
        return fail(f"config file {exc}")
    budget = {**budgets[args.budget], "study": name, "budget_name": args.budget, "seed": args.seed}

    def configure(budget: Mapping[str, Any]) -> SearchConfig:  # the budget, then the --config file, then the flags
        config = SearchConfig.from_dict(overrides, base=SearchConfig.from_dict(budget))
        flags = parallel_overrides(args)
        return SearchConfig.from_dict({"parallel": flags}, base=config) if flags else config

    try:
        config = configure(budget)
    except ConfigError as exc:
        return fail(str(exc))
    out = args.out or Path("runs") / f"{name}-{args.budget}-seed{args.seed}"
    try:
        task = config.make_task()
        own_objectives = any("objectives" in d for d in (budgets[args.budget], overrides))
        if not own_objectives:
            config = config.with_task_objectives(task)
        time_budget = getattr(args, "time_budget", None)
        if time_budget is not None or all(wants_time_budget(d) for d in (budgets[args.budget], overrides)):
            config = configure(with_time_budget(budget, time_budget, config.build_task(task)))
            config = config if own_objectives else config.with_task_objectives(task)
        task = config.build_task(task)
        config = fit_to_data(config, task)
        search = Search(config, out, progress=not args.no_progress, task=task)
    except (ConfigError, DatasetNotFoundError, RunError) as exc:
        return fail(str(exc))
    return finish(search, progress=not args.no_progress)


def finish(search: Search, *, progress: bool = True) -> int:
    """Complete ``search`` (:func:`evokeras.engine.runner.complete`, drawing its plots)
    and print its report; the exit status (:data:`evokeras.engine.runner.EXIT_CODES`).

    Under :func:`guarded`, SIGINT and SIGTERM stop the run: the search and its backend
    are closed, the resume command is printed, and the status is 130 / 143."""
    out = search.out_dir
    resume = f"continue with: evokeras resume {out}"
    if _signals is not None:
        _signals.search = search
        if _signals.signum is not None:  # a signal whose exception was swallowed while the search was made
            search.request_stop(_signals.signum)
    try:
        search.check_stop()  # a signal that came while the search was being made
        outcome = complete(search, progress=progress, draw=lambda d: save_plots(d, search.task))
    except Interrupted as exc:
        signum = exc.signum or signal.SIGINT
        print(f"stopped by {signal.Signals(signum).name}: everything finished so far is saved in {out}; "
              f"{resume}", file=sys.stderr)
        return 128 + signum
    if outcome.status == "backend_lost":
        print(f"error: {outcome.error}\nthe evaluations finished so far are saved in {out}; {resume}",
              file=sys.stderr)
    elif outcome.status == "all_failed":
        print(f"error: {outcome.error}\nthe run stopped; fix the cause and {resume}", file=sys.stderr)
    elif outcome.status == "io_error":
        print(f"error: {outcome.error}; free space or fix permissions, then {resume}", file=sys.stderr)
    elif outcome.status == "incomplete":
        print(f"error: {outcome.error}; the run is not finished: {resume}", file=sys.stderr)
    elif outcome.status == "no_front":
        print(f"error: {outcome.error} in {out} (see `evokeras report {out}` "
              "and the error column of run.db's evaluations)", file=sys.stderr)
    elif outcome.status == "already_finished":
        print(format_report(out))
    else:
        print(format_report(out))
        result = outcome.result
        assert result is not None
        print(f"\nrun directory: {out}  ({result.evaluations} evaluations, {result.wall_seconds:.0f} s search)")
    return outcome.exit_code


def run_config(args: argparse.Namespace) -> int:
    """``evokeras run CONFIG.json``: a search on whatever task the configuration file
    names (``args.config_file``), with the study flags.

    The file holds config keys (:class:`~evokeras.engine.config.SearchConfig`) and
    optionally ``"budgets": {name: {keys...}}`` overlaid on them (``--budget`` picks one:
    default ``smoke`` or the first). Its task may be an importable factory
    ``"package.module:function"``: the user names it by running the file, so it is imported.
    """
    path: Path = args.config_file
    try:
        data = read_json(path, max_bytes=MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        return fail(f"config file {exc}")
    if not isinstance(data, dict):
        return fail(f"config file {path}: expected a JSON object, got {type(data).__name__}")
    presets = data.pop("budgets", None)
    if presets is None:
        if args.budget is not None:
            return fail(f"config file {path} has no 'budgets' to choose --budget {args.budget!r} from")
        budgets: dict[str, Any] = {"custom": data}
    elif not isinstance(presets, dict) or not presets or not all(isinstance(v, dict) for v in presets.values()):
        return fail(f"config file {path}: key 'budgets' must map budget names to objects of config keys")
    else:
        budgets = {name: overlay(data, preset) for name, preset in presets.items()}
    task = budgets.get(args.budget or _default_budget(budgets), {}).get("task")
    if is_factory_name(task):
        try:
            register_factory(task)
        except ValueError as exc:
            return fail(f"config key 'task': {exc}")
    return start_study(path.stem, budgets, args)


class _Signals:
    """SIGINT and SIGTERM while an entry point runs (:func:`guarded`): the first asks the
    search being completed to stop (:meth:`Search.request_stop`, so that the stop holds
    even where the exception below is swallowed, e.g. raised inside a finalizer or a
    weakref callback: :meth:`unraisable` keeps that quiet) and raises :class:`Interrupted`
    at once, abandoning the evaluation in flight (nothing is committed after it); a second
    one ends the process at once (``os._exit``: the run store is consistent at every moment)."""

    def __init__(self) -> None:
        self.search: Search | None = None
        self.signum: int | None = None
        self.previous_unraisable = sys.unraisablehook

    def __call__(self, signum: int, frame: Any) -> None:
        where = f"; continue with: evokeras resume {self.search.out_dir}" if self.search is not None else ""
        if self.signum is not None:
            os.write(2, f"\nstopped at once by a second {signal.Signals(signum).name}{where}\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        if self.search is not None:
            self.search.request_stop(signum)
        raise Interrupted(signum)

    def unraisable(self, unraisable: Any) -> None:
        """``sys.unraisablehook``: an :class:`Interrupted` raised where Python cannot
        propagate it (a finalizer, a weakref callback) is not reported: the stop it asked
        for holds through :meth:`Search.request_stop`. Anything else goes to the previous hook."""
        if not isinstance(unraisable.exc_value, Interrupted):
            self.previous_unraisable(unraisable)

_signals: _Signals | None = None  # the handler of the entry point running in this process


def _reported(entry: Callable[[], int]) -> int:
    """``entry()``; a missing extra (core install: no Keras backend) or a script whose top
    level starts a search in its worker processes is one line and exit status 2 (no run
    directory was made, or it is kept for the fixed script)."""
    try:
        return entry()
    except (MissingExtraError, UnguardedMainError) as exc:
        return fail(str(exc))


def guarded(entry: Callable[[], int]) -> int:
    """``entry()`` (a command-line entry point returning its exit status) with SIGINT and
    SIGTERM handled by :class:`_Signals`; a stop before any search exists prints one line
    and returns 130 / 143 too. Outside the main thread (no signal handlers there) it just
    calls ``entry``.

    On the way out the previous handlers come back, except that after a stop by signal
    Python's own default handlers become the system's (``SIG_DFL``): a further signal while
    the process exits ends it at once, by that signal, instead of raising a
    ``KeyboardInterrupt`` traceback into the interpreter's shutdown."""
    global _signals
    if threading.current_thread() is not threading.main_thread():
        return _reported(entry)
    handler = _signals = _Signals()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    sys.unraisablehook = handler.unraisable
    try:
        return _reported(entry)
    except KeyboardInterrupt as exc:  # Interrupted included
        signum = getattr(exc, "signum", None) or signal.SIGINT
        print(f"stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, old in previous.items():
            python_default = old in (signal.default_int_handler, signal.SIG_DFL)
            signal.signal(sig, signal.SIG_DFL if handler.signum is not None and python_default else old)
        sys.unraisablehook = handler.previous_unraisable
        _signals = None
