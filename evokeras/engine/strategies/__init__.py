"""Search strategies: algorithms the engine asks for candidates and tells their results.

:class:`~evokeras.engine.strategies.base.Strategy` is the protocol; the configuration key
``strategy.name`` picks one of :data:`STRATEGIES`. ``docs/architecture.md`` ("How to add a
search strategy") walks through writing one.
"""

from __future__ import annotations

from evokeras.engine.strategies.base import Standing, Strategy, Told
from evokeras.engine.strategies.es import WeightES
from evokeras.engine.strategies.lineage import Lineage
from evokeras.engine.strategies.nsga2 import NSGA2
from evokeras.engine.strategies.steady_state import SteadyState

__all__ = ["NSGA2", "Lineage", "STRATEGIES", "Standing", "SteadyState", "Strategy", "Told", "WeightES", "register_strategy"]

#: ``strategy.name`` -> strategy class
STRATEGIES: dict[str, type[Strategy]] = {NSGA2.name: NSGA2, SteadyState.name: SteadyState, Lineage.name: Lineage,
                                      WeightES.name: WeightES}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Make ``cls`` selectable as ``strategy.name = cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not isinstance(getattr(cls, "name", None), str):
        raise TypeError(f"register_strategy expects a Strategy subclass with a name, got {cls!r}")
    STRATEGIES[cls.name] = cls
    return cls
