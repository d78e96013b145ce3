"""evokeras: DEAP-based multi-objective evolution of Keras 3 networks.

Public API::

    from evokeras import Genome, LayerGene, TrainingGenes, SearchSpace, default_space
    from evokeras import make_task, make_toolbox, decode
    from evokeras import CellGenome, NodeGene, draw_cell       # evolved recurrent cells
    from evokeras.layers import SkipStepCell                   # their Keras cell
"""

from __future__ import annotations

from .analysis import Analysis, analyze
from .cell import CellGenome, CellLimits, NodeGene, draw_cell
from .decode import decode
from .genome import Genome, GenomeError, LayerGene, TrainingGenes
from .space import SearchSpace, SpaceError, default_space
from .tasks import Task, make_task, register_task
from .toolbox import Individual, make_toolbox

__version__ = "0.2.0"

__all__ = [
    "Analysis",
    "CellGenome",
    "CellLimits",
    "Genome",
    "GenomeError",
    "Individual",
    "LayerGene",
    "NodeGene",
    "SearchSpace",
    "SpaceError",
    "Task",
    "TrainingGenes",
    "__version__",
    "analyze",
    "decode",
    "draw_cell",
    "default_space",
    "make_task",
    "make_toolbox",
    "register_task",
]

