"""The ``evokeras`` console script: ``run CONFIG.json`` (a search on any task a configuration
names), ``specialize MODEL.keras --task NAME`` (edit programs of a trained network,
:func:`evokeras.specialize`), ``study NAME`` (the studies shipped in the package, when
:mod:`evokeras.__main__` passes them), and ``resume``, ``plot``, ``report`` on a run directory.

``--factory package.module:function`` (repeatable) trusts an importable task factory: a
run directory whose task is one is resumed or plotted only when the user names the
factory here (nothing read from a run directory imports code).

``evokeras --help``, each command's ``--help`` and ``--version`` import neither Keras nor
a backend (the package imports Keras only to build, train or load a model).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evokeras._io import MAX_CONFIG_BYTES, UnreadableFile, read_json, write_json_atomic
from evokeras._meta import __version__, optional_dependency
from evokeras.api import specialize
from evokeras.app.comparison import compare_pruning, format_table
from evokeras.app.specialization import SPECIALIZE_ERRORS, specialize_failed
from evokeras.app.study import (
    add_parallel_arguments,
    add_study_arguments,
    fail,
    finish,
    guarded,
    parallel_overrides,
    run_config,
    study_command,
)
from evokeras.engine.config import ConfigError, overlay
from evokeras.engine.search import RunError, Search, lock_run_dir
from evokeras.engine.store import StoreError
from evokeras.nets.surgery import structure
from evokeras.results.html import save_html_report
from evokeras.results.plotting import save_plots
from evokeras.results.report import format_report, read_front
from evokeras.tasks import register_factory, registered_tasks

__all__ = ["main"]

#: The studies the ``study`` command runs: name -> ``main(argv)`` (the exit status).
Studies = Mapping[str, Callable[[Sequence[str] | None], int]]


def _add_factory(p: argparse.ArgumentParser) -> None:
    p.add_argument("--factory", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="trust (import) this task factory, the task of the run (repeatable)")


def main(argv: Sequence[str] | None = None, *, studies: Studies | None = None) -> int:
    """Run the console script on ``argv``; ``studies`` (name -> ``main(argv)``) adds the
    ``study`` command. Returns the exit status."""
    return guarded(lambda: _main(argv, studies))


def _parser(studies: Studies | None) -> argparse.ArgumentParser:
    """The console script's parser (nothing heavy is imported to build it: ``--help`` is quick);
    each command's flags are added by its own function below."""
    p = argparse.ArgumentParser(prog="evokeras", description="evokeras: evolve Keras networks with DEAP")
    p.add_argument("--version", action="version", version=f"evokeras {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_specialize(sub)
    if studies:
        _add_study(sub, studies)
    _add_run_dir_commands(sub)
    return p


def _add_run(sub: Any) -> None:
    """``evokeras run CONFIG.json``: the flags of a study, then the run's own."""
    rn = sub.add_parser("run", help="run a search on the task a JSON configuration names")
    rn.add_argument("config_file", type=Path, metavar="CONFIG.json")
    add_study_arguments(rn, {}, config=False)
    rn.add_argument("--time-budget", default=None, metavar="TIME",
                    help="the whole run's time, e.g. 15m, 90s, 2h: derives the budget from it and the data's size "
                         "(the default when CONFIG sets no strategy, evaluation or final section: 15min)")
    _add_factory(rn)


def _add_specialize(sub: Any) -> None:
    """``evokeras specialize MODEL.keras --task NAME``."""
    sp = sub.add_parser("specialize", help="specialize a trained Keras model to a classification task")
    sp.add_argument("model", type=Path, metavar="MODEL.keras", help="the trained network (a .keras file)")
    sp.add_argument("--task", required=True, help="the target task's registered name (objects, mnist, brown_genre, ...)")
    sp.add_argument("--config", type=Path, default=None, help="JSON file of config keys (strategy, evaluation, space, ...)")
    sp.add_argument("--out", type=Path, default=None, help="run directory (default: runs/specialize-<task>-seed<N>)")
    sp.add_argument("--seed", type=int, default=0, help="the run's seed (default: 0)")
    sp.add_argument("--compare-pruning", action="store_true",
                    help="afterwards, prune the base (new head) to 50%%, 25%% and 12.5%% of its MACs, fine-tune each as "
                         "long as a front member's final model and compare (minutes more; writes pruning.json)")
    add_parallel_arguments(sp)
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument("-v", "--verbose", action="store_true")


def _add_study(sub: Any, studies: Studies) -> None:
    """``evokeras study NAME [FLAGS]``: the flags go to the study (``--help`` too)."""
    names = sorted(studies)
    st = sub.add_parser("study", help=f"run a shipped study: {', '.join(studies)}",
                        description="Run a shipped study; its own flags: evokeras study NAME --help")
    st.add_argument("name", choices=names, metavar="NAME", help=f"one of {', '.join(names)}")
    st.add_argument("study_args", nargs=argparse.REMAINDER, metavar="...",
                    help="the study's flags (--budget, --out, ...)")


def _add_run_dir_commands(sub: Any) -> None:
    """``resume``, ``plot`` and ``report`` of a run directory."""
    r = sub.add_parser("resume", help="continue an interrupted run")
    r.add_argument("run_dir", type=Path)
    add_parallel_arguments(r)
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("-v", "--verbose", action="store_true")
    pl = sub.add_parser("plot", help="redraw a run's plots into DIR/plots")
    pl.add_argument("run_dir", type=Path)
    rep = sub.add_parser("report", help="print a run's Pareto front")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rep.add_argument("--html", action="store_true",
                     help="write DIR/report.html (one self-contained page: figures, front, members) and print its path")
    for command in (r, pl, rep):
        _add_factory(command)


def _main(argv: Sequence[str] | None, studies: Studies | None) -> int:
    args = _parser(studies).parse_args(argv)
    if args.command == "study":
        assert studies is not None
        with study_command(f"evokeras study {args.name}"):  # its usage line and errors say so
            return studies[args.name](args.study_args)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(message)s")
    for spec in getattr(args, "factory", []):
        try:
            register_factory(spec)
        except ValueError as exc:
            return fail(f"--factory: {exc}")
    if args.command == "run":
        return run_config(args)
    if args.command == "specialize":
        return _specialize(args)

    run_dir: Path = args.run_dir
    if not (run_dir / "run.db").is_file():
        return fail(f"{run_dir} is not a run directory (no run.db)")
    if args.command == "resume":
        try:
            search = Search.resume(run_dir, parallel=parallel_overrides(args), progress=not args.no_progress)
        except (RunError, ConfigError) as exc:
            return fail(str(exc))
        return finish(search, progress=not args.no_progress)
    try:
        if args.command == "plot":
            with contextlib.closing(lock_run_dir(run_dir)):  # not while a run writes there
                paths = save_plots(run_dir)
            for path in paths:
                print(path)
            return 0
        if args.html:
            with contextlib.closing(lock_run_dir(run_dir)):
                print(save_html_report(run_dir))
            return 0
        print(json.dumps(read_front(run_dir), indent=2) if args.json else format_report(run_dir))
        return 0
    except (RunError, StoreError, UnreadableFile, sqlite3.DatabaseError) as exc:
        return fail(f"cannot read run directory {run_dir}: {exc}")
    except OSError as exc:
        return fail(f"cannot write {exc.filename or run_dir}: {exc.strerror or exc}")


def _specialize(args: argparse.Namespace) -> int:
    """``evokeras specialize MODEL.keras --task NAME``: check the inputs (one line naming
    the path, flag or key; exit 2), run :func:`evokeras.specialize`, print the front."""
    path: Path = args.model
    if not path.is_file() or path.suffix != ".keras":
        return fail(f"{path}: no Keras model file (MODEL.keras)")
    if args.task not in registered_tasks() or args.task == "specialize":
        known = ", ".join(t for t in sorted(registered_tasks()) if t != "specialize")
        return fail(f"--task: unknown task {args.task!r} (known: {known})")
    config: dict = {}
    if args.config is not None:
        try:
            config = read_json(args.config, max_bytes=MAX_CONFIG_BYTES)
        except UnreadableFile as exc:
            return fail(f"config file {exc}")
        if not isinstance(config, dict):
            return fail(f"config file {args.config}: expected a JSON object, got {type(config).__name__}")
    with optional_dependency():  # without a Keras backend: MissingExtraError, one line (guarded)
        import keras
    try:
        structure(keras.saving.load_model(path, compile=False, safe_mode=True))
    except Exception as exc:  # noqa: BLE001 - any failure to read the file is the file's
        return fail(f"{path}: not a Keras model that can be specialized: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    out = args.out or Path("runs") / f"specialize-{args.task}-seed{args.seed}"
    if out.exists() and not out.is_dir():
        return fail(f"--out {out} is not a directory")
    try:
        specialize(path, args.task, out, config=overlay(config, {"parallel": parallel_overrides(args)}), seed=args.seed,
                   progress=not args.no_progress)
    except SPECIALIZE_ERRORS as exc:
        return specialize_failed(exc)
    print(format_report(out))
    if args.compare_pruning:
        print("structured pruning (L1, uniform) + fine-tuning of the base, against the front:", file=sys.stderr)
        try:
            result = compare_pruning(out, log=lambda line: print(line, file=sys.stderr))
        except ValueError as exc:  # no finished front member to compare
            print(f"error: {exc}", file=sys.stderr)
            return 1
        write_json_atomic(out / "pruning.json", result)
        print(format_table(result))
    print(f"run directory: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
