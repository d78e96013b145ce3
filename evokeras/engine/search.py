"""The generational search: NSGA-II (mu + lambda) with a Pareto-front hall of fame.

Each generation: vary the population into ``offspring`` children (crossover, mutation
or copy, drawn from the run's one random source), evaluate the children whose key was
never evaluated in this run (each result is committed to the run store as soon as it
finishes), select the next population with ``deap.tools.selNSGA2`` from parents and
children, update the ``deap.tools.ParetoFront``, record per-objective statistics in a
``deap.tools.Logbook``, and commit a checkpoint (population, front, RNG state, as
JSON). :meth:`Search.resume` continues from the last checkpoint; evaluations done
after it are read back from the store, not redone.

Example:
    >>> from evokeras.engine.config import SearchConfig
    >>> cfg = SearchConfig.from_dict({"generations": 1, "population": 4, "offspring": 4})
    >>> # Search(cfg, "runs/demo").run()   # trains real networks
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from deap import tools

from evokeras._io import (
    MAX_CONFIG_BYTES,
    UnreadableFile,
    read_json,
    write_json_atomic,
    write_text_atomic,
)
from evokeras._meta import __version__
from evokeras.engine.callbacks import Callback
from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.engine.parallel import Backend, BackendError, make_backend
from evokeras.engine.store import RunStore, StoreError
from evokeras.engine.toolbox import Individual, make_toolbox, to_individual
from evokeras.genomes.network import Genome
from evokeras.tasks import Task
from evokeras.training.evaluator import Evaluator
from evokeras.training.inheritance import WeightCache
from evokeras.training.records import (
    FINAL_RUNG_DEFAULTS,
    MULTI_FIDELITY_DEFAULTS,
    EvalResult,
    worst_values,
)

__all__ = ["AllFailedError", "Interrupted", "RunError", "Search", "SearchResult", "lock_run_dir"]

log = logging.getLogger(__name__)

#: The configuration keys that say where and how to evaluate: never read from a run
#: directory; ``Search.resume`` takes them from its caller.
PARALLEL_KEYS = ("workers", "backend", "scheduler")

#: The values that configuration keys added after 0.3 take when an older run is resumed
#: (so that it keeps the behaviour it started with).
LEGACY_RESUME_DEFAULTS: dict[str, Any] = {"max_val_error": 1.0, "final_schedule": "constant", "final_augment": 0}

EvaluateFn = Callable[[Genome], EvalResult]
MapFn = Callable[[EvaluateFn, Sequence[Genome]], Iterable[EvalResult]]


class RunError(RuntimeError):
    """A run directory is missing, unreadable or already holds another run."""


class AllFailedError(RuntimeError):
    """Every candidate of the first generation failed with the same error class: the
    search stops rather than spend its budget on a task, configuration or installation
    that fails every network (the run directory stays resumable: a resume evaluates the
    first generation again)."""


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (:meth:`Search.request_stop`, e.g. on SIGINT/SIGTERM).

    Everything committed before it is in the run store; ``evokeras resume DIR``
    continues. ``signum`` is the signal's number (``None`` if none)."""

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(f"stopped by signal {signum}" if signum else "stopped")
        self.signum = signum


@dataclass
class SearchResult:
    """What a finished (or stopped) search returns."""

    front: list[Individual]
    logbook: tools.Logbook
    generations_done: int
    evaluations: int
    wall_seconds: float
    stopped_by: str


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"evokeras": __version__}  # this source's, even where an older install's metadata lingers
    for pkg in ("keras", "tensorflow-cpu", "tensorflow", "jax", "deap", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    out["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return out


def lock_run_dir(out_dir: Path, *, create: bool = False) -> Any:
    """Take ``out_dir/.lock`` (``flock``, exclusive): the open file, held until it is
    closed. A search holds it while it lives; ``evokeras plot`` while it draws. Raises
    :class:`RunError` when another process holds it or the directory is unusable
    (``create``: make the directory first)."""
    import fcntl

    try:
        if create:
            out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(out_dir / ".lock", "w")  # noqa: SIM115 - held until closed
    except OSError as exc:
        raise RunError(f"cannot use {out_dir} as a run directory: {exc}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"{out_dir} is in use by another evokeras process") from None
    return handle


class Search:
    """A search run bound to a run directory.

    Args:
        config: the resolved configuration.
        out_dir: the run directory (created; must not already hold a run).
        evaluate: ``genome -> EvalResult``; default an :class:`Evaluator` for the task.
        map_fn: ``(evaluate, genomes) -> iterable of results``, yielded in any order
            (each is committed as soon as it arrives); default: the backend the
            configuration asks for (keys ``workers``, ``backend``, ``scheduler``; see
            :func:`evokeras.engine.parallel.make_backend`), which the search also registers as
            ``toolbox.map`` and closes at the end of :meth:`run`. A ``map_fn`` given
            here is the caller's to close.
        progress: show a progress bar on stderr.
        task: the configured task when the caller has built it already
            (:meth:`SearchConfig.build_task`); built here otherwise.
        callbacks: :class:`~evokeras.engine.callbacks.Callback` objects whose hooks run
            at the start, after each evaluation and generation, and at the end of
            :meth:`run` (e.g. :class:`~evokeras.engine.callbacks.TensorBoard`).
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
        self.config = config
        self.callbacks: tuple[Callback, ...] = tuple(callbacks)
        self.out_dir = Path(out_dir)
        self.task: Task = task if task is not None else config.build_task()
        self.weight_cache = WeightCache(self.out_dir.resolve() / "weights") if config.inherit_weights else None
        self.evaluate = evaluate or Evaluator(
            self.task, config.budget(), config.objectives, seed=config.seed,
            weight_dir=self.weight_cache.directory if self.weight_cache is not None else None,
            settings=config.train_settings(),
        )
        self.progress = progress
        self.toolbox = make_toolbox(self.task, objectives=config.objectives, seed=config.seed)
        self._backend: Backend | None = None
        if map_fn is None:
            self._backend = make_backend(config)
            self.toolbox.register("map", self._backend.map)
            if config.scheduler is not None:  # an unreachable scheduler leaves no run directory behind
                try:
                    self._backend.connect()
                except BackendError as exc:
                    self._backend.close()
                    raise RunError(str(exc)) from exc
        self.map_fn: MapFn = map_fn or self._backend  # type: ignore[assignment]
        self._fidelity_evaluators: dict[float, EvaluateFn] = {}
        #: the final rung's records of the members it put in the front (``final_rung``)
        self.rung_records: dict[str, EvalResult] = {}
        for key in ("multi_fidelity", "final_rung"):
            if getattr(config, key) is not None and not hasattr(self.evaluate, "at_fidelity"):
                raise ConfigError(f"config key {key!r} needs the built-in Evaluator (a custom evaluate was given)")
        self.weights = tuple(float(w) for w in config.objectives.values())
        self._lock = None
        try:
            self._lock = self._take_lock(create=not _resuming)
            self.store = RunStore(self.out_dir / "run.db", create=False) if _resuming else self._create_run_dir()
        except BaseException:
            self._release_lock()
            if self._backend is not None:
                self._backend.close()
            raise
        self._status: dict[str, str] = {}
        self.stop_signal: int | None = None  # set by request_stop()
        self.fit_seconds = 0.0
        self._best: dict[str, float] = {}
        self.max_val_error = config.max_val_error if config.max_val_error is not None else self.task.default_max_val_error
        self._violation: dict[str, float] = {}  # key -> validation error above max_val_error
        self.store.set_meta("max_val_error", self.max_val_error)  # plots draw the same front
        try:
            for _, result in self.store.evaluations():
                if result.objective_names != tuple(config.objectives):
                    raise StoreError(f"run store {self.store.path}: evaluation {result.key!r} has objectives "
                                     f"{list(result.objective_names)}, the run {list(config.objectives)}")
                self._note_best(result)
                self._note_feasibility(result)
        except BaseException:
            self.close()
            raise

    # -- run directory ---------------------------------------------------------------------
    def _take_lock(self, *, create: bool) -> Any:
        """Hold ``DIR/.lock`` while this object lives: one process per run directory."""
        if create and (self.out_dir / "run.db").exists():
            raise RunError(f"{self.out_dir} already holds a run: use `evokeras resume {self.out_dir}`")
        return lock_run_dir(self.out_dir, create=create)

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _create_run_dir(self) -> RunStore:
        """Create ``run.db`` and ``config.json`` -- the configuration with the task's
        :meth:`~evokeras.tasks.base.Task.recipe`, so that a new process rebuilds the same
        task (data in memory is written to the run directory first); on failure remove
        what was created."""
        before = set(self.out_dir.iterdir())
        try:
            spec = self.task.recipe(self.out_dir)
            if spec is not None:
                self.config = dataclasses.replace(self.config, task=spec["task"], task_options=dict(spec["task_options"]))
                self.config.check()
            store = RunStore(self.out_dir / "run.db")
            store.set_meta("objectives", self.config.objectives)
            write_json_atomic(
                self.out_dir / "config.json", {"config": self.config.to_dict(), "versions": _versions()}
            )
        except BaseException as exc:  # a signal included: no half-made run is left behind
            for path in set(self.out_dir.iterdir()) - before:
                if path.is_file():
                    path.unlink(missing_ok=True)
            if isinstance(exc, OSError | StoreError | ConfigError):
                raise RunError(f"cannot create a run in {self.out_dir}: {exc}") from exc
            raise
        return store

    def close(self) -> None:
        """Close the backend (if this search made it), the run store and the lock."""
        if self._backend is not None:
            self._backend.close()
        self.store.close()
        self._release_lock()

    def request_stop(self, signum: int | None = None) -> None:
        """Ask the run to stop: :meth:`check_stop` raises :class:`Interrupted` from now
        on. The search checks it before committing each result and before each
        generation, and :func:`~evokeras.engine.final.finalize` before each member, so a
        stop requested from a signal handler holds even where the handler's own
        exception was swallowed (raised inside a finalizer or a callback)."""
        self.stop_signal = signum if signum is not None else 0

    def check_stop(self) -> None:
        """Raise :class:`Interrupted` once :meth:`request_stop` was called."""
        if self.stop_signal is not None:
            raise Interrupted(self.stop_signal or None)

    def __enter__(self) -> Search:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def resume(cls, out_dir: str | Path, *, parallel: dict[str, Any] | None = None, **kwargs: Any) -> Search:
        """Re-open the run in ``out_dir`` (written by an earlier :class:`Search`).

        ``parallel`` may change how it is evaluated (config keys ``workers``, ``backend``,
        ``scheduler``); nothing else of the stored configuration can change, and the
        backend does not change any result.
        """
        out_dir = Path(out_dir)
        cfg_path = out_dir / "config.json"
        if not (out_dir / "run.db").is_file() or not cfg_path.is_file():
            raise RunError(f"{out_dir} is not a run directory (no run.db/config.json)")
        try:
            stored = read_json(cfg_path, max_bytes=MAX_CONFIG_BYTES)
            if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
                raise ConfigError("expected {\"config\": {...}, ...}")
            # A run directory is data, never instructions: where and how to evaluate (a
            # Dask scheduler runs code in this process through the results it sends)
            # comes from the caller only, never from the stored configuration.
            stored = {**stored["config"], "backend": None, "scheduler": None}
            # Runs written before these keys existed keep their behaviour: no constraint
            # on the front, a constant final learning rate, no augmentation.
            legacy = {k: v for k, v in LEGACY_RESUME_DEFAULTS.items() if k not in stored}
            config = SearchConfig.from_dict({**stored, **legacy})
        except (UnreadableFile, ConfigError) as exc:
            raise RunError(f"cannot read {cfg_path}: {exc}") from exc
        if parallel:
            unknown = set(parallel) - set(PARALLEL_KEYS)
            if unknown:
                raise ConfigError(f"resume can change only workers/backend/scheduler, not {sorted(unknown)[0]!r}")
            config = SearchConfig.from_dict(parallel, base=config)
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

    # -- evaluation ----------------------------------------------------------------------------
    def _evaluate_all(self, individuals: list[Individual], gen: int, bar: Any) -> None:
        """Give every individual its fitness, evaluating the keys the run has not seen
        (after successive halving when ``multi_fidelity`` is on)."""
        results: dict[str, EvalResult] = {}
        todo: list[Individual] = []
        for ind in individuals:
            if ind.key in results:
                continue
            cached = self.store.get_evaluation(ind.key)
            if cached is not None:
                results[ind.key] = cached
            else:
                results[ind.key] = None  # type: ignore[assignment]
                todo.append(ind)
        mf = self.config.multi_fidelity
        if mf is not None and gen > 0:
            mf = {**MULTI_FIDELITY_DEFAULTS, **mf}
            todo, pruned = self._halve(todo, gen, bar, int(mf["eta"]), float(mf["fraction"]))
            results.update(pruned)
        for result in self._map(self.evaluate, todo, gen, bar):
            results[result.key] = result
        for ind in individuals:
            r = results[ind.key]
            ind.fitness.values = r.objectives
            self._status[ind.key] = r.status
            self._note_feasibility(r)

    def _note_feasibility(self, result: EvalResult) -> None:
        """Record by how much an ok, full-fidelity result's validation error passes
        ``max_val_error`` (constrained domination)."""
        if result.ok and result.full and not self._within_limit(result):
            assert self.max_val_error is not None
            self._violation[result.key] = float(result.metrics["val_error"]) - self.max_val_error

    @property
    def infeasible_errors(self) -> list[float]:
        """Validation errors of the ok candidates above ``max_val_error``."""
        assert self.max_val_error is not None or not self._violation
        return [v + (self.max_val_error or 0.0) for v in self._violation.values()]

    def feasible(self, ind: Individual) -> bool:
        """Whether ``ind`` evaluated ok within ``max_val_error`` (it may enter the front)."""
        return self._status.get(ind.key) == "ok" and ind.key not in self._violation

    def _map(self, evaluate: EvaluateFn, todo: list[Individual], gen: int, bar: Any,
             suffix: str = "") -> Iterator[EvalResult]:
        """Evaluate ``todo`` on the backend, committing each result as it arrives (under
        ``key + suffix``), and yield the results."""
        if bar is not None:
            bar.reset(total=len(todo))
            bar.set_description(f"gen {gen}" + (f" {suffix}" if suffix else ""))
        pending = {g.key for g in todo}
        for result in self.map_fn(evaluate, todo):
            self.check_stop()  # a result that finishes after a stop request is abandoned
            if result.key not in pending:
                raise RuntimeError(f"map backend returned an unexpected or repeated result {result.key}")
            pending.discard(result.key)
            self._commit(dataclasses.replace(result, key=result.key + suffix) if suffix else result, gen)
            self.fit_seconds += result.times.get("fit", 0.0) + result.times.get("evaluate", 0.0)
            if not suffix:
                self._note_best(result)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(self._best_text())
            yield result
        if pending:
            raise RuntimeError(f"map backend returned no result for {sorted(pending)}")

    def _halve(self, todo: list[Individual], gen: int, bar: Any, eta: int,
               fraction: float) -> tuple[list[Individual], dict[str, EvalResult]]:
        """Successive halving: evaluate ``todo`` at ``fraction`` of the budget (kept in the
        store as ``<key>@<fraction>``), keep the best ``ceil(n / eta)`` by NSGA-II on those
        comparable figures for the full evaluation; the rest are recorded under their key
        with status ``pruned`` and the worst values (ranked behind every fully evaluated
        individual, never in the front)."""
        if len(todo) < 2:
            return todo, {}
        low = self._evaluate_at(fraction, todo, gen, bar)
        ranked = []
        for ind in todo:
            if low[ind.key].ok:
                probe = to_individual(ind, self.toolbox.fitness_class)
                probe.fitness.values = low[ind.key].objectives
                ranked.append(probe)
        n_keep = min(len(ranked), math.ceil(len(todo) / eta))
        keep = {ind.key for ind in self.toolbox.select(ranked, n_keep)} if n_keep else set()
        pruned = {}
        for ind in todo:
            if ind.key not in keep:
                r = low[ind.key]
                reason = (f"pruned: its fidelity-{fraction:g} evaluation ended {r.status}: {r.error}" if not r.ok
                          else f"pruned by successive halving at fidelity {fraction:g}")
                pruned[ind.key] = dataclasses.replace(
                    r, key=ind.key, status="pruned", error=reason, objectives=worst_values(self.weights))
                self._commit(pruned[ind.key], gen)
        return [ind for ind in todo if ind.key in keep], pruned

    def _evaluate_at(self, fraction: float, todo: list[Individual], gen: int, bar: Any) -> dict[str, EvalResult]:
        """Results of ``todo`` evaluated with ``fraction`` of the budget, by key: from the
        store (``<key>@<fraction>``) where the run has them, else evaluated and stored."""
        if fraction not in self._fidelity_evaluators:  # one per run: workers keep its data loaded
            self._fidelity_evaluators[fraction] = self.evaluate.at_fidelity(fraction)  # type: ignore[attr-defined]
        suffix = f"@{fraction:g}"
        out: dict[str, EvalResult] = {}
        need = []
        for ind in todo:
            cached = self.store.get_evaluation(ind.key + suffix)
            if cached is not None:
                out[ind.key] = cached
            else:
                need.append(ind)
        for result in self._map(self._fidelity_evaluators[fraction], need, gen, bar, suffix):
            out[result.key] = result  # _map yields the plain key (it stores key + suffix)
        return out

    def _final_rung(self, gen: int, bar: Any) -> list[Individual] | None:
        """The last rung (``final_rung``): the most accurate candidates of the run (by
        the first objective; ok, full fidelity, within ``max_val_error``) evaluated again
        with ``factor`` times the budget; returns the Pareto front of those longer
        evaluations (``None`` when none of them ended ok: the search's front stands).
        A resumed run reads the rung's records from the store."""
        rung = {**FINAL_RUNG_DEFAULTS, **(self.config.final_rung or {})}
        sign = 1.0 if self.weights[0] > 0 else -1.0
        pool = [r for _, r in self.store.evaluations() if r.ok and r.full and self._within_limit(r)]
        pool.sort(key=lambda r: (-sign * r.objectives[0], r.key))
        todo = [to_individual(self.task.genome_from_dict(r.genome), self.toolbox.fitness_class)
                for r in pool[: int(rung["candidates"])]]
        log.info("final rung: %d candidates at %g x the evaluation budget", len(todo), float(rung["factor"]))
        results = self._evaluate_at(float(rung["factor"]), todo, gen, bar)
        front = tools.ParetoFront()
        for ind in todo:
            r = results[ind.key]
            if r.ok:
                ind.fitness.values = r.objectives
                self.rung_records[ind.key] = r
                front.update([ind])
        if not len(front):
            log.warning("final rung: no candidate ended ok; the final models come from the search's front")
            return None
        return list(front)

    def _within_limit(self, result: EvalResult) -> bool:
        """Whether ``result``'s validation error is within ``max_val_error`` (or unconstrained)."""
        error = result.metrics.get("val_error")
        return self.max_val_error is None or error is None or float(error) <= self.max_val_error

    def _commit(self, result: EvalResult, gen: int) -> None:
        """Store one evaluation, then tell the callbacks."""
        self.store.add_evaluation(result, gen)
        for callback in self.callbacks:
            callback.on_evaluation(result, gen)

    def _note_best(self, result: EvalResult) -> None:
        if not (result.ok and result.full):
            return
        for name, w, v in zip(result.objective_names, self.weights, result.objectives, strict=True):
            self._best[name] = v if name not in self._best else (max if w > 0 else min)(self._best[name], v)

    def _best_text(self) -> str:
        return " ".join(f"{k}={v:.4g}" for k, v in self._best.items())

    def _select(self, pool: list[Individual], k: int) -> list[Individual]:
        """Constrained NSGA-II (Deb et al. 2002): ok candidates within ``max_val_error`` are
        ranked by NSGA-II; ok candidates above it come after all of them, least violation
        first; failed and pruned candidates last."""
        ranked = [ind for ind in pool if self.feasible(ind)]
        if len(ranked) >= k:
            return self._select_nsga2(ranked, k)
        # then the trained candidates above the limit, least violation first, then the
        # failed and pruned ones (worst values: NSGA-II's order among them)
        over = sorted((ind for ind in pool if ind.key in self._violation), key=lambda ind: self._violation[ind.key])
        rest = [ind for ind in pool if not self.feasible(ind) and ind.key not in self._violation]
        chosen = ranked + over[: k - len(ranked)]
        return chosen + (self._select_nsga2(rest, k - len(chosen)) if len(chosen) < k and rest else [])

    def _select_nsga2(self, pool: list[Individual], k: int) -> list[Individual]:
        """NSGA-II survivors, one copy per genome key while enough distinct genomes exist
        (copies would otherwise crowd out the rest of the population)."""
        seen: set[str] = set()
        unique, copies = [], []
        for ind in pool:
            (copies if ind.key in seen else unique).append(ind)
            seen.add(ind.key)
        if len(unique) >= k:
            return self.toolbox.select(unique, k)
        return unique + self.toolbox.select(copies, k - len(unique))

    # -- variation -----------------------------------------------------------------------------
    def _initial_population(self) -> list[Individual]:
        """Generation 0: the task's reference architectures when the configuration asks
        for them (``reference_architectures``), then random individuals up to ``population``."""
        refs = self.task.reference_genomes() if self.config.reference_architectures else []
        population = [to_individual(g, self.toolbox.fitness_class) for g in refs[: self.config.population]]
        return population + self.toolbox.population(self.config.population - len(population))

    def _vary(self, population: list[Individual]) -> list[Individual]:
        """DEAP's varOr, drawing from the run's numpy generator instead of ``random``."""
        rng, tb, cfg = self.toolbox.rng, self.toolbox, self.config
        offspring = []
        for _ in range(cfg.offspring):
            r = rng.random()
            if r < cfg.cxpb:
                i, j = rng.choice(len(population), size=2, replace=False)
                child, _ = tb.mate(population[int(i)], population[int(j)])
            elif r < cfg.cxpb + cfg.mutpb:
                (child,) = tb.mutate(population[int(rng.integers(len(population)))])
            else:
                child = to_individual(population[int(rng.integers(len(population)))], tb.fitness_class)
            offspring.append(child)
        return offspring

    # -- statistics ------------------------------------------------------------------------------
    def _record(self, gen: int, population: list[Individual], nevals: int, nfailed: int, elapsed: float) -> dict[str, Any]:
        ok = [ind for ind in population if self._status.get(ind.key) == "ok"]
        record: dict[str, Any] = {"gen": gen, "nevals": nevals, "nfailed": nfailed, "elapsed": round(elapsed, 3)}
        for i, name in enumerate(self.config.objectives):
            values = np.array([ind.fitness.values[i] for ind in ok], dtype=float)
            if values.size:
                record[name] = {"min": float(values.min()), "avg": float(values.mean()),
                                "max": float(values.max()), "std": float(values.std())}
            else:
                record[name] = {s: math.nan for s in ("min", "avg", "max", "std")}
        return record

    def _state(self, gen: int, population: list[Individual], front: tools.ParetoFront, elapsed: float) -> dict[str, Any]:
        def dump(ind: Individual) -> dict[str, Any]:
            return {"genome": ind.to_dict(), "fitness": list(ind.fitness.values), "status": self._status.get(ind.key, "ok")}

        return {
            "gen": gen,
            "population": [dump(i) for i in population],
            "front": [dump(i) for i in front],
            "rng": self.toolbox.rng.bit_generator.state,
            "elapsed": elapsed,
            "fit_seconds": self.fit_seconds,
        }

    def _restore(self) -> tuple[int, float, list[Individual], tools.ParetoFront]:
        """The last checkpoint's generation, elapsed seconds, population and front (and
        the run's random state and ``fit_seconds`` set from it); ``(-1, 0, [], empty)``
        before the first. A checkpoint whose genomes, fitness or random state do not fit
        this run raises :class:`StoreError`."""
        checkpoint = self.store.latest_checkpoint()
        front = tools.ParetoFront()
        if checkpoint is None:
            return -1, 0.0, [], front
        self.store.check_search_state(checkpoint)
        try:
            population = self._load(checkpoint["population"])
            front.update(self._load(checkpoint["front"]))
            self.toolbox.rng.bit_generator.state = checkpoint["rng"]
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # GenomeError is a ValueError
            raise StoreError(f"run store {self.store.path}: checkpoint of generation {checkpoint['gen']} "
                             f"does not fit this run: {exc}") from None
        self.fit_seconds = float(checkpoint.get("fit_seconds", 0.0))
        return int(checkpoint["gen"]), float(checkpoint["elapsed"]), population, front

    def _load(self, items: list[dict[str, Any]]) -> list[Individual]:
        out = []
        for item in items:
            ind = to_individual(self.task.genome_from_dict(item["genome"]), self.toolbox.fitness_class)
            if len(item["fitness"]) != len(self.weights):
                raise ValueError(f"{len(item['fitness'])} fitness values for {len(self.weights)} objectives")
            ind.fitness.values = tuple(item["fitness"])
            self._status[ind.key] = item.get("status", "ok")
            out.append(ind)
        return out

    @staticmethod
    def _logbook(records: list[dict[str, Any]]) -> tools.Logbook:
        book = tools.Logbook()
        for r in records:
            book.record(**r)
        return book

    def _drop_weights(self, population: list[Individual]) -> None:
        """Keep cached weights (``inherit_weights``) only of the population: the parents of
        the next generation."""
        if self.weight_cache is not None:
            self.weight_cache.keep_only({ind.key for ind in population})

    def _fail_fast(self, population: list[Individual]) -> None:
        """Raise :class:`AllFailedError` when every candidate of ``population`` failed
        (status ``failed``) with the same error class; the run store keeps the failures and
        notes ``failed_fast`` so that a resume evaluates them again."""
        results = [self.store.get_evaluation(ind.key) for ind in population]
        if not results or any(r is None or r.status != "failed" for r in results):
            return
        classes = {(r.error or "").partition(":")[0].strip() for r in results if r is not None}
        if len(classes) != 1:
            return
        first = results[0]
        assert first is not None
        message = (f"all {len(results)} candidates of generation 0 failed with {classes.pop() or 'the same error'} "
                   f"(the first: {(first.error or '').splitlines()[0][:300]})")
        self.store.set_meta("failed_fast", message)
        raise AllFailedError(message)

    # -- early stop on a verified solution ---------------------------------------------------
    def _solved(self, front: tools.ParetoFront) -> bool:
        """Whether a front member is verified to solve the task (:meth:`Task.verify`).

        Members whose search metrics make them candidates (``task.is_candidate``) are
        verified once each (``task.verify`` on episodes the search never used); the
        outcomes are kept in the run store's meta ``verified`` (so a resumed run neither
        repeats nor forgets them) and the first solved key in ``solved``.
        """
        done: dict[str, Any] = self.store.get_meta("verified") or {}
        for ind in sorted(front, key=lambda i: i.key):
            if ind.key not in done:
                record = self.store.get_evaluation(ind.key)
                if record is None or not record.ok or not self.task.is_candidate(record.metrics):
                    continue
                done[ind.key] = self.task.verify(ind.as_genome(), self.config.seed)
                self.store.set_meta("verified", done)
                log.info("verified %s: %s", ind.key, done[ind.key])
            if done[ind.key]["solved"]:
                self.store.set_meta("solved", ind.key)
                return True
        return False

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Run (or continue) the search until its generations or wall budget are spent."""
        cfg = self.config
        gen, elapsed0, population, front = self._restore()
        if gen >= 0:
            log.info("resuming %s after generation %d", self.out_dir, gen)
        if gen < 0 and self.store.get_meta("failed_fast"):
            # the first generation failed as a whole: evaluate it again (the cause may be fixed)
            self.store.forget_evaluations(generation=0)
            self.store.set_meta("failed_fast", None)
        start = time.perf_counter()
        for callback in self.callbacks:
            callback.on_search_begin(self)
        bar = _progress_bar() if self.progress else None
        stopped_by = "generations"
        try:
            while gen < cfg.generations:
                self.check_stop()
                if gen >= 0 and self._solved(front):
                    stopped_by = "solved"
                    break
                elapsed = elapsed0 + time.perf_counter() - start
                if gen >= 0 and cfg.wall_seconds is not None and elapsed >= cfg.wall_seconds:
                    stopped_by = "wall_seconds"
                    break
                gen += 1
                if gen == 0:
                    offspring = self._initial_population()
                else:
                    offspring = self._vary(population)
                self._evaluate_all(offspring, gen, bar)
                if gen == 0:
                    self._fail_fast(offspring)
                nevals = self.store.count_evaluations(gen)
                nfailed = self.store.count_evaluations(gen, failed=True)
                population = offspring if gen == 0 else self._select(population + offspring, cfg.population)
                front.update([ind for ind in offspring if self.feasible(ind)])
                elapsed = elapsed0 + time.perf_counter() - start
                record = self._record(gen, population, nevals, nfailed, elapsed)
                self.store.end_generation(gen, record, self._state(gen, population, front, elapsed))
                write_logbook_csv(self.out_dir / "logbook.csv", self.store.generations(), list(cfg.objectives))
                self._drop_weights(population)
                for callback in self.callbacks:
                    callback.on_generation(record, list(front))
                log.info("generation %d: %d evaluated, %d failed, front %d", gen, nevals, nfailed, len(front))
            if stopped_by == "generations" and self._solved(front):
                stopped_by = "solved"
            final_front = self._final_rung(gen, bar) if self.config.final_rung is not None and len(front) else None
        finally:
            if bar is not None:
                bar.close()
            if self._backend is not None:
                self._backend.close()
        records = self.store.generations()
        result = SearchResult(
            front=final_front if final_front is not None else list(front),
            logbook=self._logbook(records),
            generations_done=gen,
            evaluations=self.store.count_evaluations(),
            wall_seconds=elapsed0 + time.perf_counter() - start,
            stopped_by=stopped_by,
        )
        for callback in self.callbacks:
            callback.on_search_end(result)
        return result


def write_logbook_csv(path: Path, records: list[dict[str, Any]], objectives: list[str]) -> None:
    """One row per generation and objective: gen, objective, min, avg, max, std, nevals, nfailed."""
    lines = ["gen,objective,min,avg,max,std,nevals,nfailed,elapsed"]
    for r in records:
        for name in objectives:
            s = r[name]
            lines.append(
                f"{r['gen']},{name},{s['min']!r},{s['avg']!r},{s['max']!r},{s['std']!r},"
                f"{r['nevals']},{r['nfailed']},{r['elapsed']}"
            )
    write_text_atomic(path, "\n".join(lines) + "\n")


def _progress_bar() -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=0, unit="eval", dynamic_ncols=True, leave=False)
