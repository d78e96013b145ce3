"""The ``evokeras`` console script: ``resume``, ``plot`` and ``report`` on a run directory."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from evokeras._io import UnreadableFile
from evokeras.app.study import add_parallel_arguments, fail, finish, guarded, parallel_overrides
from evokeras.engine.config import ConfigError
from evokeras.engine.search import RunError, Search, lock_run_dir
from evokeras.engine.store import StoreError
from evokeras.results.plotting import save_plots
from evokeras.results.report import format_report, read_front

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse ``argv`` and run the command; returns the exit status."""
    return guarded(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    p = argparse.ArgumentParser(prog="evokeras", description="evokeras: evolve Keras networks with DEAP")
    sub = p.add_subparsers(dest="command", required=True)
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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(message)s")

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
        print(json.dumps(read_front(run_dir), indent=2) if args.json else format_report(run_dir))
        return 0
    except (RunError, StoreError, UnreadableFile, sqlite3.DatabaseError) as exc:
        return fail(f"cannot read run directory {run_dir}: {exc}")
    except OSError as exc:
        return fail(f"cannot write {exc.filename or run_dir}: {exc.strerror or exc}")

if __name__ == "__main__":
    sys.exit(main())
