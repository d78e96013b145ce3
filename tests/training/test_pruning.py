"""Tests for :func:`evokeras.prune` (:mod:`evokeras.training.pruning`): targets met on
CNNs, ResNets and LSTMs, exactness where it can be exact, fine-tuning, saving, bad input."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from evokeras.genomes.edits import EditProgram  # noqa: E402
from evokeras.nets import zoo  # noqa: E402
from evokeras.nets.surgery import apply_program, count_flops  # noqa: E402
from evokeras.training.pruning import MIN_KEEP, PruningError, prune  # noqa: E402


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (96, 16, 16, 1)).astype("float32")
    return x, (x[:, :8].mean(axis=(1, 2, 3)) > x[:, 8:].mean(axis=(1, 2, 3))).astype("int64")


def test_uniform_params_target_is_met_by_the_widest_shares(images) -> None:
    keras.utils.set_random_seed(0)
    model = zoo.plain_cnn((16, 16, 1), 2, widths=(8, 16), dense=32)
    pruned = prune(model, 0.3)
    assert pruned.count_params() <= 0.3 * model.count_params()
    shares = pruned.pruning["shares"]
    assert len({round(s, 1) for s in shares.values()}) == 1  # one share everywhere (up to rounding)
    # the next uniform level (one unit more where rounding gives one) passes the target:
    # the bisection kept as much as it could
    widths = {"stage1_conv1": 8, "stage1_conv2": 8, "stage2_conv1": 16, "stage2_conv2": 16, "fc": 32}
    level = max(round(share * widths[n]) / widths[n] for n, share in shares.items())
    nxt = min(lv for lv in (k / w for w in widths.values() for k in range(1, w + 1)) if lv > level + 1e-9)
    wider = {n: max(1, round(nxt * w)) / w for n, w in widths.items()}
    over = apply_program(model, EditProgram(cut="fc", squeeze={n: v for n, v in wider.items() if v < 1}), whole=True)
    assert over.count_params() > 0.3 * model.count_params()
    assert pruned.output.shape[-1] == 2
    out = np.asarray(pruned.predict_on_batch(images[0][:4]))
    assert out.shape == (4, 2) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


def test_l1_pruning_of_dead_units_is_exact() -> None:
    """A hidden layer whose lower half of units has zero weights: pruning it to half its
    units by L1 removes exactly those, and the outputs do not change."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(3, name="out")])
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[:, ::2], bias[::2] = 0.0, 0.0
    model.get_layer("hidden").set_weights([kernel, bias])

    def params(units: int) -> int:
        return 6 * units + units + units * 3 + 3

    target = (params(4) + params(5)) / 2 / model.count_params()
    pruned = prune(model, target)
    assert pruned.get_layer("hidden").units == 4
    x = np.random.default_rng(0).normal(size=(10, 6)).astype("float32")
    np.testing.assert_allclose(pruned.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5)


@pytest.mark.parametrize("criterion", ["l1", "taylor"])
def test_resnet_macs_target_with_global_ratios(images, criterion) -> None:
    keras.utils.set_random_seed(2)
    model = zoo.resnet((16, 16, 1), 2, widths=(8, 16), blocks=2)
    pruned = prune(model, 0.4, resource="macs", criterion=criterion, ratios="global", data=images)
    assert count_flops(pruned) <= 0.4 * count_flops(model) + 2
    shares = pruned.pruning["shares"]
    assert min(shares.values()) >= MIN_KEEP - 1e-9 and len(set(shares.values())) > 1
    out = np.asarray(pruned.predict_on_batch(images[0][:4]))
    assert out.shape == (4, 2) and np.all(np.isfinite(out))


def test_lstm_classifier_prunes_every_recurrent_layer_and_fine_tunes(tmp_path) -> None:
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 20, (128, 10)).astype("int32")
    labels = (tokens[:, -1] < 10).astype("int64")  # the last token's half
    model = zoo.lstm_model(20, 2, embedding=8, units=(12, 12), per_step=False, activation="softmax")
    before = model.evaluate(tokens, labels, verbose=0, return_dict=True) if model.compile(
        loss="sparse_categorical_crossentropy", metrics=["accuracy"]) is None else None
    pruned = prune(model, 0.5, data=(tokens, labels), criterion="activation", epochs=8, learning_rate=1e-2)
    assert set(pruned.pruning["shares"]) == {"embedding", "lstm1", "lstm2"}
    assert pruned.count_params() <= 0.5 * model.count_params()
    after = pruned.evaluate(tokens, labels, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] and pruned.pruning["finetune_seconds"] > 0
    path = tmp_path / "pruned.keras"
    pruned.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict_on_batch(tokens[:4]), pruned.predict_on_batch(tokens[:4]), atol=1e-5)


def test_latency_target_and_distilled_fine_tuning_by_seconds() -> None:
    keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (64, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 2, 64)
    # wide enough that its time is the convolutions', not the call's overhead
    model = zoo.plain_cnn((32, 32, 1), 2, widths=(48, 96), dense=64)
    pruned = prune(model, 0.75, resource="latency", data=(x, y), seconds=1.0, distill=0.5)
    assert pruned.pruning["achieved"] <= 0.75 and pruned.count_params() < model.count_params()
    assert 1.0 <= pruned.pruning["finetune_seconds"] < 60


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"target": 1.5}, "target"),
    ({"target": 0.5, "resource": "bytes"}, "resource"),
    ({"target": 0.5, "criterion": "taylor"}, "data"),
    ({"target": 0.5, "epochs": 2}, "data"),
    ({"target": 0.5, "ratios": "layerwise"}, "ratios"),
    ({"target": 1e-4}, "target"),
    ({"target": 0.5, "tolerance": 0}, "tolerance"),
])
def test_bad_arguments_raise_one_pruning_error_naming_them(kwargs, named) -> None:
    model = zoo.plain_cnn((16, 16, 1), 2, widths=(4, 8), dense=8)
    with pytest.raises(PruningError, match=named):
        prune(model, **kwargs)


def test_labels_are_checked_before_anything_runs(images) -> None:
    model = zoo.plain_cnn((16, 16, 1), 2, widths=(4, 8), dense=8)
    x, y = images
    with pytest.raises(PruningError, match="integer class labels"):
        prune(model, 0.5, data=(x, np.eye(2)[y]), epochs=1)
    with pytest.raises(PruningError, match="one integer label per sample"):
        prune(model, 0.5, data=(x, np.stack([y, y], axis=1)), epochs=1, distill=0.5)
