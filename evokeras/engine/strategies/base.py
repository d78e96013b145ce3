"""The strategy protocol: a search algorithm that is asked for candidates and told their results.

A :class:`Strategy` keeps its own state (population, random state, whatever its
algorithm needs) and hands it to the engine as a JSON-able :meth:`~Strategy.state`
blob that the run store keeps opaque; :meth:`~Strategy.restore` reads it back. The
engine owns everything else: the run directory, evaluation (plain, successive halving,
the final rung), the wall clock, checkpoints, callbacks. Like Optuna's samplers and
pymoo's ``Algorithm.ask()/tell()``:

* ``ask(n)`` -- ``n`` new individuals (DEAP individuals: genomes with a ``fitness``);
* ``tell(told)`` -- ``[(individual, EvalResult), ...]``: their results (the fitness is
  set already, the result's ``status`` and metrics say the rest);
* ``front`` -- the Pareto front of what it was told (feasible candidates only);
* ``parents`` -- the individuals the next candidates may be varied from (the engine
  keeps their cached weights, drops the rest);
* ``state()`` / ``restore(state)``.

A generational strategy (``asynchronous = False``) is asked for one generation at a
time and told it whole; an asynchronous one is asked for one candidate whenever a
worker is free and told each result as it arrives.

:class:`Standing` is what both need to know of every evaluated key: its status and by
how much it passes the ``max_val_error`` constraint (constrained domination, Deb et al.
2002): :func:`select_constrained` ranks by it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from deap import tools

from evokeras.engine.toolbox import Individual, to_individual
from evokeras.training.records import EvalResult

__all__ = ["Standing", "Strategy", "Told", "dump_individual", "load_individuals", "select_constrained", "select_unique"]

Told = Sequence[tuple[Individual, EvalResult]]


class Standing:
    """Each evaluated key's status and its violation of the error constraint.

    Args:
        max_val_error: the largest error a front member may have (``None``: no constraint).
        error_measure: the metric the constraint reads (the task's declared error measure;
            ``None``: none, no constraint).
    """

    def __init__(self, max_val_error: float | None, error_measure: str | None) -> None:
        self.max_val_error = max_val_error
        self.error_measure = error_measure
        self.status: dict[str, str] = {}
        self.violation: dict[str, float] = {}  # key -> error above max_val_error

    def within_limit(self, result: EvalResult) -> bool:
        """Whether ``result``'s error is within ``max_val_error`` (or unconstrained)."""
        if self.max_val_error is None or self.error_measure is None:
            return True
        error = result.metrics.get(self.error_measure)
        return error is None or float(error) <= self.max_val_error

    def note(self, result: EvalResult) -> None:
        """Record ``result``'s status, and by how much an ok, full-fidelity result passes the limit."""
        self.status[result.key] = result.status
        if result.ok and result.full and not self.within_limit(result):
            assert self.max_val_error is not None
            self.violation[result.key] = float(result.metrics[self.error_measure]) - self.max_val_error

    def feasible(self, ind: Any) -> bool:
        """Whether ``ind`` evaluated ok within ``max_val_error`` (it may enter the front)."""
        return self.status.get(ind.key) == "ok" and ind.key not in self.violation

    @property
    def infeasible_errors(self) -> list[float]:
        """Errors of the ok candidates above ``max_val_error``."""
        return [v + (self.max_val_error or 0.0) for v in self.violation.values()]


def select_unique(select: Callable[[list[Any], int], list[Any]], pool: list[Individual], k: int) -> list[Individual]:
    """``select(pool, k)`` (NSGA-II), one copy per genome key while enough distinct
    genomes exist (copies would otherwise crowd out the rest of the population)."""
    seen: set[str] = set()
    unique, copies = [], []
    for ind in pool:
        (copies if ind.key in seen else unique).append(ind)
        seen.add(ind.key)
    if len(unique) >= k:
        return select(unique, k)
    return unique + select(copies, k - len(unique))


def select_constrained(select: Callable[[list[Any], int], list[Any]], standing: Standing,
                       pool: list[Individual], k: int) -> list[Individual]:
    """Constrained selection: ok candidates within the limit ranked by ``select``; ok
    candidates above it after all of them, least violation first; failed and pruned
    candidates last (``select``'s order among their worst values)."""
    ranked = [ind for ind in pool if standing.feasible(ind)]
    if len(ranked) >= k:
        return select_unique(select, ranked, k)
    over = sorted((ind for ind in pool if ind.key in standing.violation), key=lambda ind: standing.violation[ind.key])
    rest = [ind for ind in pool if not standing.feasible(ind) and ind.key not in standing.violation]
    chosen = ranked + over[: k - len(ranked)]
    return chosen + (select_unique(select, rest, k - len(chosen)) if len(chosen) < k and rest else [])


def dump_individual(ind: Individual, standing: Standing) -> dict[str, Any]:
    """The JSON form of an evaluated individual in a checkpoint."""
    return {"genome": ind.to_dict(), "fitness": list(ind.fitness.values), "status": standing.status.get(ind.key, "ok")}


def load_individuals(items: Any, genome_from_dict: Callable[[Any], Any], fitness_cls: type,
                     standing: Standing) -> list[Individual]:
    """Individuals from their checkpoint form (:func:`dump_individual`); statuses the
    run store does not know are taken from it. Raises ``ValueError``/``TypeError``/
    ``KeyError`` on anything that does not fit."""
    if not isinstance(items, list):
        raise TypeError(f"expected a list of individuals, got {type(items).__name__}")
    out = []
    n_objectives = len(fitness_cls.weights)  # type: ignore[attr-defined]
    for item in items:
        ind = to_individual(genome_from_dict(item["genome"]), fitness_cls)
        fitness = item["fitness"]
        if not isinstance(fitness, list) or len(fitness) != n_objectives:
            raise ValueError(f"{len(fitness) if isinstance(fitness, list) else fitness!r} fitness values "
                             f"for {n_objectives} objectives")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in fitness):
            raise TypeError(f"fitness values must be numbers, got {fitness!r}")
        status = item.get("status", "ok")
        if not isinstance(status, str):
            raise TypeError(f"status must be a string, got {status!r}")
        ind.fitness.values = tuple(fitness)
        standing.status.setdefault(ind.key, status)
        out.append(ind)
    return out


class Strategy(abc.ABC):
    """A search algorithm the engine asks for candidates and tells their results.

    Args:
        toolbox: the run's DEAP toolbox (:func:`~evokeras.engine.toolbox.make_toolbox`):
            ``population``, ``mate``, ``mutate``, ``select`` and its one random source
            ``toolbox.rng`` (a ``numpy.random.Generator``), which the strategy's state keeps.
        standing: statuses and constraint violations of every evaluated key.
        settings: the configuration's ``strategy`` section.
        initial: the genomes generation 0 starts from (reference architectures), may be empty.
    """

    #: the value of the configuration key ``strategy.name`` that selects it
    name: ClassVar[str]
    #: asked for one candidate whenever a worker is free (no generation barrier)
    asynchronous: ClassVar[bool] = False

    def __init__(self, toolbox: Any, standing: Standing, settings: Any, initial: Sequence[Any] = ()) -> None:
        self.toolbox = toolbox
        self.standing = standing
        self.settings = settings
        self.initial = list(initial)
        self.front = tools.ParetoFront()
        #: the share of the search's budget spent, 0 to 1 (generations done over
        #: ``strategy.generations`` or elapsed over ``strategy.wall_seconds``, the larger):
        #: set by the engine after each generation
        self.progress = 0.0

    @abc.abstractmethod
    def ask(self, n: int) -> list[Individual]:
        """``n`` new candidates."""

    @abc.abstractmethod
    def tell(self, told: Told) -> None:
        """The results of candidates it asked for (their fitness is set)."""

    @property
    @abc.abstractmethod
    def parents(self) -> list[Individual]:
        """The individuals the next candidates may be varied from."""

    def forget(self, ind: Individual) -> None:
        """``ind`` will not be told: the engine dropped it (an asynchronous strategy asked
        for a key already in flight). Nothing to forget by default."""
        return None

    def weight_keys(self) -> set[str]:
        """Keys whose cached weights a later candidate may inherit (``evaluation.inherit_weights``)."""
        return {ind.key for ind in self.parents}

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything it needs to continue, as JSON (the random state included)."""

    @abc.abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`'s output; ``ValueError``/``TypeError``/``KeyError``
        when it does not fit this run."""

    # -- shared helpers ------------------------------------------------------------------------
    def _vary_with(self, pick: Callable[[], Individual], mutate: Callable[[Individual], Individual],
                   copy: Callable[[Individual], Individual]) -> Individual:
        """One child as DEAP's varOr makes it, parents drawn by ``pick``: crossover
        (``strategy.cxpb``), ``mutate`` (``strategy.mutpb``) or ``copy`` of a parent."""
        rng, tb, s = self.toolbox.rng, self.toolbox, self.settings
        r = rng.random()
        if r < s.cxpb and len(self.parents) > 1:
            child, _ = tb.mate(pick(), pick())
            return child
        if r < s.cxpb + s.mutpb:
            return mutate(pick())
        return copy(pick())

    def _update_front(self, told: Told) -> None:
        self.front.update([ind for ind, _ in told if self.standing.feasible(ind)])

    def _select(self, pool: list[Individual], k: int) -> list[Individual]:
        return select_constrained(self.toolbox.select, self.standing, pool, k)

    def _dump(self, individuals: Sequence[Individual]) -> list[dict[str, Any]]:
        return [dump_individual(ind, self.standing) for ind in individuals]

    def _load(self, items: Any) -> list[Individual]:
        return load_individuals(items, self.toolbox.task.genome_from_dict, self.toolbox.fitness_class, self.standing)

    def _initial(self, n: int) -> list[Individual]:
        """Generation 0: the initial genomes first, then random individuals up to ``n``."""
        out = [to_individual(g, self.toolbox.fitness_class) for g in self.initial[:n]]
        return out + self.toolbox.population(n - len(out))
