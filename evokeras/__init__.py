"""evokeras: DEAP-based multi-objective evolution of Keras 3 networks.

Public API::

    from evokeras import Genome, LayerGene, TrainingGenes, SearchSpace, default_space
    from evokeras import make_task, make_toolbox, decode
    from evokeras import Search, SearchConfig, Budget                # the search engine
    from evokeras import Callback, TensorBoard, export_optuna        # watching a run
    from evokeras import CellGenome, NodeGene, draw_cell             # evolved recurrent cells
    from evokeras.nets.layers import SkipStepCell                   # their Keras cell
    from evokeras import specialize, EditProgram, EditSpace          # specialization of trained networks
    from evokeras import prune                                       # structured pruning of a Keras 3 model
    from evokeras import search, from_arrays, from_text, from_gym    # search on your own task

Layers, from bottom to top (docs/architecture.md): ``genomes`` (plain data), ``variation``
(operators), ``nets`` (Keras graphs), ``data``, ``training`` (budgets, evaluator, fit paths),
``tasks``, ``engine`` (config, toolbox, search, store, final models), ``app`` (studies, CLI,
report, plots).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from evokeras._meta import MissingExtraError, RenamedPackage, __version__, quiet_backends
from evokeras.genomes.analysis import Analysis, analyze
from evokeras.genomes.cell import CellGenome, CellLimits, NodeGene
from evokeras.genomes.drawing import draw_cell
from evokeras.genomes.edits import EditProgram, EditSpace
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace, SpaceError, default_space
from evokeras.training.records import Budget

# Before anything can import TensorFlow (none of the modules above does): no C++ log lines
# or absl banner on stderr unless TF_CPP_MIN_LOG_LEVEL asks for them. Every evokeras
# module, in worker processes too, runs this file first.
quiet_backends()

# ``evokeras.build`` (up to 0.10) is ``evokeras.nets`` now: the old imports work, with a warning.
if not any(isinstance(f, RenamedPackage) for f in sys.meta_path):
    sys.meta_path.insert(0, RenamedPackage("evokeras.build", "evokeras.nets", "0.11.0"))

if TYPE_CHECKING:
    from evokeras.api import (
        SearchError,
        SearchRun,
        decode,
        from_arrays,
        from_gym,
        from_text,
        search,
        specialize,
    )
    from evokeras.engine.callbacks import Callback, MLflow, TensorBoard
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.search import Search
    from evokeras.engine.toolbox import EditIndividual, Individual, make_toolbox
    from evokeras.results.export import export_optuna
    from evokeras.tasks import Task, make_task, register_task
    from evokeras.training.pruning import PruningError, prune

#: Names whose modules import Keras, loaded on first use: ``import evokeras`` (and the
#: genomes and operators) stays Keras-free for users of the DEAP operators alone.
_LAZY = {
    "decode": "evokeras.api",
    "specialize": "evokeras.api",
    "prune": "evokeras.training.pruning",
    "PruningError": "evokeras.training.pruning",
    "search": "evokeras.api",
    "SearchError": "evokeras.api",
    "SearchRun": "evokeras.api",
    "from_arrays": "evokeras.api",
    "from_gym": "evokeras.api",
    "from_text": "evokeras.api",
    "SearchConfig": "evokeras.engine.config",
    "Callback": "evokeras.engine.callbacks",
    "TensorBoard": "evokeras.engine.callbacks",
    "MLflow": "evokeras.engine.callbacks",
    "export_optuna": "evokeras.results.export",
    "Search": "evokeras.engine.search",
    "EditIndividual": "evokeras.engine.toolbox",
    "Individual": "evokeras.engine.toolbox",
    "make_toolbox": "evokeras.engine.toolbox",
    "Task": "evokeras.tasks",
    "make_task": "evokeras.tasks",
    "register_task": "evokeras.tasks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'evokeras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "Analysis",
    "Budget",
    "Callback",
    "CellGenome",
    "CellLimits",
    "EditIndividual",
    "EditProgram",
    "EditSpace",
    "Genome",
    "GenomeError",
    "Individual",
    "LayerGene",
    "MLflow",
    "MissingExtraError",
    "NodeGene",
    "PruningError",
    "Search",
    "SearchConfig",
    "SearchError",
    "SearchRun",
    "SearchSpace",
    "SpaceError",
    "Task",
    "TensorBoard",
    "TrainingGenes",
    "__version__",
    "analyze",
    "decode",
    "draw_cell",
    "export_optuna",
    "from_arrays",
    "from_gym",
    "from_text",
    "default_space",
    "make_task",
    "make_toolbox",
    "prune",
    "register_task",
    "search",
    "specialize",
]

