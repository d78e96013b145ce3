"""Final models: retrained on train + validation with a decaying learning rate."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from evokeras import make_task
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
