"""Evaluation policies: how a strategy's candidates are evaluated, apart from the loop.

:class:`Evaluations` evaluates candidates against the run store: a key the run has
evaluated is never evaluated again, and each result is committed (and given to the
callbacks) as soon as it arrives. On it sit the policies, one small interface
(:meth:`EvaluationPolicy.evaluate`, ``individuals -> {key: result}``):

* :class:`Plain` -- every new key with the evaluation budget;
* :class:`SuccessiveHalving` -- new keys first with a fraction of the budget (stored as
  ``<key>@<fraction>``), the best ``1/eta`` of them with the full budget, the others
  recorded ``pruned`` with the worst values (key ``evaluation.multi_fidelity``);
* :class:`FinalRung` -- after the search, the most accurate candidates of the run again
  with ``factor`` times the budget (``<key>@<factor>``); the final models are chosen from
  the Pareto front of these longer evaluations (key ``evaluation.final_rung``).
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from deap import tools

from evokeras.engine.store import RunStore
from evokeras.engine.strategies.base import Standing
from evokeras.engine.toolbox import Individual, to_individual
from evokeras.training.protocol import EvaluateFunction
from evokeras.training.records import EvalResult, worst_values

__all__ = ["EvaluationPolicy", "Evaluations", "FinalRung", "Plain", "SuccessiveHalving", "make_policy"]

log = logging.getLogger(__name__)

MapFn = Callable[[EvaluateFunction, Iterable[Any]], Iterable[EvalResult]]


class Evaluations:
    """Candidates evaluated on a map backend against the run store.

    Args:
        store: the run store (cache and record of every evaluation).
        evaluate: the evaluation function (:class:`~evokeras.training.protocol.EvaluateFunction`).
        map_fn: ``(evaluate, individuals) -> results`` as they finish, consuming
            ``individuals`` lazily (the backends of :mod:`evokeras.engine.parallel`).
        standing: told every full-budget result (statuses, constraint violations).
        callbacks: their ``on_evaluation(record, generation)`` runs after each commit.
        meter: told each result the backend returns (:meth:`~evokeras.engine.loops.Progress.arrived`).
        stop: checked before each commit (:class:`~evokeras.engine.loops.StopRequest`).

    Attributes:
        halt: ``None``, or called with each result of a :meth:`batch` once committed; when
            it returns ``True`` (the search verified that result solves the task), no
            further candidate of that batch is pulled -- those in flight finish -- and
            :meth:`batch` returns the results it has.
    """

    def __init__(self, store: RunStore, evaluate: EvaluateFunction, map_fn: MapFn, standing: Standing, *,
                 callbacks: Sequence[Any], meter: Any, stop: Any) -> None:
        self.store = store
        self.evaluate = evaluate
        self.map_fn = map_fn
        self.standing = standing
        self.callbacks = callbacks
        self.meter = meter
        self.stop = stop
        self.halt: Callable[[EvalResult], bool] | None = None
        self._fidelity: dict[float, EvaluateFunction] = {}

    def cached(self, key: str) -> EvalResult | None:
        return self.store.get_evaluation(key)

    def commit(self, result: EvalResult, gen: int, suffix: str = "") -> None:
        """Store one result (under ``key + suffix``), then tell the standing and the callbacks."""
        stored = dataclasses.replace(result, key=result.key + suffix) if suffix else result
        self.store.add_evaluation(stored, gen)
        if not suffix:
            self.standing.note(result)
        for callback in self.callbacks:
            callback.on_evaluation(stored, gen)

    def stream(self, individuals: Iterable[Individual], gen: int | Callable[[], int], *,
               evaluate: EvaluateFunction | None = None, suffix: str = "",
               halt: Callable[[EvalResult], bool] | None = None) -> Iterator[EvalResult]:
        """Evaluate ``individuals`` (pulled lazily, distinct keys) on the backend,
        committing each result as it arrives under ``key + suffix`` in generation
        ``gen`` (or ``gen()`` at commit time), and yield the results (plain keys); once
        ``halt(result)`` is true, pull no more."""
        pending: set[str] = set()
        halted = False

        def pull() -> Iterator[Individual]:
            for ind in individuals:
                if halted:
                    return
                pending.add(ind.key)
                yield ind

        for result in self.map_fn(evaluate or self.evaluate, pull()):
            self.stop.check()  # a result that finishes after a stop request is abandoned
            if result.key not in pending:
                raise RuntimeError(f"map backend returned an unexpected or repeated result {result.key}")
            pending.discard(result.key)
            self.commit(result, gen() if callable(gen) else gen, suffix)
            self.meter.arrived(result, suffix)
            if halt is not None and not halted:
                halted = halt(result)
            yield result
        if pending:
            raise RuntimeError(f"map backend returned no result for {sorted(pending)}")

    def batch(self, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        """The results of ``individuals`` by key: from the store where the run has them, else
        evaluated (after a :attr:`halt`, only those that were)."""
        out: dict[str, EvalResult] = {}
        todo = []
        for ind in individuals:
            if ind.key in out:
                continue
            cached = self.cached(ind.key)
            if cached is not None:
                out[ind.key] = cached
            else:
                out[ind.key] = None  # type: ignore[assignment]
                todo.append(ind)
        out.update({r.key: r for r in self.stream(todo, gen, halt=self.halt)})
        return {key: result for key, result in out.items() if result is not None}

    def at_fidelity(self, fraction: float, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        """Results of ``individuals`` with ``fraction`` of the budget, by plain key: from
        the store (``<key>@<fraction>``) where the run has them, else evaluated and stored."""
        if fraction not in self._fidelity:  # one per run: workers keep its data loaded
            self._fidelity[fraction] = self.evaluate.at_fidelity(fraction)
        suffix = f"@{fraction:g}"
        out: dict[str, EvalResult] = {}
        need = []
        for ind in individuals:
            cached = self.cached(ind.key + suffix)
            if cached is not None:
                out[ind.key] = cached
            else:
                need.append(ind)
        for result in self.stream(need, gen, evaluate=self._fidelity[fraction], suffix=suffix):
            out[result.key] = result
        return out


class EvaluationPolicy(abc.ABC):
    """How a batch of candidates is evaluated."""

    @abc.abstractmethod
    def evaluate(self, evals: Evaluations, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        """The result of every individual, by key (committed to the store)."""


class Plain(EvaluationPolicy):
    """Every new key with the evaluation budget."""

    def evaluate(self, evals: Evaluations, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        return evals.batch(individuals, gen)


@dataclasses.dataclass(frozen=True)
class SuccessiveHalving(EvaluationPolicy):
    """Successive halving in each generation after the first: new keys at ``fraction`` of
    the budget, the best ``ceil(n / eta)`` by ``select`` (NSGA-II on those comparable
    figures) with the full budget; the rest ``pruned`` with the worst values (ranked
    behind every fully evaluated individual, never in the front)."""

    eta: int
    fraction: float
    select: Callable[[list[Any], int], list[Any]]
    weights: tuple[float, ...]

    def evaluate(self, evals: Evaluations, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        if gen == 0:
            return evals.batch(individuals, gen)
        new: dict[str, Individual] = {}
        for ind in individuals:
            if ind.key not in new and evals.cached(ind.key) is None:
                new[ind.key] = ind
        if len(new) < 2:
            return evals.batch(individuals, gen)
        todo = list(new.values())
        low = evals.at_fidelity(self.fraction, todo, gen)
        ranked = []
        for ind in todo:
            if low[ind.key].ok:
                probe = to_individual(ind, type(ind.fitness))
                probe.fitness.values = low[ind.key].objectives
                ranked.append(probe)
        n_keep = min(len(ranked), math.ceil(len(todo) / self.eta))
        keep = {ind.key for ind in self.select(ranked, n_keep)} if n_keep else set()
        for ind in todo:
            if ind.key not in keep:
                r = low[ind.key]
                reason = (f"pruned: its fidelity-{self.fraction:g} evaluation ended {r.status}: {r.error}" if not r.ok
                          else f"pruned by successive halving at fidelity {self.fraction:g}")
                evals.commit(dataclasses.replace(r, key=ind.key, status="pruned", error=reason,
                                                 objectives=worst_values(self.weights)), gen)
        return evals.batch(individuals, gen)


@dataclasses.dataclass(frozen=True)
class FinalRung(EvaluationPolicy):
    """The last rung: candidates evaluated again with ``factor`` times the budget."""

    candidates: int
    factor: float

    def evaluate(self, evals: Evaluations, individuals: Sequence[Individual], gen: int) -> dict[str, EvalResult]:
        return evals.at_fidelity(self.factor, individuals, gen)

    def choose(self, evals: Evaluations, genome_from_dict: Callable[[Any], Any], fitness_cls: type,
               sign: float, always: Sequence[str] = ()) -> list[Individual]:
        """The ``candidates`` best of the run by the first objective (``sign`` +1 when it
        is maximised): ok, full fidelity, within the error limit; ties by key. The keys
        ``always`` (the reference architectures) join them wherever they were evaluated
        ok, whatever their rank: short evaluations may not rank them."""
        pool = [r for _, r in evals.store.evaluations() if r.ok and r.full and evals.standing.within_limit(r)]
        pool.sort(key=lambda r: (-sign * r.objectives[0], r.key))
        keep = set(always)
        chosen = pool[: self.candidates] + [r for r in pool[self.candidates:] if r.key in keep]
        return [to_individual(genome_from_dict(r.genome), fitness_cls) for r in chosen]

    def front(self, evals: Evaluations, todo: Sequence[Individual], gen: int) -> tuple[list[Individual], dict[str, EvalResult]]:
        """The Pareto front of ``todo``'s longer evaluations (empty when none ended ok),
        and the records of its members."""
        log.info("final rung: %d candidates at %g x the evaluation budget", len(todo), self.factor)
        results = self.evaluate(evals, todo, gen)
        front = tools.ParetoFront()
        records = {}
        for ind in todo:
            r = results[ind.key]
            if r.ok:
                ind.fitness.values = r.objectives
                records[ind.key] = r
                front.update([ind])
        return list(front), {ind.key: records[ind.key] for ind in front}


def make_policy(multi_fidelity: dict[str, Any] | None, select: Callable[[list[Any], int], list[Any]],
                weights: tuple[float, ...]) -> EvaluationPolicy:
    """The policy the configuration's ``evaluation.multi_fidelity`` asks for (defaults filled)."""
    if multi_fidelity is None:
        return Plain()
    return SuccessiveHalving(int(multi_fidelity["eta"]), float(multi_fidelity["fraction"]), select, weights)
