"""Asynchronous steady-state evolution: regularized evolution with Pareto tournaments.

No generation barrier: the engine asks for one candidate whenever a worker is free and
tells each result as it arrives, so no worker waits for the slowest candidate of a
generation. The strategy (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019, made multi-objective):

* the first ``strategy.population`` candidates are the initial individuals (reference
  architectures, then random ones);
* each later candidate is varied (crossover, mutation or copy, with ``strategy.cxpb``
  and ``strategy.mutpb``) from the winner of a tournament: a random sample of a quarter
  of the population, ranked by constrained NSGA-II (Pareto rank, then crowding);
* a told candidate joins the population and the *oldest* member leaves (aging: a
  network stays only as long as its descendants keep winning, so one lucky evaluation
  cannot hold the population);
* the front keeps every feasible candidate ever told that no other dominates.

The engine counts ``strategy.population + strategy.generations * strategy.offspring``
candidates in all (as many as NSGA-II evaluates at most), and writes a checkpoint and a
logbook record every ``strategy.offspring`` results. Candidates in flight at a
checkpoint are kept in its state and asked again first on resume (the run store already
has those that finished).
"""

from __future__ import annotations

from typing import Any

from evokeras.engine.strategies.base import Strategy, Told
from evokeras.engine.toolbox import Individual, to_individual

__all__ = ["SteadyState"]


class SteadyState(Strategy):
    """Regularized (aging) evolution with Pareto tournaments, asked one candidate at a time."""

    name = "steady_state"
    asynchronous = True
    #: the tournament samples this share of the population (at least 2)
    sample_share = 0.25

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.population: list[Individual] = []  # oldest first
        self._queue: list[Individual] | None = None  # initial individuals not yet asked
        self._replay: list[Individual] = []  # in flight at the checkpoint resumed from
        self._pending: dict[str, Individual] = {}  # asked, not yet told

    # -- asking ------------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Individual]:
        out = []
        for _ in range(n):
            ind = self._next()
            self._pending.setdefault(ind.key, ind)  # a copy of a key in flight is dropped by the engine
            out.append(ind)
        return out

    def _next(self) -> Individual:
        if self._replay:
            return self._replay.pop(0)
        if self._queue is None:
            self._queue = self._initial(self.settings.population)
        if self._queue:
            return self._queue.pop(0)
        if not self.population:  # more workers than the population: keep them busy
            return self.toolbox.population(1)[0]
        return self._vary()

    def _tournament(self) -> Individual:
        rng, pop = self.toolbox.rng, self.population
        size = min(len(pop), max(2, round(self.sample_share * len(pop))))
        sample = [pop[int(i)] for i in rng.choice(len(pop), size=size, replace=False)]
        return self._select(sample, 1)[0]

    def _vary(self) -> Individual:
        tb = self.toolbox
        return self._vary_with(self._tournament, lambda parent: tb.mutate(parent)[0],
                               lambda parent: to_individual(parent, tb.fitness_class))

    # -- telling -------------------------------------------------------------------------------------
    def tell(self, told: Told) -> None:
        for ind, _ in told:
            self._pending.pop(ind.key, None)
            self.population.append(ind)
            if len(self.population) > self.settings.population:
                self.population.pop(0)  # the oldest leaves
        self._update_front(told)

    def forget(self, ind: Individual) -> None:
        if self._pending.get(ind.key) is ind:
            del self._pending[ind.key]

    @property
    def parents(self) -> list[Individual]:
        return list(self.population)

    def weight_keys(self) -> set[str]:
        """The population's, and those of every candidate asked and not yet told (a result
        that arrived is saved before it is told) and of their parents."""
        waiting = [*self._pending.values(), *self._replay]
        return super().weight_keys() | {ind.key for ind in waiting} | {ind.parent for ind in waiting if ind.parent}

    # -- state ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        def genomes(inds: list[Individual]) -> list[dict[str, Any]]:
            return [{"genome": ind.to_dict(), "parent": ind.parent} for ind in inds]

        return {
            "population": self._dump(self.population),
            "queue": genomes(self._queue) if self._queue is not None else None,
            "pending": genomes(self._replay + list(self._pending.values())),
            "rng": self.toolbox.rng.bit_generator.state,
        }

    def restore(self, state: dict[str, Any]) -> None:
        def genomes(items: Any) -> list[Individual]:
            if not isinstance(items, list):
                raise TypeError(f"expected a list of genomes, got {type(items).__name__}")
            fit = self.toolbox.fitness_class
            return [to_individual(self.toolbox.task.genome_from_dict(i["genome"]), fit, parent=i.get("parent"))
                    for i in items]

        self.population = self._load(state["population"])
        self._queue = None if state["queue"] is None else genomes(state["queue"])
        self._replay = genomes(state["pending"])
        self._pending = {}
        self.toolbox.rng.bit_generator.state = state["rng"]
