"""Complete a search: run it (or continue it), finish its front's models, mark it finished.

:func:`complete` is what every entry point (a study, ``evokeras resume``,
:func:`evokeras.specialize`) does with a :class:`~evokeras.engine.search.Search`; it
returns what happened as a :class:`RunOutcome` and prints nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evokeras.engine.final import finalize, missing_members
from evokeras.engine.parallel import BackendError
from evokeras.engine.search import AllFailedError, Search, SearchResult
from evokeras.training.records import is_storage_error

__all__ = ["EXIT_CODES", "RunOutcome", "complete"]

#: Exit status of each :class:`RunOutcome` status (study scripts and ``evokeras``).
EXIT_CODES = {"finished": 0, "already_finished": 0, "no_front": 1, "all_failed": 1, "backend_lost": 3,
              "io_error": 4, "incomplete": 5}


@dataclass(frozen=True)
class RunOutcome:
    """How :func:`complete` ended.

    Attributes:
        status: ``"finished"`` (searched and finalized now), ``"already_finished"``,
            ``"backend_lost"`` (the evaluation backend went away: resume later),
            ``"no_front"`` (no candidate succeeded), ``"all_failed"`` (every candidate of
            the first generation failed with the same error class: stopped early,
            resumable), ``"io_error"`` (the disk refused a write: full, read-only,
            permission lost; resume once it is fixed) or ``"incomplete"`` (a front
            member's final model failed: resume retries it).
        out_dir: the run directory.
        result: the search's result (``None`` when already finished, the backend was
            lost or a write failed).
        error: the reason, for the last four statuses.
    """

    status: str
    out_dir: Path
    result: SearchResult | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """The study exit status of this outcome (:data:`EXIT_CODES`)."""
        return EXIT_CODES[self.status]


def _no_front_reason(search: Search) -> str:
    if search.standing.infeasible_errors:
        return (f"no candidate reached max_val_error={search.max_val_error:g} (the best validation error was "
                f"{min(search.standing.infeasible_errors):.4g}): raise max_val_error or the evaluation budget")
    return "no candidate succeeded"


def complete(search: Search, *, progress: bool = False,
             draw: Callable[[Path], Any] | None = None) -> RunOutcome:
    """Run (or continue) ``search``, then its final models and ``draw(out_dir)`` (the
    plots); close it. The run is marked finished (meta ``finished``) only when every
    front member to finish has its final model and ``draw`` returned; otherwise the next
    call completes what is missing."""
    with search:
        if search.store.get_meta("finished") and (search.out_dir / "hall_of_fame.json").is_file():
            return RunOutcome("already_finished", search.out_dir)
        try:
            result = search._run()
            if not result.front:
                return RunOutcome("no_front", search.out_dir, result, _no_front_reason(search))
            entries = finalize(search, result.front, progress=progress)
            missing = missing_members(search, entries)
            if missing:
                first = next(e for e in entries if e["key"] == missing[0])
                return RunOutcome("incomplete", search.out_dir, result,
                                  f"{len(missing)} final model(s) not done (first {missing[0]}: "
                                  f"{first.get('error', 'no model file')})")
            if draw is not None:
                draw(search.out_dir)
            for callback in search.callbacks:  # before "finished": a failing hook runs again on the next call
                callback.on_finish(search.out_dir, entries)
            search.store.set_meta("finished", True)
        except BackendError as exc:
            return RunOutcome("backend_lost", search.out_dir, error=str(exc))
        except AllFailedError as exc:
            return RunOutcome("all_failed", search.out_dir, error=str(exc))
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, OSError) and not is_storage_error(exc):
                raise
            return RunOutcome("io_error", search.out_dir, error=_io_reason(search, exc))
    return RunOutcome("finished", search.out_dir, result)


def _io_reason(search: Search, exc: BaseException) -> str:
    """One line naming the file that could not be written and why."""
    if isinstance(exc, OSError):
        return f"cannot write {exc.filename or search.out_dir}: {exc.strerror or exc}"
    return f"cannot write the run store {search.store.path}: {exc}"
