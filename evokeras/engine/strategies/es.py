"""Weight ES: OpenAI-ES on the evolved weights of one architecture, NSGA-II around it
(config ``strategy.name: "es"``, settings ``strategy.es``); for tasks whose genomes carry
their weights (the control tasks).

Each generation after the first is made of

* the **centre** -- the mean of the ES, a genome of the centre's architecture carrying
  the weight vector ``theta`` -- evaluated once it moved (so it can enter the front and
  be verified; unmoved, its stored result is told again);
* **antithetic pairs** ``theta +/- sigma * eps`` (:mod:`evokeras.variation.es`), each
  evaluated on the centre's episodes (common random numbers: the pair's difference is the
  policies', not the episodes'); after
  they are told, their returns (the first objective) are shaped into centred ranks --
  ties broken by novelty -- and ``theta`` takes one Adam step up the search gradient
  (Salimans et al. 2017);
* a share ``strategy.es.architecture_share`` of NSGA-II's children (the task's own
  crossover and mutation, architecture included, from the population NSGA-II keeps):
  whenever one with a new architecture returns more than the centre did, the ES moves
  to it (its architecture, its weights, a fresh Adam).

**When selection has no signal** -- every return of a generation the same, as in
sparse-reward tasks before the first success -- three things happen: the ranks follow
novelty alone (each candidate's behaviour, the task's ``behaviour`` metric, against an
archive of the behaviours seen: Lehman and Stanley's novelty search; the ES then moves
towards what it has not done yet); ``sigma`` doubles (up to ``8 * strategy.es.sigma``);
and after ``strategy.es.flat_generations`` such generations in a row the ES *restarts*
from a new random genome (a new architecture, fresh weights), keeping the widened ``sigma``. Once returns
differ, ``sigma`` shrinks back by a factor 0.8 a generation to ``strategy.es.sigma``.

All of it -- centre, ``theta``, ``sigma``, Adam's moments, the flat count, the novelty
archive -- is the strategy's state in the checkpoint: a resumed run continues it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from evokeras.engine.strategies.base import Told
from evokeras.engine.strategies.nsga2 import NSGA2
from evokeras.engine.toolbox import Individual, to_individual
from evokeras.variation import es as E

__all__ = ["ES_DEFAULTS", "WeightES"]

log = logging.getLogger(__name__)

#: ``strategy.es`` keys not given take these values (:class:`~evokeras.engine.config.ESSettings`).
ES_DEFAULTS: dict[str, Any] = {"sigma": 0.1, "learning_rate": 0.03, "weight_decay": 0.005,
                               "architecture_share": 0.25, "flat_generations": 3, "novelty": True}
#: ``sigma`` grows by this factor each flat generation, up to ``MAX_WIDEN`` times the setting.
WIDEN, MAX_WIDEN, SHRINK = 2.0, 8.0, 0.8
#: the novelty archive keeps this many behaviours (the oldest go first); k nearest neighbours.
ARCHIVE_SIZE, NOVELTY_K = 500, 10


class WeightES(NSGA2):
    """OpenAI-ES on the weights of a centre architecture; NSGA-II's children explore
    architectures; novelty, wider steps and restarts when returns are flat."""

    name = "es"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.es = {**ES_DEFAULTS, **(getattr(self.settings, "es", None) or {})}
        self.centre: Any = None  # the centre's genome (architecture; its weights are theta)
        self.theta = np.zeros(0)
        self.sigma = float(self.es["sigma"])
        self.adam = E.Adam(0)
        self.centre_value = -np.inf  # the centre's (or the individual it moved to) first objective
        self.flat = 0
        self.restarts = 0
        self.archive: list[list[float]] = []
        self._pairs: list[tuple[str, str]] = []
        self._centre_key = ""
        self._eps = np.zeros((0, 0))

    # -- asking ----------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Individual]:
        if not self._started:
            return self._initial(n)
        tb = self.toolbox
        centre = self._with(self.theta)  # asked every generation (evaluated once: then from the store)
        self._centre_key = centre.key
        out: list[Individual] = [centre]
        explore = min(n - len(out), int(round(float(self.es["architecture_share"]) * n)))
        pairs = (n - len(out) - explore) // 2
        explore = n - len(out) - 2 * pairs
        out += [self._vary() for _ in range(explore)]
        self._eps = E.antithetic(tb.rng, pairs, self.theta.size)
        self._pairs = []
        for eps in self._eps:  # a pair runs its centre's episodes: common random numbers
            plus, minus = (self._with(self.theta + s * self.sigma * eps, centre.key) for s in (1.0, -1.0))
            self._pairs.append((plus.key, minus.key))
            out += [plus, minus]
        return out

    def _with(self, theta: np.ndarray, seed_key: str | None = None) -> Individual:
        genome = self.toolbox.task.with_weight_vector(self.centre, theta)
        return to_individual(genome, self.toolbox.fitness_class, seed_key=seed_key)

    # -- telling ---------------------------------------------------------------------------------
    def tell(self, told: Told) -> None:
        first = not self._started
        known = {ind.key for ind in self.population}  # a copy of one of them cannot move the centre
        super().tell(told)
        value = {ind.key: self._value(ind) for ind, _ in told}
        behaviour = self._behaviours(told)
        novel = self._novelty(behaviour)
        values = np.array(list(value.values()))
        flat = len(values) > 1 and bool(np.all(values == values[0]))
        if first:
            best = self._best(told, value, novel)
            self._move_to(best if np.isfinite(value[best.key]) else self._fresh(), value=value[best.key])
        else:
            self._step(value, novel)
            if self._centre_key in value:
                self.centre_value = value[self._centre_key]
            paired = {k for pair in self._pairs for k in pair} | {self._centre_key}
            others = [(ind, r) for ind, r in told if ind.key not in paired and ind.key not in known
                      and ind.layers != self.centre.layers]  # new architectures (not copies, not the centre's)
            if others:
                best = self._best(others, value, novel)
                if value[best.key] > self.centre_value:
                    self._move_to(best)
        self._adapt(flat)
        self.archive = (self.archive + [list(b) for b in behaviour.values()])[-ARCHIVE_SIZE:]
        log.debug("es: centre %.4g (best told %.4g), sigma %.3g, flat %d, restarts %d",
                  self.centre_value, max(values, default=-np.inf), self.sigma, self.flat, self.restarts)

    def _value(self, ind: Individual) -> float:
        """The first objective, larger = better; failed candidates lowest."""
        if self.standing.status.get(ind.key) != "ok":
            return -np.inf
        return float(ind.fitness.wvalues[0])

    def _behaviours(self, told: Told) -> dict[str, np.ndarray]:
        if not self.es["novelty"]:
            return {}
        out = {}
        for ind, result in told:
            b = result.metrics.get("behaviour")
            if isinstance(b, list) and b and all(isinstance(x, int | float) for x in b):
                out[ind.key] = np.asarray(b, dtype=np.float64)
        sizes = {b.size for b in out.values()} | {len(b) for b in self.archive}
        return out if len(sizes) == 1 else {}

    def _novelty(self, behaviour: dict[str, np.ndarray]) -> dict[str, float]:
        """Each told behaviour's novelty against the archive and the rest of the batch."""
        if not behaviour:
            return {}
        keys = list(behaviour)
        batch = np.stack([behaviour[k] for k in keys])
        scores = {}
        for i, key in enumerate(keys):
            others = np.concatenate([np.asarray(self.archive).reshape(-1, batch.shape[1]), np.delete(batch, i, 0)])
            scores[key] = float(E.novelty(batch[i : i + 1], others, NOVELTY_K)[0])
        return scores

    def _best(self, told: Told, value: dict[str, float], novel: dict[str, float]) -> Individual:
        return max((ind for ind, _ in told), key=lambda ind: (value[ind.key], novel.get(ind.key, 0.0)))

    def _step(self, value: dict[str, float], novel: dict[str, float]) -> None:
        """One Adam step of ``theta`` from the pairs' shaped returns (ties: novelty)."""
        if not self._pairs:
            return
        keys = [k for pair in self._pairs for k in pair]
        ranks = E.lexicographic_ranks(np.array([value.get(k, -np.inf) for k in keys]),
                                      np.array([novel.get(k, 0.0) for k in keys]))
        plus, minus = ranks[0::2], ranks[1::2]
        self.theta = self.adam.ascend(self.theta, E.gradient(self._eps, plus, minus, self.sigma))

    def _adapt(self, flat: bool) -> None:
        """Wider steps while flat, a restart after ``flat_generations`` of them; back to
        ``sigma`` once returns differ."""
        base = float(self.es["sigma"])
        if not flat:
            self.flat = 0
            self.sigma = max(base, self.sigma * SHRINK)
            return
        self.flat += 1
        self.sigma = min(base * MAX_WIDEN, self.sigma * WIDEN)
        if self.flat >= int(self.es["flat_generations"]):
            self._move_to(self._fresh(), value=-np.inf)
            self.restarts += 1
            self.flat = 0

    def _fresh(self) -> Individual:
        tb = self.toolbox
        return to_individual(tb.task.random_genome(tb.rng, tb.space), tb.fitness_class)

    def _move_to(self, ind: Individual, value: float | None = None) -> None:
        tb = self.toolbox
        self.centre = ind.as_genome().replace(weights={})
        self.theta = tb.task.weight_vector(ind.as_genome())
        self.adam = E.Adam(self.theta.size, learning_rate=float(self.es["learning_rate"]),
                           weight_decay=float(self.es["weight_decay"]))
        self.centre_value = self._value(ind) if value is None else value

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state = super().state()
        state["es"] = {"centre": self.centre.to_dict() if self.centre is not None else None,
                       "theta": self.theta.tolist(), "sigma": self.sigma, "adam": self.adam.state(),
                       "centre_value": None if not np.isfinite(self.centre_value) else self.centre_value,
                       "flat": self.flat, "restarts": self.restarts, "archive": self.archive}
        return state

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        es = state["es"]
        task = self.toolbox.task
        self.centre = task.genome_from_dict(es["centre"]) if es["centre"] is not None else None
        self.theta = np.asarray(es["theta"], dtype=np.float64)
        if self.centre is not None:  # the vector must fit the architecture
            task.with_weight_vector(self.centre, self.theta)
        self.sigma = float(es["sigma"])
        self.adam = E.Adam.from_state(es["adam"])
        if self.adam.m.size != self.theta.size:
            raise ValueError(f"Adam's moments have {self.adam.m.size} values, theta {self.theta.size}")
        self.centre_value = -np.inf if es["centre_value"] is None else float(es["centre_value"])
        self.flat, self.restarts = int(es["flat"]), int(es["restarts"])
        self.archive = [list(map(float, b)) for b in es["archive"]]
