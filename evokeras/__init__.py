"""evokeras: DEAP-based multi-objective evolution of Keras 3 networks.

Public API::

    from evokeras import Genome, LayerGene, TrainingGenes, SearchSpace, default_space
    from evokeras import make_task, make_toolbox, decode
"""

from __future__ import annotations

from .analysis import Analysis, analyze
from .decode import decode
from .genome import Genome, GenomeError, LayerGene, TrainingGenes
from .space import SearchSpace, SpaceError, default_space
from .tasks import Task, make_task, register_task
from .toolbox import Individual, make_toolbox

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "Genome",
    "GenomeError",
    "Individual",
    "LayerGene",
    "SearchSpace",
    "SpaceError",
    "Task",
    "TrainingGenes",
    "__version__",
    "analyze",
    "decode",
    "default_space",
    "make_task",
    "make_toolbox",
    "register_task",
]

