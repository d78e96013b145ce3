"""Tests for :mod:`evokeras.genomes.edits` and :mod:`evokeras.variation.edits`: edit programs, base structures, the edit space and
its operators, on the structures of the three base families of :mod:`evokeras.nets.zoo`.

The structures are read from tiny zoo models built without drawing weights (nothing
here runs a network).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from evokeras.genomes.edits import BaseStructure, EditProgram, EditSpace
from evokeras.genomes.keyed import GenomeError
from evokeras.variation.edits import (
    EDIT_MUTATIONS,
    crossover_programs,
    mutate_program,
    random_program,
    reference_programs,
    repair_program,
)

FAMILIES = ("cnn", "resnet", "lstm")


@pytest.fixture(scope="module")
def structures() -> dict[str, BaseStructure]:
    from conftest import lazy_weights

    from evokeras.nets import zoo
    from evokeras.nets.surgery import structure

    with lazy_weights():
        models = {
            "cnn": zoo.plain_cnn((16, 16, 1), 2, widths=(4, 8), dense=8),
            "resnet": zoo.resnet((12, 12, 1), 3, widths=(4, 8), blocks=2),
            "lstm": zoo.lstm_model(50, 50, embedding=8, units=(6, 6)),
        }
        return {name: structure(model) for name, model in models.items()}


@pytest.fixture(scope="module")
def spaces(structures) -> dict[str, EditSpace]:
    return {name: EditSpace(s) for name, s in structures.items()}


# --------------------------------------------------------------------------- #
# EditProgram                                                                  #
# --------------------------------------------------------------------------- #
def test_program_dict_and_json_round_trip_with_stable_key() -> None:
    p = EditProgram(cut="s2b2_relu", pool="max", squeeze={"s1b1_conv1": 0.5, "s2b1_conv1": 0.25},
                    drop=("s1b2_add",), head="logistic", alpha=0.1, finetune=2, freeze="stem_bn",
                    learning_rate=3e-3)
    d = p.to_dict()
    assert d["program"] == "edit"
    assert d["squeeze"] == {"s1b1_conv1": 0.5, "s2b1_conv1": 0.25} and d["drop"] == ["s1b2_add"]
    assert EditProgram.from_dict(d) == p
    assert EditProgram.from_dict(json.loads(json.dumps(d))) == p
    assert EditProgram.from_json(p.to_json()) == p
    assert EditProgram.from_json(p.to_json()).key == p.key
    assert len(p.key) == 16 and int(p.key, 16) >= 0
    # the key is a pure function of the content (a hard-coded value would pin the format;
    # equality with a rebuilt program is what resumption relies on)
    assert EditProgram(**{k: v for k, v in d.items() if k != "program"}).key == p.key
    assert p.replace(alpha=1.0).key != p.key
    assert hash(p) == hash(EditProgram.from_dict(d))
    assert p.steps() == [
        "drop s1b2_add",
        "squeeze s1b1_conv1 to 0.5",
        "squeeze s2b1_conv1 to 0.25",
        "cut after s2b2_relu, max pool",
        "fit new head: logistic (alpha 0.1)",
        "fine-tune 2 epoch(s) at lr 0.003, frozen up to stem_bn",
    ]
    assert len(p) == 6


def test_program_canonical_order_gives_one_key() -> None:
    a = EditProgram(cut="fc", squeeze={"b": 0.5, "a": 0.25}, drop=("z", "y"))
    b = EditProgram(cut="fc", squeeze=(("a", 0.25), ("b", 0.5)), drop=["y", "z"])
    c = EditProgram(cut="fc", squeeze=[("b", 0.5), ("a", 0.25)], drop=("y", "z"))
    assert a == b == c
    assert a.key == b.key == c.key
    assert a.to_json() == b.to_json() == c.to_json()
    assert a.squeeze == (("a", 0.25), ("b", 0.5)) and a.drop == ("y", "z")
    assert len({a, b, c}) == 1


def test_equal_programs_have_equal_keys() -> None:
    a, b = EditProgram(cut="fc", alpha=1), EditProgram(cut="fc", alpha=1.0)
    assert a == b and hash(a) == hash(b)
    assert a.key == b.key


def test_from_dict_rejects_non_programs_and_unknown_fields() -> None:
    good = EditProgram(cut="fc").to_dict()
    for bad in (None, [1, 2], "edit", {"cut": "fc"}, {**good, "program": "genome"}):
        with pytest.raises(GenomeError, match="not an edit program"):
            EditProgram.from_dict(bad)
    with pytest.raises(GenomeError, match="'colour'"):
        EditProgram.from_dict({**good, "colour": "red"})
    missing = dict(good)
    del missing["cut"]
    with pytest.raises(GenomeError, match="cut"):
        EditProgram.from_dict(missing)


def test_from_dict_rejects_a_badly_typed_field() -> None:
    with pytest.raises(GenomeError, match="alpha"):
        EditProgram.from_dict({**EditProgram(cut="fc").to_dict(), "alpha": "big"})


def test_base_structure_dict_round_trip(structures) -> None:
    for name, s in structures.items():
        assert BaseStructure.from_dict(s.to_dict()) == s, name
        assert BaseStructure.from_dict(json.loads(json.dumps(s.to_dict()))) == s, name
    with pytest.raises(ValueError, match="two units"):
        BaseStructure(structures["cnn"].units[:1])


def test_structures_of_the_zoo_families(structures) -> None:
    cnn, res, lstm = structures["cnn"], structures["resnet"], structures["lstm"]
    assert cnn.names[-1] == res.names[-1] == lstm.names[-1] == "head"
    assert "head" not in cnn.cut_points + res.cut_points + lstm.cut_points
    assert cnn.cut_points[-1] == "fc" and res.cut_points[-1] == "pool"
    assert lstm.cut_points == ["embedding", "lstm1", "lstm2"]
    assert [u.name for u in res.units if u.kind == "block"] == ["s1b1_add", "s1b2_add", "s2b1_add", "s2b2_add"]
    assert res.unit("s1b1_add").inner == (("s1b1_conv1", 4),)
    assert res.unit("s2b1_add").inner == (("s2b1_conv1", 8),)
    # identity-shortcut blocks and shape-preserving layers are droppable, the stride-2 block is not
    last = EditProgram(cut=res.cut_points[-1])
    assert {"s1b1_add", "s1b2_add", "s2b2_add"} <= set(res.droppable(last))
    assert "s2b1_add" not in res.droppable(last) and "stem_conv" not in res.droppable(last)
    assert set(cnn.droppable(EditProgram(cut="fc"))) == {"stage1_conv2", "stage2_conv2"}
    assert lstm.droppable(EditProgram(cut="lstm2")) == []
    assert cnn.unit("stage1_conv1").params == 1 * 9 * 4 + 4
    with pytest.raises(GenomeError, match="'nope'"):
        cnn.index("nope")


# --------------------------------------------------------------------------- #
# Operators: properties on random sequences                                    #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("family", FAMILIES)
def test_operator_sequences_stay_valid_and_repair_is_idempotent(spaces, family) -> None:
    space = spaces[family]
    rng = np.random.default_rng(7)
    population = [random_program(rng, space) for _ in range(8)]
    seen = set()
    for step in range(240):
        op = step % 3
        if op == 0:
            child = random_program(rng, space)
        elif op == 1:
            child = mutate_program(population[int(rng.integers(len(population)))], rng, space)
        else:
            i, j = rng.choice(len(population), size=2, replace=False)
            child, other = crossover_programs(population[int(i)], population[int(j)], rng, space)
            space.check(other)
            assert repair_program(other, space) == other
        space.check(child)
        assert repair_program(child, space) == child
        assert repair_program(child, space).key == child.key
        population[int(rng.integers(len(population)))] = child
        seen.add(child.key)
    # the operators explore: many distinct programs, with drops and squeezes where allowed
    assert len(seen) > 60
    assert any(p.squeeze for p in population) or family == "lstm"


@pytest.mark.parametrize("family", FAMILIES)
def test_repair_makes_arbitrary_programs_valid(structures, spaces, family) -> None:
    """Programs with random garbage in every field are repaired into the space, and
    repairing again changes nothing."""
    space, names = spaces[family], structures[family].names + ["nowhere"]
    rng = np.random.default_rng(3)
    for _ in range(200):
        raw = EditProgram(
            cut=str(rng.choice(names)),
            pool=str(rng.choice(["avg", "max", "flatten", "last", "mean", "none", "bogus"])),
            squeeze={str(n): float(rng.uniform(-0.5, 1.5)) for n in rng.choice(names, size=rng.integers(4))},
            drop=[str(n) for n in rng.choice(names, size=rng.integers(4))],
            head=str(rng.choice(["ridge", "logistic", "svm"])),
            alpha=float(rng.uniform(-1, 20)),
            finetune=int(rng.integers(-2, 9)),
            freeze=str(rng.choice(["", *names])),
            learning_rate=float(rng.uniform(-1, 1)),
        )
        fixed = repair_program(raw, space)
        space.check(fixed)
        assert repair_program(fixed, space) == fixed


def test_operators_are_deterministic_given_the_generator(spaces) -> None:
    space = spaces["resnet"]

    def run(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        pop = [random_program(rng, space) for _ in range(4)]
        pop += [mutate_program(p, rng, space) for p in pop]
        pop += list(crossover_programs(pop[0], pop[1], rng, space))
        return [p.key for p in pop]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_repair_removes_genes_without_effect(spaces) -> None:
    space = spaces["cnn"]
    p = EditProgram(cut="fc", pool="avg", finetune=0, freeze="stage1_conv1", learning_rate=0.05, alpha=0.3)
    fixed = repair_program(p, space)
    assert fixed.pool == "none"  # a vector is not pooled
    assert fixed.freeze == "" and fixed.learning_rate == space.learning_rates[0]
    assert fixed.alpha == 0.1  # snapped to the space's nearest value
    assert fixed.key == repair_program(EditProgram(cut="fc", alpha=0.1), space).key


# --------------------------------------------------------------------------- #
# EditSpace.check names the offending field                                    #
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(("family", "program", "field"), [
    ("cnn", EditProgram(cut="head", pool="none"), "cut"),
    ("cnn", EditProgram(cut="nowhere"), "cut"),
    ("cnn", EditProgram(cut="fc", pool="avg"), "pool"),
    ("cnn", EditProgram(cut="stage2_pool", pool="last"), "pool"),
    ("lstm", EditProgram(cut="lstm2", pool="avg"), "pool"),
    ("resnet", EditProgram(cut="pool", pool="none", squeeze={"s1b1_add": 0.5}), "squeeze"),
    ("resnet", EditProgram(cut="pool", pool="none", squeeze={"s1b1_conv2": 0.5}), "squeeze"),
    ("resnet", EditProgram(cut="pool", pool="none", drop=("stem_conv",)), "drop"),
    ("resnet", EditProgram(cut="pool", pool="none", drop=("s2b1_add",)), "drop"),
    ("cnn", EditProgram(cut="fc", pool="none", drop=("stage1_conv1",)), "drop"),
    ("cnn", EditProgram(cut="stage1_conv2", drop=("stage2_conv2",)), "drop"),
    ("cnn", EditProgram(cut="fc", pool="none", squeeze={"stage1_conv1": 0.9}), "squeeze"),
    ("cnn", EditProgram(cut="fc", pool="none", squeeze={"stage1_conv1": 1.0}), "squeeze"),
    ("cnn", EditProgram(cut="fc", pool="none", squeeze={"stage1_conv1": 0.0}), "squeeze"),
    ("cnn", EditProgram(cut="fc", pool="none", head="svm"), "head"),
    ("cnn", EditProgram(cut="fc", pool="none", alpha=0.0), "alpha"),
    ("cnn", EditProgram(cut="fc", pool="none", finetune=-1), "finetune"),
    ("cnn", EditProgram(cut="stage1_pool", finetune=1, freeze="fc"), "freeze"),
    ("cnn", EditProgram(cut="fc", pool="none", learning_rate=0.0), "learning_rate"),
])
def test_check_names_the_offending_field(spaces, family, program, field) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        spaces[family].check(program)
    space = spaces[family]
    if program.cut in space.base.cut_points:
        space.check(repair_program(program, space))


def test_check_rejects_non_programs_and_accepts_valid_ones(spaces) -> None:
    with pytest.raises(ValueError, match="EditProgram"):
        spaces["cnn"].check({"cut": "fc"})
    spaces["cnn"].check(EditProgram(cut="fc", pool="none", squeeze={"stage1_conv1": 0.5, "fc": 0.25}))
    spaces["cnn"].check(EditProgram(cut="stage2_pool", pool="flatten", drop=("stage1_conv2",)))
    spaces["lstm"].check(EditProgram(cut="lstm2", pool="last", squeeze={"embedding": 0.5, "lstm1": 0.5}))


def test_flatten_pool_respects_max_flatten(spaces) -> None:
    space = spaces["resnet"]
    program = EditProgram(cut="s1b2_relu", pool="flatten")  # 12 * 12 * 4 = 576 features
    space.check(program)
    small = space.replace(max_flatten=500)
    assert "flatten" not in small.pools("s1b2_relu") and "avg" in small.pools("s1b2_relu")
    with pytest.raises(ValueError, match="^pool:"):
        small.check(program)
    assert repair_program(program, small).pool == "avg"


def test_residual_stream_rule(structures) -> None:
    res = structures["resnet"]
    program = EditProgram(cut="pool", pool="none")
    squeezable = res.squeezable(program)
    # block internals, and the two streams: the stem's and the projection block's
    assert set(squeezable) == {"s1b1_conv1", "s1b2_conv1", "s2b1_conv1", "s2b2_conv1", "stem_conv", "s2b1_add"}
    assert squeezable["s2b1_conv1"] == 8 and squeezable["stem_conv"] == 4 and squeezable["s2b1_add"] == 8
    for name in ("s1b1_conv2", "s2b1_conv2", "s2b1_proj", "s1b1_add", "s2b2_add"):
        assert name not in squeezable
    assert res.streams(program) == {"stem_conv": ["s1b1_add", "s1b2_add"], "s2b1_add": ["s2b2_add"]}
    # a dropped or cut-away block leaves the stream
    assert res.streams(program.replace(drop=("s1b1_add",))) == {"stem_conv": ["s1b2_add"], "s2b1_add": ["s2b2_add"]}
    assert res.streams(EditProgram(cut="s1b1_relu")) == {"stem_conv": ["s1b1_add"]}
    # cut before the first block: the stem's output reaches the cut, no stream
    assert "stem_conv" in res.squeezable(EditProgram(cut="stem_relu"))
    assert res.streams(EditProgram(cut="stem_relu")) == {}
    # the plain CNN: every conv and fc can be squeezed
    cnn = structures["cnn"]
    assert set(cnn.squeezable(EditProgram(cut="fc"))) == {
        "stage1_conv1", "stage1_conv2", "stage2_conv1", "stage2_conv2", "fc"}


def test_importance_is_validated_by_program_and_space(spaces) -> None:
    with pytest.raises(GenomeError, match="importance must be one of"):
        EditProgram(cut="fc", importance="l2")
    space = spaces["cnn"].replace(importance=("taylor",))
    program = EditProgram(cut="fc", pool="none", squeeze={"stage1_conv1": 0.5})  # weight_norm
    with pytest.raises(ValueError, match="^importance:"):
        space.check(program)
    assert repair_program(program, space).importance == "taylor"
    with pytest.raises(ValueError, match="space option 'importance'"):
        EditSpace.from_dict({"importance": "taylor"}, base=spaces["cnn"])
    with pytest.raises(ValueError, match="space option 'importance'"):
        EditSpace.from_dict({"importance": ["fisher"]}, base=spaces["cnn"])
    # the criterion is part of the program's JSON (and key) unless it is the default
    assert "importance" not in program.to_dict()
    tay = program.replace(importance="taylor")
    assert EditProgram.from_dict(tay.to_dict()) == tay and tay.key != program.key
    assert "squeeze stage1_conv1 to 0.5 by taylor" in tay.steps()
    # the importance mutation changes the criterion only, and only of a program that squeezes
    full = spaces["cnn"]
    zero = {name: 0.0 for name in EDIT_MUTATIONS}
    rng = np.random.default_rng(1)
    tay = repair_program(tay, full)
    child = mutate_program(tay, rng, full, weights={**zero, "importance": 1.0})
    assert child.importance != "taylor" and child.replace(importance="taylor") == tay
    plain = repair_program(EditProgram(cut="fc", pool="none"), full)
    assert mutate_program(plain, rng, full, weights={**zero, "importance": 1.0}) is plain


def test_repair_removes_squeezes_a_drop_invalidates(spaces) -> None:
    space = spaces["resnet"]
    ok = EditProgram(cut="pool", pool="none", squeeze={"s1b2_conv1": 0.5, "s2b1_conv1": 0.5})
    space.check(ok)
    bad = ok.replace(drop=("s1b2_add",))  # s1b2_conv1 lives inside the dropped block
    with pytest.raises(ValueError, match="^squeeze: 's1b2_conv1'"):
        space.check(bad)
    fixed = repair_program(bad, space)
    assert fixed.drop == ("s1b2_add",) and fixed.squeeze == (("s2b1_conv1", 0.5),)
    space.check(fixed)
    # restoring a block makes a squeeze of the stem a squeeze of its stream: still allowed
    stem = EditProgram(cut="s1b1_relu", drop=("s1b1_add",), squeeze={"stem_conv": 0.5}, importance="taylor")
    space.check(stem)
    restored = repair_program(stem.replace(drop=()), space)
    assert restored.squeeze == (("stem_conv", 0.5),) and restored.drop == () and restored.importance == "taylor"
    # without a squeeze the criterion has no effect: repair gives the field's default (same key)
    assert repair_program(stem.replace(squeeze={}), space).importance == "weight_norm"
    # a cut moved before a squeezed layer removes the squeeze
    assert repair_program(ok.replace(cut="s1b1_relu", pool="avg"), space).squeeze == ()


def test_crossover_children_take_genes_from_the_parents(spaces) -> None:
    space = spaces["resnet"]
    a = EditProgram(cut="pool", pool="none", squeeze={"s1b1_conv1": 0.5}, head="ridge", alpha=0.01)
    b = EditProgram(cut="pool", pool="none", drop=("s1b2_add",), squeeze={"s2b2_conv1": 0.25},
                    head="logistic", alpha=1.0, finetune=1, learning_rate=3e-3)
    a, b = repair_program(a, space), repair_program(b, space)
    rng = np.random.default_rng(0)
    for _ in range(30):
        ca, cb = crossover_programs(a, b, rng, space)
        space.check(ca)
        space.check(cb)
        for child in (ca, cb):
            assert child.head in ("ridge", "logistic") and child.alpha in (0.01, 1.0)
            assert dict(child.squeeze).get("s1b1_conv1", 0.5) == 0.5
            assert dict(child.squeeze).get("s2b2_conv1", 0.25) == 0.25
            assert set(child.drop) <= {"s1b2_add"}
        # each gene group goes to one child or the other
        assert sorted([ca.head, cb.head]) == ["logistic", "ridge"]
        assert sorted([len(ca.drop), len(cb.drop)]) == [0, 1]


# --------------------------------------------------------------------------- #
# mutate_program and EditSpace.from_dict                                       #
# --------------------------------------------------------------------------- #
def test_mutate_with_only_an_inapplicable_mutation_returns_the_program(spaces) -> None:
    space = spaces["cnn"]
    p = repair_program(EditProgram(cut="fc", pool="none"), space)  # no squeeze, no drop
    zero = {name: 0.0 for name in EDIT_MUTATIONS}
    rng = np.random.default_rng(0)
    for name in ("unsqueeze", "restore", "freeze"):  # freeze: only with fine-tuning
        assert mutate_program(p, rng, space, weights={**zero, name: 1.0}) is p
    assert mutate_program(p, rng, space, weights=zero) is p
    # an applicable one changes it
    child = mutate_program(p, rng, space, weights={**zero, "squeeze": 1.0})
    assert child != p and child.squeeze and not child.drop
    space.check(child)
    with pytest.raises(ValueError, match="'shuffle'"):
        mutate_program(p, rng, space, weights={"shuffle": 1.0})


def test_each_mutation_changes_only_its_genes(spaces) -> None:
    space = spaces["resnet"]
    rng = np.random.default_rng(5)
    zero = {name: 0.0 for name in EDIT_MUTATIONS}
    base = repair_program(EditProgram(cut="s2b2_relu", pool="avg", squeeze={"s1b1_conv1": 0.5},
                                      drop=("s1b2_add",), finetune=1), space)
    for _ in range(10):
        c = mutate_program(base, rng, space, weights={**zero, "unsqueeze": 1.0})
        assert c.squeeze == () and c.replace(squeeze=base.squeeze) == base
        c = mutate_program(base, rng, space, weights={**zero, "restore": 1.0})
        assert c.drop == () and c.replace(drop=base.drop) == base
        c = mutate_program(base, rng, space, weights={**zero, "pool": 1.0})
        assert c.pool != base.pool and c.replace(pool=base.pool) == base
        # a head mutation may redraw the current penalty: then the parent comes back
        c = mutate_program(base, rng, space, weights={**zero, "head": 1.0})
        assert c is base or (c.head, c.alpha) != (base.head, base.alpha)
        assert c.replace(head=base.head, alpha=base.alpha) == base
        c = mutate_program(base, rng, space, weights={**zero, "cut": 1.0})
        assert c.cut != base.cut
        space.check(c)
        c = mutate_program(base, rng, space, weights={**zero, "downsample": 1.0})
        assert c.downsample in space.base.downsample_points(base) and c.replace(downsample="") == base


def test_space_from_dict(spaces) -> None:
    space = spaces["cnn"]
    custom = EditSpace.from_dict({"keep": [0.5], "finetune": [0], "heads": ["logistic"]}, base=space)
    assert custom.keep == (0.5,) and custom.finetune == (0,) and custom.heads == ("logistic",)
    assert custom.base == space.base
    assert set(custom.to_dict()) == set(EditSpace._OPTIONS)
    with pytest.raises(ValueError, match="'bogus'"):
        EditSpace.from_dict({"bogus": 1}, base=space)
    for option, value in (("keep", [1.5]), ("alphas", [0]), ("heads", ["svm"]), ("finetune", [-1]),
                          ("learning_rates", [])):
        with pytest.raises(ValueError, match=f"'{option}'"):
            EditSpace.from_dict({option: value}, base=space)
    rng = np.random.default_rng(0)
    for _ in range(30):
        p = random_program(rng, custom)
        custom.check(p)
        assert p.head == "logistic" and p.finetune == 0 and all(k == 0.5 for _, k in p.squeeze)


@pytest.mark.parametrize("family", FAMILIES)
def test_reference_programs_are_width_multipliers(spaces, family) -> None:
    """Valid, canonical, distinct programs: the base cut after its deepest feature map or
    sequence, every squeezable layer squeezed to one width (or none), the longest
    fine-tuning, widest first."""
    space = spaces[family]
    programs = reference_programs(space)
    assert len({p.key for p in programs}) == len(programs) >= 4
    base = space.base
    cut = programs[0].cut
    assert base.unit(cut).rank >= 3
    assert all(base.unit(c).rank < 3 for c in base.cut_points[base.cut_points.index(cut) + 1:])
    assert not programs[0].squeeze
    for p in programs:
        space.check(p)
        assert repair_program(p, space) == p
        assert p.cut == cut and p.pool != "flatten" and not p.drop
        assert p.finetune == max(space.finetune) and p.head == "logistic"
        if p.squeeze:
            assert len({k for _, k in p.squeeze}) == 1
            assert set(dict(p.squeeze)) == set(base.squeezable(p)) and p.importance == space.importance[0]
    # the fine-tuning rate is swept first: the widest program at each of the space's rates
    assert [p.learning_rate for p in programs[:3]] == sorted(space.learning_rates)
    assert all(not p.squeeze and not p.downsample for p in programs[:3])
    assert all(p.learning_rate == sorted(space.learning_rates)[1] for p in programs[3:])
    # an early downsample after the first full-resolution weighted layer (and its per-channel layers)
    early = {"cnn": "stage1_conv1", "resnet": "stem_relu", "lstm": "embedding"}[family]
    assert {p.downsample for p in programs} == {"", early}
    narrow = EditSpace.from_dict({"keep": [0.75], "finetune": [0, 2], "heads": ["ridge"]}, base=space)
    for p in reference_programs(narrow):
        narrow.check(p)
        assert p.finetune == 2 and p.head == "ridge" and all(k == 0.75 for _, k in p.squeeze)


def test_downsample_gene(structures, spaces) -> None:
    """Points at the input's resolution before the cut, none where a flattened map feeds a
    weighted layer; the gene is validated, repaired, and left out of old programs' keys."""
    cnn, space = structures["cnn"], spaces["cnn"]
    deep = EditProgram(cut="stage2_pool")
    assert cnn.downsample_points(deep) == ["stage1_conv1", "stage1_conv2"]
    assert cnn.downsample_points(EditProgram(cut="fc", pool="none")) == []  # fc reads the flattened map
    assert cnn.downsample_points(EditProgram(cut="flatten", pool="none")) == ["stage1_conv1", "stage1_conv2"]
    assert structures["lstm"].downsample_points(EditProgram(cut="lstm2", pool="last")) == ["embedding", "lstm1"]
    program = EditProgram(cut="stage2_pool", downsample="stage1_conv1")
    assert program.to_dict()["downsample"] == "stage1_conv1" and "downsample 2x after stage1_conv1" in program.steps()
    assert "downsample" not in deep.to_dict() and EditProgram.from_dict(program.to_dict()) == program
    assert program.key != deep.key
    with pytest.raises(ValueError, match="downsample"):
        space.check(EditProgram(cut="stage2_pool", downsample="stage2_conv1"))
    assert repair_program(EditProgram(cut="fc", pool="none", downsample="stage1_conv1"), space).downsample == ""
    with pytest.raises(GenomeError, match="downsample"):
        EditProgram(cut="fc", downsample=3)  # type: ignore[arg-type]
