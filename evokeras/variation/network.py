"""Variation operators on genomes: pure functions with an explicit random source.

Every function takes a genome (never changed), a ``numpy.random.Generator`` and a
bound :class:`~evokeras.genomes.space.SearchSpace` (``task.space``), and returns new genomes
that :func:`repair` has made valid and decodable for the space's task: structure
valid, choices inside the space, spatial size never below ``min_spatial``, layer
count and parameters within the limits.

The operator set follows the usual neuro-evolution repertoire on a variable-length
layer list (Miikkulainen et al. 2017, "Evolving Deep Neural Networks"; Real et al. 2017,
"Large-Scale Evolution of Image Classifiers"): add/remove layer, change a
hyperparameter or activation, add/remove a skip link, change training genes, mutate
the skip-step cell of a recurrent gene (:func:`evokeras.variation.cell.mutate_cell`), and
one-point crossover on the layer sequence with uniform crossover of training genes
(recurrent genes move with their cells).
For DEAP's in-place ``return ind,`` convention see :mod:`evokeras.engine.toolbox`.

Example:
    >>> import numpy as np
    >>> from evokeras.genomes.space import default_space
    >>> space = default_space("image").replace(input_shape=(28, 28, 1), n_outputs=10)
    >>> rng = np.random.default_rng(0)
    >>> parent = random_genome(rng, space)
    >>> child = mutate(parent, rng, space)
    >>> space.check(child)  # every offspring is valid

The operators live in modules by role and are all importable from here:
:mod:`evokeras.variation.random_genes` (random genes and genomes),
:mod:`evokeras.variation.mutations` (the mutations and :func:`mutate`),
:mod:`evokeras.variation.genome_repair` (:func:`repair`) and
:mod:`evokeras.variation.layer_list` (the layer-list edits they share); crossover is
defined here.
"""

from __future__ import annotations

import numpy as np

from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import SearchSpace
from evokeras.variation.cell import crossover_cells
from evokeras.variation.genome_repair import repair
from evokeras.variation.layer_list import first_dense as _first_dense
from evokeras.variation.layer_list import last_spatial as _last_spatial
from evokeras.variation.mutations import DEFAULT_MUTATION_WEIGHTS as DEFAULT_MUTATION_WEIGHTS
from evokeras.variation.mutations import (
    MUTATIONS,
    add_layer,
    add_skip,
    change_activation,
    change_cell,
    change_hyperparameter,
    change_training,
    mutate,
    remove_layer,
    remove_skip,
)
from evokeras.variation.mutations import Mutation as Mutation
from evokeras.variation.random_genes import IMAGE_FEATURE_SIZE as IMAGE_FEATURE_SIZE
from evokeras.variation.random_genes import IMAGE_FLATTEN_SHARE as IMAGE_FLATTEN_SHARE
from evokeras.variation.random_genes import random_genome, random_layer
from evokeras.variation.random_genes import random_training as random_training

__all__ = [
    "MUTATIONS",
    "add_layer",
    "add_skip",
    "change_activation",
    "change_cell",
    "change_hyperparameter",
    "change_training",
    "crossover",
    "mutate",
    "random_genome",
    "random_layer",
    "remove_layer",
    "remove_skip",
    "repair",
]


# -- crossover ------------------------------------------------------------------------------
def crossover(
    a: Genome, b: Genome, rng: np.random.Generator, space: SearchSpace
) -> tuple[Genome, Genome]:
    """One-point crossover of the layer sequences, uniform crossover of training genes.

    A cut ``i`` in ``a`` and ``j`` in ``b`` give ``a[:i] + b[j:]`` and ``b[:j] + a[i:]``;
    when a head already holds a dense gene, the other cut is moved past the other
    parent's last conv/pool gene so that no conv/pool follows a dense gene. Skip links
    inside the tail keep pointing at the same genes; links into the dropped part are
    removed. The reduction comes from either parent at random. When the cut gives back
    the two parents (short genomes), the cells of recurrent genes at the same index are
    crossed instead (:func:`evokeras.variation.cell.crossover_cells`).
    """
    a, b = a.as_genome(), b.as_genome()
    i = int(rng.integers(len(a.layers) + 1))
    j_low = _last_spatial(b.layers) + 1 if _first_dense(a.layers) < i else 0
    j = int(rng.integers(j_low, len(b.layers) + 1)) if j_low <= len(b.layers) else len(b.layers)
    if _first_dense(b.layers) < j and _last_spatial(a.layers) >= i:
        i = _last_spatial(a.layers) + 1

    def splice(head: Genome, cut_h: int, tail: Genome, cut_t: int) -> tuple[LayerGene, ...]:
        moved = tuple(
            layer.replace(skips=tuple(s - cut_t + cut_h for s in layer.skips if s >= cut_t))
            for layer in tail.layers[cut_t:]
        )
        return head.layers[:cut_h] + moved

    ta, tb = a.training, b.training
    swap = rng.random(3) < 0.5
    fields = ("optimizer", "learning_rate", "batch_size")
    ca = {f: getattr(tb if s else ta, f) for f, s in zip(fields, swap, strict=True)}
    cb = {f: getattr(ta if s else tb, f) for f, s in zip(fields, swap, strict=True)}
    reduce_a, reduce_b = (b.reduce, a.reduce) if rng.random() < 0.5 else (a.reduce, b.reduce)
    layers_a, layers_b = splice(a, i, b, j), splice(b, j, a, i)
    if {layers_a, layers_b} <= {a.layers, b.layers}:  # the cut gave back the parents
        layers_a, layers_b = _cross_cells(a.layers, b.layers, rng, space)
    child_a = Genome(layers_a, reduce=reduce_a, training=TrainingGenes(**ca))
    child_b = Genome(layers_b, reduce=reduce_b, training=TrainingGenes(**cb))
    return repair(child_a, space), repair(child_b, space)


def _cross_cells(
    a: tuple[LayerGene, ...], b: tuple[LayerGene, ...], rng: np.random.Generator, space: SearchSpace
) -> tuple[tuple[LayerGene, ...], tuple[LayerGene, ...]]:
    """Cross the cells of the recurrent genes at the same index of both parents
    (:func:`evokeras.variation.cell.crossover_cells`); other genes stay with their parent."""
    la, lb = list(a), list(b)
    for k in range(min(len(la), len(lb))):
        if la[k].kind == lb[k].kind == "recurrent":
            cell_a, cell_b = la[k].cell, lb[k].cell
            assert cell_a is not None and cell_b is not None  # recurrent genes always have a cell
            ca, cb = crossover_cells(cell_a, cell_b, rng, space.cell_limits())
            la[k], lb[k] = la[k].replace(cell=ca), lb[k].replace(cell=cb)
    return tuple(la), tuple(lb)
