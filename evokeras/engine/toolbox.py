"""DEAP integration: fitness and individual classes, and :func:`make_toolbox`.

Fitness classes are module attributes named by their weights (``Fitness_m1_m1`` for two
minimised objectives, ``Fitness_p1_m1`` for maximise-then-minimise); they are created on
first use by the module's ``__getattr__``, so they pickle by name and unpickle in a
fresh ``spawn`` process, and no ``creator.create`` writes globals at run time.

Individuals are :class:`Individual` objects: immutable :class:`~evokeras.genomes.network.Genome`
instances carrying a DEAP ``fitness`` (:class:`EditIndividual`: edit programs of a
specialization task, :class:`~evokeras.genomes.edits.EditProgram`). The DEAP adapters follow DEAP's ``return ind,``
convention by returning *new* individuals (DEAP's algorithms use the returned objects).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from deap import base, tools

from evokeras.genomes.edits import EditProgram
from evokeras.genomes.network import Genome
from evokeras.nets.decode import decode
from evokeras.tasks import Task, make_task
from evokeras.training.records import DEFAULT_OBJECTIVES

__all__ = ["DEFAULT_OBJECTIVES", "EditIndividual", "Individual", "fitness_class", "make_toolbox", "to_individual"]

# name -> +1 (maximise) or -1 (minimise)
_FITNESS_NAME = re.compile(r"^Fitness((?:_[pm][0-9pen]+)+)$")
_FITNESS_CACHE: dict[tuple[float, ...], type[base.Fitness]] = {}


def _weight_token(w: float) -> str:
    """``-1.0`` -> ``m1``, ``0.5`` -> ``p0p5``, ``1e-05`` -> ``p1en05``: reversible."""
    sign = "p" if w > 0 else "m"
    a = abs(w)
    text = str(int(a)) if a.is_integer() and a < 1e15 else repr(a)
    return sign + text.replace(".", "p").replace("-", "n").replace("+", "")


def fitness_class(weights: Sequence[float]) -> type[base.Fitness]:
    """The DEAP fitness class with these ``weights`` (one per objective; sign = direction)."""
    weights = tuple(float(w) for w in weights)
    if not weights or any(w == 0 for w in weights):
        raise ValueError(f"fitness weights must be non-zero numbers, got {weights!r}")
    cls = _FITNESS_CACHE.get(weights)
    if cls is None:
        name = "Fitness" + "".join("_" + _weight_token(w) for w in weights)
        cls = type(name, (base.Fitness,), {"weights": weights, "__module__": __name__})
        _FITNESS_CACHE[weights] = cls
    return cls


def __getattr__(name: str) -> Any:
    match = _FITNESS_NAME.match(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    tokens = match.group(1).strip("_").split("_")
    try:
        weights = [(1 if t[0] == "p" else -1) * float(t[1:].replace("p", ".").replace("n", "-")) for t in tokens]
    except ValueError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return fitness_class(weights)


class _Fit:
    """What every individual adds to its genome: a DEAP ``fitness`` and the key of the
    ``parent`` it was varied from (``None`` for a random individual; weight inheritance
    reads it) and, optionally, the ``seed_key`` whose evaluation seeds it shares (common
    random numbers: strategy ``"es"`` evaluates an antithetic pair on its centre's
    episodes). Individuals compare and hash as their genome."""

    fitness: base.Fitness
    parent: str | None
    seed_key: str | None

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        new = to_individual(self, type(self.fitness), parent=self.parent, seed_key=self.seed_key)
        new.fitness = copy.deepcopy(self.fitness, memo)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_individual, (self.as_genome(), type(self.fitness), self.fitness.values,  # type: ignore[attr-defined]
                                      self.parent, self.seed_key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key}, size={len(self)}, fitness={self.fitness.values})"  # type: ignore[attr-defined]


class Individual(_Fit, Genome):
    """A :class:`Genome` with a DEAP ``fitness`` and its ``parent`` key."""


class EditIndividual(_Fit, EditProgram):
    """An :class:`~evokeras.genomes.edits.EditProgram` (specialization) with a DEAP ``fitness``
    and its ``parent`` key."""


#: individual class of each genome type (module attributes: they pickle by name)
INDIVIDUAL_CLASSES: dict[type, type] = {Genome: Individual, EditProgram: EditIndividual}


def to_individual(genome: Any, fitness_cls: type[base.Fitness], *, parent: str | None = None,
                  seed_key: str | None = None) -> Any:
    """Wrap ``genome`` (a :class:`Genome` or :class:`~evokeras.genomes.edits.EditProgram`) as an
    individual with an invalid (empty) fitness."""
    plain = genome.as_genome()
    cls = INDIVIDUAL_CLASSES[type(plain)]
    ind = cls(**{f.name: getattr(plain, f.name) for f in dataclasses.fields(plain)})
    ind.fitness = fitness_cls()
    ind.parent = parent
    ind.seed_key = seed_key
    return ind


def _rebuild_individual(genome: Any, fitness_cls: type[base.Fitness], values: tuple[float, ...],
                        parent: str | None = None, seed_key: str | None = None) -> Any:
    ind = to_individual(genome, fitness_cls, parent=parent, seed_key=seed_key)
    if values:
        ind.fitness.values = values
    return ind


def _objective_weights(objectives: Sequence[str] | dict[str, float] | None, task: Task) -> dict[str, float]:
    if objectives is None:
        objectives = task.default_objectives
    if isinstance(objectives, dict):
        return {str(k): float(v) for k, v in objectives.items()}
    known = {**DEFAULT_OBJECTIVES, **task.objective_directions}
    out = {}
    for name in objectives:
        if name not in known and name not in ("params", "flops"):
            raise ValueError(
                f"unknown objective {name!r}: pass a dict {{name: weight}} or one of {sorted({*known, 'params', 'flops'})}"
            )
        out[name] = known.get(name, -1.0)
    return out


def make_toolbox(
    task: str | Task,
    *,
    objectives: Sequence[str] | dict[str, float] | None = None,
    seed: int | None = None,
    mutation_weights: dict[str, float] | None = None,
    evaluate: Callable[..., tuple[float, ...]] | None = None,
) -> base.Toolbox:
    """A DEAP toolbox for evolving networks for ``task``.

    Registered: ``individual``, ``population(n)``, ``mate``, ``mutate``, ``select``
    (NSGA-II), ``decode``, ``clone``, ``map`` (serial) and, when given, ``evaluate``.
    The variation operators draw from one ``numpy.random.Generator`` seeded with
    ``seed`` (``toolbox.rng``). The toolbox works unchanged with DEAP's algorithms,
    e.g. ``deap.algorithms.eaMuPlusLambda`` (which also draws from Python's ``random``:
    seed that too for a reproducible DEAP run).

    Args:
        task: a registered task name (``"mnist"``) or a task object.
        objectives: objective names (directions known) or ``{name: weight}``; default
            validation error and execution time, both minimised.
        seed: seed of the operators' random source.
        mutation_weights: relative weights of the mutations (see :func:`evokeras.variation.network.mutate`).
        evaluate: a function ``individual -> tuple of objective values`` to register.

    Example:
        >>> import random
        >>> from deap import algorithms, tools
        >>> tb = make_toolbox("mnist", seed=1)
        >>> tb.register("evaluate", lambda ind: (len(ind.layers) / 10, float(ind.training.learning_rate)))
        >>> random.seed(1)
        >>> pop = tb.population(8)
        >>> pop, log = algorithms.eaMuPlusLambda(pop, tb, 8, 8, 0.5, 0.5, 2, halloffame=tools.ParetoFront(), verbose=False)
    """
    task = make_task(task)
    space = task.space
    weights = _objective_weights(objectives, task)
    fitness_cls = fitness_class(list(weights.values()))
    rng = np.random.default_rng(seed)

    def individual() -> Individual:
        return to_individual(task.random_genome(rng, space), fitness_cls)

    def population(n: int) -> list[Individual]:
        return [individual() for _ in range(n)]

    def mate(a: Individual, b: Individual) -> tuple[Individual, Individual]:
        ca, cb = task.crossover(a, b, rng, space)
        return to_individual(ca, fitness_cls, parent=a.key), to_individual(cb, fitness_cls, parent=b.key)

    def mutate_(ind: Individual) -> tuple[Individual]:
        child = task.mutate(ind, rng, space, weights=mutation_weights)
        return (to_individual(child, fitness_cls, parent=ind.key),)

    def clone(ind: Individual) -> Individual:
        return copy.deepcopy(ind)

    def serial_map(func: Callable[[Any], Any], *iterables: Iterable[Any]) -> list[Any]:
        return list(map(func, *iterables))

    tb = base.Toolbox()
    tb.register("individual", individual)
    tb.register("population", population)
    tb.register("mate", mate)
    tb.register("mutate", mutate_)
    tb.register("select", tools.selNSGA2)
    tb.register("clone", clone)
    tb.register("map", serial_map)
    tb.register("decode", functools.partial(decode, task=task))
    if evaluate is not None:
        tb.register("evaluate", evaluate)
    tb.task = task
    tb.space = space
    tb.rng = rng
    tb.objectives = tuple(weights)
    tb.weights = tuple(weights.values())
    tb.fitness_class = fitness_cls
    return tb

