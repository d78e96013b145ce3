"""Tests for :mod:`evokeras.training.fast`: equivalence with stock ``model.fit`` on real MNIST.

Runs under whichever ``KERAS_BACKEND`` is set (TensorFlow or JAX).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from evokeras import Genome, LayerGene, TrainingGenes, decode
from evokeras.data import DatasetNotFoundError, mnist_splits
from evokeras.training.fast import FastHistory, epoch_permutation, evaluate_fast, fit_fast
from evokeras.training.records import EvaluationTimeout

#: 1024 samples at batch 100: 10 full batches and a short one of 24 (the remainder path).
BATCH = 100
DENSE = Genome((LayerGene("dense", units=32),), training=TrainingGenes("adam", 1e-3, BATCH))
#: BatchNormalization: on JAX the short last batch is a separate step, not a masked one;
#: convolutions: on JAX's CPU backend one compiled step per batch (no scan).
CONV = Genome(
    (
        LayerGene("conv", units=8, kernel_size=3, strides=2),
        LayerGene("batchnorm"),
        LayerGene("pool"),
        LayerGene("dense", units=16),
    ),
    training=TrainingGenes("adam", 1e-3, BATCH),
)
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def split() -> Any:
    try:
        return mnist_splits(train_size=1024, val_limit=512, test_limit=0)
    except DatasetNotFoundError as exc:  # pragma: no cover
        pytest.skip(f"MNIST not installed: {exc}")


def twins(genome: Genome, seed: int = 1) -> tuple[Any, Any]:
    """Two compiled models of ``genome`` with the same initial weights (fresh optimizers)."""
    import keras

    keras.utils.set_random_seed(seed)
    a, b = decode(genome, "mnist"), decode(genome, "mnist")
    b.set_weights(a.get_weights())
    return a, b


def stock_fit(
    model: Any, split: Any, orders: list[np.ndarray], **kw: Any
) -> dict[str, list[float]]:
    """``model.fit`` one epoch per order (pre-permuted data, ``shuffle=False``)."""
    out: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_accuracy": []}
    for order in orders:
        h = model.fit(
            split.x_train[order],
            split.y_train[order],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            validation_data=(split.x_val, split.y_val),
            validation_batch_size=128,  # 4 full batches: one compilation fewer on JAX
            verbose=0,
            **kw,
        )
        for key in out:
            out[key] += h.history[key]
    return out


def fast(model: Any, split: Any, **kw: Any) -> FastHistory:
    """``fit_fast`` on the split at batch size 100 (keywords override)."""
    kw.setdefault("batch_size", BATCH)
    x, y = kw.pop("x", split.x_train), kw.pop("y", split.y_train)
    y_val = kw.pop("y_val", split.y_val)
    return fit_fast(model, x, y, split.x_val, y_val, **kw)


def assert_same_weights(a: Any, b: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wb, wa, rtol=rtol, atol=atol)


def assert_same_history(h: FastHistory, ref: dict[str, list[float]]) -> None:
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(getattr(h, key), ref[key], rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("genome", [DENSE, CONV], ids=["dense", "conv_bn"])
def test_matches_stock_fit(split: Any, genome: Genome) -> None:
    """Two shuffled epochs (11 steps each, the last short) equal ``model.fit``: history,
    weights, optimizer steps, and the validation of the final weights."""
    ref_model, model = twins(genome)
    orders = [epoch_permutation(1024, 3, e) for e in range(2)]
    ref = stock_fit(ref_model, split, orders)
    h = fast(model, split, epochs=2, seed=3)
    assert h.epochs == 2 and h.steps_per_epoch == 11 and not h.stopped_early and not h.nan
    assert h.best_epoch == 1 and not h.restored
    assert h.compile_seconds > 0 and h.train_seconds > 0 and len(h.epoch_seconds) == 2
    assert_same_history(h, ref)
    assert_same_weights(ref_model, model)
    assert int(model.optimizer.iterations) == int(ref_model.optimizer.iterations) == 22
    # the stock validation of the last epoch is model.evaluate of the final weights
    scores = [ref["val_loss"][-1], ref["val_accuracy"][-1]]
    np.testing.assert_allclose(
        [h.final_val_loss, h.final_val_accuracy], scores, rtol=RTOL, atol=ATOL
    )
    if genome is DENSE:  # (a compilation more on JAX: only once)
        # batch 200: a padded and masked last batch
        loss, acc = evaluate_fast(model, split.x_val, split.y_val, batch_size=200)
        np.testing.assert_allclose([loss, acc], scores, rtol=RTOL, atol=ATOL)


#: BatchNormalization without convolutions: scanned whole epochs with a separate last step.
DENSE_BN = Genome(
    (LayerGene("dense", units=32), LayerGene("batchnorm")),
    training=TrainingGenes("adam", 1e-3, BATCH),
)


@pytest.mark.parametrize("genome", [DENSE, DENSE_BN], ids=["masked", "tail"])
def test_chunks_equal_whole_epochs(split: Any, genome: Genome) -> None:
    """``steps_per_call=4`` (calls of 4, 4 and 3 or 2 batches, then the end of the epoch)
    trains as one call per epoch does (checked against stock fit above)."""
    _, whole = twins(genome, seed=2)
    _, chunked = twins(genome, seed=2)
    kw: dict[str, Any] = dict(epochs=2, seed=3)
    h1 = fast(whole, split, **kw)
    h2 = fast(chunked, split, steps_per_call=4, **kw)
    assert h1.steps_per_call >= 10 and h2.steps_per_call == 4
    assert_same_history(h2, h1.history)
    assert_same_weights(whole, chunked)


def test_drop_remainder(split: Any) -> None:
    ref_model, model = twins(DENSE, seed=4)
    order = epoch_permutation(1024, 5, 0)
    ref = stock_fit(ref_model, split, [order[:1000]])
    h = fast(model, split, epochs=1, seed=5, drop_remainder=True)
    assert h.steps_per_epoch == 10
    assert_same_history(h, ref)
    assert_same_weights(ref_model, model)


def test_early_stopping_restores_best_weights(split: Any) -> None:
    """Validating against shifted labels makes every epoch worse than the first: stock
    EarlyStopping and fit_fast both stop after epoch 2 and restore epoch 1's weights."""
    import keras

    y_bad = (split.y_val + 1) % 10
    ref_model, model = twins(DENSE, seed=6)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    ref = ref_model.fit(
        split.x_train,
        split.y_train,
        batch_size=BATCH,
        epochs=4,
        shuffle=False,
        validation_data=(split.x_val, y_bad),
        validation_batch_size=128,
        callbacks=[stop],
        verbose=0,
    ).history
    h = fast(model, split, y_val=y_bad, epochs=4, patience=1, shuffle=False)
    assert len(ref["loss"]) == 2 and stop.best_epoch == 0
    assert h.epochs == 2 and h.stopped_early and h.stop_reason == "patience"
    assert h.restored and h.best_epoch == 0 and h.val_loss[1] > h.val_loss[0]
    assert_same_history(h, ref)
    assert_same_weights(ref_model, model)
    loss, _ = evaluate_fast(model, split.x_val, y_bad)
    assert math.isclose(loss, h.final_val_loss, rel_tol=RTOL) and h.final_val_loss == h.val_loss[0]


def test_seconds_stops_after_the_epoch(split: Any) -> None:
    _, model = twins(DENSE)
    h = fast(model, split, epochs=3, seconds=1e-6)
    assert h.epochs == 1 and h.stopped_early and h.stop_reason == "seconds" and not h.nan


def test_timeout_raises(split: Any) -> None:
    import time

    _, model = twins(DENSE)
    with pytest.raises(EvaluationTimeout):
        fast(model, split, epochs=3, timeout=1.0, start=time.perf_counter() - 2.0)


#: Linear layers carry a NaN to the loss (ReLU may turn it into 0 and hide it, in stock
#: ``fit`` as here: then the loss stays finite and only the weights are NaN).
LINEAR = (
    LayerGene("dense", units=64, activation="linear"),
    LayerGene("dense", units=64, activation="linear"),
)


@pytest.mark.parametrize("how", ["nan_input", "huge_lr"])
def test_nan_loss_is_reported(split: Any, how: str) -> None:
    x = split.x_train.copy()
    if how == "nan_input":
        x[5] = np.nan
        genome = Genome(LINEAR, training=TrainingGenes("adam", 1e-3, BATCH))
    else:  # plain SGD with momentum at learning rate 9.9 explodes
        import keras

        if keras.backend.backend() == "jax":
            pytest.skip(
                "Keras' cross-entropy on JAX clips the probabilities: the loss saturates, finite"
            )
        genome = Genome(LINEAR, training=TrainingGenes("sgd", 9.9, BATCH))
    _, model = twins(genome)
    h = fast(model, split, x=x, epochs=3, patience=2)
    assert h.nan and h.stop_reason == "nan" and h.stopped_early and h.epochs == 1
    assert not math.isfinite(h.loss[0])


def test_shared_program_for_same_architecture(split: Any) -> None:
    """A second candidate of the same architecture with another learning rate and initial
    weights reuses the compiled program on JAX (the learning rate is an input, not a
    constant): it trains as a freshly compiled program does."""
    import keras

    _, first = twins(DENSE, seed=7)
    fast(first, split, epochs=1, seed=1)
    other = Genome(DENSE.layers, training=TrainingGenes("adam", 3e-3, BATCH))
    fresh, model = twins(other, seed=8)
    h = fast(model, split, epochs=1, seed=1)
    if keras.backend.backend() == "jax":
        assert h.programs_compiled == 0 and h.programs_reused == 1 and h.compile_seconds == 0
    else:  # TensorFlow traces per model
        assert h.programs_compiled > 0
    # another validation batch size: a program of its own, compiled for ``fresh``
    ref = fast(fresh, split, epochs=1, seed=1, val_batch_size=256)
    assert ref.programs_compiled > 0 and ref.programs_reused == 0
    assert_same_history(h, ref.history)
    assert_same_weights(fresh, model)


def test_tensorflow_jit_compile(split: Any) -> None:
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("jit_compile is a TensorFlow option")
    ref_model, model = twins(DENSE, seed=9)
    ref = stock_fit(ref_model, split, [np.arange(1024)])
    h = fast(model, split, epochs=1, shuffle=False, jit_compile=True)
    assert_same_history(h, ref)
    assert_same_weights(ref_model, model)


def test_argument_errors(split: Any) -> None:
    _, model = twins(DENSE)
    with pytest.raises(ValueError, match="patience"):
        fit_fast(model, split.x_train, split.y_train, batch_size=BATCH, epochs=2, patience=1)
    with pytest.raises(ValueError, match="epochs"):
        fit_fast(model, split.x_train, split.y_train, batch_size=BATCH, epochs=0)
    h = fit_fast(model, split.x_train[:50], split.y_train[:50], batch_size=BATCH, epochs=1)
    assert h.steps_per_epoch == 1 and math.isnan(h.final_val_loss) and math.isfinite(h.loss[0])
