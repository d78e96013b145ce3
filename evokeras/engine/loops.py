"""The two loops that drive a strategy: generational and asynchronous.

:func:`generational` asks a strategy for a generation, evaluates it with the search's
evaluation policy and tells it whole; :func:`asynchronous` asks for one candidate
whenever a worker is free and tells each result as it arrives (no generation barrier).
Both end a generation the same way (:meth:`Search.end_generation
<evokeras.engine.search.Search.end_generation>`): a logbook record (:func:`generation_record`) and a
checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from evokeras.engine.store import RunStore
from evokeras.engine.toolbox import Individual
from evokeras.training.records import EvalResult

if TYPE_CHECKING:
    from evokeras.engine.search import Search

__all__ = ["AllFailedError", "Interrupted", "Progress", "StopRequest", "asynchronous", "fail_fast", "generation_record", "generational"]


#: Copies of a key in flight asked in a row before a drop counts as a candidate asked.
MAX_DROPS = 20


class AllFailedError(RuntimeError):
    """Every candidate of the first generation failed with the same error class: the
    search stops rather than spend its budget on a task, configuration or installation
    that fails every network (the run directory stays resumable: a resume evaluates the
    first generation again)."""


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (:meth:`Search.request_stop
    <evokeras.engine.search.Search.request_stop>`, e.g. on SIGINT/SIGTERM).

    Everything committed before it is in the run store; ``evokeras resume DIR``
    continues. ``signum`` is the signal's number (``None`` if none)."""

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(f"stopped by signal {signum}" if signum else "stopped")
        self.signum = signum


class StopRequest:
    """A stop asked for (from a signal handler): :meth:`check` raises :class:`Interrupted` once it is."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int | None = None) -> None:
        self.signum = signum if signum is not None else 0

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum or None)


class Progress:
    """The progress bar on stderr (when shown), the best value of each objective so far,
    and the seconds spent training and evaluating (``fit_seconds``)."""

    def __init__(self, weights: tuple[float, ...]) -> None:
        self.weights = weights
        self.best: dict[str, float] = {}
        self.bar: Any = None
        self.fit_seconds = 0.0

    def open(self, show: bool) -> None:
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, unit="eval", dynamic_ncols=True, leave=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def describe(self, total: int, text: str) -> None:
        if self.bar is not None:
            self.bar.reset(total=total)
            self.bar.set_description(text)

    def note(self, result: EvalResult) -> None:
        """Keep the best of each objective over the ok, full-budget results."""
        if not (result.ok and result.full):
            return
        for name, w, v in zip(result.objective_names, self.weights, result.objectives, strict=True):
            self.best[name] = v if name not in self.best else (max if w > 0 else min)(self.best[name], v)

    def arrived(self, result: EvalResult, suffix: str) -> None:
        """A result came back from the backend (``suffix``: of another fidelity)."""
        self.fit_seconds += result.times.get("fit", 0.0) + result.times.get("evaluate", 0.0)
        if not suffix:
            self.note(result)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(" ".join(f"{k}={v:.4g}" for k, v in self.best.items()))


def generation_record(gen: int, ok: list[Individual], objectives: list[str], nevals: int, nfailed: int,
                      elapsed: float) -> dict[str, Any]:
    """A logbook record: counts, and each objective's min/avg/max/std over ``ok``."""
    record: dict[str, Any] = {"gen": gen, "nevals": nevals, "nfailed": nfailed, "elapsed": round(elapsed, 3)}
    for i, name in enumerate(objectives):
        values = np.array([ind.fitness.values[i] for ind in ok], dtype=float)
        stats = (float(values.min()), float(values.mean()), float(values.max()), float(values.std())) \
            if values.size else (math.nan,) * 4
        record[name] = dict(zip(("min", "avg", "max", "std"), stats, strict=True))
    return record


def fail_fast(store: RunStore, keys: Iterable[str]) -> None:
    """Raise :class:`AllFailedError` when every candidate of the first generation
    failed (status ``failed``) with the same error class; the run store keeps the
    failures and notes ``failed_fast`` so that a resume evaluates them again."""
    results = [store.get_evaluation(key) for key in keys]
    if not results or any(r is None or r.status != "failed" for r in results):
        return
    classes = {(r.error or "").partition(":")[0].strip() for r in results if r is not None}
    if len(classes) != 1:
        return
    first = results[0]
    assert first is not None
    message = (f"all {len(results)} candidates of generation 0 failed with {classes.pop() or 'the same error'} "
               f"(the first: {(first.error or '').splitlines()[0][:300]})")
    store.set_meta("failed_fast", message)
    raise AllFailedError(message)


def generational(search: Search, gen: int, clock: Callable[[], float]) -> tuple[int, str]:
    """Ask a generation, evaluate it with the policy, tell it whole, checkpoint; the
    last generation done and why it stopped."""
    s, strategy = search.config.strategy, search.strategy
    while gen < s.generations:
        search.stop.check()
        reason = search.stop_reason(gen, clock)
        if reason is not None:
            return gen, reason
        gen += 1
        batch = strategy.ask(s.population if gen == 0 else s.offspring)
        search.meter.describe(len(batch), f"gen {gen}")
        results = search.policy.evaluate(search.evals, batch, gen)
        batch = [ind for ind in batch if ind.key in results]  # all, unless a solution ended the generation
        for ind in batch:
            ind.fitness.values = results[ind.key].objectives
        if gen == 0:
            fail_fast(search.store, (ind.key for ind in batch))
        strategy.tell([(ind, results[ind.key]) for ind in batch])
        search.told += len(batch)
        search.end_generation(gen, clock())
    return gen, "generations"


def asynchronous(search: Search, gen: int, clock: Callable[[], float]) -> tuple[int, str]:
    """Ask one candidate whenever a worker is free, tell each result as it arrives; a
    generation ends every ``strategy.offspring`` results (the first after
    ``strategy.population``). ``strategy.population + strategy.generations *
    strategy.offspring`` candidates are asked in all; a key the run has evaluated is told
    its stored result at once, and a key already in flight is dropped and asked again
    (counted only after :data:`MAX_DROPS` drops in a row, so that a tiny space ends)."""
    s, strategy = search.config.strategy, search.strategy
    target = s.population + s.generations * s.offspring
    asked, in_flight, told_before, drops = search.told, {}, search.told, 0
    reason: list[str] = []

    def generation_of(told: int) -> int:  # the generation of the result told as number told + 1
        return 0 if told < s.population else 1 + (told - s.population) // s.offspring

    def tell(ind: Individual, result: EvalResult) -> None:
        nonlocal gen
        ind.fitness.values = result.objectives
        strategy.tell([(ind, result)])
        search.told += 1
        if search.told >= s.population and (search.told - s.population) % s.offspring == 0:
            gen = generation_of(search.told - 1)
            if gen == 0:
                fail_fast(search.store, (p.key for p in strategy.parents))
            search.end_generation(gen, clock())
            if not reason and search.solved():
                reason.append("solved")

    def candidates() -> Iterator[Individual]:
        nonlocal asked, drops
        while asked < target and not reason:
            if asked >= s.population and s.wall_seconds is not None and clock() >= s.wall_seconds:
                reason.append("wall_seconds")
                return
            [ind] = strategy.ask(1)
            if ind.key in in_flight:
                strategy.forget(ind)
                drops += 1
                asked += drops > MAX_DROPS
                continue
            asked, drops = asked + 1, 0
            cached = search.evals.cached(ind.key)
            if cached is not None:
                tell(ind, cached)
            else:
                in_flight[ind.key] = ind
                yield ind

    search.stop.check()
    if gen >= 0:
        reason.extend(r for r in [search.stop_reason(gen, clock)] if r)
    search.meter.describe(target - asked, "steady state")
    for result in search.evals.stream(candidates(), lambda: generation_of(search.told)):
        tell(in_flight.pop(result.key), result)
    if search.told > max(told_before, s.population) and (search.told - s.population) % s.offspring:  # a part generation
        gen = generation_of(search.told - 1)
        search.end_generation(gen, clock())
    return gen, reason[0] if reason else "generations"
