"""Variation operators of edit programs (:class:`~evokeras.genomes.edits.EditProgram`):
repair, random programs, eleven mutations and crossover, pure functions of an explicit
``numpy.random.Generator``; :func:`evokeras.make_toolbox` registers them for a
specialization task like the architecture operators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evokeras.genomes.edits import EditProgram, EditSpace
from evokeras.variation import draws as _draw

__all__ = ["EDIT_MUTATIONS", "crossover_programs", "mutate_program", "random_program", "reference_programs",
           "repair_program"]


def repair_program(program: EditProgram, space: EditSpace) -> EditProgram:
    """The nearest program ``space`` allows: drops and squeezes that no longer apply (past
    the cut, inside a dropped unit, into a residual stream) are removed, a squeeze keeps
    at least one unit and fewer than all, the pool fits the cut, choices snap to the
    space's values, and genes without effect take their defaults (canonical keys).
    Deterministic and idempotent."""
    base = space.base
    cut = program.cut if program.cut in base.cut_points else base.cut_points[-1]
    program = program.replace(cut=cut)
    droppable = set(base.droppable(program))
    program = program.replace(drop=[d for d in program.drop if d in droppable])
    # a drop can make an earlier squeeze reach a residual stream: drop such squeezes
    squeezable = base.squeezable(program)
    squeeze = {}
    for name, keep in program.squeeze:
        if name in squeezable:
            keep = float(_draw.nearest(keep, space.keep))
            if 1 <= int(round(keep * squeezable[name])) < squeezable[name]:
                squeeze[name] = keep
    downsample = program.downsample if program.downsample in base.downsample_points(program) else ""
    pools = space.pools(cut)
    pool = program.pool if program.pool in pools else pools[0]
    head = program.head if program.head in space.heads else space.heads[0]
    alpha = float(_draw.nearest(program.alpha, space.alphas))
    finetune = int(_draw.nearest(program.finetune, space.finetune))
    kept = [u.name for u in base.chain(program)]
    freeze = program.freeze if finetune and program.freeze in kept else ""
    lr = float(_draw.nearest(program.learning_rate, space.learning_rates)) if finetune else space.learning_rates[0]
    # the criterion matters only to a squeeze; without one it takes the field's default
    importance = (program.importance if program.importance in space.importance else space.importance[0]) \
        if squeeze else "weight_norm"
    return program.replace(squeeze=squeeze, pool=pool, head=head, alpha=alpha, finetune=finetune,
                           freeze=freeze, learning_rate=lr, importance=importance, downsample=downsample)


def random_program(rng: np.random.Generator, space: EditSpace) -> EditProgram:
    """A random valid program: a random cut and pool, up to ``init_drops`` drops and
    ``init_squeezes`` squeezes, random head and fine-tuning genes."""
    cut = _draw.pick(rng, space.base.cut_points)
    program = EditProgram(
        cut=cut, pool=_draw.pick(rng, space.pools(cut)), head=_draw.pick(rng, space.heads),
        alpha=float(_draw.pick(rng, space.alphas)), finetune=int(_draw.pick(rng, space.finetune)),
        learning_rate=float(_draw.pick(rng, space.learning_rates)),
        importance=_draw.pick(rng, space.importance),
    )
    for _ in range(int(rng.integers(space.init_drops + 1))):
        program = _drop(program, rng, space) or program
    for _ in range(int(rng.integers(space.init_squeezes + 1))):
        program = _squeeze(program, rng, space) or program
    if rng.random() < 0.5:
        program = _downsample(program, rng, space) or program
    if program.finetune:
        program = _freeze(program, rng, space) or program
    return repair_program(program, space)


#: Width multipliers of :func:`reference_programs` (1: no squeeze).
REFERENCE_WIDTHS = (1.0, 0.5, 0.25)


def reference_programs(space: EditSpace) -> list[EditProgram]:
    """Width-multiplier programs, a specialization's reference architectures (what
    ``strategy.reference_architectures`` starts generation 0 from): the base cut after its deepest
    feature map or sequence (the last cut point whose output is not a vector; the last
    cut point when there is none), every layer before the cut squeezed to each of
    :data:`REFERENCE_WIDTHS` (the nearest keep fraction of the space) by the space's first
    criterion, with and without a downsample after the first full-resolution weighted
    layer (and the per-channel layers after it) (:meth:`~evokeras.genomes.edits.BaseStructure.downsample_points`),
    a ``logistic`` head and the longest fine-tuning the space allows -- the programs
    MobileNet's width multiplier and an early stride would make, and the ones a short
    search rarely assembles gene by gene.

    In this order (generation 0 takes the first ``strategy.population``): the widest
    program at each of the space's learning rates (the fine-tuning rate swept first: the
    best rate differs between bases and decides what fine-tuning recovers), then each
    width, with and without the downsample, at the middle rate and the first pool but
    ``flatten``, then the same with the other pools. Repaired, without duplicates."""
    base = space.base
    spatial = [c for c in base.cut_points if base.unit(c).rank >= 3]
    cut = spatial[-1] if spatial else base.cut_points[-1]
    rates = sorted(space.learning_rates)
    pools = [p for p in space.pools(cut) if p != "flatten"] or list(space.pools(cut))
    plain = EditProgram(cut=cut, pool=pools[0], head="logistic" if "logistic" in space.heads else space.heads[0],
                        alpha=float(_draw.nearest(1e-2, space.alphas)), finetune=max(space.finetune),
                        learning_rate=rates[len(rates) // 2], importance=space.importance[0])
    # the first weighted layer at full resolution and the per-channel layers after it
    chain, points = base.chain(plain), set(base.downsample_points(plain))
    start = next((i for i, u in enumerate(chain) if u.role == "weighted" and u.name in points), None)
    early = ""
    if start is not None:
        early = chain[start].name
        for u in chain[start + 1:]:
            if u.role != "pass" or u.name not in points:
                break
            early = u.name
    candidates = [plain.replace(learning_rate=r) for r in rates]
    for pool in pools:
        for width in REFERENCE_WIDTHS:
            for downsample in ("", early) if early else ("",):
                program = plain.replace(pool=pool, downsample=downsample)
                if width < 1:
                    keep = float(_draw.nearest(width, space.keep))
                    program = program.replace(squeeze={name: keep for name in base.squeezable(program)})
                candidates.append(program)
    out: list[EditProgram] = []
    for program in candidates:
        program = repair_program(program, space)
        if program not in out:
            out.append(program)
    return out


def _squeeze(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Squeeze a layer (new, or to another keep fraction)."""
    squeezable = space.base.squeezable(p)
    if not squeezable:
        return None
    name = _draw.pick(rng, sorted(squeezable))
    return p.replace(squeeze={**dict(p.squeeze), name: float(_draw.pick(rng, space.keep))})


def _unsqueeze(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Give a squeezed layer back all its units."""
    if not p.squeeze:
        return None
    name = _draw.pick(rng, [n for n, _ in p.squeeze])
    return p.replace(squeeze={n: k for n, k in p.squeeze if n != name})


def _drop(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Drop a shape-preserving unit (a layer or a residual block) before the cut."""
    options = [d for d in space.base.droppable(p) if d not in p.drop]
    return p.replace(drop=(*p.drop, _draw.pick(rng, options))) if options else None


def _restore(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Put a dropped unit back."""
    if not p.drop:
        return None
    name = _draw.pick(rng, list(p.drop))
    return p.replace(drop=[d for d in p.drop if d != name])


def _importance(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Squeeze by another importance criterion."""
    options = [c for c in space.importance if c != p.importance]
    return p.replace(importance=_draw.pick(rng, options)) if p.squeeze and options else None


def _downsample(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Downsample after another full-resolution unit, or not at all."""
    options = [n for n in ["", *space.base.downsample_points(p)] if n != p.downsample]
    return p.replace(downsample=_draw.pick(rng, options)) if options else None


def _cut(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Cut one cut point earlier or later (sometimes anywhere)."""
    points = space.base.cut_points
    if len(points) < 2:
        return None
    i = points.index(p.cut)
    if rng.random() < 0.25:
        j = int(rng.integers(len(points)))
    else:
        j = min(max(i + (1 if rng.random() < 0.5 else -1), 0), len(points) - 1)
    return p.replace(cut=points[j])


def _pool(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Pool the cut features another way."""
    options = [x for x in space.pools(p.cut) if x != p.pool]
    return p.replace(pool=_draw.pick(rng, options)) if options else None


def _head(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Fit the head another way: another method or penalty."""
    if rng.random() < 0.5 and len(space.heads) > 1:
        return p.replace(head=_draw.pick(rng, [h for h in space.heads if h != p.head]))
    return p.replace(alpha=float(_draw.pick(rng, space.alphas)))


def _finetune(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Change the fine-tuning epochs or learning rate."""
    if rng.random() < 0.5 or not p.finetune:
        return p.replace(finetune=int(_draw.pick(rng, space.finetune)))
    return p.replace(learning_rate=float(_draw.pick(rng, space.learning_rates)))


def _freeze(p: EditProgram, rng: np.random.Generator, space: EditSpace) -> EditProgram | None:
    """Freeze the kept units up to another one for fine-tuning (or none)."""
    if not p.finetune:
        return None
    options = ["", *[u.name for u in space.base.chain(p)]]
    return p.replace(freeze=_draw.pick(rng, options))


#: Edit mutations by name, with their default weights.
EDIT_MUTATIONS = {
    "squeeze": (_squeeze, 3.0),
    "unsqueeze": (_unsqueeze, 1.0),
    "drop": (_drop, 1.5),
    "restore": (_restore, 1.0),
    "cut": (_cut, 2.0),
    "pool": (_pool, 1.0),
    "head": (_head, 1.0),
    "finetune": (_finetune, 1.0),
    "freeze": (_freeze, 0.5),
    "importance": (_importance, 0.5),
    "downsample": (_downsample, 1.0),
}


def mutate_program(program: EditProgram, rng: np.random.Generator, space: EditSpace, *,
                   weights: Mapping[str, float] | None = None) -> EditProgram:
    """A repaired child differing from ``program`` by one edit mutation (drawn by
    ``weights``, default :data:`EDIT_MUTATIONS`' weights; one that does not apply or
    changes nothing after repair is not drawn again). Returns ``program`` itself when
    no mutation applies."""
    table = {name: (lambda p, r, s, f=fn: repair_program(f(p, r, s) or p, s)) for name, (fn, _) in EDIT_MUTATIONS.items()}
    w = {name: wt for name, (_, wt) in EDIT_MUTATIONS.items()} if weights is None else dict(weights)
    child = _draw.first_change(program, table, w, rng, space, who="mutate_program")
    return child if child is not None else program


def crossover_programs(a: EditProgram, b: EditProgram, rng: np.random.Generator,
                       space: EditSpace) -> tuple[EditProgram, EditProgram]:
    """Uniform crossover: each gene group (cut and pool; each layer's squeeze; each
    unit's drop; head; fine-tuning) comes from either parent; both children repaired."""
    groups: list[Sequence[str]] = [("cut", "pool"), ("head", "alpha"), ("finetune", "freeze", "learning_rate"),
                                   ("importance",), ("downsample",)]
    ca = {**a.to_dict(), "importance": a.importance, "downsample": a.downsample}
    cb = {**b.to_dict(), "importance": b.importance, "downsample": b.downsample}
    for group in groups:
        if rng.random() < 0.5:
            for name in group:
                ca[name], cb[name] = cb[name], ca[name]
    sa: dict[str, float | None] = dict(a.squeeze)
    sb: dict[str, float | None] = dict(b.squeeze)
    for name in sorted(set(sa) | set(sb)):
        if rng.random() < 0.5:
            sa[name], sb[name] = sb.get(name), sa.get(name)
    ca["squeeze"] = {k: v for k, v in sa.items() if v is not None}
    cb["squeeze"] = {k: v for k, v in sb.items() if v is not None}
    da, db = set(a.drop), set(b.drop)
    for name in sorted(da ^ db):
        if rng.random() < 0.5:
            if name in da:
                da.discard(name)
                db.add(name)
            else:
                db.discard(name)
                da.add(name)
    ca["drop"], cb["drop"] = sorted(da), sorted(db)
    return (repair_program(EditProgram.from_dict(ca), space), repair_program(EditProgram.from_dict(cb), space))

