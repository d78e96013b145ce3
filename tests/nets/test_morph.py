"""Network morphisms (:mod:`evokeras.nets.morph`): a child built from its trained parent
computes what the parent computes where the mutation allows it exactly, and keeps the
most important units where it narrows a layer."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from evokeras import decode
from evokeras.genomes.network import Genome, LayerGene
from evokeras.nets.morph import align, transfer
from evokeras.nets.surgery import kernel_importance
from evokeras.tasks import make_task

TASK = make_task("mnist")
BASE = Genome((LayerGene("conv", units=8), LayerGene("pool"), LayerGene("conv", units=16),
               LayerGene("dense", units=32), LayerGene("dense", units=16), LayerGene("dense", units=16)))
BLOCKS = Genome((LayerGene("block", units=8), LayerGene("block", units=8, residual=True), LayerGene("pool"),
                 LayerGene("dense", units=16)))
L, B = BASE.layers, BLOCKS.layers
X = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")


def _trained(genome: Genome) -> Any:
    """``genome``'s model with weights moved off their initial values (as training does)."""
    keras.utils.set_random_seed(0)
    model = decode(genome, TASK)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.get_weights() and type(layer).__name__ != "BatchNormalization":
            layer.set_weights([w + 0.05 * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


def _moved(parent: Genome, child: Genome) -> tuple[Any, Any, dict[str, int]]:
    trained = _trained(parent)
    model = decode(child, TASK)
    arrays = {layer.name: layer.get_weights() for layer in trained.layers if layer.get_weights()}
    return trained, model, transfer(model, child, parent, arrays, stem_channels=1)


EXACT = {
    "widen conv": (BASE, BASE.replace(layers=(L[0].replace(units=12), *L[1:]))),
    "widen dense": (BASE, BASE.replace(layers=(*L[:4], L[4].replace(units=24), L[5]))),
    "widen the flattened dense": (BASE, BASE.replace(layers=(*L[:3], L[3].replace(units=48), *L[4:]))),
    "insert identity conv": (BASE, BASE.replace(layers=(*L[:2], LayerGene("conv", units=8), *L[2:]))),
    "larger kernel": (BASE, BASE.replace(layers=(*L[:2], L[2].replace(kernel_size=5), *L[3:]))),
    "concat skip": (BASE, BASE.replace(layers=(*L[:5], L[5].replace(skips=(3,), merge="concat")))),
    "projected add skip": (BASE, BASE.replace(layers=(*L[:5], L[5].replace(skips=(3,))))),
    "concat skip across a pool": (BASE, BASE.replace(layers=(*L[:2], L[2].replace(skips=(0,), merge="concat"), *L[3:]))),
    "widen block": (BLOCKS, BLOCKS.replace(layers=(B[0].replace(units=16), *B[1:]))),
    "widen residual block": (BLOCKS, BLOCKS.replace(layers=(B[0], B[1].replace(units=16), *B[2:]))),
}


@pytest.mark.parametrize("case", sorted(EXACT))
def test_function_preserving_morphisms(case: str) -> None:
    parent, child = EXACT[case]
    trained, model, figures = _moved(parent, child)
    assert figures["inherited_layers"] >= 3
    np.testing.assert_allclose(model(X, training=False), trained(X, training=False), atol=2e-5)


def test_an_unchanged_child_copies_every_weight() -> None:
    trained, model, figures = _moved(BASE, BASE)
    assert figures == {"inherited_layers": 5 + 1, "identity_layers": 0}
    for a, b in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_narrowing_keeps_the_most_important_units() -> None:
    child = BASE.replace(layers=(L[0].replace(units=4), *L[1:]))
    trained, model, _ = _moved(BASE, child)
    kernel = trained.get_layer("g0_conv").get_weights()[0]
    kept = np.sort(np.argsort(-kernel_importance(kernel))[:4])
    np.testing.assert_array_equal(model.get_layer("g0_conv").get_weights()[0], kernel[..., kept])
    # the next layer reads the kept channels' rows
    np.testing.assert_array_equal(model.get_layer("g2_conv").get_weights()[0],
                                  trained.get_layer("g2_conv").get_weights()[0][:, :, kept, :])


def test_an_inserted_residual_block_starts_close_to_the_identity() -> None:
    child = BASE.replace(layers=(*L[:2], LayerGene("block", units=8, residual=True), *L[2:]))
    trained, model, figures = _moved(BASE, child)
    assert figures["identity_layers"] == 1
    ref = trained(X, training=False)
    assert float(np.max(np.abs(model(X, training=False) - ref))) < 0.1 * float(np.max(np.abs(ref)))


def test_alignment_follows_insertions_and_changes() -> None:
    assert align(BASE, BASE) == {i: i for i in range(len(L))}
    inserted = BASE.replace(layers=(*L[:2], LayerGene("conv", units=8), *L[2:]))
    assert align(BASE, inserted) == {0: 0, 1: 1, 3: 2, 4: 3, 5: 4, 6: 5}
    changed = BASE.replace(layers=(*L[:4], L[4].replace(units=24), L[5]))  # same kind: kept in place
    assert align(BASE, changed) == {i: i for i in range(len(L))}
    removed = BASE.replace(layers=(L[0], *L[2:]))
    assert align(BASE, removed) == {0: 0, 1: 2, 2: 3, 3: 4, 4: 5}


def test_an_inserted_residual_block_is_its_shortcut_in_training_too() -> None:
    child = BASE.replace(layers=(*L[:2], LayerGene("block", units=8, residual=True), *L[2:]))
    trained, model, figures = _moved(BASE, child)
    assert figures["identity_layers"] == 1
    np.testing.assert_allclose(model(X, training=False), trained(X, training=False), atol=2e-5)
    branch = keras.Model(model.inputs, model.get_layer("g2_block_act").output)
    assert float(np.max(np.abs(branch(X, training=True)))) == 0.0  # batch statistics: still zero


def test_layers_after_a_removed_layer_do_not_read_foreign_channels() -> None:
    child = BASE.replace(layers=(L[0], *L[2:]))  # the pool removed: g1_conv reads g0's channels, as before
    trained, model, _ = _moved(BASE, child)
    np.testing.assert_array_equal(model.get_layer("g1_conv").get_weights()[0], trained.get_layer("g2_conv").get_weights()[0])
    dropped = BASE.replace(layers=L[1:])  # the first conv removed: the next conv would read pixels as channels
    trained, model, _ = _moved(BASE, dropped)
    kernel = model.get_layer("g1_conv").get_weights()[0]
    assert not np.any(np.isclose(kernel, trained.get_layer("g2_conv").get_weights()[0][:, :, :1, :]))


def test_arrays_that_do_not_fit_their_genome_leave_the_child_fresh(tmp_path) -> None:
    from evokeras.training.inheritance import WeightCache

    trained = _trained(BASE)
    cache = WeightCache(tmp_path)
    cache.save(trained, "p", genome=BASE.replace(layers=(L[0].replace(units=32), *L[1:])))  # lies about its genome
    keras.utils.set_random_seed(0)
    model = decode(BASE, TASK)
    before = [w.copy() for w in model.get_weights()]
    figures = cache.inherit(model, "p", genome=BASE, stem_channels=1)
    assert figures["parent_weights"] == "unreadable"
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_language_model_morphisms(language_task: Any) -> None:
    """Causal Conv1D and recurrent genes on a token stem: an identity conv inserted before
    a recurrent gene, and a wider dense layer, keep the next-token distribution."""
    from evokeras.genomes.cell import CellGenome

    genome = Genome((LayerGene("conv", units=16, kernel_size=3), LayerGene("recurrent", cell=CellGenome(16, ("lstm",))),
                     LayerGene("dense", units=16)))
    g = genome.layers
    tokens = np.random.default_rng(0).integers(0, language_task.n_outputs, (4, language_task.input_shape[0]))
    keras.utils.set_random_seed(0)
    trained = decode(genome, language_task)
    arrays = {layer.name: layer.get_weights() for layer in trained.layers if layer.get_weights()}
    stem = int(language_task.stem_shape[-1])
    for child in (genome.replace(layers=(g[0], LayerGene("conv", units=16, kernel_size=2), *g[1:])),
                  genome.replace(layers=(g[0].replace(kernel_size=5), *g[1:])),
                  genome.replace(layers=(*g[:2], g[2].replace(units=32)))):
        model = decode(child, language_task)
        figures = transfer(model, child, genome, arrays, stem_channels=stem)
        assert figures["inherited_layers"] >= 4  # the stem, the conv, the recurrent layer, the head
        np.testing.assert_allclose(model(tokens, training=False), trained(tokens, training=False), atol=2e-5)


@pytest.mark.parametrize("seed", range(4))
def test_the_growing_mutations_are_exact_morphisms(seed: int) -> None:
    """``widen`` and ``deepen`` children of random networks of the default image space
    compute what their trained parent computes."""
    from evokeras.genomes.space import default_space
    from evokeras.variation.mutations import deepen, widen
    from evokeras.variation.random_genes import random_genome

    space = TASK.with_space(default_space("image").replace(max_params=5_000_000, max_layers=12)).space
    rng = np.random.default_rng(seed)
    parent = random_genome(rng, space)
    for grow in (widen, deepen):
        child = grow(parent, rng, space)
        if child is None:
            continue
        trained, model, _ = _moved(parent, child)
        np.testing.assert_allclose(model(X, training=False), trained(X, training=False), atol=5e-5)


def _lm_pair(task: Any, parent: Genome, child: Genome) -> tuple[Any, Any, np.ndarray, dict[str, int]]:
    """``parent``'s model with perturbed weights, ``child``'s moved from it, and tokens."""
    keras.utils.set_random_seed(0)
    trained = decode(parent, task)
    rng = np.random.default_rng(1)
    for layer in trained.layers:
        if layer.get_weights():
            layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])
    arrays = {layer.name: layer.get_weights() for layer in trained.layers if layer.get_weights()}
    model = decode(child, task)
    figures = transfer(model, child, parent, arrays, stem_channels=int(task.stem_shape[-1]))
    tokens = np.random.default_rng(0).integers(0, task.n_outputs, (4, task.input_shape[0]))
    return trained, model, tokens, figures


def _stack(*cells: Any) -> Genome:
    return Genome(tuple(LayerGene("recurrent", cell=c) for c in cells))


def _cell_cases() -> dict[str, tuple[Genome, Genome]]:
    from evokeras.genomes.cell import CellGenome as C

    two = C(16, ("lstm", "gru"), rec_links=((0, 1, 0), (1, 2, 0)))
    return {
        "same cell": (_stack(two), _stack(two)),
        "wider lstm": (_stack(C(16, ("lstm",), rec_links=((0, 1, 0),))), _stack(C(32, ("lstm",), rec_links=((0, 1, 0),)))),
        "wider two-node cell": (_stack(two), _stack(two.replace(units=32))),
        "wider lower layer of two": (_stack(two, C(16, ("tanh",))), _stack(two.replace(units=32), C(16, ("tanh",)))),
        "new recurrent link": (_stack(two), _stack(C(16, ("lstm", "gru"), rec_links=((0, 1, 0), (1, 2, 0), (1, 5, 1))))),
        "new feed-forward link": (_stack(C(16, ("tanh", "gru", "lstm"))), _stack(C(16, ("tanh", "gru", "lstm"), ff_links=((0, 2),)))),
    }


@pytest.mark.parametrize("case", sorted(_cell_cases()))
def test_exact_cell_morphisms(case: str, language_task: Any) -> None:
    """A wider cell (new units read by nothing old), a new link (its kernel at zero) and
    an unchanged cell compute what the trained parent computes."""
    parent, child = _cell_cases()[case]
    trained, model, tokens, figures = _lm_pair(language_task, parent, child)
    assert figures["inherited_layers"] >= 3  # the stem, the cell(s), the head
    np.testing.assert_allclose(model(tokens, training=False), trained(tokens, training=False), atol=5e-5)


def test_approximate_cell_morphisms_keep_most_of_the_function(language_task: Any) -> None:
    """An inserted node (near the identity), a changed node type (its candidate block), a
    moved lag inherit: the child's next-token distribution stays far closer to the
    parent's than a fresh child's does; a cell of half the units, closer."""
    from evokeras.genomes.cell import CellGenome as C

    parent = _stack(C(16, ("lstm", "tanh"), rec_links=((0, 1, 0), (1, 2, 1))))
    children = {
        "inserted node": C(16, ("lstm", "tanh", "tanh"), rec_links=((0, 1, 0), (1, 2, 1))),
        "new node type": C(16, ("lstm", "gru"), rec_links=((0, 1, 0), (1, 2, 1))),
        "moved lag": C(16, ("lstm", "tanh"), rec_links=((0, 1, 0), (1, 3, 1))),
        "narrower": C(8, ("lstm", "tanh"), rec_links=((0, 1, 0), (1, 2, 1))),
    }
    for name, cell in children.items():
        share = 1.0 if name == "narrower" else 0.5
        trained, model, tokens, _ = _lm_pair(language_task, parent, _stack(cell))
        keras.utils.set_random_seed(0)
        fresh = decode(_stack(cell), language_task)
        want = keras.ops.softmax(trained(tokens, training=False))
        moved = np.abs(keras.ops.softmax(model(tokens, training=False)) - want).sum(-1).mean()
        scratch = np.abs(keras.ops.softmax(fresh(tokens, training=False)) - want).sum(-1).mean()
        assert moved < share * scratch, (name, moved, scratch)


@pytest.mark.parametrize("seed", range(3))
def test_any_cell_mutation_or_crossover_moves_without_error(seed: int, language_task: Any) -> None:
    """Children of random cells by every cell operator take their parent's weights (the
    layer counts as inherited) and give finite outputs."""
    from evokeras.genomes.cell import CellLimits
    from evokeras.variation.cell import crossover_cells, mutate_cell, random_cell

    limits = CellLimits(max_nodes=4, max_lag=4, units=(8, 16))
    rng = np.random.default_rng(seed)
    for _ in range(6):
        parent = random_cell(rng, limits)
        children = [mutate_cell(parent, rng, limits), crossover_cells(parent, random_cell(rng, limits), rng, limits)[0]]
        for cell in children:
            _, model, tokens, figures = _lm_pair(language_task, _stack(parent), _stack(cell))
            assert figures["inherited_layers"] >= 2
            assert np.all(np.isfinite(model(tokens, training=False)))


@pytest.mark.parametrize("seed", range(3))
def test_widening_a_language_model_is_exact(seed: int, language_task: Any) -> None:
    """``widen`` children of random language models (cells of every node type and link)
    compute what their trained parent computes."""
    from evokeras.variation.mutations import widen
    from evokeras.variation.random_genes import random_genome

    rng = np.random.default_rng(seed)
    space = language_task.space
    parent = random_genome(rng, space)
    child = widen(parent, rng, space)
    assert child is not None and child != parent
    trained, model, tokens, _ = _lm_pair(language_task, parent, child)
    np.testing.assert_allclose(model(tokens, training=False), trained(tokens, training=False), atol=5e-5)


def test_a_new_recurrent_layer_starts_near_the_identity(language_task: Any) -> None:
    """A recurrent layer stacked on a trained one passes its input on (every node near
    the identity): the head keeps its weights and the child stays close to its parent."""
    from evokeras.genomes.cell import CellGenome as C

    lower = C(16, ("lstm",), rec_links=((0, 1, 0),))
    parent = _stack(lower)
    for cell in (C(16, ("tanh",)), C(32, ("gru", "lstm"), rec_links=((1, 2, 0),))):
        child = _stack(lower, cell)
        trained, model, tokens, figures = _lm_pair(language_task, parent, child)
        assert figures["identity_layers"] == 1
        keras.utils.set_random_seed(0)
        fresh = decode(child, language_task)
        want = keras.ops.softmax(trained(tokens, training=False))
        moved = np.abs(keras.ops.softmax(model(tokens, training=False)) - want).sum(-1).mean()
        scratch = np.abs(keras.ops.softmax(fresh(tokens, training=False)) - want).sum(-1).mean()
        assert moved < 0.5 * scratch, (cell, moved, scratch)
