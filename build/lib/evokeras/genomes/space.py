"""Search spaces: which genes may appear, their ranges, and the limits of a genome.

A :class:`SearchSpace` is an immutable record. Start from a family default and
override what you need; unknown options and wrong types raise one clear error::

    >>> space = default_space("image").replace(max_layers=6, max_params=50_000)
    >>> space.max_layers
    6
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evokeras.genomes.analysis import Analysis, analyze
from evokeras.genomes.cell import NODE_TYPES, CellLimits
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import ACTIVATIONS, LAYER_KINDS, OPTIMIZERS, SPATIAL_KINDS, Genome

__all__ = ["FAMILIES", "SearchSpace", "SpaceError", "default_space"]

FAMILIES = ("image", "sequence", "vector")


class SpaceError(ValueError):
    """A search-space option is unknown or has a wrong value; the message names it."""


@dataclass(frozen=True)
class SearchSpace:
    """Ranges, choices and limits for genomes of one task family.

    Attributes:
        layer_kinds: relative weights of the layer kinds drawn by init and ``add layer``
            ("recurrent" genes need a ``(T, C)`` input; weight 0 in the family defaults).
        units: choices of dense units.
        filters: choices of conv filters.
        kernel_sizes, strides, pool_sizes: choices for conv/pool genes.
        activations: activation choices.
        dropout: ``(low, high)`` range of dropout rates.
        reductions: choices of the spatial-to-dense reduction.
        merges: merge choices for skip links.
        max_skips: most skip links a single gene may read.
        optimizers: optimizer choices.
        learning_rate: ``(low, high)``; drawn log-uniformly.
        batch_sizes: batch-size choices.
        min_layers, max_layers: limits on the number of layer genes.
        init_layers: ``(low, high)`` number of layers of a random genome.
        max_params: the largest parameter count allowed (head included).
        min_spatial: the smallest spatial size allowed after conv/pool genes.
        input_shape: what the first gene reads, without the batch axis, channels last:
            the task's ``stem_shape`` (set by the task; operators and :meth:`check` need it).
        n_outputs: units of the task's output head (set by the task).
        sequence_output: the task keeps the time axis to the head (set by the task):
            nothing is reduced, dense genes and the head act per time step, and genes
            that change the time length are not allowed.
        stem_params: parameters of the task's stem, counted in ``max_params`` (set by
            the task).
        cell_units: choices of a recurrent gene's cell width.
        cell_max_nodes, cell_max_lag, cell_max_links: limits of a recurrent gene's cell.
        cell_node_types: the cell node types allowed.
    """

    layer_kinds: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: {
            "conv": 3.0, "pool": 1.5, "dense": 1.5, "batchnorm": 1.0, "dropout": 1.0, "activation": 0.5,
            "recurrent": 0.0,
        }
    )
    units: tuple[int, ...] = (16, 32, 64, 128, 256)
    filters: tuple[int, ...] = (8, 16, 32, 64)
    kernel_sizes: tuple[int, ...] = (1, 3, 5)
    strides: tuple[int, ...] = (1, 2)
    pool_sizes: tuple[int, ...] = (2, 3)
    activations: tuple[str, ...] = ("relu", "elu", "gelu", "swish", "tanh")
    dropout: tuple[float, float] = (0.0, 0.5)
    reductions: tuple[str, ...] = ("flatten", "global_avg", "global_max")
    merges: tuple[str, ...] = ("add", "concat")
    max_skips: int = 2
    optimizers: tuple[str, ...] = ("adam", "adamw", "rmsprop", "sgd")
    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    batch_sizes: tuple[int, ...] = (32, 64, 128, 256)
    min_layers: int = 1
    max_layers: int = 12
    init_layers: tuple[int, int] = (2, 6)
    max_params: int = 500_000
    min_spatial: int = 1
    input_shape: tuple[int, ...] | None = None
    n_outputs: int | None = None
    sequence_output: bool = False
    stem_params: int = 0
    cell_units: tuple[int, ...] = (8, 16, 32, 64)
    cell_max_nodes: int = 4
    cell_max_lag: int = 8
    cell_max_links: int = 8
    cell_node_types: tuple[str, ...] = ("tanh", "gru", "lstm")

    def __post_init__(self) -> None:
        self._check_options()

    # -- construction --------------------------------------------------------------
    def replace(self, **changes: Any) -> SearchSpace:
        """A copy with ``changes``; unknown names raise :class:`SpaceError`."""
        names = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in names:
                raise SpaceError(f"search space: unknown option {name!r} (known: {sorted(names)})")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: SearchSpace | None = None) -> SearchSpace:
        """Overlay ``data`` (e.g. parsed JSON) on ``base`` (the image default if ``None``)."""
        base = base or cls()
        return base.replace(**{k: (dict(v) if isinstance(v, Mapping) else _tuple(v)) for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (dict(v) if isinstance(v := getattr(self, f.name), Mapping) else _jsonable(v))
            for f in dataclasses.fields(self)
        }

    @property
    def allows_spatial(self) -> bool:
        """Whether a kind that needs spatial (or time) axes has a positive weight."""
        return any(self.layer_kinds.get(k, 0) > 0 for k in SPATIAL_KINDS)

    def cell_limits(self) -> CellLimits:
        """The bounds of a recurrent gene's cell (for :mod:`evokeras.variation.cell`'s operators)."""
        return CellLimits(
            max_nodes=self.cell_max_nodes,
            max_lag=self.cell_max_lag,
            max_links=self.cell_max_links,
            units=self.cell_units,
            node_types=self.cell_node_types,
        )

    # -- checks --------------------------------------------------------------------
    def _check_options(self) -> None:
        kinds = dict(self.layer_kinds)
        for kind, weight in kinds.items():
            if kind not in LAYER_KINDS:
                raise SpaceError(f"search space option 'layer_kinds': unknown layer kind {kind!r}")
            if not isinstance(weight, int | float) or weight < 0:
                raise SpaceError(f"search space option 'layer_kinds[{kind!r}]': expected a weight >= 0, got {weight!r}")
        if not any(w > 0 for w in kinds.values()):
            raise SpaceError("search space option 'layer_kinds': at least one kind needs a positive weight")
        for name in ("units", "filters", "kernel_sizes", "strides", "pool_sizes", "batch_sizes",
                     "cell_units"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or any(
                not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values
            ):
                raise SpaceError(f"search space option {name!r}: expected a non-empty tuple of integers >= 1, got {values!r}")
        for name, allowed in (("activations", ACTIVATIONS), ("optimizers", OPTIMIZERS),
                              ("reductions", ("flatten", "global_avg", "global_max")),
                              ("merges", ("add", "concat")), ("cell_node_types", NODE_TYPES)):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or any(v not in allowed for v in values):
                raise SpaceError(f"search space option {name!r}: expected a non-empty tuple from {allowed}, got {values!r}")
        for name, lo_min, hi_max in (("dropout", 0.0, 1.0), ("learning_rate", 1e-12, 10.0)):
            pair = getattr(self, name)
            if (not isinstance(pair, tuple) or len(pair) != 2
                    or not all(isinstance(v, int | float) for v in pair)
                    or not lo_min <= pair[0] <= pair[1] < hi_max):
                raise SpaceError(f"search space option {name!r}: expected (low, high) with {lo_min} <= low <= high < {hi_max}, got {pair!r}")
        for name, low in (("min_layers", 0), ("max_layers", 0), ("max_params", 0),
                          ("min_spatial", 0), ("max_skips", 0), ("stem_params", 0),
                          ("cell_max_nodes", 1), ("cell_max_lag", 1), ("cell_max_links", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SpaceError(
                    f"search space option {name!r}: expected an integer >= {low}, got {value!r}"
                )
        if not isinstance(self.sequence_output, bool):
            raise SpaceError(
                "search space option 'sequence_output': expected a bool, "
                f"got {self.sequence_output!r}"
            )
        if self.input_shape is not None and (
            not isinstance(self.input_shape, tuple) or not self.input_shape
            or any(not isinstance(v, int) or v < 1 for v in self.input_shape)
        ):
            raise SpaceError(f"search space option 'input_shape': expected a tuple of positive integers, got {self.input_shape!r}")
        if self.n_outputs is not None and (not isinstance(self.n_outputs, int) or self.n_outputs < 1):
            raise SpaceError(f"search space option 'n_outputs': expected an integer >= 1, got {self.n_outputs!r}")
        if self.min_layers > self.max_layers:
            raise SpaceError(f"search space option 'min_layers': {self.min_layers} exceeds max_layers={self.max_layers}")
        lo, hi = self.init_layers if isinstance(self.init_layers, tuple) and len(self.init_layers) == 2 else (-1, -1)
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi):
            raise SpaceError(f"search space option 'init_layers': expected (low, high) integers, got {self.init_layers!r}")

    def bound(self) -> tuple[tuple[int, ...], int]:
        """``(input_shape, n_outputs)``; raises :class:`SpaceError` if a task has not set them."""
        if self.input_shape is None or self.n_outputs is None:
            raise SpaceError(
                "search space options 'input_shape' and 'n_outputs' are unset: "
                "use task.space or space.replace(input_shape=..., n_outputs=...)"
            )
        return self.input_shape, self.n_outputs

    def analyze(self, genome: Genome) -> Analysis:
        """:func:`evokeras.genomes.analysis.analyze` for this space's task shapes."""
        input_shape, n_outputs = self.bound()
        return analyze(
            genome, input_shape, n_outputs,
            sequence_output=self.sequence_output, stem_params=self.stem_params,
        )

    def check(self, genome: Genome) -> None:
        """Raise :class:`GenomeError` if ``genome`` is invalid or outside this space.

        Checks structure (:meth:`Genome.validate`), gene choices and ranges (a
        recurrent gene's cell against :meth:`cell_limits`), the layer count, spatial
        sizes, the time length (kept with ``sequence_output``) and the parameter cap
        (stem included) for the given task shapes.
        """
        genome.validate()
        if not self.min_layers <= len(genome.layers) <= self.max_layers:
            raise GenomeError(
                f"genome.layers: {len(genome.layers)} layers, the space allows {self.min_layers}..{self.max_layers}"
            )
        if genome.reduce not in self.reductions:
            raise GenomeError(f"genome.reduce: {genome.reduce!r} not in the space's reductions {self.reductions}")
        t = genome.training
        if t.optimizer not in self.optimizers:
            raise GenomeError(f"training.optimizer: {t.optimizer!r} not in the space's optimizers {self.optimizers}")
        if not self.learning_rate[0] <= t.learning_rate <= self.learning_rate[1]:
            raise GenomeError(f"training.learning_rate: {t.learning_rate} outside {self.learning_rate}")
        if t.batch_size not in self.batch_sizes:
            raise GenomeError(f"training.batch_size: {t.batch_size} not in {self.batch_sizes}")
        for i, layer in enumerate(genome.layers):
            where = f"layers[{i}]"
            if self.layer_kinds.get(layer.kind, 0) <= 0:
                raise GenomeError(f"{where}.kind: {layer.kind!r} is not allowed by the space")
            choices = {
                "units": self.filters if layer.is_conv else self.units,
                "kernel_size": self.kernel_sizes,
                "strides": self.strides,
                "pool_size": self.pool_sizes,
            }
            for name, allowed in choices.items():
                value = getattr(layer, name)
                if value is not None and value not in allowed:
                    raise GenomeError(f"{where}.{name}: {value} not in the space's choices {allowed}")
            if layer.activation is not None and layer.activation not in self.activations:
                raise GenomeError(f"{where}.activation: {layer.activation!r} not in {self.activations}")
            if layer.rate is not None and not self.dropout[0] <= layer.rate <= self.dropout[1]:
                raise GenomeError(f"{where}.rate: {layer.rate} outside {self.dropout}")
            if layer.kind == "recurrent":
                assert layer.cell is not None  # genome.validate() checked it is a CellGenome
                try:
                    self.cell_limits().check(layer.cell)
                except GenomeError as exc:  # "cell.units: ..." -> "layers[2].cell.units: ..."
                    raise GenomeError(f"{where}.{exc}") from None
            if len(layer.skips) > self.max_skips:
                raise GenomeError(f"{where}.skips: {len(layer.skips)} links, the space allows {self.max_skips}")
            if layer.skips and layer.merge not in self.merges:
                raise GenomeError(f"{where}.merge: {layer.merge!r} not in {self.merges}")
        a = self.analyze(genome)
        if a.min_spatial is not None and a.min_spatial < self.min_spatial:
            raise GenomeError(f"genome: spatial size {a.min_spatial} below the minimum {self.min_spatial}")
        if self.sequence_output and a.shapes:
            steps, last = tuple(self.bound()[0][:-1]), a.shapes[-1].spatial
            if last != steps:
                raise GenomeError(
                    f"genome: the output has {last} steps, the task predicts all {steps} "
                    "(sequence_output: no strided conv or pooling)"
                )
        if a.params > self.max_params:
            raise GenomeError(f"genome: {a.params} parameters exceed max_params={self.max_params}")


def default_space(family: str) -> SearchSpace:
    """The default search space of a task family: ``"image"``, ``"sequence"`` or ``"vector"``.

    Images draw mostly conv-batchnorm-activation blocks trained by adaptive optimizers
    (priors under which nearly every random network learns; the class defaults of
    :class:`SearchSpace` are the wide space); sequences allow conv/pool genes (Conv1D); vectors allow
    only dense, batch-norm, dropout and activation genes. No family default draws
    recurrent genes (weight 0): a sequence task opts in with ``layer_kinds``.
    """
    if family == "image":
        # Priors that train: conv -> batch norm -> activation blocks (optionally residual)
        # as the main gene, 3x3/5x5 kernels, ReLU-like activations, reductions that keep
        # the spatial information, adaptive optimizers in the learning-rate range where
        # they learn within an epoch or two. Every other kind stays reachable.
        return SearchSpace(
            layer_kinds={
                "block": 3.0, "conv": 0.5, "pool": 1.5, "dense": 1.0, "batchnorm": 0.25, "dropout": 1.0,
                "activation": 0.25, "recurrent": 0.0,
            },
            units=(32, 64, 128, 256),
            filters=(16, 32, 48, 64, 96),
            kernel_sizes=(3, 5),
            activations=("relu", "elu", "gelu", "swish"),
            dropout=(0.0, 0.4),
            reductions=("flatten", "global_avg"),
            optimizers=("adam", "adamw"),
            learning_rate=(1e-3, 5e-3),
            batch_sizes=(32, 64, 128),
        )
    if family == "sequence":
        return SearchSpace(kernel_sizes=(2, 3, 5, 7), filters=(16, 32, 64, 128), max_params=1_000_000)
    if family == "vector":
        return SearchSpace(
            layer_kinds={
                "dense": 3.0, "batchnorm": 0.5, "dropout": 0.5, "activation": 0.5, "recurrent": 0.0,
            },
            units=(4, 8, 16, 32, 64),
            reductions=("flatten",),
            max_layers=6,
            init_layers=(1, 3),
            max_params=20_000,
        )
    raise SpaceError(f"unknown task family {family!r} (known: {FAMILIES})")


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
