"""The library's entry points that run a whole search into a run directory and return
its result without printing: :func:`specialize` (edit programs of a trained network).

:func:`specialize` runs the same engine as architecture search -- NSGA-II, run store,
resume, final models, plots, ``evokeras report|plot|resume`` -- on the task
``"specialize"`` (:class:`~evokeras.tasks.specialize.Specialization`) whose individuals
are :class:`~evokeras.genomes.edits.EditProgram` objects. The base model is saved into the run
directory (``base.keras``) so that the run is self-contained and resumable.

Example:
    >>> # import evokeras, keras
    >>> # base = keras.saving.load_model("position_net.keras")
    >>> # front = evokeras.specialize(base, "objects", "runs/spec", config={"generations": 4})
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evokeras._io import atomic_path
from evokeras.build import decode as _build
from evokeras.engine.config import SearchConfig
from evokeras.engine.runner import complete
from evokeras.engine.search import Search
from evokeras.results.plotting import save_plots
from evokeras.results.report import read_front
from evokeras.tasks import Task, make_task

__all__ = ["SpecializationError", "decode", "specialization_config", "specialize"]

log = logging.getLogger(__name__)


class SpecializationError(RuntimeError):
    """A specialization search ended without a finished front (no candidate succeeded,
    or its evaluation backend was lost: the run directory can be resumed)."""


def specialization_config(base_path: str | Path, task: str, config: Mapping[str, Any] | None = None,
                          *, seed: int = 0, target_options: Mapping[str, Any] | None = None) -> Any:
    """The :class:`~evokeras.engine.config.SearchConfig` of a specialization of the model file
    ``base_path`` to ``task`` (``config``: further config keys)."""

    options = {"base": str(Path(base_path).resolve()), "target": task}
    if target_options:
        options["target_options"] = dict(target_options)
    data = {"seed": seed, **dict(config or {})}
    data["task"] = "specialize"
    data["task_options"] = {**options, **dict(data.get("task_options", {}))}
    return SearchConfig.from_dict(data)


def specialize(base_model: Any, task: str, out: str | Path, *, config: Mapping[str, Any] | None = None,
               seed: int = 0, target_options: Mapping[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Evolve edit programs that specialize ``base_model`` (a trained Keras model or a
    ``.keras`` path) to the registered classification ``task``; continue the run if
    ``out`` already holds one.

    Args:
        base_model: the trained network to edit.
        task: the target task's name (e.g. ``"objects"``, ``"mnist"``, ``"brown_genre"``).
        out: the run directory (``base.keras`` is saved there first).
        config: search configuration keys (population, generations, evaluation, space:
            :class:`~evokeras.genomes.edits.EditSpace` options, objectives, ...).
        seed: the run's seed.
        target_options: keyword arguments of the target task.
        progress: show a progress bar.

    Returns:
        The hall of fame (``hall_of_fame.json``): each front member's program, search
        figures, test figures and saved model path.

    Raises:
        evokeras.engine.config.ConfigError: a bad configuration key (nothing is written).
        evokeras.engine.search.RunError: ``out`` cannot hold the run.
        SpecializationError: the search ended without a front.
    """

    out = Path(out)
    if (out / "run.db").is_file():
        search = Search.resume(out, progress=progress)
    else:
        out.mkdir(parents=True, exist_ok=True)
        base_path = out / "base.keras"
        if isinstance(base_model, str | Path):
            if Path(base_model).resolve() != base_path.resolve():
                with atomic_path(base_path) as tmp:
                    shutil.copyfile(base_model, tmp)
        else:
            with atomic_path(base_path) as tmp:
                base_model.save(tmp)
        try:
            cfg = specialization_config(base_path, task, config, seed=seed, target_options=target_options)
            search = Search(cfg, out, progress=progress)
        except BaseException:
            if not (out / "run.db").exists() and not isinstance(base_model, str | Path):
                base_path.unlink(missing_ok=True)
            raise
    outcome = complete(search, progress=progress, draw=save_plots)
    if outcome.status in ("backend_lost", "no_front"):
        raise SpecializationError(f"specialization in {out} ended without a front: {outcome.error} (resume it "
                                  f"with `evokeras resume {out}` if its evaluation backend was lost)")
    if outcome.status in ("io_error", "incomplete"):
        raise SpecializationError(f"specialization in {out} is not finished: {outcome.error} (resume it "
                                  f"with `evokeras resume {out}`)")
    return read_front(out)


def decode(genome: Any, task: str | Task, *, compile: bool = True, name: str | None = None) -> Any:
    """Build the Keras model ``genome`` describes for ``task`` (a registered name or a
    task object): :func:`evokeras.build.decode.decode` after :func:`evokeras.make_task`.

    Example:
        >>> from evokeras import Genome, LayerGene, decode
        >>> decode(Genome((LayerGene("conv", units=8), LayerGene("pool"))), "mnist").output_shape
        (None, 10)
    """
    return _build.decode(genome, make_task(task), compile=compile, name=name)
