"""Hooks into a running search: :class:`Callback`, and :class:`TensorBoard`, which logs it.

Pass callbacks to :func:`evokeras.search` or :func:`evokeras.specialize`
(``callbacks=[...]``), or to :class:`~evokeras.engine.search.Search` and
:meth:`Search.resume <evokeras.engine.search.Search.resume>`. The search calls, in its own process and in this order:

* :meth:`Callback.on_search_begin` once, when the search starts (or resumes);
* :meth:`Callback.on_evaluation` for each evaluation as soon as its result is committed
  to the run store (screening evaluations of ``multi_fidelity`` included: their
  ``result.fidelity`` is below 1; evaluations read back on resume are not repeated);
* :meth:`Callback.on_generation` after each generation's record and checkpoint are
  committed, with that record and the search's Pareto front;
* :meth:`Callback.on_search_end` once, when the search ends (before the final models);
* :meth:`Callback.on_finish` once, when the run is finished: its final models saved,
  ``hall_of_fame.json`` and the plots written (:func:`evokeras.search`,
  :func:`evokeras.specialize`, ``evokeras run`` and ``evokeras resume`` finish runs).

A callback observes; it does not change the search (the same seed gives the same run
with or without it). An exception raised by a callback stops the search like any other
error; what was committed stays in the run store and ``evokeras resume`` continues.

Example:
    >>> from evokeras.engine.callbacks import Callback
    >>> class Best(Callback):
    ...     def on_generation(self, record, front):
    ...         print(record["gen"], len(front))
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evokeras._meta import __version__, optional_dependency
from evokeras.engine.parallel import quiet_loggers
from evokeras.training.records import EvalResult

if TYPE_CHECKING:
    from evokeras.engine.search import Search, SearchResult
    from evokeras.engine.toolbox import Individual

__all__ = ["MLFLOW_META", "Callback", "MLflow", "TensorBoard", "candidate_hparams", "flat_params", "generation_scalars"]


def candidate_hparams(genome: Mapping[str, Any], generation: int) -> dict[str, float | str]:
    """A genome's dictionary as flat hyperparameters: its generation, the scalar genes at
    its top level and one level down (``training.learning_rate``), and the length of each
    list or mapping (``layers``: the number of layer genes)."""
    out: dict[str, float | str] = {"generation": generation}

    def add(prefix: str, items: Mapping[str, Any], depth: int) -> None:
        for name, value in items.items():
            if isinstance(value, bool):
                out[prefix + name] = float(value)
            elif isinstance(value, int | float | str):
                out[prefix + name] = value
            elif isinstance(value, Mapping) and depth == 0:
                add(f"{prefix}{name}.", value, 1)
            elif isinstance(value, Sequence | Mapping):
                out[prefix + name] = float(len(value))

    add("", genome, 0)
    return out


def generation_scalars(record: Mapping[str, Any], front: Sequence[Individual]) -> dict[str, float]:
    """What the loggers (:class:`TensorBoard`, :class:`MLflow`) write per generation:
    ``<objective>/min``, ``/avg``, ``/max`` over the population (the logbook
    ``record``), ``search/evaluations``, ``search/failed``, ``search/front_size`` and
    ``search/elapsed_seconds``."""
    out = {f"{name}/{stat}": float(stats[stat]) for name, stats in record.items()
           if isinstance(stats, Mapping) for stat in ("min", "avg", "max")}
    out.update({"search/evaluations": float(record["nevals"]), "search/failed": float(record["nfailed"]),
                "search/front_size": float(len(front)), "search/elapsed_seconds": float(record["elapsed"])})
    return out


class Callback:
    """Base class of the search's hooks; each does nothing unless overridden."""

    def on_search_begin(self, search: Search) -> None:
        """The search starts or resumes (``search.out_dir``, ``search.config`` are set)."""

    def on_evaluation(self, result: EvalResult, generation: int) -> None:
        """One evaluation finished and is in the run store."""

    def on_generation(self, record: Mapping[str, Any], front: Sequence[Individual]) -> None:
        """A generation ended. ``record``: its logbook record (``gen``, ``nevals``,
        ``nfailed``, ``elapsed``, and ``{min, avg, max, std}`` per objective over the
        population); ``front``: the search's Pareto front so far (individuals with
        ``key``, ``fitness.values`` and their genome)."""

    def on_search_end(self, result: SearchResult) -> None:
        """The search ended with ``result`` (its front and logbook); the final models follow."""

    def on_finish(self, out_dir: Path, entries: Sequence[Mapping[str, Any]]) -> None:
        """The run in ``out_dir`` is finished. ``entries``: its hall of fame, best first
        (``hall_of_fame.json``: each member's ``key``, ``genome``, ``objectives``,
        ``metrics``, test figures and ``model``, the saved model's path relative to
        ``out_dir``, where it has one)."""


class TensorBoard(Callback):
    """Write a search's progress as TensorBoard scalars into ``log_dir``.

    Per generation (step = generation): ``<objective>/min``, ``/avg``, ``/max`` over the
    population, ``search/evaluations``, ``search/failed``, ``search/front_size``,
    ``search/elapsed_seconds``. Per evaluation (step = its number in this process):
    ``evaluation/<objective>`` for successful full-fidelity ones, and for each of them a
    run ``candidates/<key>`` for the HParams dashboard: the genome's scalar genes and its
    size as hyperparameters (:func:`candidate_hparams`), its objectives as metrics
    ``objective/<name>``. Needs the extra ``tensorboard`` (no TensorFlow):
    ``pip install 'evokeras[tensorboard]'``, then ``tensorboard --logdir LOG_DIR``.

    Args:
        log_dir: the directory of the event files (created).
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: Any = None
        self._evaluations = 0

    def _open(self) -> Any:
        if self._writer is None:
            with optional_dependency():
                from tensorboard.summary import Writer

            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = Writer(str(self.log_dir))
        return self._writer

    def on_search_begin(self, search: Search) -> None:
        self._open()

    def on_evaluation(self, result: EvalResult, generation: int) -> None:
        if not (result.ok and result.full):
            return
        writer = self._open()
        for name, value in zip(result.objective_names, result.objectives, strict=True):
            writer.add_scalar(f"evaluation/{name}", float(value), step=self._evaluations)
        self._evaluations += 1
        self._candidate(result, generation)

    def _candidate(self, result: EvalResult, generation: int) -> None:
        """One HParams session: the candidate's genes and its objectives."""
        with optional_dependency():
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.plugins.hparams import metadata, plugin_data_pb2
            from tensorboard.plugins.scalar import metadata as scalar_metadata
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
            from tensorboard.util import tensor_util

        info = plugin_data_pb2.SessionStartInfo(group_name=result.key, start_time_secs=time.time())
        for name, value in candidate_hparams(result.genome, generation).items():
            if isinstance(value, str):
                info.hparams[name].string_value = value
            else:
                info.hparams[name].number_value = float(value)
        writer = EventFileWriter(str(self.log_dir / "candidates" / result.key))
        start = event_pb2.Event(wall_time=time.time(), step=0)
        start.summary.value.add(
            tag=metadata.SESSION_START_INFO_TAG, tensor=metadata.NULL_TENSOR,
            metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_start_info=info)))
        writer.add_event(start)
        scalar = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=scalar_metadata.PLUGIN_NAME),
            data_class=summary_pb2.DataClass.DATA_CLASS_SCALAR)
        for name, value in zip(result.objective_names, result.objectives, strict=True):
            event = event_pb2.Event(wall_time=time.time(), step=0)
            event.summary.value.add(tag=f"objective/{name}", metadata=scalar,
                                    tensor=tensor_util.make_tensor_proto(float(value)))
            writer.add_event(event)
        writer.close()

    def on_generation(self, record: Mapping[str, Any], front: Sequence[Individual]) -> None:
        writer = self._open()
        for name, value in generation_scalars(record, front).items():
            writer.add_scalar(name, value, step=int(record["gen"]))
        writer.flush()

    def on_search_end(self, result: SearchResult) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (the next event opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


#: The run store's meta key of the MLflow runs of a search: ``{tracking URI: run id}``.
MLFLOW_META = "mlflow_runs"


def flat_params(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested mapping (a configuration) as flat ``a.b.c`` parameters: scalars as text,
    lists and ``None`` as JSON, at most 6000 characters each (MLflow's limit)."""
    out: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{prefix}{name}."))
            continue
        text = value if isinstance(value, str) else str(value) if isinstance(value, int | float) \
            else json.dumps(value, default=str)
        out[f"{prefix}{name}"] = text[:6000]
    return out


def _import_mlflow() -> Any:
    """``mlflow``, or :class:`~evokeras._meta.MissingExtraError` naming the extra."""
    with optional_dependency():
        import mlflow
    return mlflow


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow without its INFO lines on stderr (the tables it creates in a new database)
    and the run links it prints on stdout for a tracking server, unless logging asks for
    INFO (:func:`~evokeras.engine.parallel.quiet_loggers`)."""
    restore, env = quiet_loggers("mlflow"), os.environ.get("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    try:
        yield
    finally:
        restore()
        if env is None:
            os.environ.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)
        else:
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = env


def _absolute_sqlite(uri: str | None) -> str | None:
    """``sqlite:///relative.db`` with the path made absolute (``sqlite:////abs/relative.db``);
    any other URI unchanged."""
    prefix = "sqlite:///"
    if uri is None or not uri.startswith(prefix) or uri.startswith(prefix + "/") or uri == prefix + ":memory:":
        return uri
    return prefix + str(Path(uri[len(prefix):]).resolve())


def _end_left_run(client: Any, run_id: str, state: dict[str, str]) -> None:
    """End a run that :meth:`MLflow.close` did not end (at exit): ``FINISHED`` when its
    search ended, ``KILLED`` otherwise; errors are ignored (the store may be gone)."""
    try:
        with _quiet():
            client.set_terminated(run_id, status=state["status"])
    except Exception:  # nothing to report to at interpreter exit
        pass


class MLflow(Callback):
    """Log a search to MLflow: one MLflow run per search, a nested run per candidate.

    The run (named ``run_name``, default the run directory's name, in the experiment
    ``experiment``, created when missing) gets the search's configuration as parameters
    (``strategy.population``, ``evaluation.epochs``, ...: :func:`flat_params`) and the
    tags ``evokeras.version`` and ``evokeras.run_dir``. Per generation (step =
    generation): ``<objective>/min``, ``/avg``, ``/max`` over the population,
    ``search/evaluations``, ``search/failed``, ``search/front_size``,
    ``search/elapsed_seconds``. Per successful full-fidelity evaluation: with
    ``nested_candidates``, a nested run named by the candidate's key (tag
    ``evokeras.key``) with the genome's scalar genes and size as parameters
    (:func:`candidate_hparams`) and its objectives and numeric metrics as metrics;
    without, ``evaluation/<objective>`` metrics of the search's run (step = its number).
    When the run is finished (:meth:`Callback.on_finish`): the hall of fame's test
    figures (``hall_of_fame/<rank>/test_error``, ...; also on the member's nested run),
    the final models under ``models/``, ``hall_of_fame.json``, ``config.json``,
    ``logbook.csv`` and the plots under ``plots/`` as artifacts; then the MLflow run ends
    (``FINISHED``). A run that ends unfinished (no front, an error, an interrupt) leaves
    its MLflow run open until :meth:`close`, the next search given this callback or the
    interpreter's exit, which end it ``FINISHED`` when the search itself ended and
    ``KILLED`` when it stopped on an error. A resumed search logs on to the same MLflow
    run (its id is kept in the run store's meta :data:`MLFLOW_META`). MLflow's own log
    lines and run links are kept quiet (INFO logging shows them).
    Needs the extra ``mlflow`` (``pip install 'evokeras[mlflow]'``), then
    ``mlflow ui --backend-store-uri sqlite:///mlflow.db`` (or a tracking server).

    Args:
        tracking_uri: where to log (``sqlite:///mlflow.db``, ``http://host:5000``); a
            relative SQLite path is taken from the working directory now, so a search
            resumed from elsewhere logs to the same database; default MLflow's (``MLFLOW_TRACKING_URI`` or ``mlflow.db`` in the working
            directory, with the artifacts under ``mlruns/``).
        experiment: the MLflow experiment's name.
        run_name: the MLflow run's name; default the run directory's name.
        nested_candidates: a nested run per candidate (else metrics by step).

    Example:
        >>> # import evokeras
        >>> # tracker = evokeras.MLflow("sqlite:///mlflow.db", experiment="mnist")
        >>> # evokeras.search("mnist", "runs/a", time_budget="5min", callbacks=[tracker])
    """

    def __init__(self, tracking_uri: str | None = None, *, experiment: str = "evokeras",
                 run_name: str | None = None, nested_candidates: bool = True) -> None:
        self.tracking_uri = _absolute_sqlite(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.nested_candidates = nested_candidates
        #: the MLflow run of the current (or last) search
        self.run_id: str | None = None
        self._client: Any = None
        self._experiment_id = ""
        self._evaluations = 0
        self._state = {"status": "KILLED"}
        self._ender: weakref.finalize | None = None

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` of ``tracking_uri`` (made on first use)."""
        if self._client is None:
            mlflow = _import_mlflow()
            with _quiet():
                self._client = mlflow.MlflowClient(self.tracking_uri)
        return self._client

    def on_search_begin(self, search: Search) -> None:
        self.close()  # the run of an earlier search given this callback
        client = self.client
        with _quiet():
            runs = dict(search.store.get_meta(MLFLOW_META) or {})
            run = self._existing(runs.get(client.tracking_uri))
            if run is None:
                run = self._new_run(search)
                runs[client.tracking_uri] = run.info.run_id
                search.store.set_meta(MLFLOW_META, runs)
            else:
                client.update_run(run.info.run_id, status="RUNNING")
            self.run_id, self._experiment_id = run.info.run_id, run.info.experiment_id
            params = {k: v for k, v in flat_params(search.config.to_dict()).items() if k not in run.data.params}
            self._log(self.run_id, params=params)
        self._state = {"status": "KILLED"}
        self._ender = weakref.finalize(self, _end_left_run, client, self.run_id, self._state)
        self._evaluations = 0 if self.nested_candidates else \
            sum(1 for _, r in search.store.evaluations() if r.ok and r.full)

    def _existing(self, run_id: str | None) -> Any:
        """The MLflow run ``run_id`` when this tracking store still has it (not deleted)."""
        if run_id is None:
            return None
        mlflow = _import_mlflow()
        try:
            run = self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            return None
        return run if run.info.lifecycle_stage == "active" else None

    def _new_run(self, search: Search) -> Any:
        mlflow = _import_mlflow()
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None and experiment.lifecycle_stage != "active":
            client.restore_experiment(experiment.experiment_id)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(self.experiment)
            except mlflow.exceptions.MlflowException:  # created meanwhile by another process
                experiment_id = client.get_experiment_by_name(self.experiment).experiment_id
        else:
            experiment_id = experiment.experiment_id
        tags = {"evokeras.version": __version__, "evokeras.run_dir": str(search.out_dir.resolve())}
        return client.create_run(experiment_id, run_name=self.run_name or search.out_dir.resolve().name, tags=tags)

    def _log(self, run_id: str, metrics: Mapping[str, float] | None = None, step: int = 0,
             params: Mapping[str, Any] | None = None) -> None:
        """Log ``metrics`` (at ``step``) and ``params`` in batches of MLflow's size."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metric_list = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()]
        param_list = [Param(k, str(v)) for k, v in (params or {}).items()]
        for i in range(0, max(len(metric_list), len(param_list)), 100):
            self.client.log_batch(run_id, metrics=metric_list[i:i + 100], params=param_list[i:i + 100])

    def on_evaluation(self, result: EvalResult, generation: int) -> None:
        if self.run_id is None or not (result.ok and result.full):
            return
        objectives = {name: float(value) for name, value in zip(result.objective_names, result.objectives, strict=True)}
        with _quiet():
            if not self.nested_candidates:
                self._log(self.run_id, metrics={f"evaluation/{k}": v for k, v in objectives.items()},
                          step=self._evaluations)
                self._evaluations += 1
                return
            figures = {k: float(v) for k, v in result.metrics.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            child = self.client.create_run(self._experiment_id, run_name=result.key, tags={
                "mlflow.parentRunId": self.run_id, "evokeras.key": result.key})
            self._log(child.info.run_id, metrics={**figures, **objectives},
                      params=candidate_hparams(result.genome, generation))
            self.client.set_terminated(child.info.run_id)

    def on_generation(self, record: Mapping[str, Any], front: Sequence[Individual]) -> None:
        if self.run_id is None:
            return
        with _quiet():
            self._log(self.run_id, metrics=generation_scalars(record, front), step=int(record["gen"]))

    def on_search_end(self, result: SearchResult) -> None:
        if self.run_id is None:
            return
        with _quiet():
            self.client.set_tag(self.run_id, "evokeras.stopped_by", result.stopped_by)
        self._state["status"] = "FINISHED"

    def on_finish(self, out_dir: Path, entries: Sequence[Mapping[str, Any]]) -> None:
        if self.run_id is None or self._ender is None or not self._ender.alive:
            return
        out_dir = Path(out_dir)
        with _quiet():
            for rank, entry in enumerate(entries):
                tests = {k: float(v) for k, v in entry.items() if k.startswith("test_")
                         and isinstance(v, int | float) and not isinstance(v, bool)}
                self._log(self.run_id, metrics={f"hall_of_fame/{rank}/{k}": v for k, v in tests.items()})
                child = self._candidate_run(str(entry.get("key", ""))) if tests else None
                if child is not None:
                    self._log(child, metrics=tests)
                model = out_dir / str(entry.get("model", ""))
                if entry.get("model") and model.is_file():
                    self.client.log_artifact(self.run_id, str(model), "models")
            for name in ("hall_of_fame.json", "config.json", "logbook.csv"):
                if (out_dir / name).is_file():
                    self.client.log_artifact(self.run_id, str(out_dir / name))
            for plot in sorted([*out_dir.glob("*.png"), *out_dir.glob("plots/*.png")]):
                self.client.log_artifact(self.run_id, str(plot), "plots")
        self.close()

    def _candidate_run(self, key: str) -> str | None:
        """The id of the nested run of the candidate ``key``, if there is one."""
        if not self.nested_candidates or not key:
            return None
        runs = self.client.search_runs([self._experiment_id], max_results=1, filter_string=(
            f"tags.mlflow.parentRunId = '{self.run_id}' and tags.`evokeras.key` = '{key}'"))
        return runs[0].info.run_id if runs else None

    def close(self) -> None:
        """End the MLflow run if it is open: ``FINISHED`` once the search ended, else
        ``KILLED`` (a search stopped by an error or an interrupt; resuming it reopens
        the run). :meth:`on_finish` calls it; call it when a run ended unfinished."""
        if self._ender is None or not self._ender.alive:
            return
        self._ender.detach()
        with _quiet():
            self.client.set_terminated(self.run_id, status=self._state["status"])
