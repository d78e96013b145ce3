"""Tests for :mod:`evokeras.nets.surgery`: reading base models, and the exactness of the
models an edit program makes of them (identity, squeeze, drop), on tiny zoo models.

Exactness anchors: a squeezed model equals the base whose removed units are silenced
(their incoming weights and bias zeroed: ReLU(0) = 0, an LSTM unit with zero gate
pre-activations keeps c = h = 0); a dropped identity-shortcut block equals the base
with the block's last batch-norm scale and shift zeroed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from conftest import lazy_weights, numpy_initial_weights  # noqa: E402

from evokeras.genomes.edits import EditProgram, EditSpace  # noqa: E402
from evokeras.nets import zoo  # noqa: E402
from evokeras.nets.surgery import SurgeryError, apply_program, count_flops, importance, structure  # noqa: E402

ATOL = 1e-5


def _materialize(model: Any, seed: int) -> Any:
    """Give ``model`` numpy-drawn weights (the same on every backend): scaled normal
    kernels, random biases and batch-norm statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        cls = type(layer).__name__
        shapes = [tuple(w.shape) for w in layer.weights]
        if not shapes:
            continue
        if cls == "BatchNormalization":
            gamma, beta, mean, var = shapes
            values = [rng.uniform(0.5, 1.5, gamma), rng.normal(0, 0.2, beta), rng.normal(0, 0.2, mean),
                      rng.uniform(0.5, 2.0, var)]
        elif cls == "Embedding":
            values = [rng.normal(0, 0.5, shapes[0])]
        elif cls == "LSTM":
            k, r, b = shapes
            values = [rng.normal(0, 1 / np.sqrt(k[0]), k), rng.normal(0, 1 / np.sqrt(r[0]), r), rng.normal(0, 0.3, b)]
        else:  # Conv2D / Dense: kernel (..., in, out) [, bias]
            fan_in = int(np.prod(shapes[0][:-1]))
            values = [rng.normal(0, 1 / np.sqrt(fan_in), shapes[0])] + [rng.normal(0, 0.1, s) for s in shapes[1:]]
        layer.set_weights([v.astype("float32") for v in values])
    return model


@pytest.fixture(scope="module", autouse=True)
def _cheap_initial_weights() -> Iterator[None]:
    with numpy_initial_weights():
        yield


def _build(builder: Any, *args: Any, seed: int | None, **kwargs: Any) -> Any:
    """``builder(*args, **kwargs)`` with numpy-drawn weights (``seed``), or none drawn
    (``seed=None``: for tests that only read the graph)."""
    with lazy_weights() if seed is None else contextlib.nullcontext():
        model = builder(*args, **kwargs)
    return model if seed is None else _materialize(model, seed)


def _copy(model: Any) -> Any:
    """A twin of ``model`` with its weights."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def _features(model: Any, name: str, x: np.ndarray) -> np.ndarray:
    """The output of ``model``'s layer ``name`` for ``x`` (the reference, Keras only)."""
    return np.asarray(keras.Model(model.inputs, model.get_layer(name).output).predict_on_batch(x))


def _body(model: Any, program: EditProgram, x: np.ndarray) -> np.ndarray:
    return np.asarray(apply_program(model, program).predict_on_batch(x))


@pytest.fixture(scope="module")
def cnn() -> Any:
    return _build(zoo.plain_cnn, (16, 16, 1), 2, widths=(4, 8), dense=8, seed=1)


@pytest.fixture(scope="module")
def res() -> Any:
    return _build(zoo.resnet, (12, 12, 1), 3, widths=(4, 8), blocks=2, seed=2)


@pytest.fixture(scope="module")
def lstm() -> Any:
    return _build(zoo.lstm_model, 50, 50, embedding=8, units=(6, 6), seed=3)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (5, 16, 16, 1)).astype("float32")


@pytest.fixture(scope="module")
def small_images() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (5, 12, 12, 1)).astype("float32")


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 50, (4, 7)).astype("int32")


# --------------------------------------------------------------------------- #
# Identity programs                                                            #
# --------------------------------------------------------------------------- #
def test_identity_program_plain_cnn(cnn, images) -> None:
    s = structure(cnn)
    assert s.cut_points[-1] == "fc"
    np.testing.assert_allclose(_body(cnn, EditProgram(cut="fc", pool="none"), images),
                               _features(cnn, "fc", images), atol=ATOL)
    maps = _features(cnn, "stage2_pool", images)  # (5, 4, 4, 8)
    np.testing.assert_allclose(_body(cnn, EditProgram(cut="stage2_pool", pool="avg"), images),
                               maps.mean(axis=(1, 2)), atol=ATOL)
    np.testing.assert_allclose(_body(cnn, EditProgram(cut="stage2_pool", pool="flatten"), images),
                               maps.reshape(len(images), -1), atol=ATOL)


def test_identity_program_resnet_with_batch_norm_statistics(res, small_images) -> None:
    s = structure(res)
    assert s.cut_points[-1] == "pool"
    body = apply_program(res, EditProgram(cut="pool", pool="none"))
    np.testing.assert_allclose(body.predict_on_batch(small_images), _features(res, "pool", small_images),
                               atol=ATOL)
    assert body.count_params() == sum(u.params for u in s.units[:-1])
    maps = _features(res, "s2b2_relu", small_images)
    np.testing.assert_allclose(_body(res, EditProgram(cut="s2b2_relu", pool="max"), small_images),
                               maps.max(axis=(1, 2)), atol=ATOL)
    # a cut right after a block's Add (before its ReLU)
    np.testing.assert_allclose(_body(res, EditProgram(cut="s2b1_add", pool="avg"), small_images),
                               _features(res, "s2b1_add", small_images).mean(axis=(1, 2)), atol=ATOL)


def test_identity_program_lstm(lstm, tokens) -> None:
    seq = _features(lstm, "lstm2", tokens)  # (4, 7, 6)
    np.testing.assert_allclose(_body(lstm, EditProgram(cut="lstm2", pool="last"), tokens), seq[:, -1], atol=ATOL)
    np.testing.assert_allclose(_body(lstm, EditProgram(cut="lstm2", pool="mean"), tokens), seq.mean(axis=1),
                               atol=ATOL)


# --------------------------------------------------------------------------- #
# Squeeze and drop exactness                                                   #
# --------------------------------------------------------------------------- #
def _removed(score: np.ndarray, keep: float) -> np.ndarray:
    n = max(1, int(round(keep * len(score))))
    return np.sort(np.argsort(-score)[n:])


def test_squeezed_plain_cnn_equals_base_with_silenced_filters(cnn, images) -> None:
    squeeze = {"stage1_conv1": 0.5, "stage2_conv1": 0.75, "stage2_conv2": 0.5}
    program = EditProgram(cut="fc", pool="none", squeeze=squeeze)
    EditSpace(structure(cnn)).check(program)
    silenced = _copy(cnn)
    for name, keep in squeeze.items():
        kernel, bias = cnn.get_layer(name).get_weights()
        gone = _removed(np.abs(kernel).sum(axis=(0, 1, 2)), keep)
        assert 0 < len(gone) < kernel.shape[-1]
        kernel, bias = kernel.copy(), bias.copy()
        kernel[..., gone] = 0.0
        bias[gone] = 0.0
        silenced.get_layer(name).set_weights([kernel, bias])
    body = apply_program(cnn, program)
    # stage2_conv2 keeps 4 of 8 channels: fc reads 4 * 4 positions * 4 channels
    assert body.get_layer("fc").get_weights()[0].shape == (64, 8)
    assert body.get_layer("stage1_conv1").get_weights()[0].shape == (3, 3, 1, 2)
    assert body.get_layer("stage1_conv2").get_weights()[0].shape == (3, 3, 2, 4)
    assert body.get_layer("stage2_conv1").get_weights()[0].shape == (3, 3, 4, 6)
    out = body.predict_on_batch(images)
    expected = _features(silenced, "fc", images)
    assert np.abs(expected).max() > 1e-3  # not a trivial (all-dead) comparison
    np.testing.assert_allclose(out, expected, atol=ATOL)
    assert count_flops(body) < count_flops(apply_program(cnn, EditProgram(cut="fc", pool="none")))


def _lstm_score(kernel: np.ndarray, recurrent: np.ndarray, units: int) -> np.ndarray:
    return sum(np.abs(kernel[:, g * units:(g + 1) * units]).sum(axis=0)
               + np.abs(recurrent[:, g * units:(g + 1) * units]).sum(axis=0) for g in range(4))


def test_squeezed_lstm_equals_base_with_silenced_units(lstm, tokens) -> None:
    program = EditProgram(cut="lstm2", pool="mean", squeeze={"lstm1": 0.5})
    EditSpace(structure(lstm)).check(program)
    kernel, recurrent, bias = (w.copy() for w in lstm.get_layer("lstm1").get_weights())
    gone = _removed(_lstm_score(kernel, recurrent, 6), 0.5)
    assert len(gone) == 3
    for g in range(4):
        kernel[:, g * 6 + gone] = 0.0
        recurrent[:, g * 6 + gone] = 0.0
        bias[g * 6 + gone] = 0.0
    silenced = _copy(lstm)
    silenced.get_layer("lstm1").set_weights([kernel, recurrent, bias])
    # the silenced units' outputs stay exactly 0
    assert np.all(_features(silenced, "lstm1", tokens)[..., gone] == 0.0)
    body = apply_program(lstm, program)
    k, r, b = body.get_layer("lstm1").get_weights()
    assert k.shape == (8, 12) and r.shape == (3, 12) and b.shape == (12,)
    assert body.get_layer("lstm2").get_weights()[0].shape == (3, 24)
    np.testing.assert_allclose(body.predict_on_batch(tokens), _features(silenced, "lstm2", tokens).mean(axis=1),
                               atol=ATOL)


def test_squeezed_embedding_equals_base_with_zeroed_dimensions(lstm, tokens) -> None:
    program = EditProgram(cut="lstm2", pool="last", squeeze={"embedding": 0.25})
    EditSpace(structure(lstm)).check(program)
    (table,) = lstm.get_layer("embedding").get_weights()
    gone = _removed(np.abs(table).sum(axis=0), 0.25)
    assert len(gone) == 6
    table = table.copy()
    table[:, gone] = 0.0
    silenced = _copy(lstm)
    silenced.get_layer("embedding").set_weights([table])
    body = apply_program(lstm, program)
    assert body.get_layer("embedding").get_weights()[0].shape == (50, 2)
    assert body.get_layer("lstm1").get_weights()[0].shape == (2, 24)
    np.testing.assert_allclose(body.predict_on_batch(tokens), _features(silenced, "lstm2", tokens)[:, -1],
                               atol=ATOL)


def test_dropped_identity_block_equals_base_with_silenced_branch(res, small_images) -> None:
    program = EditProgram(cut="pool", pool="none", drop=("s1b2_add",))
    EditSpace(structure(res)).check(program)
    silenced = _copy(res)
    bn = silenced.get_layer("s1b2_bn2")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, var])
    body = apply_program(res, program)
    names = {layer.name for layer in body.layers}
    assert "s1b2_conv1" not in names and "s1b2_add" not in names and "s1b2_relu" in names
    np.testing.assert_allclose(body.predict_on_batch(small_images), _features(silenced, "pool", small_images),
                               atol=ATOL)
    # a dropped block and a squeeze together
    both = EditProgram(cut="pool", pool="none", drop=("s1b2_add",), squeeze={"s2b2_conv1": 0.5})
    EditSpace(structure(res)).check(both)
    assert apply_program(res, both).count_params() < body.count_params()


# --------------------------------------------------------------------------- #
# Importance and freezing                                                      #
# --------------------------------------------------------------------------- #
def _conv_bn_graph() -> Any:
    inp = keras.Input((6, 6, 2), name="x")
    h = keras.layers.Conv2D(4, 3, use_bias=False, name="c")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.Conv2D(3, 1, name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(h))


def test_importance_is_l1_norm_times_batch_norm_scale() -> None:
    model = _build(_conv_bn_graph, seed=4)
    kernel = np.ones((3, 3, 2, 4), "float32") * np.array([1.0, 4.0, 2.0, 3.0], "float32")
    kernel[0, 0, 0] *= -1.0  # signs do not matter
    model.get_layer("c").set_weights([kernel])
    gamma = np.array([1.0, 1.0, -1.0, 0.01], "float32")
    var = np.array([1.0, 1.0, 3.0, 1.0], "float32")
    bn = model.get_layer("bn")
    bn.set_weights([gamma, np.zeros(4, "float32"), np.zeros(4, "float32"), var])
    l1 = 18.0 * np.array([1.0, 4.0, 2.0, 3.0])
    np.testing.assert_allclose(importance(model.get_layer("c")), l1, rtol=1e-6)
    np.testing.assert_allclose(importance(model.get_layer("c"), bn), l1 * np.abs(gamma) / np.sqrt(var + 1e-3),
                               rtol=1e-5)
    # the squeeze keeps the filters of largest scaled importance (1 and 2, not 3)
    program = EditProgram(cut="c2", pool="avg", squeeze={"c": 0.5})
    EditSpace(structure(model)).check(program)
    body = apply_program(model, program)
    np.testing.assert_array_equal(body.get_layer("c").get_weights()[0], kernel[..., [1, 2]])
    np.testing.assert_array_equal(body.get_layer("bn").get_weights()[0], gamma[[1, 2]])
    np.testing.assert_array_equal(body.get_layer("c2").get_weights()[0],
                                  model.get_layer("c2").get_weights()[0][:, :, [1, 2], :])


def test_freeze_makes_early_units_non_trainable(res) -> None:
    program = EditProgram(cut="pool", pool="none", finetune=1, freeze="s1b2_relu")
    EditSpace(structure(res)).check(program)
    body = apply_program(res, program)
    frozen = {"stem_conv", "stem_bn", *(f"s1b{b}_{p}" for b in (1, 2) for p in ("conv1", "bn1", "conv2", "bn2"))}
    weighted = [layer for layer in body.layers if layer.weights]
    assert frozen <= {layer.name for layer in weighted}
    for layer in weighted:  # batch norm stays in inference mode: never trainable
        is_bn = type(layer).__name__ == "BatchNormalization"
        assert layer.trainable == (layer.name not in frozen and not is_bn), layer.name
    assert any(layer.name == "s2b1_proj" and layer.trainable for layer in weighted)
    everything = apply_program(res, EditProgram(cut="pool", pool="none"))
    assert all(layer.trainable != (type(layer).__name__ == "BatchNormalization")
               for layer in everything.layers if layer.weights)
    assert len(body.trainable_weights) < len(everything.trainable_weights)


# --------------------------------------------------------------------------- #
# Unsupported graphs and bad programs                                          #
# --------------------------------------------------------------------------- #
def _concatenated() -> Any:
    inp = keras.Input((8,), name="x")
    a = keras.layers.Dense(4, name="a")(inp)
    b = keras.layers.Dense(4, name="b")(inp)
    h = keras.layers.Concatenate(name="cat")([a, b])
    return keras.Model(inp, keras.layers.Dense(2, name="head")(h))


def test_concatenated_branches_raise_surgery_error() -> None:
    model = _build(_concatenated, seed=None)
    with pytest.raises(SurgeryError, match="Add"):
        structure(model)
    with pytest.raises(SurgeryError):
        apply_program(model, EditProgram(cut="a"))


def _shared() -> Any:
    inp = keras.Input((4,), name="x")
    shared = keras.layers.Dense(4, name="shared")
    return keras.Model(inp, keras.layers.Dense(2, name="head")(shared(shared(inp))))


def test_shared_layer_raises_surgery_error() -> None:
    model = _build(_shared, seed=None)
    with pytest.raises(SurgeryError, match="'shared'"):
        structure(model)


def _two_inputs() -> Any:
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    return keras.Model([a, b], keras.layers.Dense(2, name="head")(keras.layers.Add(name="add")([a, b])))


def test_two_inputs_raise_surgery_error() -> None:
    model = _build(_two_inputs, seed=None)
    with pytest.raises(SurgeryError, match="one input"):
        structure(model)


def test_bad_programs_raise_surgery_error(res) -> None:
    with pytest.raises(SurgeryError, match="cut"):
        apply_program(res, EditProgram(cut="head", pool="none"))
    # the last layer of an identity block alone: its output would not match the stream
    with pytest.raises(SurgeryError, match="different channels"):
        apply_program(res, EditProgram(cut="pool", pool="none", squeeze={"s1b1_conv2": 0.5}))


# --------------------------------------------------------------------------- #
# Saving and FLOPs                                                             #
# --------------------------------------------------------------------------- #
def test_specialized_model_saves_and_loads(lstm, tokens, tmp_path) -> None:
    body = apply_program(lstm, EditProgram(cut="lstm2", pool="last", squeeze={"lstm1": 0.5}))
    head = keras.layers.Dense(3, activation="softmax", name="specialized_head")
    model = keras.Model(body.input, head(body.output))
    before = np.asarray(model.predict_on_batch(tokens))
    model.save(tmp_path / "specialized.keras")
    loaded = keras.saving.load_model(tmp_path / "specialized.keras")
    assert any(type(layer).__name__ == "LastStep" for layer in loaded.layers)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(tokens)), before, atol=1e-6)
    assert before.shape == (len(tokens), 3)


def _conv_dense() -> Any:
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(5, 3)(inp)  # valid: 6 x 6 x 5
    h = keras.layers.Conv2D(2, 1, strides=2)(h)  # 3 x 3 x 2
    h = keras.layers.Flatten()(h)
    return keras.Model(inp, keras.layers.Dense(7)(h))


def _recurrent() -> Any:
    seq = keras.Input((10, 3))
    return keras.Model(seq, keras.layers.LSTM(4)(seq))


def test_count_flops_matches_a_hand_count() -> None:
    expected = 2 * 36 * (3 * 3 * 3 * 5) + 2 * 9 * (5 * 2) + 2 * 18 * 7
    assert count_flops(_build(_conv_dense, seed=5)) == expected
    assert count_flops(_build(_recurrent, seed=6)) == 2 * 10 * 4 * 4 * (3 + 4)


# --------------------------------------------------------------------------- #
# Residual streams and data-driven importance                                  #
# --------------------------------------------------------------------------- #
def _silence_bn(model: Any, name: str, gone: np.ndarray) -> None:
    bn = model.get_layer(name)
    gamma, beta, mean, var = (w.copy() for w in bn.get_weights())
    gamma[gone] = 0.0
    beta[gone] = 0.0
    bn.set_weights([gamma, beta, mean, var])


@pytest.mark.parametrize("producer, tensors", [
    ("stem_conv", [("stem_conv", "stem_bn"), ("s1b1_conv2", "s1b1_bn2"), ("s1b2_conv2", "s1b2_bn2")]),
    ("s2b1_add", [("s2b1_conv2", "s2b1_bn2"), ("s2b1_proj", "s2b1_proj_bn"), ("s2b2_conv2", "s2b2_bn2")]),
])
def test_squeezed_residual_stream_equals_base_with_silenced_channels(res, small_images, producer, tensors) -> None:
    """Squeezing a stream removes the same channels from every tensor added into it; the
    channels kept are those of largest summed importance; the result equals the base with
    those channels silenced (batch-norm scale and shift zeroed in each tensor)."""
    program = EditProgram(cut="pool", pool="none", squeeze={producer: 0.5})
    EditSpace(structure(res)).check(program)
    score = sum(importance(res.get_layer(layer), res.get_layer(bn)) for layer, bn in tensors)
    gone = _removed(score, 0.5)
    kept = np.setdiff1d(np.arange(len(score)), gone)
    silenced = _copy(res)
    for _, bn in tensors:
        _silence_bn(silenced, bn, gone)
    body = apply_program(res, program)
    for layer, _ in tensors:
        np.testing.assert_array_equal(body.get_layer(layer).get_weights()[0], res.get_layer(layer).get_weights()[0][..., kept])
    out = body.predict_on_batch(small_images)
    expected = _features(silenced, "pool", small_images)
    if producer == "s2b1_add":  # the last stage's stream reaches the pool: compare its kept channels
        assert np.all(expected[:, gone] == 0.0)
        expected = expected[:, kept]
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(out, expected, atol=ATOL)
    assert body.count_params() < apply_program(res, EditProgram(cut="pool", pool="none")).count_params()


def _teacher(res: Any) -> Any:
    """``res``'s body up to its pool with a Dense head: logits for 3 classes."""
    body = apply_program(res, EditProgram(cut="pool", pool="none"))
    head = keras.layers.Dense(3, name="teacher_head")
    model = keras.Model(body.inputs, head(body.output))
    head.set_weights([np.random.default_rng(7).normal(0, 1, (8, 3)).astype("float32"), np.zeros(3, "float32")])
    return model


def test_data_driven_criteria_change_which_units_go_and_keep_surgery_exact(res, small_images) -> None:
    from evokeras.nets.importance import unit_scores

    teacher = _teacher(res)
    x = np.concatenate([small_images] * 4)
    y = np.arange(len(x)) % 3
    kept: dict[str, np.ndarray] = {}
    for criterion in ("weight_norm", "activation", "taylor"):
        scores = unit_scores(teacher, criterion, x, y, batch_size=8)
        if criterion != "weight_norm":
            assert scores["s1b1_conv1"].shape == (3, 4) and scores["s2b1_proj"].shape == (3, 8)
            assert np.all(np.isfinite(scores["stem_conv"]))
        program = EditProgram(cut="pool", pool="none", squeeze={"s1b1_conv1": 0.5, "s2b2_conv1": 0.5, "stem_conv": 0.5},
                              importance=criterion)
        body = apply_program(res, program, scores)
        # exact on the kept units: the base with the others silenced
        silenced = _copy(res)
        for name, bn in (("s1b1_conv1", "s1b1_bn1"), ("s2b2_conv1", "s2b2_bn1")):
            gone = np.setdiff1d(np.arange(res.get_layer(name).filters), _kept_filters(res, body, name))
            _silence_bn(silenced, bn, gone)
        stream = _kept_filters(res, body, "stem_conv")
        gone = np.setdiff1d(np.arange(4), stream)
        for bn in ("stem_bn", "s1b1_bn2", "s1b2_bn2"):
            _silence_bn(silenced, bn, gone)
        np.testing.assert_allclose(body.predict_on_batch(small_images), _features(silenced, "pool", small_images),
                                   atol=ATOL)
        kept[criterion] = np.concatenate([_kept_filters(res, body, n) for n in ("s1b1_conv1", "s2b2_conv1", "stem_conv")])
    # the criteria disagree on what can go
    assert len({tuple(k) for k in kept.values()}) >= 2, kept


_BN_AFTER = {"s1b1_conv1": "s1b1_bn1", "s2b2_conv1": "s2b2_bn1", "stem_conv": "stem_bn"}


def _kept_filters(base: Any, body: Any, name: str) -> np.ndarray:
    """Which output filters of ``name`` the body kept (matched by the moving means of
    the batch norm after it: distinct random numbers)."""
    full = base.get_layer(_BN_AFTER[name]).get_weights()[2]
    part = body.get_layer(_BN_AFTER[name]).get_weights()[2]
    return np.array([int(np.argmin(np.abs(full - v))) for v in part])


def test_data_driven_scores_of_a_language_model(lstm, tokens) -> None:
    """Both criteria score the embedding and LSTM units of a sequence classifier (the
    embedding's gradient is sparse on TensorFlow), and the Taylor sum of the embedding
    equals ``sum(table * dL/dtable)`` per dimension."""
    from evokeras.nets.importance import unit_scores

    body = apply_program(lstm, EditProgram(cut="lstm2", pool="mean"))
    model = keras.Model(body.input, keras.layers.Dense(3, name="t_head")(body.output))
    y = np.array([0, 1, 2, 1])
    for criterion in ("activation", "taylor"):
        scores = unit_scores(model, criterion, tokens, y, batch_size=2)
        assert {k: v.shape for k, v in scores.items()} == {"embedding": (2, 8), "lstm1": (2, 6), "lstm2": (2, 6),
                                                              "t_head": (2, 3)}
        assert all(np.all(np.isfinite(v)) for v in scores.values())
    taylor = unit_scores(model, "taylor", tokens, y, batch_size=4)["embedding"][0]
    table = model.get_layer("embedding").embeddings
    with_table = keras.Model(model.inputs, model.outputs)
    eps = 1e-3
    base = np.asarray(table.numpy())

    def loss(scale: np.ndarray) -> float:
        table.assign(base * scale)
        logits = np.asarray(with_table.predict_on_batch(tokens), np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        return float(-(logits[np.arange(4), y] - np.log(np.exp(logits).sum(axis=1))).sum())

    want = np.array([(loss(np.where(np.arange(8) == d, 1 + eps, 1.0)) - loss(np.where(np.arange(8) == d, 1 - eps, 1.0)))
                     / (2 * eps) for d in range(8)])
    table.assign(base)
    np.testing.assert_allclose(taylor, want, rtol=2e-2, atol=1e-4)


def test_taylor_equals_activation_times_gradient() -> None:
    """On a conv + batch norm + ReLU graph the weight-gradient form of the Taylor score
    equals ``sum(a * dL/da)`` over the ReLU's output (finite differences of a gate)."""
    from evokeras.nets.importance import unit_scores

    model = _build(_conv_bn_graph, seed=4)
    x = np.random.default_rng(3).normal(0, 1, (6, 6, 6, 2)).astype("float32")
    y = np.array([0, 1, 1, 0, 1, 0])
    got = unit_scores(model, "taylor", x, y, batch_size=6)["c"][0]
    relu = keras.Model(model.inputs, model.get_layer("relu").output)
    a = np.asarray(relu.predict_on_batch(x), np.float64)
    tail_in = keras.Input(a.shape[1:])
    h = tail_in
    for name in ("c2", "gap", "head"):
        h = model.get_layer(name)(h)
    tail = keras.Model(tail_in, h)

    def loss(gate: np.ndarray) -> float:
        logits = np.asarray(tail.predict_on_batch((a * gate).astype("float32")), np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        return float(-(logits[np.arange(6), y] - np.log(np.exp(logits).sum(axis=1))).sum())

    eps = 1e-2
    want = np.array([(loss(np.where(np.arange(4) == c, 1 + eps, 1.0)) - loss(np.where(np.arange(4) == c, 1 - eps, 1.0)))
                     / (2 * eps) for c in range(4)])
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=1e-3)


# --------------------------------------------------------------------------- #
# Downsample and the whole model                                               #
# --------------------------------------------------------------------------- #
def test_downsample_equals_base_with_a_pool_inserted(res, small_images) -> None:
    """A downsample after the stem is the base's own layers with a 2x2 max pool (same
    padding) between the stem and the first block."""
    s = structure(res)
    program = EditProgram(cut="s2b2_relu", pool="avg", downsample="stem_relu")
    assert "stem_relu" in s.downsample_points(program) and "s2b1_relu" not in s.downsample_points(program)
    ref = _copy(res)  # its layers are called again below: a twin keeps the fixture unshared
    inp = keras.Input((12, 12, 1))
    x = ref.get_layer("stem_relu")(ref.get_layer("stem_bn")(ref.get_layer("stem_conv")(inp)))
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    for block in ("s1b1", "s1b2", "s2b1", "s2b2"):
        h = ref.get_layer(f"{block}_bn1")(ref.get_layer(f"{block}_conv1")(x))
        h = ref.get_layer(f"{block}_bn2")(ref.get_layer(f"{block}_conv2")(ref.get_layer(f"{block}_relu1")(h)))
        short = ref.get_layer(f"{block}_proj_bn")(ref.get_layer(f"{block}_proj")(x)) if block == "s2b1" else x
        x = ref.get_layer(f"{block}_relu")(ref.get_layer(f"{block}_add")([short, h]))
    want = np.asarray(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x)).predict_on_batch(small_images))
    body = apply_program(res, program)
    np.testing.assert_allclose(np.asarray(body.predict_on_batch(small_images)), want, atol=ATOL)
    assert count_flops(body) < 0.4 * count_flops(apply_program(res, program.replace(downsample="")))


def test_whole_program_keeps_the_head_and_squeezes_before_it(cnn, images) -> None:
    """``whole=True``: the base's own output through its head (no cut, no pool); an
    identity program reproduces the base, a squeezed one keeps the head's outputs."""
    np.testing.assert_allclose(np.asarray(apply_program(cnn, EditProgram(cut="fc"), whole=True).predict_on_batch(images)),
                               np.asarray(cnn.predict_on_batch(images)), atol=ATOL)
    squeezed = apply_program(cnn, EditProgram(cut="fc", squeeze={"stage1_conv1": 0.5, "fc": 0.5}), whole=True)
    assert squeezed.output.shape[-1] == 2 and squeezed.get_layer("fc").units == 4
    assert squeezed.get_layer("stage1_conv1").filters == 2
    # built with constant initializers (fast on JAX), configured with the base's own
    for name in ("stage1_conv1", "fc"):
        want = cnn.get_layer(name).get_config()
        got = squeezed.get_layer(name).get_config()
        assert got["kernel_initializer"] == want["kernel_initializer"] and got["bias_initializer"] == want["bias_initializer"]
