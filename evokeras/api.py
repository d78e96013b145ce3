"""The library's entry points that run a whole search into a run directory and return
its result without printing: :func:`search` (architectures for a task) and
:func:`specialize` (edit programs of a trained network).

:func:`search` takes a registered task name (``"mnist"``), an importable factory
(``"pkg.mod:make"``) or a task object -- e.g. one built from your own data by
:func:`from_arrays`, :func:`from_text` or :func:`from_gym` -- and returns a
:class:`SearchRun`: the finished front, its models and the run directory. The run
directory records how to rebuild the task (data in memory is written into it), so
``evokeras resume|plot|report DIR`` work from a new process.

:func:`specialize` runs the same engine as architecture search -- NSGA-II, run store,
resume, final models, plots, ``evokeras report|plot|resume`` -- on the task
``"specialize"`` (:class:`~evokeras.tasks.specialize.Specialization`) whose individuals
are :class:`~evokeras.genomes.edits.EditProgram` objects. The base model is saved into the run
directory (``base.keras``) so that the run is self-contained and resumable.

Example:
    >>> # import evokeras, numpy as np
    >>> # run = evokeras.search(evokeras.from_arrays(x, y), "runs/mine",
    >>> #                          config={"strategy": {"generations": 4}})
    >>> # run.front[0].get("test_error"), run.models[0]
    >>> # import evokeras, keras
    >>> # base = keras.saving.load_model("position_net.keras")
    >>> # front = evokeras.specialize(base, "objects", "runs/spec", config={"strategy": {"generations": 4}})
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evokeras._io import atomic_path
from evokeras.engine.budgeting import fit_to_data, wants_time_budget, with_time_budget
from evokeras.engine.callbacks import Callback
from evokeras.engine.config import SearchConfig, overlay
from evokeras.engine.runner import complete
from evokeras.engine.search import Search
from evokeras.nets import decode as _build
from evokeras.results.plotting import save_plots
from evokeras.results.report import read_front
from evokeras.tasks import (
    ArrayClassification,
    ArrayRegression,
    GymControl,
    NetworkTask,
    Task,
    TextLanguageModel,
    is_factory_name,
    make_task,
    register_factory,
)

__all__ = [
    "SearchError",
    "SearchRun",
    "SpecializationError",
    "decode",
    "from_arrays",
    "from_gym",
    "from_text",
    "search",
    "specialization_config",
    "specialize",
]

log = logging.getLogger(__name__)


class SearchError(RuntimeError):
    """A search ended without a finished front: no candidate succeeded, every candidate of
    the first generation failed the same way, or the evaluation backend was lost (the run
    directory can be resumed once the cause is fixed)."""


class SpecializationError(SearchError):
    """A specialization search ended without a finished front (no candidate succeeded,
    or its evaluation backend was lost: the run directory can be resumed)."""


@dataclass(frozen=True)
class SearchRun:
    """What :func:`search` returns: the run directory and its finished front.

    Attributes:
        out_dir: the run directory.
        hall_of_fame: ``hall_of_fame.json`` (``objectives``, ``members``).
    """

    out_dir: Path
    hall_of_fame: dict[str, Any]

    @property
    def front(self) -> list[dict[str, Any]]:
        """The front's members, best first: ``key``, ``genome``, ``objectives``, search
        ``metrics``, ``status``, the test figures (``test_*``) and ``model``."""
        return list(self.hall_of_fame.get("members", []))

    @property
    def models(self) -> list[Path]:
        """The saved ``.keras`` models of the finished members, best first."""
        return [self.out_dir / m["model"] for m in self.front if m.get("status") == "ok" and "model" in m]

    def load_model(self, index: int = 0) -> Any:
        """The ``index``-th finished model (:attr:`models`), loaded with Keras."""
        import keras

        return keras.saving.load_model(self.models[index])


def from_arrays(x: Any, y: Any = None, *, validation_data: Any = None, test_data: Any = None,
                regression: bool = False, **options: Any) -> ArrayClassification | ArrayRegression:
    """A classification task on your arrays (:class:`~evokeras.tasks.arrays.ArrayClassification`):
    inputs ``x`` of any shape (images ``(N, H, W[, C])``, vectors ``(N, D)``), integer labels
    ``y``; the user's validation/test data or seeded parts of ``x`` (``val_fraction``,
    ``test_fraction``, ``split_seed``). ``options``: ``family``, ``n_classes``, ``name``, ``space``.
    As in Keras's ``fit``, ``x`` (then without ``y``), ``validation_data`` and ``test_data``
    may be datasets of ``(x, y)`` batches: a ``keras.utils.PyDataset``, a batched
    ``tf.data.Dataset``, any iterable of batches; they are read once into memory.
    With ``regression``, numeric targets ``y`` (:class:`~evokeras.tasks.arrays.ArrayRegression`:
    mean squared error, objectives ``val_loss`` and ``exec_time`` by default)."""
    cls = ArrayRegression if regression else ArrayClassification
    return cls.from_arrays(x, y, validation_data=validation_data, test_data=test_data, **options)


def from_text(text: str | Path | None = None, *, path: str | Path | None = None, **options: Any) -> TextLanguageModel:
    """A language model of your UTF-8 text (:class:`~evokeras.tasks.language.TextLanguageModel`):
    ``text`` a string (a :class:`~pathlib.Path` there is read as a file) or ``path=`` a file;
    ``options``: ``level`` (``"char"``/``"word"``), ``vocab_size``, ``lower``, ``val_fraction``,
    ``test_fraction``, ``seq_len``, ``embedding``, ``name``, ``space``."""
    if isinstance(text, Path):
        text, path = None, text
    return TextLanguageModel(text, path=path, **options)


def from_gym(env_id: str, **options: Any) -> GymControl:
    """A control task on the gymnasium environment ``env_id`` (:class:`~evokeras.tasks.control.GymControl`):
    ``options``: ``threshold`` (default: the environment's reward threshold), ``space``,
    ``sigma``, ``arch_rate``, ``normalize`` (default ``True``: the policy reads standardised
    observations)."""
    return GymControl(env_id, **options)


#: Task classes whose run directories record how to rebuild them (:meth:`Task.recipe`).
_RECORDED = (ArrayClassification, ArrayRegression, GymControl, TextLanguageModel)


def _on_terminal() -> bool:
    """Whether stderr is a terminal (a progress bar's default; ``False`` without stderr)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _complete(search_run: Search, out: Path, progress: bool, error: type[SearchError]) -> dict[str, Any]:
    """Complete a search (:func:`~evokeras.engine.runner.complete`), draw its plots, and
    return its hall of fame; ``error`` when it ends without a front."""
    outcome = complete(search_run, progress=progress, draw=lambda d: save_plots(d, search_run.task))
    if outcome.status in ("backend_lost", "no_front", "all_failed"):
        hint = ("" if outcome.status == "no_front" else
                f" (fix the cause, then continue it with `evokeras resume {out}`)")
        raise error(f"the search in {out} ended without a front: {outcome.error}{hint}")
    if outcome.status in ("io_error", "incomplete"):
        raise error(f"the search in {out} is not finished: {outcome.error} (continue it with `evokeras resume {out}`)")
    return read_front(out)


def _new_search(task: str | Task, out: Path, data: dict[str, Any], task_options: Mapping[str, Any] | None,
                time_budget: str | float | None | bool, *, progress: bool, callbacks: Sequence[Callback]) -> Search:
    """A new :class:`Search` of ``task`` into ``out`` with the config keys ``data`` over
    the keys ``time_budget`` derives (``None``: the default time budget; ``False``: none)."""
    if isinstance(task, Task):
        data["task"] = task.name
    else:
        data["task"] = task
        data["task_options"] = {**dict(data.get("task_options", {})), **dict(task_options or {})}
    made = task if isinstance(task, Task) else SearchConfig.from_dict(data).make_task()

    def configured(data: Mapping[str, Any]) -> SearchConfig:  # without objectives, the task's
        cfg = SearchConfig.from_dict(data)
        return cfg if "objectives" in data else cfg.with_task_objectives(made)

    cfg = configured(data)
    if time_budget is not False:
        cfg = configured(with_time_budget(data, time_budget, cfg.build_task(made)))
    built = cfg.build_task(made)
    return Search(fit_to_data(cfg, built), out, progress=progress, task=built, callbacks=callbacks)


def search(task: str | Task, out: str | Path, *, time_budget: str | float | None = None,
           config: Mapping[str, Any] | None = None, seed: int = 0, workers: int | None = None,
           task_options: Mapping[str, Any] | None = None, callbacks: Sequence[Callback] = (),
           progress: bool | None = None) -> SearchRun:
    """Evolve networks for ``task`` into the run directory ``out`` and finish the front's
    models; continue the run if ``out`` already holds one. The twin of :func:`specialize`.

    The time is the one knob: ``time_budget="15min"`` derives the population, each
    evaluation's training, the wall clock and the final models' training from the time
    and the size of the data (:func:`evokeras.engine.budgeting.time_budget_config`); a
    search whose ``config`` sets no ``strategy``, ``evaluation`` or ``final`` section
    gets :data:`~evokeras.engine.budgeting.DEFAULT_TIME_BUDGET` (15 minutes). Keys given
    in ``config`` win over the derived ones, and every sample count is capped at what
    the data holds (one logged line each).

    Args:
        task: a registered task name (``"mnist"``, ``"cartpole"``, ``"gym"``, ...), an
            importable factory ``"package.module:function"`` (imported because you name it
            here), or a task object (:func:`from_arrays`, :func:`from_text`,
            :func:`from_gym`, your own :class:`~evokeras.tasks.Task`).
        out: the run directory.
        time_budget: the whole run's time: seconds, or ``"90s"``, ``"15min"``, ``"2h"``.
        config: search configuration keys (:class:`~evokeras.engine.config.SearchConfig`:
            strategy, evaluation, final, objectives, space, ...); without
            ``objectives``, the task's default objectives.
        seed: the run's seed.
        workers: evaluations at once (process workers; config key ``parallel.workers``).
        task_options: keyword arguments of a named task's factory (config key ``task_options``).
        callbacks: hooks per evaluation, per generation and when the run is finished
            (:class:`~evokeras.engine.callbacks.Callback`, e.g.
            :class:`~evokeras.engine.callbacks.TensorBoard`, :class:`~evokeras.MLflow`).
        progress: show a progress bar on stderr (default: when stderr is a terminal).

    Returns:
        A :class:`SearchRun`: the front (best first, with test figures), its models and
        the run directory.

    Raises:
        evokeras.engine.config.ConfigError: a bad configuration key (nothing is written).
        evokeras.engine.search.RunError: ``out`` cannot hold the run, or its recorded data
            changed.
        SearchError: the search ended without a front.

    Example:
        >>> # import numpy as np, evokeras
        >>> # x, y = np.random.rand(600, 12, 20, 3), np.random.randint(0, 7, 600)
        >>> # run = evokeras.search(evokeras.from_arrays(x, y), "runs/mine", time_budget="5min")
        >>> # print(run.front[0].get("test_error"), run.models[0])
    """
    out = Path(out)
    progress = _on_terminal() if progress is None else progress
    if isinstance(task, str) and is_factory_name(task):
        register_factory(task)  # the caller names it: importing it is theirs to trust
    parallel = {} if workers is None else {"workers": int(workers)}
    if (out / "run.db").is_file():
        # the run's record rebuilds the built-in tasks of data (a changed file is refused);
        # any other task object is used as given
        given = task if isinstance(task, Task) and type(task) not in _RECORDED else None
        if time_budget is not None or config:
            log.warning("%s holds a run: it continues with its stored configuration (time_budget and config "
                        "are not applied; a new run directory starts a new search)", out)
        search_run = Search.resume(out, parallel=parallel, progress=progress, task=given, callbacks=callbacks)
    else:
        data: dict[str, Any] = overlay({"seed": seed, **dict(config or {})}, {"parallel": parallel})
        timed = time_budget is not None or wants_time_budget(config or {})
        search_run = _new_search(task, out, data, task_options, time_budget if timed else False,
                                 progress=progress, callbacks=callbacks)
    return SearchRun(out, _complete(search_run, out, progress, SearchError))


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
               seed: int = 0, target_options: Mapping[str, Any] | None = None, progress: bool | None = None,
               callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Evolve edit programs that specialize ``base_model`` (a trained Keras model or a
    ``.keras`` path) to the registered classification ``task``; continue the run if
    ``out`` already holds one.

    Args:
        base_model: the trained network to edit.
        task: the target task's name (e.g. ``"objects"``, ``"mnist"``, ``"brown_genre"``).
        out: the run directory (``base.keras`` is saved there first).
        config: search configuration keys (:class:`~evokeras.engine.config.SearchConfig`:
            strategy, evaluation, final, objectives, space: :class:`~evokeras.genomes.edits.EditSpace`
            options, ...).
        seed: the run's seed.
        target_options: keyword arguments of the target task.
        progress: show a progress bar on stderr (default: when stderr is a terminal).
        callbacks: hooks per evaluation, per generation and when the run is finished
            (:class:`~evokeras.engine.callbacks.Callback`, e.g.
            :class:`~evokeras.engine.callbacks.TensorBoard`).

    Returns:
        The hall of fame (``hall_of_fame.json``): each front member's program, search
        figures, test figures and saved model path.

    Raises:
        evokeras.engine.config.ConfigError: a bad configuration key (nothing is written).
        evokeras.engine.search.RunError: ``out`` cannot hold the run.
        SpecializationError: the search ended without a front.
    """

    out = Path(out)
    progress = _on_terminal() if progress is None else progress
    if (out / "run.db").is_file():
        search = Search.resume(out, progress=progress, callbacks=callbacks)
    else:
        made_dir = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        base_path = out / "base.keras"
        made_base = not base_path.exists()
        if isinstance(base_model, str | Path):
            if Path(base_model).resolve() != base_path.resolve():
                with atomic_path(base_path) as tmp:
                    shutil.copyfile(base_model, tmp)
        else:
            with atomic_path(base_path) as tmp:
                base_model.save(tmp)
        try:
            cfg = specialization_config(base_path, task, config, seed=seed, target_options=target_options)
            search = Search(cfg, out, progress=progress, callbacks=callbacks)
        except BaseException:  # nothing half-written: the copy made here, and the directory
            if not (out / "run.db").exists():
                if made_base:
                    base_path.unlink(missing_ok=True)
                if made_dir and not any(out.iterdir()):
                    out.rmdir()
            raise
    return _complete(search, out, progress, SpecializationError)


def decode(genome: Any, task: str | Task, *, compile: bool = True, name: str | None = None) -> Any:
    """Build the Keras model ``genome`` describes for ``task`` (a registered name or a
    task object): :func:`evokeras.nets.decode.decode` after :func:`evokeras.make_task`.

    Raises:
        TypeError: the task is not a :class:`~evokeras.tasks.NetworkTask` (its genomes are
            not evokeras networks, e.g. the edit programs of ``"specialize"``).

    Example:
        >>> from evokeras import Genome, LayerGene, decode
        >>> decode(Genome((LayerGene("conv", units=8), LayerGene("pool"))), "mnist").output_shape
        (None, 10)
    """
    made = make_task(task)
    if not isinstance(made, NetworkTask):
        raise TypeError(f"decode: task {made.name!r} ({type(made).__name__}) is not a NetworkTask: "
                        "its genomes are not evokeras networks that decode into Keras models")
    return _build.decode(genome, made, compile=compile, name=name)
