"""Language-model tasks: windows, models with evolved skip-step cells, metrics, the study."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evokeras import decode
from evokeras.data import DatasetNotFoundError
from evokeras.engine.toolbox import make_toolbox
from evokeras.genomes.cell import CellGenome, NodeGene
from evokeras.genomes.network import Genome, LayerGene, TrainingGenes
from evokeras.tasks import LanguageModel, make_task
from evokeras.tasks.language import REFERENCE_LEARNING_RATE
from evokeras.training.evaluator import Evaluator
from evokeras.training.records import Budget

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chars() -> LanguageModel:
    return make_task("bible_chars", seq_len=16)


def _brown() -> LanguageModel:
    task = make_task("brown_words", seq_len=8)
    try:
        task.text()
    except DatasetNotFoundError as exc:
        pytest.skip(f"Brown corpus not installed ({exc})")
    return task


def test_windows_shift_by_one(chars: LanguageModel) -> None:
    ids = np.arange(50)
    x, y = chars.windows(ids)
    assert x.shape == (3, 16) and y.shape == (3, 16)
    np.testing.assert_array_equal(y, x + 1)
    assert chars.windows(ids, limit=2)[0].shape == (2, 16)


def test_data_splits_and_limits(chars: LanguageModel) -> None:
    split = chars.data(train_size=10, val_limit=5, test_limit=3)
    assert split.x_train.shape == (10, 16) and split.x_val.shape == (5, 16) and split.x_test.shape == (3, 16)
    assert split.x_train.max() < chars.n_outputs == chars.text().vocab_size
    with pytest.raises(ValueError, match="val_limit"):
        chars.data(train_size=1, val_limit=10**9, test_limit=0)
    with pytest.raises(ValueError, match="train_size"):
        chars.data(train_size=-1)


def test_metrics_from_loss(chars: LanguageModel) -> None:
    assert chars.val_metrics({"loss": math.log(2.0) * 3})["val_bpc"] == pytest.approx(3.0)
    words = make_task("brown_words")
    assert words.val_metrics({"loss": 2.0})["val_perplexity"] == pytest.approx(math.exp(2.0))
    assert words.n_outputs == 10_001 and "val_perplexity" in words.measures


def test_evolved_cell_model_shapes_and_params(chars: LanguageModel) -> None:
    cell = CellGenome(32, (NodeGene("lstm"), NodeGene("tanh")), rec_links=((1, 3, 0), (0, 1, 0)))
    g = Genome((LayerGene("recurrent", cell=cell), LayerGene("recurrent", cell=cell)),
               training=TrainingGenes(batch_size=32))
    chars.space.check(g)
    model = decode(g, chars)
    assert model.output_shape == (None, 16, chars.n_outputs)
    assert model.count_params() == chars.space.analyze(g).params
    tb = make_toolbox(chars, seed=4)
    for ind in tb.population(4):
        assert decode(ind, chars, compile=False).count_params() == chars.space.analyze(ind).params


def test_evaluator_trains_a_char_model(chars: LanguageModel) -> None:
    cell = CellGenome(32, (NodeGene("gru"),), rec_links=((0, 2, 0),))
    g = Genome((LayerGene("recurrent", cell=cell),), training=TrainingGenes(batch_size=32))
    budget = Budget(epochs=1, train_samples=32, val_samples=8, patience=0, time_batch=8, time_repeats=1)
    r = Evaluator(chars, budget, {"val_bpc": -1.0, "exec_time": -1.0}, seed=1)(g)
    assert r.status == "ok", r.error
    assert r.metrics["val_bpc"] == pytest.approx(r.metrics["val_loss"] / math.log(2.0))
    assert 0 < r.metrics["val_bpc"] < 8 and 0 < r.metrics["exec_time"] < 1e-2


def test_word_task_reads_brown() -> None:
    words = _brown()
    split = words.data(train_size=4, val_limit=2, test_limit=2)
    assert split.x_train.shape == (4, 8) and split.y_train.max() < words.n_outputs


def test_reference_genomes_are_stock_lstms_in_the_space() -> None:
    from evokeras.engine.config import SearchConfig
    from evokeras.studies.char_lm import BUDGETS
    from evokeras.variation.network import repair

    task = SearchConfig.from_dict(BUDGETS["default"]).build_task()
    refs = task.reference_genomes()
    assert [g.layers[0].cell.units for g in refs] == [256, 128, 64]  # every width, widest first
    for genome in refs:
        (gene,) = genome.layers
        assert gene.cell == CellGenome(gene.cell.units, ("lstm",), rec_links=((0, 1, 0),))
        assert genome.training == TrainingGenes("adam", REFERENCE_LEARNING_RATE, 64)
        assert repair(genome, task.space) == genome


def test_char_study_smoke_end_to_end(tmp_path: Path) -> None:
    overrides = tmp_path / "tiny.json"
    overrides.write_text(json.dumps({"population": 2, "offspring": 1, "generations": 1,
                                     "evaluation": {"train_samples": 24, "val_samples": 8},
                                     "final_train_samples": 24}))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "studies" / "char_lm.py"), "--out", str(out),
                           "--config", str(overrides), "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    hof = json.loads((out / "hall_of_fame.json").read_text())
    ok = [m for m in hof["members"] if m.get("status") == "ok"]
    assert ok and all(math.isfinite(m["test_bpc"]) for m in ok)
    assert (out / "plots" / "cell.png").stat().st_size > 1000
