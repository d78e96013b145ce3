"""A run's evaluations as an Optuna study, for optuna-dashboard and Optuna's own plots.

:func:`export_optuna` reads ``run.db`` (read-only) and writes one trial per evaluation
into an Optuna study: its objective values (the run's directions: a weight > 0 is
maximised), its generation as the parameter ``generation``, and as user attributes the
genome key, the genome (its JSON form), the status, the error, every metric and the
times. Failed evaluations become failed trials, screening evaluations pruned by
successive halving pruned trials. Then browse it::

    optuna-dashboard sqlite:///runs/mnist.optuna.db

Needs the extra ``optuna``: ``pip install 'evokeras[optuna]'``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from evokeras._meta import optional_dependency
from evokeras.engine.parallel import quiet_loggers
from evokeras.engine.store import RunStore

__all__ = ["export_optuna"]


def export_optuna(run_dir: str | Path, storage: Any = None, *, study_name: str | None = None) -> Any:
    """Copy the evaluations of the run in ``run_dir`` into a new Optuna study.

    Args:
        run_dir: a run directory (its ``run.db`` is only read).
        storage: an Optuna storage or its URL (``"sqlite:///run.optuna.db"``); ``None``:
            in memory.
        study_name: the study's name (default: the run directory's name); a study of
            that name must not exist in ``storage`` yet.

    Returns:
        The ``optuna.Study``: one trial per evaluation, in the order they finished.

    Optuna's own INFO lines stay off stderr unless logging asks for INFO (e.g.
    ``logging.basicConfig(level=logging.INFO)``).

    Example:
        >>> # study = export_optuna("runs/mnist-default-seed0", "sqlite:///mnist.optuna.db")
        >>> # study.best_trials   # the Pareto front, as Optuna sees it
    """
    with optional_dependency():
        import optuna

    loud_again = quiet_loggers("optuna")  # no "A new study created" line unless logging asks for INFO
    try:
        return _export(optuna, Path(run_dir), storage, study_name)
    finally:
        loud_again()


def _export(optuna: Any, run_dir: Path, storage: Any, study_name: str | None) -> Any:
    with RunStore(run_dir / "run.db", readonly=True) as store:
        objectives: dict[str, float] = store.get_meta("objectives") or {}
        max_val_error = store.get_meta("max_val_error")
        rows = list(store.evaluations())
    study = optuna.create_study(
        storage=storage, study_name=study_name or run_dir.resolve().name,
        directions=["maximize" if float(w) > 0 else "minimize" for w in objectives.values()],
    )
    with warnings.catch_warnings():  # experimental since Optuna 3.2, still there in 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))
    study.set_user_attr("evokeras_run_dir", str(run_dir.resolve()))
    study.set_user_attr("objectives", objectives)
    study.set_user_attr("max_val_error", max_val_error)
    generations = optuna.distributions.IntDistribution(0, max([gen for gen, _ in rows], default=0))
    states = optuna.trial.TrialState
    trials = []
    for gen, r in rows:
        state = states.COMPLETE if r.ok else states.PRUNED if r.status == "pruned" else states.FAIL
        trials.append(optuna.trial.create_trial(
            state=state,
            values=[float(v) for v in r.objectives] if r.ok else None,
            params={"generation": gen},
            distributions={"generation": generations},
            user_attrs={"key": r.key, "genome": json.dumps(r.genome, sort_keys=True), "status": r.status,
                        "error": r.error, "metrics": r.metrics, "times": r.times},
        ))
    study.add_trials(trials)
    return study
