"""Final models: retrained on train + validation with a decaying learning rate and light augmentation."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from evokeras import make_task
from evokeras.data import random_shift
from evokeras.genomes.network import Genome, LayerGene
from evokeras.training.context import FinalContext

GENOME = Genome((LayerGene("block", units=8), LayerGene("pool")), reduce="flatten")


@pytest.mark.parametrize(("schedule", "decayed"), [("cosine", True), ("constant", False)])
def test_final_model_learning_rate_schedule(tmp_path: Path, schedule: str, decayed: bool) -> None:
    task = make_task("mnist")
    final = FinalContext(epochs=1, train_samples=256, seed=0, run_seed=0, time_repeats=1, schedule=schedule)
    out = task.final_model(GENOME, final, tmp_path / "m.keras")
    assert out["status"] == "ok" and 0.0 <= out["test_accuracy"] <= 1.0 and out["test_exec_time"] > 0
    model = keras.saving.load_model(tmp_path / "m.keras")
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2  # 256 examples, batch 128
    assert (lr < 1e-6) == decayed and (lr == pytest.approx(GENOME.training.learning_rate)) == (not decayed)


def test_final_model_with_augmentation_trains_every_epoch(tmp_path: Path) -> None:
    task = make_task("mnist")
    assert task.augment is not None and task.default_final_augment == 2
    final = FinalContext(epochs=2, train_samples=256, seed=0, run_seed=0, time_repeats=1, augment=2)
    out = task.final_model(GENOME, final, tmp_path / "m.keras")
    assert out["status"] == "ok" and 0.0 <= out["test_accuracy"] <= 1.0
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4  # 2 epochs x 2 batches
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) < 1e-6  # one cosine over both epochs


def test_random_shift_moves_each_image_within_the_limit() -> None:
    x = np.zeros((400, 9, 7, 2), np.float32)
    x[:, 4, 3, :] = 1.0  # one bright pixel per image and channel
    x[:, 4, 3, 1] = 2.0
    out = random_shift(x, 2, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    moves = set()
    for img in out:
        rows, cols = np.nonzero(img[..., 0])
        assert len(rows) == 1 and img[rows[0], cols[0], 1] == 2.0  # channels move together
        moves.add((int(rows[0]) - 4, int(cols[0]) - 3))
    assert moves == {(a, b) for a in range(-2, 3) for b in range(-2, 3)}  # every shift drawn
    edge = np.ones((50, 5, 5, 1), np.float32)
    shifted = random_shift(edge, 1, np.random.default_rng(1))
    assert shifted.sum() < edge.sum()  # uncovered borders are zero
    assert random_shift(x, 0, np.random.default_rng(0)) is x
    with pytest.raises(ValueError, match="shape"):
        random_shift(np.zeros((3, 5, 5)), 1, np.random.default_rng(0))
