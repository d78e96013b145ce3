"""Genomes: plain, immutable descriptions of a network and how to train it.

A :class:`Genome` is a variable-length sequence of :class:`LayerGene` plus a
:class:`TrainingGenes` record and the way spatial features are reduced before the
first dense layer (tasks that predict every time step, ``Task.sequence_output``, never
reduce). It never imports Keras: decoding lives in :mod:`evokeras.nets.decode`.

Layer kinds:

========== ================================================================
kind       fields used
========== ================================================================
dense      ``units``, ``activation``
conv       ``units`` (filters), ``kernel_size``, ``strides``, ``activation``
           (Conv1D on sequence inputs, Conv2D on image inputs; "same" padding,
           "causal" for tasks that predict every time step)
block      ``units``, ``kernel_size``, ``strides``, ``activation``, ``residual``: the
           textbook unit, convolution (no bias) -> batch norm -> activation; with
           ``residual`` the block's input is added to its output (ResNet's shortcut,
           through a 1x1 convolution where the stride or the width changes)
pool       ``pool_type`` (max/avg), ``pool_size`` (strides = pool size, "same")
batchnorm  --
dropout    ``rate``
activation ``activation``
recurrent  ``cell`` (a :class:`~evokeras.genomes.cell.CellGenome`): a skip-step recurrent
           layer, ``SkipStepRNN(cell, return_sequences=True)`` (a ``keras.layers.RNN``)
           on sequence inputs ``(T, C) -> (T, cell.units)``; the default is a
           1-node lstm cell of 32 units with the recurrent link ``(0, 1, 0)``
========== ================================================================

Conv, block, pool and recurrent genes need spatial (or time) axes: they are the *spatial*
kinds and cannot follow a dense gene. A ``cell`` appears in a gene's dictionary form
(as :meth:`CellGenome.to_dict`) only for recurrent genes, so genomes without recurrent
genes have the same dictionary form and key as before the kind existed.

Evolved weights (optional): tasks whose weights evolve with the architecture (CartPole)
keep them in :attr:`Genome.weights`, a mapping of Keras layer name to its arrays
encoded by :mod:`evokeras.variation.weights`; genomes without weights (the usual case) have
the same dictionary form and key as before this field existed.

Skip connections: gene ``i`` reads the output of gene ``i - 1`` (or the stem for
``i == 0``) and, in addition, the outputs of the earlier genes listed in ``skips``
(each ``j <= i - 2``). These inputs are merged by ``merge`` ("add" or "concat")
before the gene's own operation. Shapes are reconciled by the decoder: spatial sizes
are resized to the main input's, and for "add" the channels are projected.

Example:
    >>> g = Genome(layers=(LayerGene("conv", units=8, kernel_size=3),
    ...                    LayerGene("pool"), LayerGene("dense", units=32)))
    >>> Genome.from_dict(g.to_dict()) == g
    True
    >>> len(g.key)
    16
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from evokeras.genomes.cell import CellGenome, NodeGene
from evokeras.genomes.keyed import GenomeError, Keyed, check_keys, is_int

__all__ = [
    "ACTIVATIONS",
    "CONV_KINDS",
    "LAYER_KINDS",
    "OPTIMIZERS",
    "Genome",
    "GenomeError",
    "LayerGene",
    "TrainingGenes",
    "default_cell",
]

LAYER_KINDS = ("dense", "conv", "block", "pool", "batchnorm", "dropout", "activation", "recurrent")
SPATIAL_KINDS = frozenset({"conv", "block", "pool", "recurrent"})
#: Kinds that convolve: their ``units`` are filters and their ``strides`` shrink the input.
CONV_KINDS = frozenset({"conv", "block"})
NEUTRAL_KINDS = frozenset({"batchnorm", "dropout", "activation"})
ACTIVATIONS = ("relu", "elu", "gelu", "swish", "tanh", "sigmoid", "linear")
POOL_TYPES = ("max", "avg")
MERGES = ("add", "concat")
REDUCTIONS = ("flatten", "global_avg", "global_max")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")

# Which optional fields each kind uses; the others must be left at None.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "dense": ("units", "activation"),
    "conv": ("units", "kernel_size", "strides", "activation"),
    "block": ("units", "kernel_size", "strides", "activation", "residual"),
    "pool": ("pool_type", "pool_size"),
    "batchnorm": (),
    "dropout": ("rate",),
    "activation": ("activation",),
    "recurrent": ("cell",),
}
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "dense": {"units": 64, "activation": "relu"},
    "conv": {"units": 16, "kernel_size": 3, "strides": 1, "activation": "relu"},
    "block": {"units": 32, "kernel_size": 3, "strides": 1, "activation": "relu", "residual": False},
    "pool": {"pool_type": "max", "pool_size": 2},
    "batchnorm": {},
    "dropout": {"rate": 0.25},
    "activation": {"activation": "relu"},
    "recurrent": {},  # the default cell is filled in by LayerGene.__post_init__
}
_OPTIONAL_FIELDS = (
    "units", "kernel_size", "strides", "activation", "pool_type", "pool_size", "rate", "cell", "residual",
)


def default_cell() -> CellGenome:
    """The cell of ``LayerGene("recurrent")``: one lstm node, 32 units, link ``(0, 1, 0)``."""

    return CellGenome(32, (NodeGene("lstm"),), rec_links=((0, 1, 0),))


@dataclass(frozen=True)
class LayerGene:
    """One layer of a genome. Fields a kind does not use are ``None``.

    Missing fields a kind uses are filled with defaults, so ``LayerGene("dense")``
    is a 64-unit ReLU layer and ``LayerGene("recurrent")`` a 32-unit one-node lstm
    cell. ``cell`` (recurrent genes only) is a :class:`~evokeras.genomes.cell.CellGenome`.
    """

    kind: str
    units: int | None = None
    kernel_size: int | None = None
    strides: int | None = None
    activation: str | None = None
    pool_type: str | None = None
    pool_size: int | None = None
    rate: float | None = None
    skips: tuple[int, ...] = ()
    merge: str = "add"
    cell: CellGenome | None = None
    residual: bool | None = None

    def __post_init__(self) -> None:
        if self.kind in _KIND_DEFAULTS:
            for name, value in _KIND_DEFAULTS[self.kind].items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
        if self.kind == "recurrent" and self.cell is None:
            object.__setattr__(self, "cell", default_cell())
        object.__setattr__(self, "skips", tuple(self.skips))
        if not self.skips:  # the merge of a gene without skip links is meaningless
            object.__setattr__(self, "merge", "add")

    @property
    def is_spatial(self) -> bool:
        return self.kind in SPATIAL_KINDS

    @property
    def is_conv(self) -> bool:
        """Whether the gene convolves (``conv`` or ``block``)."""
        return self.kind in CONV_KINDS

    @property
    def is_neutral(self) -> bool:
        return self.kind in NEUTRAL_KINDS

    def replace(self, **changes: Any) -> LayerGene:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_dict() if name == "cell" else value
        if self.skips:
            out["skips"] = list(self.skips)
            out["merge"] = self.merge
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "layer") -> LayerGene:
        check_keys(data, {f.name for f in dataclasses.fields(cls)}, where)
        if "kind" not in data:
            raise GenomeError(f"{where}: missing key 'kind'")
        if not isinstance(data["kind"], str):
            raise GenomeError(f"{where}.kind: expected a layer kind name, got {type(data['kind']).__name__} {data['kind']!r}")
        kwargs = dict(data)
        skips = kwargs.get("skips", ())
        if not isinstance(skips, Sequence) or isinstance(skips, str):
            raise GenomeError(f"{where}.skips: expected a list of integers, got {type(skips).__name__} {skips!r}")
        kwargs["skips"] = tuple(skips)
        if isinstance(kwargs.get("cell"), Mapping):

            try:
                kwargs["cell"] = CellGenome.from_dict(kwargs["cell"])
            except GenomeError as exc:  # "cell.units: ..." -> "layers[0].cell.units: ..."
                raise GenomeError(f"{where}.{exc}") from None
        gene = cls(**kwargs)
        gene.check(where=where)
        return gene

    def check(self, *, where: str = "layer") -> None:
        """Raise :class:`GenomeError` if a field has the wrong type or value."""
        if self.kind not in LAYER_KINDS:
            raise GenomeError(f"{where}.kind: unknown layer kind {self.kind!r} (known: {LAYER_KINDS})")
        used = _KIND_FIELDS[self.kind]
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if name not in used:
                if value is not None:
                    raise GenomeError(f"{where}.{name}: not used by a {self.kind!r} layer (got {value!r})")
                continue
            if name in ("units", "kernel_size", "strides", "pool_size"):
                if not is_int(value) or value < 1:
                    raise GenomeError(f"{where}.{name}: expected an integer >= 1, got {value!r}")
            elif name == "activation" and value not in ACTIVATIONS:
                raise GenomeError(f"{where}.activation: unknown activation {value!r} (known: {ACTIVATIONS})")
            elif name == "pool_type" and value not in POOL_TYPES:
                raise GenomeError(f"{where}.pool_type: expected one of {POOL_TYPES}, got {value!r}")
            elif name == "rate" and (
                not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value < 1.0
            ):
                raise GenomeError(f"{where}.rate: expected a number in [0, 1), got {value!r}")
            elif name == "cell":
                _check_cell(value, f"{where}.cell")
            elif name == "residual" and not isinstance(value, bool):
                raise GenomeError(f"{where}.residual: expected true or false, got {value!r}")
        if self.merge not in MERGES:
            raise GenomeError(f"{where}.merge: expected one of {MERGES}, got {self.merge!r}")
        if any(not is_int(j) for j in self.skips):
            raise GenomeError(f"{where}.skips: expected integers, got {list(self.skips)!r}")
        if list(self.skips) != sorted(set(self.skips)):
            raise GenomeError(f"{where}.skips: must be sorted and unique, got {list(self.skips)!r}")


@dataclass(frozen=True)
class TrainingGenes:
    """How a genome is trained: optimizer, learning rate and batch size."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "training") -> TrainingGenes:
        check_keys(data, {f.name for f in dataclasses.fields(cls)}, where)
        genes = cls(**data)
        genes.check(where=where)
        return genes

    def check(self, *, where: str = "training") -> None:
        if self.optimizer not in OPTIMIZERS:
            raise GenomeError(f"{where}.optimizer: unknown optimizer {self.optimizer!r} (known: {OPTIMIZERS})")
        lr = self.learning_rate
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not 0.0 < lr < 10.0:
            raise GenomeError(f"{where}.learning_rate: expected a number in (0, 10), got {lr!r}")
        if not is_int(self.batch_size) or self.batch_size < 1:
            raise GenomeError(f"{where}.batch_size: expected an integer >= 1, got {self.batch_size!r}")


@dataclass(frozen=True, eq=False)
class Genome(Keyed):
    """An architecture (layer genes + reduction) and its training genes.

    Genomes are immutable and hashable; equal genomes have equal :attr:`key`.
    """

    layers: tuple[LayerGene, ...] = ()
    reduce: str = "flatten"
    training: TrainingGenes = field(default_factory=TrainingGenes)
    weights: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        weights = self.weights.items() if isinstance(self.weights, Mapping) else self.weights
        object.__setattr__(self, "weights", tuple(sorted((str(k), v) for k, v in weights)))

    def _content(self) -> tuple[Any, ...]:
        return (self.layers, self.reduce, self.training, self.weights)

    def __eq__(self, other: object) -> bool:
        """Genomes (and individuals) are equal when their content is."""
        if not isinstance(other, Genome):
            return NotImplemented
        return self._content() == other._content()

    def __hash__(self) -> int:
        return hash(self._content())

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; :meth:`from_dict` inverts it exactly."""
        out: dict[str, Any] = {
            "layers": [layer.to_dict() for layer in self.layers],
            "reduce": self.reduce,
            "training": self.training.to_dict(),
        }
        if self.weights:
            out["weights"] = dict(self.weights)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genome:
        """Build and validate a genome from :meth:`to_dict` output (or parsed JSON)."""
        check_keys(data, {"layers", "reduce", "training", "weights"}, "genome")
        layers_data = data.get("layers", [])
        if not isinstance(layers_data, Sequence) or isinstance(layers_data, str):
            raise GenomeError(f"genome.layers: expected a list, got {type(layers_data).__name__}")
        layers = tuple(
            LayerGene.from_dict(item, where=f"layers[{i}]") for i, item in enumerate(layers_data)
        )
        training = TrainingGenes.from_dict(data.get("training", {}))
        weights = data.get("weights", {})
        if not isinstance(weights, Mapping):
            raise GenomeError(f"genome.weights: expected a mapping of layer name to encoded weights, got {type(weights).__name__}")
        # __post_init__ turns the mapping into sorted (name, blob) pairs
        pairs = cast("tuple[tuple[str, str], ...]", weights)
        genome = cls(layers=layers, reduce=data.get("reduce", "flatten"), training=training, weights=pairs)
        genome.validate()
        return genome

    # -- structure -----------------------------------------------------------------
    def validate(self) -> Genome:
        """Check the genome's structure; raise one :class:`GenomeError` naming the problem.

        Checks every field's type and value (a recurrent gene's cell included), that
        skips point to earlier genes (``j <= i - 2``) of the same region, and that no
        conv/pool/recurrent gene follows a dense gene. Ranges and limits of a search space
        are checked by :meth:`evokeras.genomes.space.SearchSpace.check`. Returns ``self`` for
        chaining.
        """
        if self.reduce not in REDUCTIONS:
            raise GenomeError(f"genome.reduce: expected one of {REDUCTIONS}, got {self.reduce!r}")
        if not isinstance(self.training, TrainingGenes):
            raise GenomeError("genome.training: expected a TrainingGenes")
        for name, blob in self.weights:
            if not name.isidentifier() or not isinstance(blob, str):
                raise GenomeError(f"genome.weights[{name!r}]: expected a layer name and an encoded string")
        self.training.check()
        regions = self.regions()
        seen_dense = False
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            if not isinstance(layer, LayerGene):
                raise GenomeError(f"{where}: expected a LayerGene, got {type(layer).__name__}")
            layer.check(where=where)
            if layer.kind == "dense":
                seen_dense = True
            elif layer.is_spatial and seen_dense:
                raise GenomeError(f"{where}: a {layer.kind!r} layer cannot follow a dense layer")
            for j in layer.skips:
                if not 0 <= j <= i - 2:
                    raise GenomeError(
                        f"{where}.skips: {j} is not an earlier gene other than the previous one "
                        f"(allowed 0..{i - 2})"
                    )
                if regions[j] != regions[i]:
                    raise GenomeError(
                        f"{where}.skips: gene {j} is in the {regions[j]} part, gene {i} in the {regions[i]} part"
                    )
        return self

    def regions(self) -> list[str]:
        """Per gene, ``"spatial"`` (before the first dense gene) or ``"flat"``."""
        out, flat = [], False
        for layer in self.layers:
            flat = flat or layer.kind == "dense"
            out.append("flat" if flat else "spatial")
        return out

    def replace(self, **changes: Any) -> Genome:
        """Return a plain :class:`Genome` copy with ``changes`` applied."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(Genome)}
        values.update(changes)
        return Genome(**values)

    def as_genome(self) -> Genome:
        """This genome as a plain :class:`Genome` (drops a subclass such as an individual)."""
        return self if type(self) is Genome else self.replace()

    def __len__(self) -> int:
        return len(self.layers)


def _check_cell(cell: Any, where: str) -> None:
    """Raise :class:`GenomeError` (naming ``where``, e.g. ``layers[2].cell.units``) unless
    ``cell`` is a valid :class:`~evokeras.genomes.cell.CellGenome`."""

    if not isinstance(cell, CellGenome):
        raise GenomeError(f"{where}: expected a CellGenome, got {type(cell).__name__}")
    try:
        cell.validate()
    except GenomeError as exc:  # the cell's messages start with "cell"
        raise GenomeError(f"{where}{str(exc).removeprefix('cell')}") from None
