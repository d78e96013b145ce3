"""The search: a strategy asked for candidates, an evaluation policy, a run directory.

:class:`Search` ties the parts together (``docs/architecture.md``, "The engine"):

* a :class:`~evokeras.engine.run.Run` -- the directory, its lock, the run store, resume;
* a :class:`~evokeras.engine.strategies.base.Strategy` (config key ``strategy.name``):
  NSGA-II is asked for a generation at a time and told it whole; the asynchronous
  steady-state strategy is asked for one candidate whenever a worker is free;
* an :class:`~evokeras.engine.evaluation.EvaluationPolicy`: plain evaluation or
  successive halving during the search, the final rung after it; every result is
  committed to the run store as soon as it arrives, and a key the run has evaluated is
  never evaluated again;
* the map backend (serial, process workers or Dask), the wall clock, the early stop on a
  verified solution, fail-fast, checkpoints, the logbook, the callbacks and the progress bar.

After each generation (asynchronous: every ``strategy.offspring`` results) the
generation's statistics and a checkpoint (the front, the strategy's own state, the
elapsed time) are committed; :meth:`Search.resume` continues from the last one.

A :class:`Search` is run and finished (its final models, ``hall_of_fame.json``, the plots)
by :func:`evokeras.search`, :func:`evokeras.specialize`, the studies and ``evokeras
run``/``resume``, all through :func:`evokeras.engine.runner.complete`; its own loop
(``Search._run``) leaves a run unfinished and is not public.

Example:
    >>> from evokeras.engine.config import SearchConfig
    >>> cfg = SearchConfig.from_dict({"strategy": {"generations": 1, "population": 4, "offspring": 4}})
    >>> # evokeras.engine.runner.complete(Search(cfg, "runs/demo"))   # trains real networks
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deap import tools

from evokeras.engine.callbacks import Callback
from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.engine.evaluation import Evaluations, FinalRung, Plain, make_policy
from evokeras.engine.loops import (
    AllFailedError,
    Interrupted,
    Progress,
    StopRequest,
    asynchronous,
    generation_record,
    generational,
)
from evokeras.engine.parallel import Backend, BackendError, make_backend, require_keras_backend
from evokeras.engine.run import Run, RunError, lock_run_dir
from evokeras.engine.store import StoreError
from evokeras.engine.strategies import STRATEGIES, Standing
from evokeras.engine.strategies.base import dump_individual, load_individuals
from evokeras.engine.toolbox import Individual, make_toolbox
from evokeras.tasks import Task
from evokeras.training.evaluator import Evaluator
from evokeras.training.inheritance import WeightCache
from evokeras.training.protocol import EvaluateFunction, PlainEvaluate
from evokeras.training.records import EvalResult

__all__ = ["AllFailedError", "Interrupted", "RunError", "Search", "SearchResult", "lock_run_dir"]

log = logging.getLogger(__name__)

EvaluateFn = Callable[[Any], EvalResult]
MapFn = Callable[[EvaluateFunction, Iterable[Any]], Iterable[EvalResult]]


@dataclass
class SearchResult:
    """What a finished (or stopped) search returns."""

    front: list[Individual]
    logbook: tools.Logbook
    generations_done: int
    evaluations: int
    wall_seconds: float
    stopped_by: str


class Search:
    """A search run bound to a run directory.

    Args:
        config: the resolved configuration.
        out_dir: the run directory (created; must not already hold a run).
        evaluate: ``genome -> EvalResult`` (an
            :class:`~evokeras.training.protocol.EvaluateFunction`, or any callable, which
            is wrapped in :class:`~evokeras.training.protocol.PlainEvaluate`); default an
            :class:`Evaluator` for the task.
        map_fn: ``(evaluate, genomes) -> iterable of results``, yielded in any order
            (each is committed as soon as it arrives; an asynchronous strategy needs one
            that pulls ``genomes`` lazily); default: the backend the configuration's
            ``parallel`` section asks for (:func:`evokeras.engine.parallel.make_backend`),
            which the search also registers as ``toolbox.map`` and closes at the end of
            the search. A ``map_fn`` given here is the caller's to close.
        progress: show a progress bar on stderr.
        task: the configured task when the caller has built it already
            (:meth:`SearchConfig.build_task`); built here otherwise.
        callbacks: :class:`~evokeras.engine.callbacks.Callback` objects whose hooks run
            at the start, after each evaluation and generation, at the end of the search
            and when the run is finished (e.g. :class:`~evokeras.engine.callbacks.TensorBoard`).
    """

    def __init__(
        self,
        config: SearchConfig,
        out_dir: str | Path,
        *,
        evaluate: EvaluateFn | None = None,
        map_fn: MapFn | None = None,
        progress: bool = False,
        task: Task | None = None,
        callbacks: Sequence[Callback] = (),
        _resuming: bool = False,
    ) -> None:
        config.check()
        if evaluate is None:  # the built-in evaluator trains Keras models: refused before any task or run directory
            require_keras_backend()
        self.config = config
        self.callbacks: tuple[Callback, ...] = tuple(callbacks)
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.task: Task = task if task is not None else config.build_task()
        self.evaluate = self._evaluate_function(evaluate)
        self.toolbox = make_toolbox(self.task, objectives=config.objectives, seed=config.seed)
        self.weights = tuple(float(w) for w in config.objectives.values())
        self._backend: Backend | None = None
        self.map_fn: MapFn = map_fn or self._make_backend()  # type: ignore[assignment]
        try:
            self.run_dir = Run.open(self.out_dir, config) if _resuming else Run.create(self.out_dir, config, self.task)
        except BaseException:
            if self._backend is not None:
                self._backend.close()
            raise
        self.config, self.store = self.run_dir.config, self.run_dir.store
        self.stop = StopRequest()
        self.told = 0  # results told to the strategy (asynchronous strategies count generations by them)
        self.meter = Progress(self.weights)
        #: the final rung's records of the members it put in the front (``evaluation.final_rung``)
        self.rung_records: dict[str, EvalResult] = {}
        try:
            self._set_up()
        except BaseException:
            self.close()
            raise

    def _evaluate_function(self, evaluate: EvaluateFn | None) -> EvaluateFunction:
        cfg = self.config
        self.weight_cache = WeightCache(self.out_dir.resolve() / "weights") if cfg.evaluation.inherit_weights else None
        if evaluate is None:
            return Evaluator(self.task, cfg.budget(), cfg.objectives, seed=cfg.seed,
                             weight_dir=self.weight_cache.directory if self.weight_cache is not None else None,
                             settings=cfg.train_settings())
        for key in ("multi_fidelity", "final_rung"):
            if getattr(cfg.evaluation, key) is not None and not isinstance(evaluate, Evaluator):
                raise ConfigError(f"config key 'evaluation.{key}' needs the built-in Evaluator (a custom evaluate was given)")
        return evaluate if isinstance(evaluate, EvaluateFunction) else PlainEvaluate(evaluate, cfg.objectives)

    def _make_backend(self) -> Backend:
        self._backend = make_backend(self.config)
        self.toolbox.register("map", self._backend.map)
        if self.config.parallel.scheduler is not None:  # an unreachable scheduler leaves no run directory behind
            try:
                self._backend.connect()
            except BackendError as exc:
                self._backend.close()
                raise RunError(str(exc)) from exc
        return self._backend

    def _set_up(self) -> None:
        """The standing of every stored evaluation, the strategy and the evaluation policy."""
        cfg = self.config
        self.max_val_error = cfg.max_val_error if cfg.max_val_error is not None else self.task.default_max_val_error
        self.standing = Standing(self.max_val_error, self.task.error_measure)
        self.store.set_meta("max_val_error", self.max_val_error)  # plots draw the same front
        for _, result in self.store.evaluations():
            if result.objective_names != tuple(cfg.objectives):
                raise StoreError(f"run store {self.store.path}: evaluation {result.key!r} has objectives "
                                 f"{list(result.objective_names)}, the run {list(cfg.objectives)}")
            self.meter.note(result)
            self.standing.note(result)
        #: the task's reference architectures (``strategy.reference_architectures``): the
        #: first generation starts from them and they always reach the final rung
        self.references = self.task.reference_genomes() if cfg.strategy.reference_architectures else []
        self.strategy = STRATEGIES[cfg.strategy.name](self.toolbox, self.standing, cfg.strategy,
                                                      initial=self.references)
        self.evals = Evaluations(self.store, self.evaluate, self.map_fn, self.standing, callbacks=self.callbacks,
                                 meter=self.meter, stop=self.stop)
        self.policy = make_policy(cfg.evaluation.multi_fidelity, self.toolbox.select, self.weights)
        if isinstance(self.policy, Plain) and not self.strategy.asynchronous:  # a solution ends its generation
            me = weakref.ref(self)  # no cycle: a search dropped unclosed is freed (its lock too) at once
            self.evals.halt = lambda result: verify_candidate(me(), result, arriving=True)  # type: ignore[arg-type]

    # -- the run directory -------------------------------------------------------------------
    def close(self) -> None:
        """Close the backend (if this search made it), the run store and the lock."""
        if self._backend is not None:
            self._backend.close()
        self.run_dir.close()

    def request_stop(self, signum: int | None = None) -> None:
        """Ask the run to stop: :meth:`check_stop` raises :class:`Interrupted` from now
        on. The search checks it before committing each result and before each
        generation, and :func:`~evokeras.engine.final.finalize` before each member, so a
        stop requested from a signal handler holds even where the handler's own
        exception was swallowed (raised inside a finalizer or a callback)."""
        self.stop.request(signum)

    def check_stop(self) -> None:
        """Raise :class:`Interrupted` once :meth:`request_stop` was called."""
        self.stop.check()

    @property
    def fit_seconds(self) -> float:
        """Seconds spent training and evaluating candidates, over the whole run."""
        return self.meter.fit_seconds

    def __enter__(self) -> Search:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def resume(cls, out_dir: str | Path, *, parallel: dict[str, Any] | None = None, **kwargs: Any) -> Search:
        """Re-open the run in ``out_dir`` (written by an earlier :class:`Search`).

        ``parallel`` may change how it is evaluated (the configuration's ``parallel``
        section: ``workers``, ``backend``, ``scheduler``, ``recycle_after``); nothing else
        of the stored configuration can change, and the backend does not change any result.
        """
        config = Run.read_config(out_dir)
        if parallel:
            config = SearchConfig.from_dict({"parallel": dict(parallel)}, base=config)
        try:
            search = cls(config, out_dir, _resuming=True, **kwargs)
        except (StoreError, ConfigError) as exc:
            raise RunError(str(exc)) from exc
        try:
            search._restore()  # the checkpoint is checked now, before anything runs
        except StoreError as exc:
            search.close()
            raise RunError(str(exc)) from exc
        return search

    def _restore(self) -> tuple[int, float]:
        """The last checkpoint's generation and elapsed seconds (the strategy, its front
        and ``fit_seconds`` set from it); ``(-1, 0)`` before the first. A checkpoint that
        does not fit this run raises :class:`StoreError`."""
        envelope = self.run_dir.checkpoint()
        if envelope is None:
            return -1, 0.0
        gen = envelope["gen"]
        if envelope["strategy"] != self.strategy.name:
            raise StoreError(f"run store {self.store.path}: checkpoint of generation {gen} was written by "
                             f"strategy {envelope['strategy']!r}, the run's is {self.strategy.name!r}")
        try:
            self.strategy.restore(envelope["state"])
            front = load_individuals(envelope["front"], self.task.genome_from_dict, self.toolbox.fitness_class,
                                     self.standing)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # GenomeError is a ValueError
            raise StoreError(f"run store {self.store.path}: checkpoint of generation {gen} "
                             f"does not fit this run: {exc}") from None
        self.strategy.front.clear()
        self.strategy.front.update(front)
        self.meter.fit_seconds = float(envelope.get("fit_seconds", 0.0))
        self.told = envelope.get("told", 0)
        self.note_progress(int(gen), float(envelope["elapsed"]))
        return int(gen), float(envelope["elapsed"])

    # -- generations ----------------------------------------------------------------------------
    def end_generation(self, gen: int, elapsed: float) -> None:
        """Commit generation ``gen``'s record and checkpoint; keep only the cached weights
        of the parents (and of the front, ``final.from_search``); tell the callbacks."""
        nevals, nfailed = self.store.count_evaluations(gen), self.store.count_evaluations(gen, failed=True)
        ok = [ind for ind in self.strategy.parents if self.standing.status.get(ind.key) == "ok"]
        record = generation_record(gen, ok, list(self.config.objectives), nevals, nfailed, elapsed)
        envelope = {"gen": gen, "elapsed": elapsed, "fit_seconds": self.fit_seconds, "told": self.told,
                    "front": [dump_individual(ind, self.standing) for ind in self.strategy.front],
                    "strategy": self.strategy.name, "state": self.strategy.state()}
        self.run_dir.end_generation(gen, record, envelope)
        self.note_progress(gen, elapsed)
        if self.weight_cache is not None:  # and the front's, where the final models continue from them
            front = {ind.key for ind in self.strategy.front} if self.config.final.from_search else set()
            self.weight_cache.keep_only(self.strategy.weight_keys() | front)
        for callback in self.callbacks:
            callback.on_generation(record, list(self.strategy.front))
        log.info("generation %d: %d evaluated, %d failed, front %d", gen, nevals, nfailed, len(self.strategy.front))

    def note_progress(self, gen: int, elapsed: float) -> None:
        """Tell the strategy the share of the search's budget spent after generation ``gen``."""
        s = self.config.strategy
        spent = max(gen / s.generations if s.generations else 1.0, elapsed / s.wall_seconds if s.wall_seconds else 0.0)
        self.strategy.progress = min(1.0, spent)

    def solved(self) -> bool:
        """Whether a candidate is verified to solve the task (:meth:`Task.verify`): one
        verified as it arrived (:func:`verify_candidate`), or a front member.

        Front members whose search metrics make them candidates (``task.is_candidate``)
        are verified once each, best first objective first (``task.verify`` on episodes
        the search never used); the outcomes are kept in the run store's meta
        ``verified`` (so a resumed run neither repeats nor forgets them) and the first
        solved key in ``solved``.
        """
        if self.store.get_meta("solved"):
            return True
        return any(verify_candidate(self, self.store.get_evaluation(ind.key), ind.as_genome())
                   for ind in sorted(self.strategy.front, key=lambda i: (-i.fitness.wvalues[0], i.key)))

    # -- the loops ---------------------------------------------------------------------------------
    def _run(self) -> SearchResult:
        """Run (or continue) the search until its generations or wall budget are spent."""
        gen, elapsed0 = self._restore()
        if gen >= 0:
            log.info("resuming %s after generation %d", self.out_dir, gen)
        if gen < 0 and self.store.get_meta("failed_fast"):
            # the first generation failed as a whole: evaluate it again (the cause may be fixed)
            self.store.forget_evaluations(generation=0)
            self.store.set_meta("failed_fast", None)
        start = time.perf_counter()
        clock = lambda: elapsed0 + time.perf_counter() - start  # noqa: E731
        for callback in self.callbacks:
            callback.on_search_begin(self)
        self.meter.open(self.progress)
        try:
            loop = asynchronous if self.strategy.asynchronous else generational
            gen, stopped_by = loop(self, gen, clock)
            if stopped_by == "generations" and self.solved():
                stopped_by = "solved"
            final_front = self._final_rung(gen) if self.config.evaluation.final_rung is not None \
                and len(self.strategy.front) else None
        finally:
            self.meter.close()
            if self._backend is not None:
                self._backend.close()
        result = SearchResult(
            front=final_front if final_front is not None else list(self.strategy.front),
            logbook=_logbook(self.store.generations()),
            generations_done=gen,
            evaluations=self.store.count_evaluations(),
            wall_seconds=clock(),
            stopped_by=stopped_by,
        )
        for callback in self.callbacks:
            callback.on_search_end(result)
        return result

    def stop_reason(self, gen: int, clock: Callable[[], float]) -> str | None:
        """Why no further generation starts (``None``: it does)."""
        wall = self.config.strategy.wall_seconds
        if gen >= 0 and self.solved():
            return "solved"
        if gen >= 0 and wall is not None and clock() >= wall:
            return "wall_seconds"
        return None

    def _final_rung(self, gen: int) -> list[Individual] | None:
        """The last rung (``evaluation.final_rung``): the most accurate candidates of the
        run (by the first objective; ok, full fidelity, within ``max_val_error``)
        evaluated again with ``factor`` times the budget; returns the Pareto front of
        those longer evaluations (``None`` when none of them ended ok: the search's
        front stands). A resumed run reads the rung's records from the store."""
        settings = self.config.evaluation.final_rung
        assert settings is not None
        rung = FinalRung(int(settings["candidates"]), float(settings["factor"]))
        todo = rung.choose(self.evals, self.task.genome_from_dict, self.toolbox.fitness_class,
                           1.0 if self.weights[0] > 0 else -1.0, always=[g.key for g in self.references])
        self.meter.describe(len(todo), f"gen {gen} @{rung.factor:g}")
        front, self.rung_records = rung.front(self.evals, todo, gen)
        if not front:
            log.warning("final rung: no candidate ended ok; the final models come from the search's front")
            return None
        return front


def verify_candidate(search: Search, record: EvalResult | None, genome: Any = None, *, arriving: bool = False) -> bool:
    """Verify ``record``'s candidate once, if its search metrics make it one
    (``task.is_candidate``); ``True`` when it is solved (the run store's meta ``solved``
    names it). The outcome joins the meta ``verified``. ``arriving``: a result as it
    arrives, verified only if no candidate verified before had a better first objective
    (a generation's many candidates just over the threshold are left to the check of its
    front at its end; a capped return, as CartPole's 500, is verified each time)."""
    if record is None or not record.ok or not search.task.is_candidate(record.metrics):
        return False
    done: dict[str, Any] = search.store.get_meta("verified") or {}
    if record.key not in done:
        if arriving and done:
            value = search.weights[0] * record.objectives[0]
            tried = (search.store.get_evaluation(key) for key in done)
            if any(r is not None and search.weights[0] * r.objectives[0] > value for r in tried):
                return False
        genome = genome if genome is not None else search.task.genome_from_dict(record.genome)
        done[record.key] = search.task.verify(genome, search.config.seed)
        search.store.set_meta("verified", done)
        log.info("verified %s: %s", record.key, done[record.key])
    if done[record.key]["solved"]:
        search.store.set_meta("solved", record.key)
        return True
    return False


def _logbook(records: list[dict[str, Any]]) -> tools.Logbook:
    book = tools.Logbook()
    for r in records:
        book.record(**r)
    return book
