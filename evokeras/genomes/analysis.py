"""Shape, parameter and FLOP analysis of a genome, without building a Keras model.

The figures match what :func:`evokeras.nets.decode` builds: ``count_params()`` of the
decoded model equals :attr:`Analysis.params` (a test checks it). FLOPs count a
multiply-add as two operations for convolutions, dense layers and projections, and
one operation per element for batch normalization, pooling and merges. A recurrent
gene counts its kernels' multiply-adds at every time step (``T x sum(2 x in x out)``),
not its gates' element-wise work.

Tasks that predict every time step (``sequence_output``) never reduce: dense genes and
the head act on the last axis of every step, and :attr:`Analysis.params` then also
counts the task's stem (``stem_params``, e.g. an Embedding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evokeras.genomes.cell import NODE_GATES, CellGenome
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene

__all__ = ["Analysis", "TensorShape", "analyze", "cell_cost"]


@dataclass(frozen=True)
class TensorShape:
    """A tensor shape without the batch axis: spatial sizes then channels."""

    spatial: tuple[int, ...]
    channels: int

    @property
    def size(self) -> int:
        return math.prod(self.spatial) * self.channels


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyze` found.

    Attributes:
        shapes: the output shape of every gene, in order.
        layer_params: parameters of every gene (including its merge projections).
        params: total parameters of the decoded model (head and stem included).
        flops: approximate floating-point operations of one forward pass of one sample.
        head_params: parameters of the task head.
        min_spatial: the smallest spatial size reached (``None`` without spatial axes).
    """

    shapes: tuple[TensorShape, ...]
    layer_params: tuple[int, ...]
    params: int
    flops: int
    head_params: int
    min_spatial: int | None


def _merge(
    main: TensorShape, others: Sequence[TensorShape], merge: str
) -> tuple[TensorShape, int, int]:
    """Shape, params and flops of merging ``others`` into ``main``."""
    params = flops = 0
    channels = main.channels
    n = math.prod(main.spatial)
    for other in others:
        if merge == "add":
            if other.channels != main.channels:
                params += other.channels * main.channels
                flops += 2 * n * other.channels * main.channels
            flops += n * main.channels
        else:
            channels += other.channels
    return TensorShape(main.spatial, channels), params, flops


def reduced(shape: TensorShape, reduce: str) -> TensorShape:
    """The flat shape after the spatial-to-dense reduction."""
    if not shape.spatial:
        return shape
    if reduce == "flatten":
        return TensorShape((), shape.size)
    return TensorShape((), shape.channels)


def cell_cost(cell: CellGenome, in_channels: int) -> tuple[int, int]:
    """Parameters and multiply-add FLOPs of one step of a skip-step cell.

    One kernel per node input (rows: ``in_channels`` for node 0's step input, else
    ``units``; columns: gates x ``units``) and one bias per node (``(2, 3u)`` for gru).
    """
    params = flops = 0
    units = cell.units
    for j, node in enumerate(cell.nodes):
        width = NODE_GATES[node.type] * units
        for spec in cell.node_inputs(j):
            rows = in_channels if spec[0] == "x" else units
            params += rows * width
            flops += 2 * rows * width
        params += (2 if node.type == "gru" else 1) * width
    return params, flops


def _apply(
    layer: LayerGene, x: TensorShape, *, per_step: bool = False
) -> tuple[TensorShape, int, int]:
    """Output shape, params and flops of one gene's operation on ``x``.

    ``per_step``: a dense gene may meet spatial axes and acts on the last one.
    """
    kind = layer.kind
    n = math.prod(x.spatial)
    if kind == "dense":
        assert layer.units is not None
        if x.spatial and not per_step:
            raise GenomeError("a dense gene met a tensor with spatial axes")
        params = x.channels * layer.units + layer.units
        return TensorShape(x.spatial, layer.units), params, 2 * n * x.channels * layer.units
    if kind == "recurrent":
        assert layer.cell is not None
        if len(x.spatial) != 1:
            raise GenomeError(
                "a recurrent gene needs a (time, channels) tensor, "
                f"got {len(x.spatial)} spatial axes"
            )
        params, step_flops = cell_cost(layer.cell, x.channels)
        return TensorShape(x.spatial, layer.cell.units), params, x.spatial[0] * step_flops
    if layer.is_conv:
        assert layer.units is not None and layer.kernel_size is not None and layer.strides is not None
        if not x.spatial:
            raise GenomeError(f"a {kind} gene met a tensor without spatial axes")
        spatial = tuple(math.ceil(s / layer.strides) for s in x.spatial)
        window = layer.kernel_size ** len(x.spatial)
        m = math.prod(spatial)
        params = window * x.channels * layer.units
        flops = 2 * window * x.channels * layer.units * m
        if kind == "conv":
            return TensorShape(spatial, layer.units), params + layer.units, flops  # + bias
        params += 4 * layer.units  # a block's batch norm (its convolution has no bias)
        flops += 3 * m * layer.units  # norm and activation
        if layer.residual:
            if layer.strides != 1 or x.channels != layer.units:  # 1x1 projection of the shortcut
                params += x.channels * layer.units
                flops += 2 * x.channels * layer.units * m
            flops += m * layer.units  # the addition
        return TensorShape(spatial, layer.units), params, flops
    if kind == "pool":
        assert layer.pool_size is not None
        if not x.spatial:
            raise GenomeError("a pool gene met a tensor without spatial axes")
        spatial = tuple(math.ceil(s / layer.pool_size) for s in x.spatial)
        return TensorShape(spatial, x.channels), 0, n * x.channels
    if kind == "batchnorm":
        return x, 4 * x.channels, 2 * n * x.channels
    return x, 0, (n * x.channels if kind == "activation" else 0)


def analyze(
    genome: Genome,
    input_shape: Sequence[int],
    n_outputs: int,
    *,
    sequence_output: bool = False,
    stem_params: int = 0,
) -> Analysis:
    """Infer every gene's output shape, the parameter count and FLOPs.

    Args:
        genome: a structurally valid genome.
        input_shape: the stem's output shape without the batch axis, channels last
            (``(28, 28, 1)`` for MNIST, ``(T, C)`` for sequences, ``(D,)`` for vectors).
        n_outputs: units of the task's final dense head.
        sequence_output: the task keeps the time axis to the head: nothing is reduced,
            dense genes and the head act per step (on the last axis).
        stem_params: parameters of the task's stem, added to :attr:`Analysis.params`.

    Raises:
        GenomeError: if a gene cannot apply to its input (e.g. conv on a flat tensor).

    Example:
        >>> from evokeras.genomes.network import Genome, LayerGene
        >>> a = analyze(Genome((LayerGene("dense", units=10),)), (4,), 2)
        >>> a.params  # 4*10+10 + 10*2+2
        72
    """
    stem = TensorShape(tuple(int(s) for s in input_shape[:-1]), int(input_shape[-1]))
    shapes: list[TensorShape] = []
    layer_params: list[int] = []
    flops = 0
    min_spatial = min(stem.spatial) if stem.spatial else None
    for i, layer in enumerate(genome.layers):
        x = shapes[i - 1] if i else stem
        if layer.kind == "dense" and not sequence_output:
            x = reduced(x, genome.reduce)
        x, params, fl = _merge(x, [shapes[j] for j in layer.skips], layer.merge)
        y, p, f = _apply(layer, x, per_step=sequence_output)
        shapes.append(y)
        layer_params.append(params + p)
        flops += fl + f
        if y.spatial:
            min_spatial = min(min_spatial or y.spatial[0], *y.spatial)
    last = shapes[-1] if shapes else stem
    if not sequence_output:
        last = reduced(last, genome.reduce)
    head_params = last.channels * n_outputs + n_outputs
    flops += 2 * math.prod(last.spatial) * last.channels * n_outputs
    return Analysis(
        shapes=tuple(shapes),
        layer_params=tuple(layer_params),
        params=sum(layer_params) + head_params + int(stem_params),
        flops=flops,
        head_params=head_params,
        min_spatial=min_spatial,
    )
