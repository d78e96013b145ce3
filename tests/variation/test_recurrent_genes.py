"""Recurrent genes: the skip-step cell as a layer kind of genomes.

Covers the gene (defaults, dictionary form, keys, validation), the space options
(cell limits, ``sequence_output``, ``stem_params``), the analysis (cell parameters and
FLOPs, per-step heads), the operators (``change_cell``, repair of cells and of the time
length) and decoding: seeded random genomes and mutation chains of the language-model
test task (int tokens -> Embedding stem -> genes -> 50 logits per step) must be in the
space, build, output ``(None, 12, 50)`` and have exactly the analysed parameter count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from evokeras import decode
from evokeras.genomes.analysis import analyze, cell_cost
from evokeras.genomes.cell import CellGenome, CellLimits
from evokeras.genomes.keyed import GenomeError
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.genomes.space import FAMILIES, SearchSpace, SpaceError, default_space
from evokeras.nets.layers import SkipStepCell, SkipStepRNN
from evokeras.tasks import Task
from evokeras.variation import network as ops

LSTM32 = CellGenome(32, ("lstm",), rec_links=((0, 1, 0),))
RICH_CELL = CellGenome(
    8, ("gru", "tanh", "lstm"), ff_links=((0, 2),), rec_links=((2, 3, 0), (1, 1, 1))
)

# A language-model genome of the test task's space (cell units 4/8/16, 12 steps).
LM = Genome(
    (
        LayerGene("recurrent", cell=CellGenome(16, ("lstm",), rec_links=((0, 1, 0),))),
        LayerGene("dropout", rate=0.2),
        LayerGene(
            "recurrent", cell=CellGenome(8, ("gru", "tanh"), ff_links=(), rec_links=((1, 2, 0),))
        ),
        LayerGene("dense", units=16, activation="relu"),
    ),
    reduce="flatten",
    training=TrainingGenes("adam", 0.003, 32),
)
# sha256 of LM.to_json(), first 16 hex digits: recurrent genes' keys stay stable.
LM_KEY = "4b0219d81a6e725e"

# A genome written before the recurrent kind existed and its exact dictionary form.
OLD = Genome(
    (
        LayerGene("conv", units=16, kernel_size=3),
        LayerGene("pool", pool_size=2),
        LayerGene("dropout", rate=0.25, skips=(0,), merge="concat"),
        LayerGene("dense", units=32, activation="tanh"),
    ),
    reduce="global_max",
    training=TrainingGenes("sgd", 0.01, 64),
)
OLD_DICT = {
    "layers": [
        {"kind": "conv", "units": 16, "kernel_size": 3, "strides": 1, "activation": "relu"},
        {"kind": "pool", "pool_type": "max", "pool_size": 2},
        {"kind": "dropout", "rate": 0.25, "skips": [0], "merge": "concat"},
        {"kind": "dense", "units": 32, "activation": "tanh"},
    ],
    "reduce": "global_max",
    "training": {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 64},
}
OLD_KEY = "b575c9fb76c714cb"  # computed with the genome.py before recurrent genes


def _np(x: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _tokens(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, size=(n, 12)).astype("int32")


def _assert_in_space(genome: Genome, space: SearchSpace) -> None:
    space.check(genome)
    back = Genome.from_json(genome.to_json())
    assert back == genome and back.key == genome.key
    assert ops.repair(genome, space) == genome


# -- genome ------------------------------------------------------------------------------
def test_recurrent_gene_defaults() -> None:
    gene = LayerGene("recurrent")
    assert gene.cell == LSTM32
    assert gene.units is None and gene.activation is None
    assert gene.is_spatial and not gene.is_neutral
    assert LayerGene("recurrent", cell=RICH_CELL).cell is RICH_CELL
    assert LayerGene("dense").cell is None


def test_recurrent_genomes_round_trip_with_their_cells() -> None:
    genome = Genome(
        (
            LayerGene("recurrent", cell=RICH_CELL),
            LayerGene("batchnorm"),
            LayerGene("recurrent", skips=(0,), merge="add"),
            LayerGene("dense", units=8),
        ),
    )
    data = genome.to_dict()
    assert data["layers"][0] == {"kind": "recurrent", "cell": RICH_CELL.to_dict()}
    assert data["layers"][2]["cell"] == LSTM32.to_dict()
    assert "cell" not in data["layers"][1] and "cell" not in data["layers"][3]
    assert Genome.from_dict(json.loads(json.dumps(data))) == genome
    back = Genome.from_json(genome.to_json())
    assert back == genome and back.key == genome.key and hash(back) == hash(genome)
    assert back.layers[0].cell == RICH_CELL


def test_keys_are_stable() -> None:
    assert OLD.to_dict() == OLD_DICT  # no "cell" key anywhere, nothing else changed
    assert OLD.key == OLD_KEY
    assert LM.key == LM_KEY


def test_cells_change_keys() -> None:
    base = Genome((LayerGene("recurrent"),))
    others = [
        Genome((LayerGene("recurrent", cell=LSTM32.replace(units=16)),)),
        Genome((LayerGene("recurrent", cell=LSTM32.replace(rec_links=((0, 2, 0),))),)),
        Genome((LayerGene("recurrent", cell=CellGenome(32, ("gru",), rec_links=((0, 1, 0),))),)),
    ]
    assert len({base.key, *(g.key for g in others)}) == 4


@pytest.mark.parametrize(
    ("genome", "field"),
    [
        (Genome((LayerGene("recurrent", cell=LSTM32.replace(units=0)),)), "layers[0].cell.units"),
        (
            Genome((LayerGene("dropout"), LayerGene("recurrent", cell=CellGenome(4, ("relu",))))),
            "layers[1].cell.nodes[0].type",
        ),
        (
            Genome(
                (LayerGene("recurrent", cell=CellGenome(4, ("tanh",), rec_links=((0, 0, 0),))),)
            ),
            "layers[0].cell.rec_links[0]",
        ),
        (
            Genome((LayerGene("recurrent", cell={"units": 4}),)),
            "layers[0].cell: expected a CellGenome",
        ),
        (Genome((LayerGene("dense", cell=LSTM32),)), "layers[0].cell: not used by a 'dense'"),
        (Genome((LayerGene("recurrent", units=8),)), "layers[0].units: not used"),
        (
            Genome((LayerGene("dense"), LayerGene("recurrent"))),
            "layers[1]: a 'recurrent' layer cannot follow",
        ),
    ],
)
def test_validate_names_the_cell_field(genome: Genome, field: str) -> None:
    with pytest.raises(GenomeError) as info:
        genome.validate()
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("cell", "field"),
    [
        ({"units": 4}, "layers[0].cell: missing key 'nodes'"),
        (
            {"units": 4, "nodes": [{"type": "tanh"}], "bias": 1},
            "layers[0].cell: unknown key 'bias'",
        ),
        (
            {"units": 4, "nodes": [{"type": "tanh"}], "rec_links": [[0, 9, 3]]},
            "layers[0].cell.rec_links[0]",
        ),
        ("lstm", "layers[0].cell: expected a CellGenome"),
    ],
)
def test_from_dict_names_the_cell_field(cell: Any, field: str) -> None:
    with pytest.raises(GenomeError) as info:
        Genome.from_dict({"layers": [{"kind": "recurrent", "cell": cell}]})
    assert field in str(info.value)


# -- space -------------------------------------------------------------------------------
def test_space_options_and_cell_limits() -> None:
    space = SearchSpace()
    assert space.sequence_output is False and space.stem_params == 0
    assert space.cell_limits() == CellLimits(
        max_nodes=4,
        max_lag=8,
        max_links=8,
        units=(8, 16, 32, 64),
        node_types=("tanh", "gru", "lstm"),
    )
    custom = space.replace(
        cell_units=(4, 8),
        cell_max_nodes=2,
        cell_max_lag=3,
        cell_max_links=1,
        cell_node_types=("gru",),
    )
    assert custom.cell_limits() == CellLimits(2, 3, 1, (4, 8), ("gru",))
    data = json.loads(json.dumps(custom.replace(sequence_output=True, stem_params=7).to_dict()))
    assert SearchSpace.from_dict(data) == custom.replace(sequence_output=True, stem_params=7)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_defaults_draw_no_recurrent_genes(family: str) -> None:
    space = default_space(family)
    assert space.layer_kinds["recurrent"] == 0
    assert space.allows_spatial == (family != "vector")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("cell_units", (0, 8)),
        ("cell_units", ()),
        ("cell_units", [8]),
        ("cell_max_nodes", 0),
        ("cell_max_lag", 0),
        ("cell_max_links", -1),
        ("cell_node_types", ("tanh", "relu")),
        ("cell_node_types", ()),
        ("sequence_output", 1),
        ("stem_params", -1),
        ("stem_params", 1.5),
    ],
)
def test_bad_new_options_are_named(option: str, value: Any) -> None:
    with pytest.raises(SpaceError, match=f"option '{option}'"):
        default_space("sequence").replace(**{option: value})


def test_recurrent_kind_is_a_known_option() -> None:
    space = default_space("sequence").replace(layer_kinds={"recurrent": 1.0})
    assert space.allows_spatial


def test_tasks_bind_stem_shape_and_new_options(language_task: Task, sequence_task: Task) -> None:
    space = language_task.space
    assert language_task.stem_shape == (12, 8) and language_task.input_shape == (12,)
    assert space.bound() == ((12, 8), 50)
    assert space.sequence_output is True and space.stem_params == 400
    plain = sequence_task.space
    assert sequence_task.stem_shape == (16, 3) == plain.input_shape
    assert plain.sequence_output is False and plain.stem_params == 0


def test_check_names_cells_outside_the_limits(language_task: Task) -> None:
    space = language_task.space  # cell units 4, 8, 16
    too_wide = Genome((LayerGene("recurrent", cell=LSTM32),))
    with pytest.raises(
        GenomeError, match=r"layers\[0\]\.cell\.units: 32 is not one of \(4, 8, 16\)"
    ):
        space.check(too_wide)
    lags = Genome(
        (
            LayerGene("dropout"),
            LayerGene("recurrent", cell=LSTM32.replace(units=8, rec_links=((0, 9, 0),))),
        )
    )
    with pytest.raises(GenomeError, match=r"layers\[1\]\.cell\.rec_links: lag 9"):
        space.check(lags)
    wrong_type = space.replace(cell_node_types=("tanh",))
    with pytest.raises(GenomeError, match=r"layers\[0\]\.cell\.nodes\[0\]\.type"):
        wrong_type.check(Genome((LayerGene("recurrent", cell=LSTM32.replace(units=8)),)))
    space.check(LM)


def test_check_keeps_the_time_length_with_sequence_output(language_task: Task) -> None:
    space = language_task.space.replace(layer_kinds={"pool": 1.0, "conv": 1.0, "dense": 1.0})
    with pytest.raises(GenomeError, match="predicts all"):
        space.check(Genome((LayerGene("pool", pool_size=2),)))
    space.check(Genome((LayerGene("conv", units=16, kernel_size=3, strides=1),)))


# -- analysis ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("node", "keras_layer"),
    [("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU), ("tanh", keras.layers.SimpleRNN)],
)
def test_one_node_cells_count_like_keras(node: str, keras_layer: Any, lazy: Any) -> None:
    cell = CellGenome(32, (node,), rec_links=((0, 1, 0),))
    with lazy():
        layer = keras_layer(32)
        layer.build((None, 5, 8))
        ours = keras.layers.RNN(SkipStepCell(cell))
        ours.build((None, 5, 8))
    assert cell_cost(cell, 8)[0] == layer.count_params() == ours.count_params()


def test_cell_params_and_flops() -> None:
    c, u = 8, 32
    assert cell_cost(LSTM32, c)[0] == 4 * u * (c + u) + 4 * u
    assert cell_cost(LSTM32, c)[1] == 2 * 4 * u * (c + u)
    # Three nodes, RICH_CELL: gru(main x, rec 2@3), tanh(main, rec 1@1), lstm(main, ff 0).
    u = 8
    expected = (3 * u * (c + u) + 2 * 3 * u) + (u * (u + u) + u) + (4 * u * (u + u) + 4 * u)
    params, flops = cell_cost(RICH_CELL, c)
    assert params == expected
    assert flops == 2 * (3 * u * (c + u) + u * 2 * u + 4 * u * 2 * u)


def test_analysis_of_a_recurrent_genome() -> None:
    a = analyze(LM, (12, 8), 50, sequence_output=True, stem_params=400)
    assert [s.spatial for s in a.shapes] == [(12,)] * 4
    assert [s.channels for s in a.shapes] == [16, 16, 8, 16]
    lstm = 4 * 16 * (8 + 16) + 4 * 16
    gru_tanh = (3 * 8 * (16 + 8) + 2 * 3 * 8) + (8 * 8 + 8)  # gru: x and node 1 at t-2
    assert a.layer_params == (lstm, 0, gru_tanh, 8 * 16 + 16)
    assert a.head_params == 16 * 50 + 50
    assert a.params == sum(a.layer_params) + a.head_params + 400
    step = cell_cost(LM.layers[0].cell, 8)[1] + cell_cost(LM.layers[2].cell, 16)[1]
    assert a.flops == 12 * (step + 2 * 8 * 16 + 2 * 16 * 50)
    # Without sequence_output the dense gene reads the flattened (12 x 8) features.
    flat = analyze(LM, (12, 8), 50)
    assert flat.shapes[3].spatial == () and flat.layer_params[3] == 96 * 16 + 16
    assert flat.params == sum(flat.layer_params) + 16 * 50 + 50


def test_recurrent_genes_need_a_time_axis() -> None:
    with pytest.raises(GenomeError, match="recurrent gene needs a"):
        analyze(Genome((LayerGene("recurrent"),)), (8,), 2)
    with pytest.raises(GenomeError, match="recurrent gene needs a"):
        analyze(Genome((LayerGene("recurrent"),)), (8, 8, 1), 2)


# -- operators ---------------------------------------------------------------------------
def test_random_layers_draw_cells_within_the_limits(language_task: Task) -> None:
    space = language_task.space
    rng = np.random.default_rng(0)
    genes = [ops.random_layer(rng, space, spatial=True) for _ in range(60)]
    cells = [g.cell for g in genes if g.kind == "recurrent"]
    assert len(cells) > 20 and len({c.key for c in cells}) > 10
    for cell in cells:
        space.cell_limits().check(cell)
    assert {g.kind for g in (ops.random_layer(rng, space, spatial=False) for _ in range(30))} <= {
        "dropout",
        "dense",
    }


def test_image_inputs_never_get_recurrent_genes(image_space: SearchSpace) -> None:
    space = image_space.replace(layer_kinds={**image_space.layer_kinds, "recurrent": 5.0})
    rng = np.random.default_rng(1)
    for _ in range(20):
        genome = ops.random_genome(rng, space)
        for _ in range(3):
            genome = ops.mutate(genome, rng, space)
        assert "recurrent" not in {layer.kind for layer in genome.layers}
    fixed = ops.repair(Genome((LayerGene("recurrent"), LayerGene("dense", units=16))), space)
    assert [layer.kind for layer in fixed.layers] == ["dense"]


def test_change_cell_changes_one_cell(language_task: Task) -> None:
    space = language_task.space
    for seed in range(20):
        child = ops.change_cell(LM, np.random.default_rng(seed), space)
        assert child is not None and child != LM
        _assert_in_space(child, space)
        diffs = [i for i, (a, b) in enumerate(zip(child.layers, LM.layers, strict=True)) if a != b]
        assert len(diffs) == 1 and LM.layers[diffs[0]].kind == "recurrent"
        assert child.layers[diffs[0]].replace(cell=LM.layers[diffs[0]].cell) == LM.layers[diffs[0]]
    same = ops.change_cell(LM, np.random.default_rng(3), space)
    assert same == ops.change_cell(LM, np.random.default_rng(3), space)
    assert (
        ops.change_cell(Genome((LayerGene("dense", units=16),)), np.random.default_rng(0), space)
        is None
    )
    assert "change_cell" in ops.MUTATIONS and ops.DEFAULT_MUTATION_WEIGHTS["change_cell"] > 0


def test_mutate_with_only_change_cell(language_task: Task) -> None:
    for seed in range(5):
        child = ops.mutate(
            LM, np.random.default_rng(seed), language_task.space, weights={"change_cell": 1.0}
        )
        assert child != LM and [layer.kind for layer in child.layers] == [
            layer.kind for layer in LM.layers
        ]


def test_repair_fixes_an_over_large_cell(language_task: Task) -> None:
    space = language_task.space  # cell units 4..16, 4 nodes, lag 8, 8 links
    huge = CellGenome(
        64,
        ("lstm", "gru", "tanh", "lstm", "gru", "tanh"),
        ff_links=((0, 2), (0, 3), (1, 3), (2, 4), (3, 5)),
        rec_links=((0, 20, 0), (1, 1, 1), (2, 3, 0), (3, 9, 2), (4, 2, 4), (5, 1, 0), (5, 12, 5)),
    )
    genome = Genome((LayerGene("recurrent", cell=huge), LayerGene("dense", units=16)))
    with pytest.raises(GenomeError, match="cell"):
        space.check(genome)
    fixed = ops.repair(genome, space)
    _assert_in_space(fixed, space)
    cell = fixed.layers[0].cell
    assert fixed.layers[0].kind == "recurrent"
    assert cell.units == 16 and cell.n_nodes == 4 and cell.max_lag <= 8 and cell.n_links <= 8


def test_repair_steps_a_cell_down_to_fit_max_params(language_task: Task) -> None:
    cell = CellGenome(16, ("lstm", "lstm", "lstm"), rec_links=((2, 1, 0),))
    big = Genome((LayerGene("recurrent", cell=cell),))
    space = language_task.space
    assert space.analyze(big).params > 4_000
    small = ops.repair(big, space.replace(max_params=4_000))
    assert [layer.kind for layer in small.layers] == ["recurrent"]
    assert small.layers[0].cell.units < 16
    assert small.layers[0].cell.replace(units=16) == big.layers[0].cell  # only the width changed
    assert space.replace(max_params=4_000).analyze(small).params <= 4_000


def test_repair_keeps_the_time_length_with_sequence_output(language_task: Task) -> None:
    space = language_task.space.replace(
        layer_kinds={"conv": 1.0, "pool": 1.0, "recurrent": 1.0, "dense": 1.0}
    )
    genome = Genome(
        (
            LayerGene("pool", pool_size=2),
            LayerGene("conv", units=16, kernel_size=3, strides=2),
            LayerGene("conv", units=16, kernel_size=3, strides=1),
            LayerGene("recurrent", cell=LSTM32.replace(units=8)),
            LayerGene("dense", units=16),
        ),
        reduce="flatten",
    )
    # Pooling and the strided conv go (12 steps must stay 12); 2,594 parameters then
    # exceed 2,500: the widest gene, the recurrent one (800), steps down to 4 units.
    capped = space.replace(max_params=2_500)
    fixed = ops.repair(genome, capped)
    assert [layer.kind for layer in fixed.layers] == ["conv", "recurrent", "dense"]
    assert fixed.layers[0].strides == 1 and fixed.layers[1].cell.units == 4
    assert fixed.reduce == "flatten"  # nothing is reduced: no switch to global pooling
    _assert_in_space(fixed, capped)


def test_crossover_moves_genes_with_their_cells(language_task: Task) -> None:
    space = language_task.space
    rng = np.random.default_rng(4)
    other = Genome(
        (
            LayerGene("recurrent", cell=RICH_CELL),
            LayerGene("dropout", rate=0.1),
            LayerGene("dense", units=32),
        )
    )
    space.check(other)
    cells = {LM.layers[0].cell, LM.layers[2].cell, RICH_CELL}
    kinds = {tuple(layer.kind for layer in g.layers) for g in (LM, other)}
    for _ in range(20):
        for child in ops.crossover(LM, other, rng, space):
            _assert_in_space(child, space)
            if tuple(layer.kind for layer in child.layers) in kinds:
                continue  # possibly a parent's genes with crossed cells (cut gave back the parents)
            assert {layer.cell for layer in child.layers if layer.kind == "recurrent"} <= cells


# -- decoding ----------------------------------------------------------------------------
def test_seeded_random_genomes_and_mutation_chains_decode(language_task: Task, lazy: Any) -> None:
    """32 random genomes, each followed by a chain of 4 operators; every genome on the way
    is in the space; each chain's last genome builds with the analysed parameter count."""
    space = language_task.space
    names = ["mutate", "change_cell", "add_layer", "crossover", "add_skip", "mutate"]
    last, recurrent, multi_node, skips = [], 0, 0, 0
    for seed in range(32):
        rng = np.random.default_rng(seed)
        genome = ops.random_genome(rng, space)
        _assert_in_space(genome, space)
        for step in range(4):
            name = names[(seed + step) % len(names)]
            if name == "mutate":
                genome = ops.mutate(genome, rng, space)
            elif name == "crossover":
                genome = ops.crossover(genome, ops.random_genome(rng, space), rng, space)[step % 2]
            else:
                genome = ops.MUTATIONS[name](genome, rng, space) or genome
            _assert_in_space(genome, space)
        last.append(genome)
        cells = [layer.cell for layer in genome.layers if layer.kind == "recurrent"]
        recurrent += bool(cells)
        multi_node += any(c.n_nodes > 1 for c in cells)
        skips += any(layer.skips for layer in genome.layers)
    assert recurrent >= 24 and multi_node >= 10 and skips >= 3  # the chains explore the space
    with lazy():
        for genome in dict.fromkeys(last):
            model = decode(genome, language_task, compile=False)
            assert model.output_shape == (None, 12, 50)
            assert model.count_params() == space.analyze(genome).params
            rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
            assert len(rnns) == sum(layer.kind == "recurrent" for layer in genome.layers)
            assert not any("reduce" in layer.name for layer in model.layers)


@pytest.fixture(scope="module")
def lm_model(language_task: Task) -> Any:
    """LM decoded and compiled with real weights (once: on JAX each initializer compiles)."""
    keras.utils.set_random_seed(0)
    return decode(LM, language_task)


def test_decoded_language_model_layers(language_task: Task, lm_model: Any) -> None:
    assert lm_model.count_params() == language_task.space.analyze(LM).params
    assert lm_model.output_shape == (None, 12, 50)
    names = [layer.name for layer in lm_model.layers]
    assert names == [
        "inputs",
        "stem_embedding",
        "g0_recurrent",
        "g1_dropout",
        "g2_recurrent",
        "g3_dense",
        "head",
    ]
    rnn = lm_model.get_layer("g0_recurrent")
    assert isinstance(rnn, keras.layers.RNN) and isinstance(rnn.cell, SkipStepCell)
    assert rnn.return_sequences and rnn.cell.genome == LM.layers[0].cell


def test_recurrent_prefix_is_causal(lm_model: Any) -> None:
    """Per-step outputs depend on earlier tokens only: changing the last token changes
    no earlier step's logits (recurrent, dropout and dense genes are causal)."""
    x = _tokens(2, seed=3)
    x2 = x.copy()
    x2[:, -1] = (x2[:, -1] + 1) % 50
    a, b = _np(lm_model(x, training=False)), _np(lm_model(x2, training=False))
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[:, -1], b[:, -1])


def test_language_model_trains_and_saves(lm_model: Any, tmp_path: Path) -> None:
    x = _tokens(8)
    y = np.roll(x, -1, axis=1)  # the next token at every step
    history = lm_model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # one step
    assert np.all(np.isfinite(history.history["loss"]))
    before = _np(lm_model(x, training=False))
    assert before.shape == (8, 12, 50)
    path = tmp_path / "lm.keras"
    lm_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded(x, training=False)), before, rtol=1e-5, atol=1e-5)
    assert loaded.get_layer("g2_recurrent").cell.genome == LM.layers[2].cell
    assert loaded.count_params() == lm_model.count_params()


def test_trained_recurrent_weights_pass_to_a_mutated_child(language_task: Task, lm_model: Any,
                                                            tmp_path: Path) -> None:
    """Weight inheritance (:class:`WeightCache`) across mutations of a language model: an
    unchanged recurrent gene, and a cell whose lag changed (same weight shapes), take the
    parent's trained arrays; a cell that gained a node does not (its weights differ)."""
    from evokeras.training.inheritance import WeightCache

    assert isinstance(lm_model.get_layer("g0_recurrent"), SkipStepRNN)
    cache = WeightCache(tmp_path)
    cache.save(lm_model, "parent")
    g2 = LM.layers[2]
    relagged = g2.replace(cell=g2.cell.replace(rec_links=((1, 3, 0),)))  # change_lag: same shapes
    grown = LM.layers[0].replace(cell=LM.layers[0].cell.replace(nodes=LM.layers[0].cell.nodes * 2))
    child = LM.replace(layers=(grown, LM.layers[1], relagged, LM.layers[3]))
    keras.utils.set_random_seed(1)
    model = decode(child, language_task)
    metrics = cache.inherit(model, "parent")
    inherited = {layer.name for layer in model.layers
                 if layer.get_weights() and all(np.array_equal(a, b) for a, b in zip(
                     layer.get_weights(), lm_model.get_layer(layer.name).get_weights(), strict=False))}
    assert inherited == {"g2_recurrent", "g3_dense", "head", "stem_embedding"}
    assert metrics["inherited_layers"] == 4
    assert [w.name for w in model.get_layer("g2_recurrent").weights] == [
        "node0_kernel", "node0_rec1_lag3_kernel", "node0_bias", "node1_kernel", "node1_bias"]
    x = _tokens(2)
    assert np.all(np.isfinite(_np(model(x, training=False))))


def test_recurrent_genes_with_skips_and_reduction(sequence_task: Task, lazy: Any) -> None:
    """A plain sequence task (reduces to one prediction) with recurrent genes and skips."""
    space = sequence_task.space.replace(layer_kinds={"conv": 1.0, "recurrent": 1.0, "dense": 1.0})
    genome = Genome(
        (
            LayerGene("recurrent", cell=CellGenome(16, ("tanh", "gru"), rec_links=((1, 2, 0),))),
            LayerGene("conv", units=32, kernel_size=3, strides=2),
            LayerGene(
                "recurrent", cell=CellGenome(8, ("lstm",), rec_links=((0, 1, 0),)), skips=(0,)
            ),
            LayerGene("recurrent", cell=LSTM32, skips=(0, 1), merge="concat"),
            LayerGene("dense", units=16),
        ),
        reduce="global_avg",
    )
    space.check(genome)
    with lazy():
        model = decode(genome, sequence_task, compile=False)
    assert model.output_shape == (None, 3)
    assert model.count_params() == space.analyze(genome).params
    names = {layer.name for layer in model.layers}
    assert {"g2_resize0", "g2_proj0", "g3_merge", "g4_reduce"} <= names


def test_existing_conv1d_genome_decodes_as_before(sequence_task: Task, lazy: Any) -> None:
    with lazy():
        model = decode(OLD, sequence_task, compile=False)
    layers = [(layer.name, type(layer).__name__) for layer in model.layers]
    assert layers == [
        ("inputs", "InputLayer"),
        ("g0_conv", "Conv1D"),
        ("g1_pool", "MaxPooling1D"),
        ("g2_resize0", "SpatialResize"),
        ("g2_merge", "Concatenate"),
        ("g2_dropout", "Dropout"),
        ("g3_reduce", "GlobalMaxPooling1D"),
        ("g3_dense", "Dense"),
        ("head", "Dense"),
    ]
    assert model.output_shape == (None, 3)
    assert (
        model.count_params() == sequence_task.space.analyze(OLD).params == 160 + 32 * 32 + 32 + 99
    )


def test_repair_pads_with_an_allowed_kind(language_task) -> None:
    from evokeras.variation.network import repair

    space = language_task.space.replace(layer_kinds={"recurrent": 1.0, "dropout": 1.0}, min_layers=1)
    padded = repair(Genome(()), space)
    assert [layer.kind for layer in padded.layers] == ["recurrent"]
    space.check(padded)
    neutral = language_task.space.replace(layer_kinds={"dropout": 1.0}, min_layers=2)
    assert [layer.kind for layer in repair(Genome(()), neutral).layers] == ["dropout", "dropout"]


def test_crossover_of_short_recurrent_genomes_crosses_cells(language_task) -> None:
    space = language_task.space
    rng = np.random.default_rng(0)
    a = ops.repair(Genome((LayerGene("recurrent", cell=CellGenome(8, ("lstm", "tanh"), rec_links=((1, 2, 0),))),)), space)
    b = ops.repair(Genome((LayerGene("recurrent", cell=CellGenome(8, ("gru",), rec_links=((0, 3, 0),))),)), space)
    new = set()
    for _ in range(20):
        for child in ops.crossover(a, b, rng, space):
            space.check(child)
            if child.layers not in (a.layers, b.layers):
                new.add(child.key)
    assert new  # cut points alone could only give back the parents (or an empty genome)


def test_conv_genes_are_causal_when_every_step_is_predicted(language_task) -> None:
    g = Genome((LayerGene("conv", units=8, kernel_size=5), LayerGene("recurrent")))
    model = decode(g, language_task, compile=False)
    assert model.count_params() == language_task.space.analyze(g).params
    x = np.random.default_rng(0).integers(0, 50, size=(2, 12))
    y = x.copy()
    y[:, 8:] = (y[:, 8:] + 7) % 50  # change only the later tokens
    a, b = model.predict_on_batch(x), model.predict_on_batch(y)
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not np.allclose(a[:, 8:], b[:, 8:])
