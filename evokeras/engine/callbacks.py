"""Hooks into a running search: :class:`Callback`, and :class:`TensorBoard`, which logs it.

Pass callbacks to :class:`~evokeras.engine.search.Search` (``callbacks=[...]``), to
:meth:`Search.resume <evokeras.engine.search.Search.resume>` or to
:func:`evokeras.specialize`. The search calls, in its own process and in this order:

* :meth:`Callback.on_search_begin` once, when :meth:`Search.run` starts (or resumes);
* :meth:`Callback.on_evaluation` for each evaluation as soon as its result is committed
  to the run store (screening evaluations of ``multi_fidelity`` included: their
  ``result.fidelity`` is below 1; evaluations read back on resume are not repeated);
* :meth:`Callback.on_generation` after each generation's record and checkpoint are
  committed, with that record and the search's Pareto front;
* :meth:`Callback.on_search_end` once, when :meth:`Search.run` returns.

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

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evokeras._meta import optional_dependency
from evokeras.training.records import EvalResult

if TYPE_CHECKING:
    from evokeras.engine.search import Search, SearchResult
    from evokeras.engine.toolbox import Individual

__all__ = ["Callback", "TensorBoard", "candidate_hparams"]


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
        """:meth:`Search.run` returns ``result``."""


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
        step = int(record["gen"])
        for name, stats in record.items():
            if isinstance(stats, Mapping):
                for stat in ("min", "avg", "max"):
                    writer.add_scalar(f"{name}/{stat}", float(stats[stat]), step=step)
        writer.add_scalar("search/evaluations", float(record["nevals"]), step=step)
        writer.add_scalar("search/failed", float(record["nfailed"]), step=step)
        writer.add_scalar("search/front_size", float(len(front)), step=step)
        writer.add_scalar("search/elapsed_seconds", float(record["elapsed"]), step=step)
        writer.flush()

    def on_search_end(self, result: SearchResult) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (the next event opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
