"""Lineage: NSGA-II whose children continue their parents' training (config
``strategy.name: "lineage"``, with ``evaluation.inherit_weights``).

A child starts from its parent's trained weights through the network morphism the
mutation made (:mod:`evokeras.nets.morph`) and trains for the evaluation budget more,
on its own window of the training split: training accumulates along each lineage, and
each record keeps the lineage's steps and seconds (``lineage_steps``,
``lineage_seconds``) beside its own (``train_steps``). The final models continue from
the front members' weights (``final.from_search``), so the search's training is the
final training's first part. It combines, on NSGA-II's Pareto selection:

* LEMONADE's children by (approximate) network morphism (Elsken, Metzen and Hutter,
  "Efficient multi-objective neural architecture search via Lamarckian evolution",
  ICLR 2019): widen, deepen by an identity layer (the growing mutations ``widen`` and
  ``deepen`` are favoured: a grown child starts as accurate as its parent), add a skip
  that starts at zero, and shrink by importance, each keeping (about) what the parent
  computes;
* Population Based Training's exploit and explore (Jaderberg et al. 2017) as
  *promotion*: a child that varies nothing but its learning rate (scaled by 0.5, 0.8
  or 1.25) takes its parent's weights as they are and trains them further. The share
  of such children is ``1 - cxpb - mutpb``.

Parents are chosen by binary tournament. As the search goes on (:attr:`Strategy.progress`,
the share of its generations or of its wall time spent) the tournament decides more
and more often by validation error (the first objective without one) instead of at random, so
that training moves toward the accurate end of the front: with probability
``progress`` the child of a tournament is bred from the more accurate of two parents.
"""

from __future__ import annotations

import dataclasses

from evokeras.engine.strategies.nsga2 import NSGA2
from evokeras.engine.toolbox import Individual, to_individual
from evokeras.variation.mutations import LINEAGE_MUTATION_WEIGHTS

__all__ = ["Lineage"]

#: The learning-rate factors of a promotion (PBT's explore step).
PROMOTION_FACTORS = (0.5, 0.8, 1.25)


class Lineage(NSGA2):
    """NSGA-II with Lamarckian children (morphisms, promotion) and a tournament that
    favours accuracy as the search goes on."""

    name = "lineage"

    def _pick(self) -> Individual:
        """A parent: the better of two by validation error (the first objective where it
        is not one) with probability ``progress``, else the first of them. With
        ``strategy.wall_seconds`` the progress follows the clock, so a rerun of the same
        seed may pick differently."""
        rng, population = self.toolbox.rng, self.population
        i, j = (int(v) for v in rng.integers(len(population), size=2))
        a, b = population[i], population[j]
        names = list(self.toolbox.objectives)
        k = names.index("val_error") if "val_error" in names else 0
        if rng.random() < self.progress and self.standing.feasible(b) and (
                not self.standing.feasible(a) or b.fitness.wvalues[k] > a.fitness.wvalues[k]):
            return b
        return a

    def _vary(self) -> Individual:
        return self._vary_with(self._pick, self.mutate, self.promote)

    def mutate(self, parent: Individual) -> Individual:
        """A mutated child of ``parent``, the growing morphisms (``widen``, ``deepen``)
        favoured (:data:`~evokeras.variation.mutations.LINEAGE_MUTATION_WEIGHTS`)."""
        tb = self.toolbox
        child = tb.task.mutate(parent, tb.rng, tb.space, weights=LINEAGE_MUTATION_WEIGHTS)
        return to_individual(child, tb.fitness_class, parent=parent.key)

    def promote(self, parent: Individual) -> Individual:
        """``parent`` to train further: the same network, its learning rate scaled by a
        factor of :data:`PROMOTION_FACTORS` (clipped to the space), inheriting all its
        weights. Where no factor changes the rate (both bounds reached), a mutation."""
        rng, tb = self.toolbox.rng, self.toolbox
        lo, hi = tb.space.learning_rate
        t = parent.training
        factors = [f for f in PROMOTION_FACTORS if min(max(t.learning_rate * f, lo), hi) != t.learning_rate]
        if not factors:
            return self.mutate(parent)
        lr = min(max(float(f"{t.learning_rate * factors[int(rng.integers(len(factors)))]:.3g}"), lo), hi)
        genome = parent.as_genome().replace(training=dataclasses.replace(t, learning_rate=lr))
        return to_individual(genome, tb.fitness_class, parent=parent.key)
