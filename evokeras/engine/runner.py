"""Complete a search: run it (or continue it), finish its front's models, mark it finished.

:func:`complete` is what every entry point (a study, ``evokeras resume``,
:func:`evokeras.specialize`) does with a :class:`~evokeras.engine.search.Search`; it
returns what happened as a :class:`RunOutcome` and prints nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evokeras.engine.final import finalize
from evokeras.engine.parallel import BackendError
from evokeras.engine.search import AllFailedError, Search, SearchResult

__all__ = ["RunOutcome", "complete"]


@dataclass(frozen=True)
class RunOutcome:
    """How :func:`complete` ended.

    Attributes:
        status: ``"finished"`` (searched and finalized now), ``"already_finished"``,
            ``"backend_lost"`` (the evaluation backend went away: resume later) or
            ``"no_front"`` (no candidate succeeded) or ``"all_failed"`` (every candidate of
            the first generation failed with the same error class: stopped early, resumable).
        out_dir: the run directory.
        result: the search's result (``None`` when already finished or the backend was lost).
        error: the reason, for the last two statuses.
    """

    status: str
    out_dir: Path
    result: SearchResult | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """The study exit status of this outcome: 0, 3 (backend lost) or 1 (no front, all failed)."""
        return {"finished": 0, "already_finished": 0, "backend_lost": 3, "no_front": 1, "all_failed": 1}[self.status]


def _no_front_reason(search: Search) -> str:
    if search.infeasible_errors:
        return (f"no candidate reached max_val_error={search.max_val_error:g} (the best validation error was "
                f"{min(search.infeasible_errors):.4g}): raise max_val_error or the evaluation budget")
    return "no candidate succeeded"


def complete(search: Search, *, progress: bool = False) -> RunOutcome:
    """Run (or continue) ``search``, then its final models; close it."""
    with search:
        if search.store.get_meta("finished") and (search.out_dir / "hall_of_fame.json").is_file():
            return RunOutcome("already_finished", search.out_dir)
        try:
            result = search.run()
        except BackendError as exc:
            return RunOutcome("backend_lost", search.out_dir, error=str(exc))
        except AllFailedError as exc:
            return RunOutcome("all_failed", search.out_dir, error=str(exc))
        if not result.front:
            return RunOutcome("no_front", search.out_dir, result, _no_front_reason(search))
        finalize(search, result.front, progress=progress)
        search.store.set_meta("finished", True)
    return RunOutcome("finished", search.out_dir, result)
