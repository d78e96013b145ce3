"""Timed training: the learning rate warmed up and decayed over a number of seconds, in
an evaluation (``Budget.anneal``) and in the final training (config ``final_seconds``)."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest

from evokeras import make_task
from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.genomes.cell import CellGenome, NodeGene
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.tasks.language import LanguageModel
from evokeras.training.context import FinalContext
from evokeras.training.evaluator import Evaluator
from evokeras.training.records import Budget
from evokeras.training.stock import WARMUP_FRACTION, annealed_rate, timed_schedule

LM_GENOME = Genome((LayerGene("recurrent", cell=CellGenome(32, (NodeGene("lstm"),), rec_links=((0, 1, 0),))),),
                   training=TrainingGenes(optimizer="adam", learning_rate=0.01, batch_size=32))


def test_annealed_rate_warms_up_then_decays_to_zero() -> None:
    peak = 0.02
    assert annealed_rate(0.0, peak) == pytest.approx(peak * 0.01)  # never exactly 0 at the start
    assert annealed_rate(WARMUP_FRACTION / 2, peak) == pytest.approx(peak / 2)
    assert annealed_rate(WARMUP_FRACTION, peak) == pytest.approx(peak)
    rates = [annealed_rate(f, peak) for f in np.linspace(WARMUP_FRACTION, 1.0, 50)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))  # decays monotonically
    assert annealed_rate(1.0, peak) == pytest.approx(0.0, abs=1e-12)
    assert annealed_rate(7.0, peak) == annealed_rate(1.0, peak) and annealed_rate(-1.0, peak) == annealed_rate(0.0, peak)


def _dense() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def test_timed_schedule_trains_for_its_seconds_and_anneals_the_rate() -> None:
    x = np.random.default_rng(0).random((4096, 4)).astype("float32")
    y = x.sum(axis=1)
    model, cb = _dense(), timed_schedule(1.0, 0.01)
    seen: list[float] = []

    class Rates(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            if hasattr(self.model, "jax_state_sync"):
                self.model.jax_state_sync()
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    t0 = time.perf_counter()
    history = model.fit(x, y, batch_size=32, epochs=10_000, callbacks=[cb, Rates()], verbose=0)
    elapsed = time.perf_counter() - t0
    assert cb.done and 1.0 <= elapsed < 30.0
    assert len(history.history["loss"]) < 10_000  # stopped by the clock, not by the epochs
    assert max(seen) > 0.5 * 0.01 and seen[0] < 0.5 * 0.01  # warmed up from low
    assert seen[-1] < 0.05 * 0.01  # decayed at the end
    # the clock spans fit calls: a spent schedule stops a further fit after one batch
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    model.fit(x, y, batch_size=32, epochs=5, callbacks=[cb], verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == steps + 1


def test_timed_schedule_decays_by_steps_when_the_epochs_run_out_first() -> None:
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    model, cb = _dense(), timed_schedule(3600.0, 0.01, steps=2 * 4)
    model.fit(x, x.sum(axis=1), batch_size=16, epochs=2, callbacks=[cb], verbose=0)
    assert cb.done and int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.0


def test_tasks_that_train_their_own_way_refuse_timed_training() -> None:
    for key, value, path in (("final_seconds", 60, "final.seconds"), ("evaluation", {"anneal": True}, "evaluation.anneal")):
        with pytest.raises(ConfigError, match=f"config key '{path}'"):
            SearchConfig.from_dict({"task": "cartpole", "objectives": {"return": 1.0}, key: value}).build_task()


def test_budget_anneal_is_checked_and_scales_seconds() -> None:
    b = Budget.from_dict({"anneal": True, "seconds": 40, "train_samples": None})
    assert b.anneal and b.to_dict()["anneal"] is True and not Budget().anneal
    low = b.scaled(0.25)
    assert low.seconds == 10 and low.train_samples is None and low.epochs == b.epochs
    with pytest.raises(ValueError, match=r"evaluation\.anneal"):
        Budget.from_dict({"anneal": 1}, where="evaluation")


@pytest.mark.parametrize("value", [0, -5, "60"])
def test_final_seconds_must_be_positive(value: object) -> None:
    with pytest.raises(ConfigError, match=r"config key 'final\.seconds'"):
        SearchConfig.from_dict({"final_seconds": value})
    assert SearchConfig.from_dict({"final_seconds": 2.5}).final.seconds == 2.5


def test_final_model_trains_for_its_seconds(tmp_path: Path) -> None:
    task = make_task("bible_chars", seq_len=16)
    final = FinalContext(epochs=10_000, train_samples=256, seed=0, run_seed=0, time_repeats=1, seconds=1.5)
    out = task.final_model(LM_GENOME, final, tmp_path / "m.keras")
    assert out["status"] == "ok" and np.isfinite(out["test_bpc"]) and out["final_fit_seconds"] >= 1.5
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) > 8  # more than one epoch of 8 batches
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.0  # annealed to the end


class _SlowData(LanguageModel):
    """The character task whose data take a second to load, once."""

    loads = 0

    def data(self, **limits: int | None):  # type: ignore[override]
        if _SlowData.loads == 0:
            time.sleep(1.0)
        _SlowData.loads += 1
        return super().data(**limits)


def test_annealed_evaluation_trains_for_its_seconds_after_the_data_are_loaded() -> None:
    task = _SlowData("bible_chars", seq_len=16)
    budget = Budget(epochs=10_000, train_samples=128, val_samples=16, patience=0, seconds=1.5, anneal=True,
                    timeout=60, time_repeats=1)
    res = Evaluator(task, budget, {"val_bpc": -1.0})(LM_GENOME)
    assert res.ok, res.error
    # the second of data loading is not taken from the candidate's 1.5 s of training
    assert res.times["fit"] >= 1.4 and res.times["total"] >= 2.4
    assert res.metrics["epochs"] >= 1 and res.metrics["train_path"] == "stock"
