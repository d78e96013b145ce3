"""evokeras: DEAP-based multi-objective evolution of Keras 3 networks.

Public API::

    from evokeras import Genome, LayerGene, TrainingGenes, SearchSpace, default_space
    from evokeras import make_task, make_toolbox, decode
    from evokeras import CellGenome, NodeGene, draw_cell       # evolved recurrent cells
    from evokeras.layers import SkipStepCell                   # their Keras cell
    from evokeras import specialize, EditProgram, EditSpace    # specialization of trained networks
"""

from __future__ import annotations

from .analysis import Analysis, analyze
from .cell import CellGenome, CellLimits, NodeGene, draw_cell
from .decode import decode
from .edits import EditProgram, EditSpace
from .genome import Genome, GenomeError, LayerGene, TrainingGenes
from .space import SearchSpace, SpaceError, default_space
from .specialization import specialize
from .tasks import Task, make_task, register_task
from .toolbox import EditIndividual, Individual, make_toolbox

__version__ = "0.3.0"

__all__ = [
    "Analysis",
    "CellGenome",
    "CellLimits",
    "EditIndividual",
    "EditProgram",
    "EditSpace",
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
    "specialize",
]

