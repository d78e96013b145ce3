"""Tests for :mod:`evokeras.genomes.cell`, :mod:`evokeras.variation.cell` and :class:`evokeras.nets.layers.SkipStepCell`.

Genome: JSON round trips, canonical form, validation errors that name the field.
Operators: hypothesis draws (``derandomize=True``: the same examples on every run) a
seed, limits and a sequence of operators; every cell on the way must validate, stay
within the limits and be a fixed point of the repair. Keras cell: correctness anchors
against SimpleRNNCell, LSTMCell and GRUCell, a hand-written numpy loop for a cell
with a feed-forward link and lag-2/lag-3 links, an impulse that must come back exactly
three steps later, a generic numpy interpreter on random cells, config and ``.keras``
round trips, one training step. The fused layer :class:`SkipStepRNN` against the plain
``RNN(SkipStepCell)`` and the numpy interpreter (outputs, masking, states, stateful
carry, ``go_backwards``), and its gradients against an unfused reference cell kept here
(one input, one kernel, one matmul: the cell as it was before the fusion). Runs on both
Keras backends.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evokeras.genomes.cell import CellGenome, CellLimits, NodeGene
from evokeras.genomes.drawing import draw_cell
from evokeras.genomes.keyed import GenomeError
from evokeras.nets.layers import SkipStepCell, SkipStepRNN
from evokeras.variation import cell as C

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
OPERATORS = ("mutate", "crossover", "random", *C.CELL_MUTATIONS)
LIMITS = (
    CellLimits(),
    CellLimits(max_nodes=1, max_lag=1, max_links=1, units=(4,)),
    CellLimits(max_nodes=3, max_lag=3, max_links=0, node_types=("lstm",)),
    CellLimits(max_nodes=6, max_lag=12, max_links=20, units=(2, 3, 5)),
)

EXAMPLE = CellGenome(  # 4 units, 3 features in every Keras test: JAX compiles each shape once
    4,
    (NodeGene("lstm"), NodeGene("gru"), NodeGene("tanh")),
    ff_links=((0, 2),),
    rec_links=((0, 3, 1), (1, 1, 1), (2, 2, 0)),
)


def _np(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# -- genome --------------------------------------------------------------------------------
def test_json_round_trip_is_exact() -> None:
    data = EXAMPLE.to_dict()
    assert data == {
        "units": 4,
        "nodes": [{"type": "lstm"}, {"type": "gru"}, {"type": "tanh"}],
        "ff_links": [[0, 2]],
        "rec_links": [[0, 3, 1], [1, 1, 1], [2, 2, 0]],
    }
    text = json.dumps(data)
    back = CellGenome.from_dict(json.loads(text))
    assert back == EXAMPLE and hash(back) == hash(EXAMPLE) and back.key == EXAMPLE.key
    assert back.to_dict() == data
    assert CellGenome.from_json(EXAMPLE.to_json()) == EXAMPLE
    assert isinstance(back.nodes, tuple) and isinstance(back.rec_links[0], tuple)


def test_equality_and_hash_by_content() -> None:
    same = CellGenome(4, ["lstm", "gru", "tanh"], [[0, 2]], [[2, 2, 0], [1, 1, 1], [0, 3, 1]])
    assert same == EXAMPLE and hash(same) == hash(EXAMPLE)  # strings, lists, any link order
    assert len({EXAMPLE, same, EXAMPLE.replace(units=8)}) == 2
    assert EXAMPLE.replace(rec_links=((0, 2, 1),)) != EXAMPLE
    with pytest.raises(AttributeError):
        EXAMPLE.units = 3  # type: ignore[misc]


def test_properties() -> None:
    assert EXAMPLE.max_lag == 3 and EXAMPLE.n_links == 4 and EXAMPLE.n_nodes == 3
    assert CellGenome(4, ("tanh",)).max_lag == 0
    assert EXAMPLE.node_inputs(0) == (("x",), ("rec", 2, 2))
    assert EXAMPLE.node_inputs(1) == (("prev", 0), ("rec", 0, 3), ("rec", 1, 1))
    assert EXAMPLE.node_inputs(2) == (("prev", 1), ("ff", 0))
    assert EXAMPLE.register_depths == (3, 1, 2)  # node 1: gru; node 2: output
    assert EXAMPLE.state_layout() == (
        ("h", 0, 1), ("h", 0, 2), ("h", 0, 3), ("h", 1, 1), ("h", 2, 1), ("h", 2, 2), ("c", 0),
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**EXAMPLE.to_dict(), "bias": 1}, "'bias'"),
        ({"nodes": [{"type": "tanh"}]}, "'units'"),
        ({"units": 4}, "'nodes'"),
        ({**EXAMPLE.to_dict(), "units": 0}, "cell.units"),
        ({**EXAMPLE.to_dict(), "units": 4.0}, "cell.units"),
        ({**EXAMPLE.to_dict(), "units": True}, "cell.units"),
        ({**EXAMPLE.to_dict(), "nodes": []}, "cell.nodes"),
        ({**EXAMPLE.to_dict(), "nodes": "tanh"}, "cell.nodes"),
        ({**EXAMPLE.to_dict(), "nodes": [{"type": "relu"}]}, "cell.nodes[0].type"),
        ({**EXAMPLE.to_dict(), "nodes": [{"type": "tanh", "act": 1}]}, "cell.nodes[0]: unknown key 'act'"),
        ({**EXAMPLE.to_dict(), "nodes": [{}]}, "cell.nodes[0]: missing key 'type'"),
        ({**EXAMPLE.to_dict(), "ff_links": [[0, 1]]}, "cell.ff_links[0]"),
        ({**EXAMPLE.to_dict(), "ff_links": [[0, 3]]}, "cell.ff_links[0]"),
        ({**EXAMPLE.to_dict(), "ff_links": [[0]]}, "cell.ff_links[0]"),
        ({**EXAMPLE.to_dict(), "ff_links": [[0, 2], [0, 2]]}, "cell.ff_links: link [0, 2]"),
        ({**EXAMPLE.to_dict(), "ff_links": {"a": 1}}, "cell.ff_links"),
        ({**EXAMPLE.to_dict(), "rec_links": [[0, 0, 1]]}, "cell.rec_links[0]: the lag"),
        ({**EXAMPLE.to_dict(), "rec_links": [[0, 1, 3]]}, "cell.rec_links[0]"),
        ({**EXAMPLE.to_dict(), "rec_links": [[0, 1.0, 1]]}, "cell.rec_links[0]"),
        ({**EXAMPLE.to_dict(), "rec_links": [[-1, 1, 1]]}, "cell.rec_links[0]"),
        ({**EXAMPLE.to_dict(), "rec_links": [[0, 1, 1], [0, 1, 1]]}, "appears more than once"),
    ],
)
def test_validation_errors_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(GenomeError, match=None) as info:
        CellGenome.from_dict(data)
    assert field in str(info.value)


def test_validate_on_constructed_cells() -> None:
    assert EXAMPLE.validate() is EXAMPLE
    with pytest.raises(GenomeError, match=r"cell\.nodes\[1\]\.type"):
        CellGenome(4, ("tanh", "rnn")).validate()
    with pytest.raises(GenomeError, match=r"cell\.rec_links\[0\]"):
        CellGenome(4, ("tanh",), rec_links=((0, 1, 1),)).validate()
    with pytest.raises(GenomeError, match=r"cell\.units"):
        CellGenome(-2, ("tanh",)).validate()


def test_limits_validate_and_check() -> None:
    with pytest.raises(ValueError, match=r"CellLimits\.max_nodes"):
        CellLimits(max_nodes=0)
    with pytest.raises(ValueError, match=r"CellLimits\.units"):
        CellLimits(units=())
    with pytest.raises(ValueError, match=r"CellLimits\.node_types"):
        CellLimits(node_types=("relu",))
    limits = CellLimits(max_nodes=2, max_lag=2, max_links=3, units=(4,))
    with pytest.raises(GenomeError, match=r"cell\.nodes"):
        limits.check(EXAMPLE)
    with pytest.raises(GenomeError, match=r"cell\.units"):
        limits.check(CellGenome(8, ("tanh",)))
    with pytest.raises(GenomeError, match="max_lag"):
        limits.check(CellGenome(4, ("tanh",), rec_links=((0, 3, 0),)))
    CellLimits(units=(4, 8)).check(EXAMPLE)


# -- operators -----------------------------------------------------------------------------
def _apply(name: str, cell: CellGenome, rng: np.random.Generator, limits: CellLimits) -> list[CellGenome]:
    if name == "mutate":
        return [C.mutate_cell(cell, rng, limits)]
    if name == "crossover":
        return list(C.crossover_cells(cell, C.random_cell(rng, limits), rng, limits))
    if name == "random":
        return [C.random_cell(rng, limits)]
    child = C.CELL_MUTATIONS[name](cell, rng, limits)
    return [cell] if child is None else [child]


def _check_cell(cell: CellGenome, limits: CellLimits) -> None:
    limits.check(cell)
    assert CellGenome.from_dict(json.loads(json.dumps(cell.to_dict()))) == cell
    assert C.repair_cell(cell, limits) == cell


@PROPERTY
@given(
    seed=st.integers(0, 2**32 - 1),
    limits=st.sampled_from(LIMITS),
    names=st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=6),
)
def test_operator_sequences_stay_valid(seed: int, limits: CellLimits, names: list[str]) -> None:
    rng = np.random.default_rng(seed)
    cell = C.random_cell(rng, limits)
    _check_cell(cell, limits)
    for name in names:
        before = cell.to_dict()
        children = _apply(name, cell, rng, limits)
        assert cell.to_dict() == before  # the parent is never changed
        for child in children:
            _check_cell(child, limits)
        cell = children[-1]


def test_operators_are_deterministic_and_vary() -> None:
    def run(seed: int) -> list[CellGenome]:
        rng = np.random.default_rng(seed)
        cell = C.random_cell(rng, CellLimits())
        out = [cell]
        for _ in range(20):
            cell = C.mutate_cell(cell, rng, CellLimits())
            out.append(cell)
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert all(a != b for a, b in zip(run(5), run(5)[1:], strict=False))  # mutate changes


def test_each_mutation_changes_the_cell_or_says_none() -> None:
    limits = CellLimits()
    rng = np.random.default_rng(0)
    applied = dict.fromkeys(C.CELL_MUTATIONS, 0)
    for _ in range(60):
        cell = C.random_cell(rng, limits)
        for name, op in C.CELL_MUTATIONS.items():
            child = op(cell, rng, limits)
            if child is not None:
                _check_cell(child, limits)
                applied[name] += child != cell
    assert all(n > 0 for n in applied.values()), applied


def test_remove_node_renumbers_links() -> None:
    limits = CellLimits()
    cell = CellGenome(8, ("tanh", "lstm", "gru", "tanh"), ((0, 2), (0, 3), (1, 3)),
                      ((0, 2, 3), (1, 1, 1), (3, 4, 0), (3, 5, 2)))
    out = C.repair_cell(C._remove_node(cell, 2), limits)
    assert out.types == ("tanh", "lstm", "tanh")
    # (0, 3) -> (0, 2); (1, 3) -> (1, 2) is now the chain and goes; links of node 2 go.
    assert out.ff_links == ((0, 2),)
    assert out.rec_links == ((0, 2, 2), (1, 1, 1), (2, 4, 0))


def test_add_node_keeps_link_endpoints() -> None:
    cell = CellGenome(8, ("tanh", "gru", "tanh"), ((0, 2),), ((2, 3, 0),))
    for seed in range(20):
        child = C.add_node(cell, np.random.default_rng(seed), CellLimits())
        assert child is not None and child.n_nodes == 4
        # Old node k is new node k (before the insertion) or k + 1 (after it).
        expected = []
        for pos in range(4):
            old = [i for i in range(4) if i != pos]
            expected.append((
                child.types[:pos] + child.types[pos + 1 :], ((old[0], old[2]),), ((old[2], 3, old[0]),)
            ))
        assert (cell.types, child.ff_links, child.rec_links) in expected


def test_repair_fixes_garbage_and_is_idempotent() -> None:
    limits = CellLimits(max_nodes=3, max_lag=4, max_links=4, units=(8, 32))
    bad = CellGenome(
        20,
        ("tanh", "relu", "lstm", "gru", "gru"),
        ff_links=((0, 1), (0, 2), (0, 2), (1, 4), (2, 0), (0, "x"), (5,)),
        rec_links=((0, 9, 0), (0, 4, 0), (0, 0, 2), (4, 1, 0), (1, 2, 2), (2, 1, 1)),
    )
    fixed = C.repair_cell(bad, limits)
    assert fixed == CellGenome(  # 20 is as near to 8 as to 32: ties go down
        8, ("tanh", "tanh", "lstm"), ff_links=(), rec_links=((0, 1, 2), (0, 4, 0), (1, 2, 2), (2, 1, 1))
    )
    limits.check(fixed)
    assert C.repair_cell(fixed, limits) == fixed
    empty = C.repair_cell(CellGenome(0, ()), limits)
    assert empty == CellGenome(8, ("tanh",))
    rng = np.random.default_rng(1)
    for _ in range(300):  # random garbage
        n = int(rng.integers(0, 8))
        garbage = CellGenome(
            int(rng.integers(-5, 100)),
            tuple(str(rng.choice(["tanh", "gru", "lstm", "relu"])) for _ in range(n)),
            tuple(tuple(int(v) for v in rng.integers(-2, 9, size=2)) for _ in range(rng.integers(0, 6))),
            tuple(tuple(int(v) for v in rng.integers(-2, 12, size=3)) for _ in range(rng.integers(0, 9))),
        )
        fixed = C.repair_cell(garbage, limits)
        _check_cell(fixed, limits)


def test_crossover_mixes_parents() -> None:
    limits = CellLimits()
    a = CellGenome(8, ("tanh", "tanh", "tanh"), ((0, 2),), ((0, 1, 0), (2, 5, 1)))
    b = CellGenome(32, ("lstm", "gru"), (), ((0, 1, 0), (1, 2, 1)))
    seen_types, seen_links = set(), set()
    for seed in range(40):
        ca, cb = C.crossover_cells(a, b, np.random.default_rng(seed), limits)
        assert (ca.n_nodes, cb.n_nodes) == (3, 2)
        assert (0, 1, 0) in ca.rec_links and (0, 1, 0) in cb.rec_links  # shared link kept
        seen_types.update(ca.types)
        seen_links.update(ca.rec_links)
        for child in (ca, cb):
            _check_cell(child, limits)
    assert {"lstm", "gru", "tanh"} <= seen_types
    assert {(1, 2, 1), (2, 5, 1)} <= seen_links


def test_mutate_cell_rejects_unknown_weights() -> None:
    with pytest.raises(ValueError, match="'grow'"):
        C.mutate_cell(EXAMPLE, np.random.default_rng(0), CellLimits(), weights={"grow": 1.0})
    only = C.mutate_cell(EXAMPLE, np.random.default_rng(0), CellLimits(), weights={"change_lag": 1.0})
    assert only.types == EXAMPLE.types and only.rec_links != EXAMPLE.rec_links


# -- drawing ---------------------------------------------------------------------------------
def test_draw_cell_returns_a_figure_with_nodes() -> None:
    from matplotlib.figure import Figure

    fig = draw_cell(EXAMPLE)
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0: lstm", "1: gru", "2: tanh", "t-1", "t-2", "t-3"} <= texts
    assert len(fig.axes[0].patches) == 3 + 4 + len(EXAMPLE.ff_links) + len(EXAMPLE.rec_links)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    one = draw_cell(CellGenome(4, ("tanh",)))
    assert "0: tanh" in {t.get_text() for t in one.axes[0].texts}


# -- the Keras cell ---------------------------------------------------------------------------
def _rnn(genome: CellGenome, x: np.ndarray, seed: int = 0, scale: float = 0.5) -> keras.layers.RNN:
    """A built RNN around the cell with random (non-default) weights."""
    rnn = keras.layers.RNN(SkipStepCell(genome), return_sequences=True)
    rnn.build(x.shape)
    rng = np.random.default_rng(seed)
    rnn.set_weights([(scale * rng.normal(size=w.shape)).astype("float32") for w in rnn.weights])
    return rnn


def _weights(rnn: keras.layers.RNN) -> dict[str, np.ndarray]:
    return {w.name: _np(w) for w in rnn.cell.weights}


@pytest.mark.parametrize(
    ("node", "keras_cell"),
    [("tanh", keras.layers.SimpleRNNCell), ("lstm", keras.layers.LSTMCell), ("gru", keras.layers.GRUCell)],
)
def test_one_node_cell_equals_the_keras_cell(node: str, keras_cell: Callable[..., Any]) -> None:
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype("float32")
    genome = CellGenome(4, (node,), rec_links=((0, 1, 0),))
    ours = _rnn(genome, x)
    ref = keras.layers.RNN(keras_cell(4), return_sequences=True)
    ref.build(x.shape)
    assert [tuple(w.shape) for w in ref.weights] == [tuple(w.shape) for w in ours.weights]
    ref.set_weights(ours.get_weights())
    np.testing.assert_allclose(_np(ours(x)), _np(ref(x)), atol=1e-5)
    assert ours.cell.state_size == ([4] if node != "lstm" else [4, 4])


def test_hand_written_loop_with_ff_and_lag_2_and_3_links() -> None:
    # A feed-forward link needs src < dst - 1, hence three nodes.
    genome = CellGenome(4, ("lstm", "gru", "tanh"), ff_links=((0, 2),), rec_links=((0, 3, 1), (2, 2, 0)))
    x = np.random.default_rng(2).normal(size=(2, 8, 3)).astype("float32")
    rnn = _rnn(genome, x, seed=3)
    w = _weights(rnn)
    u, (b, steps, _) = 4, x.shape
    h0 = np.zeros((steps, b, u))
    h1 = np.zeros((steps, b, u))
    h2 = np.zeros((steps, b, u))
    c0 = np.zeros((b, u))

    def back(h: np.ndarray, t: int) -> np.ndarray:
        return h[t] if t >= 0 else np.zeros((b, u))

    for t in range(steps):
        # node 0, lstm: x_t and node 2 two steps back.
        z = x[:, t] @ w["node0_kernel"] + back(h2, t - 2) @ w["node0_rec2_lag2_kernel"] + w["node0_bias"]
        gi, gf, gg, go = np.split(z, 4, axis=-1)
        c0 = _sigmoid(gf) * c0 + _sigmoid(gi) * np.tanh(gg)
        h0[t] = _sigmoid(go) * np.tanh(c0)
        # node 1, gru: node 0 now, node 0 three steps back; updates its own h(t-1).
        mx = h0[t] @ w["node1_kernel"] + w["node1_bias"][0]
        mr = back(h0, t - 3) @ w["node1_rec0_lag3_kernel"] + w["node1_bias"][1]
        z_, r_ = _sigmoid(mx[:, :u] + mr[:, :u]), _sigmoid(mx[:, u : 2 * u] + mr[:, u : 2 * u])
        cand = np.tanh(mx[:, 2 * u :] + r_ * mr[:, 2 * u :])
        h1[t] = z_ * back(h1, t - 1) + (1 - z_) * cand
        # node 2, tanh: node 1 and (feed-forward) node 0 of the same step.
        h2[t] = np.tanh(h1[t] @ w["node2_kernel"] + h0[t] @ w["node2_ff0_kernel"] + w["node2_bias"])
    np.testing.assert_allclose(_np(rnn(x)), h2.transpose(1, 0, 2), atol=1e-5)


def test_lag_3_link_reads_three_steps_back() -> None:
    # An impulse at t = 0 only, zero biases, a single lag-3 self link: the output is
    # zero at t = 1, 2, comes back at t = 3, and is zero again at t = 4, 5.
    genome = CellGenome(4, ("tanh",), rec_links=((0, 3, 0),))
    x = np.zeros((1, 8, 3), "float32")
    x[0, 0] = [1.0, -2.0, 0.5]
    rnn = _rnn(genome, x, seed=4, scale=1.0)
    rnn.cell.weights[-1].assign(np.zeros(4, "float32"))
    y = _np(rnn(x))[0]
    assert np.abs(y[0]).min() > 1e-3 and np.abs(y[3]).min() > 1e-6
    np.testing.assert_array_equal(y[[1, 2, 4, 5, 7]], 0.0)
    w = _weights(rnn)
    np.testing.assert_allclose(y[3], np.tanh(y[0] @ w["node0_rec0_lag3_kernel"]), atol=1e-6)
    np.testing.assert_allclose(y[6], np.tanh(y[3] @ w["node0_rec0_lag3_kernel"]), atol=1e-6)


def _numpy_cell(genome: CellGenome, w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A direct numpy reading of the module docstring's semantics (all steps, all nodes)."""
    u, (b, steps, _) = genome.units, x.shape
    out = np.zeros((genome.n_nodes, steps, b, u))
    mem = {j: np.zeros((b, u)) for j, n in enumerate(genome.nodes) if n.type == "lstm"}
    for t in range(steps):
        for j, node in enumerate(genome.nodes):
            parts = []
            for spec in genome.node_inputs(j):
                if spec[0] == "x":
                    parts.append((False, x[:, t] @ w[f"node{j}_kernel"]))
                elif spec[0] == "prev":
                    parts.append((False, out[j - 1, t] @ w[f"node{j}_kernel"]))
                elif spec[0] == "ff":
                    parts.append((False, out[spec[1], t] @ w[f"node{j}_ff{spec[1]}_kernel"]))
                else:
                    _, i, k = spec
                    past = out[i, t - k] if t >= k else np.zeros((b, u))
                    parts.append((True, past @ w[f"node{j}_rec{i}_lag{k}_kernel"]))
            bias = w[f"node{j}_bias"]
            if node.type == "gru":
                mx = sum(p for r, p in parts if not r) + bias[0]
                mr = sum((p for r, p in parts if r), np.zeros((b, 3 * u))) + bias[1]
                z = _sigmoid(mx[:, :u] + mr[:, :u])
                r = _sigmoid(mx[:, u : 2 * u] + mr[:, u : 2 * u])
                prev = out[j, t - 1] if t >= 1 else np.zeros((b, u))
                out[j, t] = z * prev + (1 - z) * np.tanh(mx[:, 2 * u :] + r * mr[:, 2 * u :])
            else:
                s = sum(p for _, p in parts) + bias
                if node.type == "tanh":
                    out[j, t] = np.tanh(s)
                else:
                    gi, gf, gg, go = np.split(s, 4, axis=-1)
                    mem[j] = _sigmoid(gf) * mem[j] + _sigmoid(gi) * np.tanh(gg)
                    out[j, t] = _sigmoid(go) * np.tanh(mem[j])
    return out[-1].transpose(1, 0, 2)


def test_random_cells_match_the_numpy_semantics() -> None:
    rng = np.random.default_rng(5)
    limits = CellLimits(max_nodes=4, max_lag=4, max_links=8, units=(4,))
    x = rng.normal(size=(2, 7, 3)).astype("float32")
    fixed = [
        CellGenome(4, ("tanh", "tanh")),  # no links: only the output's register is kept
        CellGenome(4, ("gru", "lstm", "tanh"), ff_links=((0, 2),)),  # gated nodes, no recurrence
    ]
    randoms = []
    for _ in range(5):
        genome = C.random_cell(rng, limits)
        for _ in range(3):
            genome = C.add_link(genome, rng, limits) or genome
        randoms.append(genome)
    for seed, genome in enumerate(fixed + randoms):
        rnn = _rnn(genome, x, seed=seed)
        np.testing.assert_allclose(_np(rnn(x)), _numpy_cell(genome, _weights(rnn), x), atol=1e-5,
                                   err_msg=str(genome.to_dict()))


def test_weights_states_and_config() -> None:
    layer = SkipStepCell(EXAMPLE.to_dict(), name="skip")
    assert layer.genome == EXAMPLE
    assert layer.state_size == [4] * 7 and layer.output_size == 4
    rnn = keras.layers.RNN(layer)
    rnn.build((None, 5, 3))
    names = [w.name for w in layer.weights]
    assert names == [
        "node0_kernel", "node0_rec2_lag2_kernel", "node0_bias",
        "node1_kernel", "node1_rec0_lag3_kernel", "node1_rec1_lag1_kernel", "node1_bias",
        "node2_kernel", "node2_ff0_kernel", "node2_bias",
    ]
    u = 4
    expected = (3 * 4 * u + u * 4 * u + 4 * u) + (3 * u * 3 * u + 2 * 3 * u) + (2 * u * u + u)
    assert rnn.count_params() == expected
    np.testing.assert_array_equal(_np(layer.weights[2])[u : 2 * u], 1.0)  # forget bias
    config = layer.get_config()
    assert config["genome"] == EXAMPLE.to_dict() and config["name"] == "skip"
    clone = SkipStepCell.from_config(config)
    assert clone.genome == EXAMPLE and clone.get_config() == config
    assert keras.saving.get_registered_name(SkipStepCell) == "evokeras>SkipStepCell"
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(rnn))
    assert back.cell.genome == EXAMPLE
    with pytest.raises(TypeError, match="`genome`"):
        SkipStepCell("tanh")  # type: ignore[arg-type]
    with pytest.raises(GenomeError, match=r"cell\.units"):
        SkipStepCell({**EXAMPLE.to_dict(), "units": 0})


def test_model_saves_and_loads_as_keras(tmp_path: Any) -> None:
    x = np.random.default_rng(6).normal(size=(4, 10, 3)).astype("float32")
    inputs = keras.Input((10, 3))
    seq = keras.layers.RNN(SkipStepCell(EXAMPLE), return_sequences=True)(inputs)
    last = keras.layers.RNN(SkipStepCell(CellGenome(4, ("gru", "lstm"), rec_links=((1, 2, 0),))))(seq)
    model = keras.Model(inputs, keras.layers.Dense(2)(last))
    path = tmp_path / "cell.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert loaded.layers[1].cell.genome == EXAMPLE


def test_trains() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(32, 6, 3)).astype("float32")
    y = x[:, :3, 0].sum(axis=1, keepdims=True)  # needs the memory of early steps
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.RNN(SkipStepCell(EXAMPLE)),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = [_np(w).copy() for w in model.weights]
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(not np.array_equal(a, _np(w)) for a, w in zip(before, model.weights, strict=True))


# -- the fused layer -----------------------------------------------------------------------------
def _fused(genome: CellGenome, x: np.ndarray, seed: int = 0, **kwargs: Any) -> SkipStepRNN:
    """A built SkipStepRNN with the random weights of :func:`_rnn`."""
    layer = SkipStepRNN(genome, return_sequences=True, **kwargs)
    layer.build(x.shape)
    layer.set_weights(_rnn(genome, x, seed=seed).get_weights())
    return layer


RANDOM_CELLS = [
    EXAMPLE,
    CellGenome(4, ("tanh", "tanh")),
    CellGenome(4, ("gru",)),  # gru without recurrent inputs: only its own h_prev
    CellGenome(4, ("gru", "lstm", "tanh"), ff_links=((0, 2),), rec_links=((1, 2, 0), (2, 1, 0), (2, 1, 2))),
]


def _random_cells(n: int, seed: int) -> list[CellGenome]:
    rng = np.random.default_rng(seed)
    limits = CellLimits(max_nodes=4, max_lag=4, max_links=8, units=(4,))
    out = []
    for _ in range(n):
        genome = C.random_cell(rng, limits)
        for _ in range(3):
            genome = C.add_link(genome, rng, limits) or genome
        out.append(genome)
    return out


def test_fused_layer_matches_the_numpy_semantics_and_the_plain_rnn() -> None:
    x = np.random.default_rng(8).normal(size=(2, 7, 3)).astype("float32")
    for seed, genome in enumerate(RANDOM_CELLS + _random_cells(5, seed=9)):
        layer = _fused(genome, x, seed=seed)
        plain = _rnn(genome, x, seed=seed)
        assert [w.name for w in layer.weights] == [w.name for w in plain.weights]
        ours = _np(layer(x))
        np.testing.assert_allclose(ours, _numpy_cell(genome, _weights(plain), x), atol=1e-5,
                                   err_msg=str(genome.to_dict()))
        np.testing.assert_allclose(ours, _np(plain(x)), atol=1e-5, err_msg=str(genome.to_dict()))


@pytest.mark.parametrize(
    ("node", "keras_layer"),
    [("tanh", keras.layers.SimpleRNN), ("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)],
)
def test_one_node_fused_layer_equals_the_keras_layer(node: str, keras_layer: Callable[..., Any]) -> None:
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype("float32")
    genome = CellGenome(4, (node,), rec_links=((0, 1, 0),))
    ours = _fused(genome, x)
    ref = keras_layer(4, return_sequences=True, return_state=True)
    ref.build(x.shape)
    ref.set_weights(ours.get_weights())
    out, *states = ref(x)
    mine = SkipStepRNN(genome, return_sequences=True, return_state=True)
    mine.build(x.shape)
    mine.set_weights(ours.get_weights())
    got, *got_states = mine(x)
    np.testing.assert_allclose(_np(got), _np(out), atol=1e-5)
    assert len(got_states) == len(states)
    for a, b in zip(got_states, states, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)


def test_fused_layer_masks_carries_state_and_goes_backwards() -> None:
    x = np.random.default_rng(10).normal(size=(3, 8, 3)).astype("float32")
    mask = np.ones((3, 8), bool)
    mask[1, 5:] = False
    mask[2, 2:] = False
    plain = _rnn(EXAMPLE, x, seed=11)
    layer = _fused(EXAMPLE, x, seed=11)
    np.testing.assert_allclose(_np(layer(x, mask=mask)), _np(plain(x, mask=mask)), atol=1e-5)
    # masked steps hold the states: the final states of a sample masked after 2 steps are
    # those of its first 2 steps; with zero_output_for_mask its masked outputs are zeros.
    # (Without it, Keras' JAX loop repeats states[0] as "the previous output", which is
    # node 0's register, not the cell's output, for a multi-node cell; TensorFlow repeats
    # the output. The plain RNN wrapper does the same, as checked above.)
    held = _fused(EXAMPLE, x, seed=11, return_state=True, zero_output_for_mask=True)
    out, *states = held(x, mask=mask)
    _, *short = held(x[2:3, :2])
    np.testing.assert_array_equal(_np(out)[2, 2:], 0.0)
    for a, b in zip(states, short, strict=True):
        np.testing.assert_allclose(_np(a)[2], _np(b)[0], atol=1e-5)
    back = _fused(EXAMPLE, x, seed=11, go_backwards=True)
    np.testing.assert_allclose(_np(back(x)), _np(layer(x[:, ::-1])), atol=1e-5)
    # return_state: the final states of the state layout, equal to the plain wrapper's
    both = _fused(EXAMPLE, x, seed=11, return_state=True)
    plain_both = keras.layers.RNN(SkipStepCell(EXAMPLE), return_sequences=True, return_state=True)
    plain_both.build(x.shape)
    plain_both.set_weights(both.get_weights())
    _, *states = both(x)
    _, *plain_states = plain_both(x)
    assert len(states) == len(EXAMPLE.state_layout())
    for a, b in zip(states, plain_states, strict=True):
        np.testing.assert_allclose(_np(a), _np(b), atol=1e-5)
    # stateful: two halves give the whole sequence's outputs (the registers carry over)
    stateful = SkipStepRNN(EXAMPLE, return_sequences=True, stateful=True)
    stateful.build(x.shape)
    stateful.set_weights(layer.get_weights())
    halves = np.concatenate([_np(stateful(x[:, :4])), _np(stateful(x[:, 4:]))], axis=1)
    np.testing.assert_allclose(halves, _np(layer(x)), atol=1e-5)
    stateful.reset_states()
    np.testing.assert_allclose(_np(stateful(x[:, :4])), _np(layer(x))[:, :4], atol=1e-5)


@keras.saving.register_keras_serializable(package="evokeras_tests")
class _ReferenceCell(keras.layers.Layer):
    """The cell before the fusion: one kernel, one matmul and one add per node input,
    gates by slicing (same weights, in the same order, as :class:`SkipStepCell`)."""

    def __init__(self, genome: CellGenome, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.genome, self.units = genome, genome.units
        self.layout = genome.state_layout()
        self.state_size = [genome.units] * len(self.layout)

    def build(self, input_shape: Any) -> None:
        pos = {entry: s for s, entry in enumerate(self.layout)}
        self.nodes = []
        for j, node in enumerate(self.genome.nodes):
            width = {"tanh": 1, "gru": 3, "lstm": 4}[node.type] * self.units
            reads = []
            for spec in self.genome.node_inputs(j):
                rows = input_shape[-1] if spec[0] == "x" else self.units
                if spec[0] in ("x", "prev"):
                    name, source = f"node{j}_kernel", ("x", 0) if spec[0] == "x" else ("out", j - 1)
                elif spec[0] == "ff":
                    name, source = f"node{j}_ff{spec[1]}_kernel", ("out", spec[1])
                else:
                    name, source = f"node{j}_rec{spec[1]}_lag{spec[2]}_kernel", ("state", pos[("h", spec[1], spec[2])])
                reads.append((source, self.add_weight(shape=(rows, width), name=name)))
            bias = self.add_weight(shape=(2, width) if node.type == "gru" else (width,), name=f"node{j}_bias")
            extra = pos[("h", j, 1)] if node.type == "gru" else pos.get(("c", j), -1)
            self.nodes.append((node.type, reads, bias, extra))

    def call(self, inputs: Any, states: Any) -> Any:
        ops, u = keras.ops, self.units
        outs: list[Any] = []
        mem: dict[int, Any] = {}
        for j, (kind, reads, bias, extra) in enumerate(self.nodes):
            zx, zr = 0.0, 0.0
            for (how, i), kernel in reads:
                value = inputs if how == "x" else outs[i] if how == "out" else states[i]
                if how == "state" and kind == "gru":
                    zr = zr + ops.matmul(value, kernel)
                else:
                    zx = zx + ops.matmul(value, kernel)
            if kind == "gru":
                zx, zr = zx + bias[0], zr + bias[1]
                gz = ops.sigmoid(zx[:, :u] + zr[..., :u])
                gr = ops.sigmoid(zx[:, u : 2 * u] + zr[..., u : 2 * u])
                h = gz * states[extra] + (1.0 - gz) * ops.tanh(zx[:, 2 * u :] + gr * zr[..., 2 * u :])
            elif kind == "tanh":
                h = ops.tanh(zx + bias)
            else:
                z = zx + bias
                c = ops.sigmoid(z[:, u : 2 * u]) * states[extra] + ops.sigmoid(z[:, :u]) * ops.tanh(z[:, 2 * u : 3 * u])
                h = ops.sigmoid(z[:, 3 * u :]) * ops.tanh(c)
                mem[j] = c
            outs.append(h)
        new = []
        for entry in self.layout:
            if entry[0] == "c":
                new.append(mem[entry[1]])
            elif entry[2] == 1:
                new.append(outs[entry[1]])
            else:
                new.append(states[self.layout.index(("h", entry[1], entry[2] - 1))])
        return outs[-1], new


def _one_sgd_step(rnn_layer: Any, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Weights after one plain SGD step of rate 1 (so ``before - after`` is the gradient)."""
    model = keras.Sequential([keras.Input(x.shape[1:]), rnn_layer, keras.layers.Dense(2, name="out")])
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.train_on_batch(x, y)
    return [_np(w) for w in model.weights]


@pytest.mark.parametrize("genome", [EXAMPLE, RANDOM_CELLS[3]], ids=["example", "gru_lstm_tanh"])
def test_fused_gradients_equal_the_unfused_reference(genome: CellGenome) -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 6, 3)).astype("float32")
    y = rng.normal(size=(3, 6, 2)).astype("float32")
    ref_layer = keras.layers.RNN(_ReferenceCell(genome), return_sequences=True)
    ref_layer.build(x.shape)
    start = [(0.5 * rng.normal(size=w.shape)).astype("float32") for w in ref_layer.weights]
    start += [(0.5 * rng.normal(size=s)).astype("float32") for s in ((4, 2), (2,))]
    ours = _one_sgd_step(SkipStepRNN(genome, return_sequences=True), start, x, y)
    ref = _one_sgd_step(keras.layers.RNN(_ReferenceCell(genome), return_sequences=True), start, x, y)
    names = [w.name for w in ref_layer.weights] + ["out_kernel", "out_bias"]
    for name, a, b, w0 in zip(names, ours, ref, start, strict=True):
        grad = w0 - b
        assert np.all(np.isfinite(a)) and np.abs(grad).max() > 0, name
        np.testing.assert_allclose(w0 - a, grad, atol=1e-5, rtol=1e-4, err_msg=name)


def test_fused_layer_config_and_keras_round_trip(tmp_path: Any) -> None:
    layer = SkipStepRNN(EXAMPLE.to_dict(), return_sequences=True, name="g0_recurrent")
    assert layer.genome == EXAMPLE and isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, SkipStepCell)
    config = layer.get_config()
    assert config["genome"] == EXAMPLE.to_dict() and "cell" not in config and config["return_sequences"]
    clone = SkipStepRNN.from_config(config)
    assert clone.genome == EXAMPLE and clone.get_config() == config
    assert keras.saving.get_registered_name(SkipStepRNN) == "evokeras>SkipStepRNN"
    x = np.random.default_rng(13).normal(size=(4, 10, 3)).astype("float32")
    inputs = keras.Input((10, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    path = tmp_path / "fused.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert isinstance(loaded.layers[1], SkipStepRNN) and loaded.layers[1].genome == EXAMPLE
    assert [w.name for w in loaded.layers[1].weights] == [w.name for w in layer.weights]
    with pytest.raises(GenomeError, match=r"cell\.units"):
        SkipStepRNN({**EXAMPLE.to_dict(), "units": 0})
