"""Tests for :mod:`evokeras.training.evaluator` with real (tiny) training on MNIST."""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evokeras import Genome, LayerGene, TrainingGenes, decode, make_task
from evokeras import data as ds
from evokeras.data import DatasetNotFoundError
from evokeras.data import images as image_data
from evokeras.engine.toolbox import fitness_class, to_individual
from evokeras.genomes.space import SearchSpace
from evokeras.tasks import ImageClassification
from evokeras.training.evaluator import Evaluator
from evokeras.training.records import WORST, Budget, EvalResult, derive_seed, worst_values

TINY = Budget(epochs=1, train_samples=256, val_samples=128, patience=0, time_repeats=1, time_batch=64)
#: Not the default order, to check that objectives follow the order given.
OBJECTIVES = {"flops": -1.0, "val_error": -1.0, "exec_time": -1.0, "params": -1.0}

GENOME = Genome(
    (LayerGene("conv", units=8, kernel_size=3, strides=2), LayerGene("pool"), LayerGene("dense", units=16)),
    training=TrainingGenes("adam", 1e-3, 64),
)
DENSE = Genome((LayerGene("dense", units=16),), training=TrainingGenes("sgd", 1e-2, 64))


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(make_task("mnist", space=SearchSpace()), TINY, OBJECTIVES, seed=7)


@pytest.fixture(scope="module")
def ok_result(evaluator: Evaluator) -> tuple[Any, EvalResult]:
    ind = to_individual(GENOME, fitness_class([-1.0] * len(OBJECTIVES)))
    before = ind.to_dict()
    result = evaluator(ind)
    assert ind.to_dict() == before
    return ind, result


def test_ok_result_fields(ok_result: tuple[Any, EvalResult], evaluator: Evaluator) -> None:
    ind, r = ok_result
    assert r.status == "ok" and r.ok and r.error is None, r.error
    assert r.key == GENOME.key
    assert Genome.from_dict(r.genome) == GENOME
    assert r.objective_names == tuple(OBJECTIVES)
    assert r.objectives == tuple(float(r.metrics[name]) for name in OBJECTIVES)
    model = decode(GENOME, evaluator.task)
    assert r.metrics["params"] == model.count_params() == evaluator.task.space.analyze(GENOME).params
    assert r.metrics["flops"] == evaluator.task.space.analyze(GENOME).flops > 0
    assert r.metrics["exec_time"] > 0
    assert 0.0 <= r.metrics["val_error"] <= 1.0
    assert math.isclose(r.metrics["val_error"], 1.0 - r.metrics["val_accuracy"])
    # 128 validation samples: the error is a multiple of 1/128
    assert math.isclose(r.metrics["val_error"] * 128, round(r.metrics["val_error"] * 128), abs_tol=1e-6)
    assert math.isfinite(r.metrics["val_loss"])
    assert r.metrics["epochs"] == 1
    assert {"build", "fit", "evaluate", "total"} <= set(r.times)
    assert all(v >= 0 for v in r.times.values())
    assert EvalResult.from_dict(r.to_dict()) == r


def test_genome_is_not_mutated(ok_result: tuple[Any, EvalResult]) -> None:
    ind, r = ok_result
    assert ind.as_genome() == GENOME and ind.key == GENOME.key
    assert not ind.fitness.valid  # the evaluator sets no fitness: the search does
    assert r.genome == GENOME.to_dict()


def test_same_seed_same_val_error(ok_result: tuple[Any, EvalResult]) -> None:
    _, first = ok_result
    again = Evaluator(make_task("mnist", space=SearchSpace()), TINY, OBJECTIVES, seed=7)(GENOME)
    assert again.status == "ok"
    for name in ("val_error", "val_loss", "params", "flops"):
        assert again.metrics[name] == first.metrics[name], name


def test_evaluator_pickles_without_data(evaluator: Evaluator) -> None:
    evaluator.data()
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone._data is None
    assert clone.objectives == evaluator.objectives and clone.seed == evaluator.seed
    assert clone.budget == evaluator.budget


def test_invalid_genome_fails_with_reason(evaluator: Evaluator) -> None:
    bad = Genome((LayerGene("dense", units=17),))  # 17 is not among the space's unit choices
    r = evaluator(bad)
    assert r.status == "failed" and not r.ok
    assert "invalid genome" in r.error and "units" in r.error and "17" in r.error
    assert r.objectives == worst_values(list(OBJECTIVES.values())) == (WORST,) * 4
    assert r.objective_names == tuple(OBJECTIVES)
    assert r.key == bad.key


def test_worst_values_follow_the_weights() -> None:
    assert worst_values([-1.0, 1.0, -0.5]) == (WORST, -WORST, WORST)


def test_derive_seed_is_stable() -> None:
    assert derive_seed(0, "abc") == derive_seed(0, "abc")
    assert derive_seed(0, "abc") != derive_seed(1, "abc")
    assert 0 <= derive_seed(3, GENOME.key) < 2**31


def test_timeout_gives_status_timeout() -> None:
    ev = Evaluator(make_task("mnist", space=SearchSpace()), dataclasses.replace(TINY, timeout=0.01), OBJECTIVES, seed=0)
    r = ev(DENSE)
    assert r.status == "timeout", r.error
    assert "limit" in r.error
    assert r.objectives == (WORST,) * 4


class _NaNImages(ImageClassification):
    """MNIST with NaN training images: the training loss is NaN on every backend
    (with a tanh layer: TensorFlow's oneDNN-fused dense + ReLU maps NaN inputs to 0)."""

    def data(self, **limits: int | None) -> ds.Split:
        split = super().data(**limits)
        x = np.array(split.x_train, copy=True)
        x[:] = np.nan
        return dataclasses.replace(split, x_train=x)


def test_nan_loss_gives_status_nan() -> None:
    ev = Evaluator(_NaNImages("mnist", space=SearchSpace()), TINY, {"val_error": -1.0, "exec_time": -1.0}, seed=0)
    r = ev(Genome((LayerGene("dense", units=16, activation="tanh"),), training=DENSE.training))
    assert r.status == "nan", (r.status, r.error)
    assert "NaN" in r.error
    assert r.objectives == (WORST, WORST)
    assert r.metrics["params"] > 0


def test_unmeasured_objective_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match="'nonsense' is not measured"):
        Evaluator(make_task("mnist", space=SearchSpace()), TINY, {"val_error": -1.0, "nonsense": -1.0})


def test_missing_dataset_raises_instead_of_failing_the_candidate(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image_data, "FASHION_MNIST_DIR", tmp_path / "no-fashion")
    ev = Evaluator(make_task("fashion_mnist", space=SearchSpace()), TINY, {"val_error": -1.0, "flops": -1.0})
    with pytest.raises(DatasetNotFoundError, match="Fashion-MNIST"):
        ev(DENSE)


def test_budget_from_dict_checks_keys_and_values() -> None:
    assert Budget.from_dict({"epochs": 2, "train_samples": None}) == Budget(epochs=2, train_samples=None)
    assert Budget.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="epocs"):
        Budget.from_dict({"epocs": 2})
    with pytest.raises(ValueError, match="budget.epochs"):
        Budget.from_dict({"epochs": "2"})
    with pytest.raises(ValueError, match="budget.timeout"):
        Budget.from_dict({"timeout": 0})
    with pytest.raises(ValueError, match="budget.episodes"):
        Budget.from_dict({"episodes": 0})
    with pytest.raises(ValueError, match="'fast'"):  # a training setting, not a budget (TrainSettings)
        Budget.from_dict({"fast": True})
