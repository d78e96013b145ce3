"""NSGA-II, (mu + lambda), with the ``max_val_error`` constraint: the generational strategy.

Each generation the engine asks for ``strategy.offspring`` children (generation 0: the
``strategy.population`` initial individuals), evaluates them all and tells the results
at once. Children come from DEAP's varOr (crossover, mutation or copy), drawing from
the run's one random source; the next population is chosen from parents and children
by constrained NSGA-II (:func:`~evokeras.engine.strategies.base.select_constrained`).
"""

from __future__ import annotations

from typing import Any

from evokeras.engine.strategies.base import Strategy, Told
from evokeras.engine.toolbox import Individual, to_individual

__all__ = ["NSGA2"]


class NSGA2(Strategy):
    """Generational NSGA-II (Deb et al. 2002) with constrained domination."""

    name = "nsga2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.population: list[Individual] = []
        self._started = False  # generation 0 was told

    def ask(self, n: int) -> list[Individual]:
        if not self._started:
            return self._initial(n)
        return [self._vary() for _ in range(n)]

    def _vary(self) -> Individual:
        """One child as DEAP's varOr makes it, drawing from ``toolbox.rng``."""
        rng, tb, s, population = self.toolbox.rng, self.toolbox, self.settings, self.population
        r = rng.random()
        if r < s.cxpb:
            i, j = rng.choice(len(population), size=2, replace=False)
            child, _ = tb.mate(population[int(i)], population[int(j)])
            return child
        if r < s.cxpb + s.mutpb:
            (child,) = tb.mutate(population[int(rng.integers(len(population)))])
            return child
        return to_individual(population[int(rng.integers(len(population)))], tb.fitness_class)

    def tell(self, told: Told) -> None:
        offspring = [ind for ind, _ in told]
        if not self._started:
            self.population, self._started = offspring, True
        else:
            self.population = self._select(self.population + offspring, self.settings.population)
        self._update_front(told)

    @property
    def parents(self) -> list[Individual]:
        return list(self.population)

    def state(self) -> dict[str, Any]:
        return {"population": self._dump(self.population), "rng": self.toolbox.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:
        self.population = self._load(state["population"])
        self.toolbox.rng.bit_generator.state = state["rng"]
        self._started = True
