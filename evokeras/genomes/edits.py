"""Edit programs: the individuals of a specialization search (no Keras here).

An :class:`EditProgram` says how to turn a trained base network into a smaller model
for another task. Applied (by :func:`evokeras.nets.surgery.apply_program`) in this order:

1. **drop** whole units -- a shape-preserving layer (e.g. a 64->64 convolution) or a
   residual block with an identity shortcut (the block becomes the identity);
2. **squeeze** layers -- keep the ``keep`` fraction of a layer's filters/units with the
   largest importance, keeping their trained weights and slicing the consumers' input
   weights. The criterion is the program's ``importance``: ``weight_norm``
   (:func:`evokeras.nets.surgery.importance`: the L1 norm of each unit's trained incoming
   weights, times its batch-norm scale where a BatchNormalization follows), or, measured
   on a sample of the target task's training data (:mod:`evokeras.nets.importance`),
   ``activation`` (mean absolute output) or ``taylor`` (first-order Taylor estimate of the
   loss change when the unit is removed: ``|activation x gradient|``). Squeezing a
   residual *stream* (named by the layer or projection block that starts it) removes the
   same channels from every tensor added into it: the producer's output and the last
   layer of every identity-shortcut block the stream passes through;
   **downsample** after a full-resolution unit (one whose output has the input's
   spatial size or length, :meth:`BaseStructure.downsample_points`): a 2x2 max pool
   (sequences: a pool of 2 steps) is inserted there, so every later layer runs on a
   quarter (half) of the positions -- a stride the base did not have, where its cost
   sits in full-resolution layers;
3. **cut** the network after unit ``cut`` and **pool** its output into a feature vector
   (``avg``/``max``/``flatten`` for feature maps, ``last``/``mean`` for sequences);
4. attach a **new head** (a softmax Dense) whose weights are **fitted** on the cut
   features: ``ridge`` (closed form, L2 penalty ``alpha``) or ``logistic``
   (softmax regression on the frozen features, L2 ``alpha``);
5. optionally **fine-tune** the whole model ``finetune`` epochs at ``learning_rate``,
   with the units up to ``freeze`` frozen (``""``: nothing frozen).

Programs are frozen, canonical records (what has no effect is removed, so equal
effects give equal keys) with a JSON form and a content :attr:`EditProgram.key`, like
:class:`~evokeras.genomes.network.Genome`. What a base network allows -- its units, which can be
dropped, squeezed or cut after -- is a :class:`BaseStructure` (read from the Keras
model by :func:`evokeras.nets.surgery.structure`); an :class:`EditSpace` adds the choices
(keep fractions, penalties, epochs). The operators are in :mod:`evokeras.variation.edits`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evokeras.genomes.keyed import GenomeError, Keyed

__all__ = ["HEADS", "IMPORTANCE", "POOLS", "BaseStructure", "EditProgram", "EditSpace", "UnitInfo"]

POOLS = {4: ("avg", "max", "flatten"), 3: ("last", "mean"), 2: ("none",)}
HEADS = ("ridge", "logistic")
#: Importance criteria of a squeeze (see the module docstring).
IMPORTANCE = ("weight_norm", "activation", "taylor")


# --------------------------------------------------------------------------- #
# What a base network allows                                                   #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class UnitInfo:
    """One unit of a base network: a layer, or a residual block (a fork whose branches
    join at an ``Add``).

    Attributes:
        name: the layer's name (a block: its ``Add`` layer's name).
        kind: ``"layer"`` or ``"block"``.
        role: of a layer: ``"weighted"`` (Conv/Dense/LSTM/Embedding: its outputs can be
            squeezed), ``"pass"`` (per-channel: batch norm, activation, dropout,
            pooling, flatten) or ``"other"``; ``"block"`` for a block.
        width: output channels/units of a weighted layer or of a block (0 otherwise).
        in_shape, out_shape: shapes without the batch axis (``None`` for a free length).
        params: trained parameters of the unit.
        inner: squeezable layers inside a block (the main branch's weighted layers but
            its last), as ``(name, width)`` pairs.
        projection: of a block: its shortcut has layers (not the identity).
    """

    name: str
    kind: str
    role: str
    width: int
    in_shape: tuple[int | None, ...]
    out_shape: tuple[int | None, ...]
    params: int
    inner: tuple[tuple[str, int], ...] = ()
    projection: bool = False

    @property
    def identity_block(self) -> bool:
        """A residual block whose shortcut is the identity (it adds into its input's stream)."""
        return self.kind == "block" and not self.projection

    @property
    def droppable(self) -> bool:
        """A unit whose output has its input's shape can be removed (replaced by the
        identity; for a block: when its shortcut is the identity)."""
        return self.in_shape == self.out_shape and self.role in ("weighted", "pass", "block")

    @property
    def rank(self) -> int:
        """Rank of the output with the batch axis (4: feature maps, 3: sequences)."""
        return len(self.out_shape) + 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["inner"] = [list(p) for p in self.inner]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitInfo:
        return cls(
            name=str(d["name"]), kind=str(d["kind"]), role=str(d["role"]), width=int(d["width"]),
            in_shape=tuple(d["in_shape"]), out_shape=tuple(d["out_shape"]), params=int(d["params"]),
            inner=tuple((str(n), int(w)) for n, w in d.get("inner", ())),
            projection=bool(d.get("projection", False)),
        )


@dataclass(frozen=True)
class BaseStructure:
    """The units of a base network, input to output (the last unit is the base's own
    head, which a program always cuts away)."""

    units: tuple[UnitInfo, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        if len(self.units) < 2:
            raise ValueError("a base network needs at least two units (a body and a head)")

    @property
    def names(self) -> list[str]:
        return [u.name for u in self.units]

    def index(self, name: str) -> int:
        for i, u in enumerate(self.units):
            if u.name == name:
                return i
        raise GenomeError(f"unit {name!r} is not in the base network (units: {self.names})")

    def unit(self, name: str) -> UnitInfo:
        return self.units[self.index(name)]

    @property
    def cut_points(self) -> list[str]:
        """Units after which a program may cut: any but the base's head, whose output is
        a feature vector, map or sequence."""
        return [u.name for u in self.units[:-1] if u.rank in POOLS and u.role != "other"]

    @property
    def params(self) -> int:
        return sum(u.params for u in self.units)

    def chain(self, program: EditProgram) -> list[UnitInfo]:
        """The units a program keeps: up to its cut, without the dropped ones."""
        end = self.index(program.cut)
        dropped = set(program.drop)
        return [u for u in self.units[: end + 1] if u.name not in dropped]

    def squeezable(self, program: EditProgram) -> dict[str, int]:
        """``{name: width}`` of what the program may squeeze (given its cut and drops):
        weighted layers whose outputs reach, through per-channel layers only, the next
        weighted layer, a residual block or the cut; block internals; and projection
        blocks (their output stream). A layer or projection block whose output reaches
        a block starts a residual *stream* (:meth:`streams`): squeezing it squeezes the
        whole stream."""
        chain = self.chain(program)
        out: dict[str, int] = {}
        for i, u in enumerate(chain):
            if u.kind == "block":
                out.update(dict(u.inner))
                if u.projection and u.inner and u.width >= 2:
                    out[u.name] = u.width
                continue
            if u.role != "weighted" or u.width < 2:
                continue
            for v in chain[i + 1 :]:
                if v.role == "pass":
                    continue
                if v.role == "weighted" or v.kind == "block":
                    out[u.name] = u.width
                break
            else:
                out[u.name] = u.width
        return out

    def streams(self, program: EditProgram) -> dict[str, list[str]]:
        """The residual streams of the program's chain: ``{producer: [identity blocks]}``
        -- a weighted layer or projection block, and the identity-shortcut blocks that
        add into its output (through per-channel layers only) before the cut. Squeezing
        the producer removes the same channels from each of them."""
        chain = self.chain(program)
        out: dict[str, list[str]] = {}
        for i, u in enumerate(chain):
            if not (u.role == "weighted" or (u.kind == "block" and u.projection)):
                continue
            blocks = []
            for v in chain[i + 1 :]:
                if v.role == "pass":
                    continue
                if v.identity_block:
                    blocks.append(v.name)
                    continue
                break
            if blocks:
                out[u.name] = blocks
        return out

    def downsample_points(self, program: EditProgram) -> list[str]:
        """Units after which the program may downsample: kept units before its cut whose
        output is a feature map or sequence at the base's input resolution (spatial size or
        length), when no kept weighted layer after them reads a flattened map (whose input
        weights are per position) and no map after them is down to one position."""
        chain = self.chain(program)
        first = self.units[0]  # token ids have no channel axis
        full = first.in_shape if len(first.in_shape) < len(first.out_shape) else first.in_shape[:-1]
        out = []
        for i, u in enumerate(chain[:-1]):
            if u.rank < 3 or u.out_shape[:-1] != full or any(d is not None and d < 2 for d in full):
                continue
            flattened = False
            for v in chain[i + 1:]:
                if v.rank >= 3 and any(d is not None and d < 2 for d in v.out_shape[:-1]):
                    break  # a map the base brings down to one position would vanish when halved
                sizes = [d for d in v.in_shape if d is not None]
                if v.role == "pass" and len(v.out_shape) == 1 and len(v.in_shape) > 1 \
                        and len(sizes) == len(v.in_shape) and v.out_shape[0] == int(np.prod(sizes)):
                    flattened = True
                elif flattened and (v.role == "weighted" or v.kind == "block"):
                    break
            else:
                out.append(u.name)
        return out

    def droppable(self, program: EditProgram) -> list[str]:
        """Units the program may drop: shape-preserving units before its cut."""
        end = self.index(program.cut)
        return [u.name for u in self.units[:end] if u.droppable]

    def to_dict(self) -> dict[str, Any]:
        return {"units": [u.to_dict() for u in self.units]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaseStructure:
        return cls(tuple(UnitInfo.from_dict(u) for u in d["units"]))


# --------------------------------------------------------------------------- #
# The program                                                                  #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class EditProgram(Keyed):
    """A sequence of edits of a trained base network (see the module docstring)."""

    cut: str
    pool: str = "avg"
    squeeze: tuple[tuple[str, float], ...] = ()
    drop: tuple[str, ...] = ()
    head: str = "ridge"
    alpha: float = 1e-2
    finetune: int = 0
    freeze: str = ""
    learning_rate: float = 1e-3
    importance: str = "weight_norm"
    downsample: str = ""

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCE:
            raise GenomeError(f"edit program: importance must be one of {list(IMPORTANCE)}, got {self.importance!r}")
        for name in ("cut", "pool", "head", "freeze", "downsample"):
            if not isinstance(getattr(self, name), str):
                raise GenomeError(f"edit program: {name} must be a string, got {getattr(self, name)!r}")
        for name, kind in (("alpha", float), ("learning_rate", float), ("finetune", int)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
                raise GenomeError(f"edit program: {name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
            object.__setattr__(self, name, kind(value))
        squeeze = self.squeeze.items() if isinstance(self.squeeze, Mapping) else self.squeeze
        try:
            pairs = [(k, v) for k, v in squeeze]
        except (TypeError, ValueError):
            raise GenomeError(f"edit program: squeeze must map layer names to keep fractions, got {self.squeeze!r}") from None
        if any(not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float) for k, v in pairs):
            raise GenomeError(f"edit program: squeeze must map layer names to keep fractions, got {self.squeeze!r}")
        object.__setattr__(self, "squeeze", tuple(sorted((k, float(v)) for k, v in pairs)))
        if isinstance(self.drop, str) or any(not isinstance(d, str) for d in self.drop):
            raise GenomeError(f"edit program: drop must be a list of unit names, got {self.drop!r}")
        object.__setattr__(self, "drop", tuple(sorted(self.drop)))

    def _content(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(EditProgram))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EditProgram):
            return NotImplemented
        return self._content() == other._content()

    def __hash__(self) -> int:
        return hash(self._content())

    def replace(self, **changes: Any) -> EditProgram:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(EditProgram)}
        values.update(changes)
        return EditProgram(**values)

    def as_genome(self) -> EditProgram:
        """This program as a plain :class:`EditProgram` (drops an individual subclass)."""
        return self if type(self) is EditProgram else self.replace()

    def steps(self) -> list[str]:
        """The program as readable steps, in the order they are applied."""
        out = [f"drop {d}" for d in self.drop]
        by = f" by {self.importance}" if self.importance != "weight_norm" else ""
        out += [f"squeeze {n} to {k:g}{by}" for n, k in self.squeeze]
        out += [f"downsample 2x after {self.downsample}"] if self.downsample else []
        out.append(f"cut after {self.cut}, {self.pool} pool")
        out.append(f"fit new head: {self.head} (alpha {self.alpha:g})")
        if self.finetune:
            frozen = f", frozen up to {self.freeze}" if self.freeze else ""
            out.append(f"fine-tune {self.finetune} epoch(s) at lr {self.learning_rate:g}{frozen}")
        return out

    def __len__(self) -> int:
        return len(self.steps())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(EditProgram)}
        d["squeeze"] = {k: v for k, v in self.squeeze}
        d["drop"] = list(self.drop)
        d["program"] = "edit"
        # the fields' first values: the programs (and keys) of older runs
        if self.importance == "weight_norm":
            del d["importance"]
        if not self.downsample:
            del d["downsample"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EditProgram:
        if not isinstance(d, Mapping) or d.get("program") != "edit":
            raise GenomeError(f"not an edit program: {d!r:.200}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"program"}
        if unknown:
            raise GenomeError(f"edit program: unknown field {sorted(unknown)[0]!r}")
        try:
            return cls(**{k: v for k, v in d.items() if k != "program"})
        except (TypeError, ValueError) as exc:
            raise GenomeError(f"edit program: {exc}") from exc


# --------------------------------------------------------------------------- #
# The space of programs for one base network                                   #
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class EditSpace:
    """The programs allowed for one base network.

    Attributes:
        base: the base network's :class:`BaseStructure`.
        keep: keep fractions a squeeze draws from.
        alphas: L2 penalties of the head fit.
        heads: head fitting methods (``ridge``, ``logistic``).
        finetune: fine-tuning epochs to choose from (0: none).
        learning_rates: fine-tuning learning rates.
        max_flatten: largest feature count a ``flatten`` pool may produce.
        init_squeezes, init_drops: at most this many squeezes/drops in a random program.
        importance: squeeze criteria to choose from (:data:`IMPORTANCE`; the first is
            the one a repaired program falls back to).
    """

    base: BaseStructure
    keep: tuple[float, ...] = (0.125, 0.25, 0.5, 0.75)
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    heads: tuple[str, ...] = HEADS
    finetune: tuple[int, ...] = (0, 1, 2, 4)
    learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    max_flatten: int = 2048
    init_squeezes: int = 2
    init_drops: int = 1
    importance: tuple[str, ...] = ("taylor", "activation", "weight_norm")

    _OPTIONS = ("keep", "alphas", "heads", "finetune", "learning_rates", "max_flatten", "init_squeezes", "init_drops",
                "importance")

    def __post_init__(self) -> None:
        if isinstance(self.importance, str) or not self.importance or set(self.importance) - set(IMPORTANCE):
            raise ValueError(f"space option 'importance': a list from {list(IMPORTANCE)}, got {self.importance!r}")
        for name in ("keep", "alphas", "heads", "finetune", "learning_rates", "importance"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.keep or any(not 0 < k < 1 for k in self.keep):
            raise ValueError(f"space option 'keep': fractions in (0, 1), got {self.keep}")
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"space option 'alphas': positive numbers, got {self.alphas}")
        if not self.heads or set(self.heads) - set(HEADS):
            raise ValueError(f"space option 'heads': a subset of {HEADS}, got {self.heads}")
        if not self.finetune or any(not isinstance(e, int) or e < 0 for e in self.finetune):
            raise ValueError(f"space option 'finetune': epochs >= 0, got {self.finetune}")
        if not self.learning_rates or any(r <= 0 for r in self.learning_rates):
            raise ValueError(f"space option 'learning_rates': positive numbers, got {self.learning_rates}")
        if not self.base.cut_points:
            raise ValueError("the base network has no unit to cut after")

    def replace(self, **changes: Any) -> EditSpace:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], *, base: EditSpace) -> EditSpace:
        """``base`` with the ``options`` given (unknown names raise naming the option)."""
        unknown = set(options) - set(cls._OPTIONS)
        if unknown:
            raise ValueError(f"unknown space option {sorted(unknown)[0]!r} (known: {sorted(cls._OPTIONS)})")
        return base.replace(**dict(options))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._OPTIONS}

    def pools(self, cut: str) -> tuple[str, ...]:
        """Pools allowed after unit ``cut`` (``flatten`` only up to :attr:`max_flatten`)."""
        unit = self.base.unit(cut)
        pools = POOLS[unit.rank]
        if "flatten" in pools and int(np.prod([d or 0 for d in unit.out_shape])) > self.max_flatten:
            pools = tuple(p for p in pools if p != "flatten")
        return pools

    def check(self, program: Any) -> None:
        """Raise ``ValueError`` naming the first field of ``program`` this space does not allow."""
        if not isinstance(program, EditProgram):
            raise ValueError(f"expected an EditProgram, got {type(program).__name__}")
        base = self.base
        if program.cut not in base.cut_points:
            raise ValueError(f"cut: {program.cut!r} is not a cut point (cut points: {base.cut_points})")
        if program.pool not in self.pools(program.cut):
            raise ValueError(f"pool: {program.pool!r} not allowed after {program.cut!r} ({self.pools(program.cut)})")
        droppable = base.droppable(program)
        for name in program.drop:
            if name not in droppable:
                raise ValueError(f"drop: {name!r} cannot be dropped (droppable before the cut: {droppable})")
        squeezable = base.squeezable(program)
        for name, keep in program.squeeze:
            if name not in squeezable:
                raise ValueError(f"squeeze: {name!r} cannot be squeezed (squeezable: {sorted(squeezable)})")
            if not 0 < keep < 1 or max(1, int(round(keep * squeezable[name]))) >= squeezable[name]:
                raise ValueError(f"squeeze: keep {keep} of {name!r} ({squeezable[name]} units) keeps nothing or all")
        if program.downsample and program.downsample not in base.downsample_points(program):
            raise ValueError(f"downsample: {program.downsample!r} is not a full-resolution unit before the cut "
                             f"({base.downsample_points(program)})")
        if program.head not in self.heads:
            raise ValueError(f"head: {program.head!r} not in {self.heads}")
        if not program.alpha > 0:
            raise ValueError(f"alpha: must be > 0, got {program.alpha}")
        if program.finetune < 0:
            raise ValueError(f"finetune: must be >= 0, got {program.finetune}")
        if program.freeze and program.freeze not in [u.name for u in base.chain(program)]:
            raise ValueError(f"freeze: {program.freeze!r} is not a kept unit before the cut")
        if not program.learning_rate > 0:
            raise ValueError(f"learning_rate: must be > 0, got {program.learning_rate}")
        if program.squeeze and program.importance not in self.importance:
            raise ValueError(f"importance: {program.importance!r} not in {self.importance}")


# --------------------------------------------------------------------------- #
# Operators                                                                    #
# --------------------------------------------------------------------------- #
