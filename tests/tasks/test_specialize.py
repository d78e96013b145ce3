"""Tests for specialization: the head fit, the :class:`Specialization` task, a real
(tiny) search with :func:`evokeras.api.specialize`, the DEAP toolbox of edit
programs, and one end-to-end smoke of ``studies/specialize_objects.py``.

The search's base is a tiny ResNet trained a few steps on Fashion-MNIST whose last
block carries a non-finite batch-norm shift: programs that keep that block fail with
status ``nan`` (features not finite), the others succeed, so one search covers both.
(An infinite shift, not a NaN: XLA's fused ``max`` on the JAX CPU backend can turn
``relu(NaN)`` into 0 inside a specialized body, so a NaN statistic does not reliably
reach the features there.)

Costs are kept small for 2 CPU cores: on JAX the initial weights Keras draws (and
surgery overwrites) come from numpy (``conftest.numpy_initial_weights``), and
splits read whole (final models, the study's baseline) are cut to 500 examples.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import numpy_initial_weights  # noqa: E402

import evokeras  # noqa: E402
from evokeras import data as datasets  # noqa: E402
from evokeras import make_toolbox  # noqa: E402
from evokeras.api import specialize  # noqa: E402
from evokeras.app.specialization import choose, ratios  # noqa: E402
from evokeras.engine.config import ConfigError  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.engine.toolbox import EditIndividual  # noqa: E402
from evokeras.genomes.edits import EditProgram  # noqa: E402
from evokeras.nets import zoo  # noqa: E402
from evokeras.results.report import format_report  # noqa: E402
from evokeras.tasks.specialize import Specialization, fit_head, predict  # noqa: E402  # noqa: E402
from evokeras.training.context import ScoreContext  # noqa: E402
from evokeras.training.records import Budget  # noqa: E402
from evokeras.variation.edits import reference_programs  # noqa: E402

POISONED = "s2b2_add"  # the block whose batch norm has an infinite shift
CONFIG = {
    "population": 3, "offspring": 3, "generations": 1,
    "objectives": {"val_error": -1, "params": -1},
    "evaluation": {"train_samples": 200, "val_samples": 100, "time_repeats": 1, "time_batch": 32},
    # fine-tuning is tested on its own (test_build_..., test_fine_tuning_...); the poisoned base
    # has no finite teacher, so the data-driven criteria are tested on a clean one
    "space": {"finetune": [0], "importance": ["weight_norm"]},
    "final_train_samples": 300,
}


TEST_CAP = 500  # examples of a split read whole (final models, baselines)


def _capped(loader: Any) -> Any:
    """``loader`` with a split asked for whole (``None``) cut to its first
    :data:`TEST_CAP` examples: the final models and the study's baseline are scored on
    500 test examples instead of 10,000 (prefixes: the same first examples)."""

    def load(*args: Any, train_size: int | None = None, val_limit: int | None = None,
             test_limit: int | None = None, **kwargs: Any) -> Any:
        def cap(n: int | None) -> int:
            return TEST_CAP if n is None else n

        return loader(*args, train_size=cap(train_size), val_limit=cap(val_limit), test_limit=cap(test_limit),
                      **kwargs)

    return load


@pytest.fixture(scope="module", autouse=True)
def _small_costs() -> Any:
    """Cheap initial weights on JAX (see ``conftest.numpy_initial_weights``) and
    splits read whole cut to :data:`TEST_CAP` examples."""
    from evokeras.tasks.image import ImageClassification

    with numpy_initial_weights(seed=1), pytest.MonkeyPatch.context() as mp:
        for name, loader in list(ImageClassification._LOADERS.items()):
            mp.setitem(ImageClassification._LOADERS, name, _capped(loader))
        mp.setattr(datasets, "object_scenes", _capped(datasets.object_scenes))
        yield


# --------------------------------------------------------------------------- #
# fit_head                                                                     #
# --------------------------------------------------------------------------- #
def _logits(features: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return features.astype(np.float64) @ w + b


def _xent(features: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
    s = _logits(features, w, b)
    s = s - s.max(axis=1, keepdims=True)
    return float(-(s[np.arange(len(y)), y] - np.log(np.exp(s).sum(axis=1))).mean())


@pytest.fixture(scope="module")
def separable() -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated clusters in 5 dimensions, on an offset and scale."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    centres = rng.normal(0, 4, (3, 5))
    x = centres[y] + rng.normal(0, 0.3, (90, 5))
    return (x * [1, 10, 0.1, 1, 5] + 7).astype("float32"), y


@pytest.mark.parametrize("method", ["ridge", "logistic"])
def test_fit_head_separates_separable_features(separable, method) -> None:
    x, y = separable
    w, b = fit_head(x, y, 3, method, 1e-3)
    assert w.shape == (5, 3) and b.shape == (3,) and w.dtype == np.float32
    assert np.mean(np.argmax(_logits(x, w, b), axis=1) != y) == 0.0


def test_logistic_fits_the_training_cross_entropy_at_least_as_well_as_ridge() -> None:
    """On overlapping classes (where the cross-entropy is not driven to 0) with a small
    penalty, softmax regression beats the rescaled ridge solution it starts from."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    x = (rng.normal(0, 1, (200, 6)) + 1.5 * np.eye(3, 6)[y]) * 4 + 2
    for alpha in (1e-4, 1e-2):
        ridge = _xent(x, y, *fit_head(x, y, 3, "ridge", alpha))
        logistic = _xent(x, y, *fit_head(x, y, 3, "logistic", alpha))
        assert logistic <= ridge


def test_logistic_lowers_its_penalised_objective(separable) -> None:
    """Whatever the penalty, the logistic fit's objective (cross-entropy + alpha/2 |W|^2
    on standardised features) is no larger than at the ridge solution it starts from."""
    x, y = separable
    std = x.astype(np.float64).std(axis=0)
    for alpha in (1e-2, 1e-1, 1.0):
        def objective(w: np.ndarray, b: np.ndarray, a: float = alpha) -> float:
            return _xent(x, y, w, b) + a / 2 * float(np.sum((w * std[:, None]) ** 2))

        assert objective(*fit_head(x, y, 3, "logistic", alpha)) <= objective(*fit_head(x, y, 3, "ridge", alpha)) + 1e-6


def test_fit_head_survives_constant_columns_and_wide_features() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 24)
    x = np.concatenate([rng.normal(0, 1, (24, 40)), np.zeros((24, 1)), np.full((24, 1), 3.0)], axis=1)
    for method in ("ridge", "logistic"):
        w, b = fit_head(x, y, 4, method, 1e-2)  # 42 features > 24 samples: the dual system
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))
        assert np.mean(np.argmax(_logits(x, w, b), axis=1) == y) == 1.0  # wide: interpolates
    w, b = fit_head(np.ones((10, 3)), np.arange(10) % 2, 2, "ridge", 1.0)  # all constant
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))


# --------------------------------------------------------------------------- #
# The base and the search                                                      #
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def base_model() -> Any:
    """A tiny ResNet for (28, 28, 1), trained a few steps on Fashion-MNIST; the second
    batch norm of its last block gets an infinite shift in one channel."""
    keras.utils.set_random_seed(0)
    try:
        data = datasets.fashion_mnist_splits(train_size=256, val_limit=64, test_limit=0)
    except datasets.DatasetNotFoundError as exc:  # .ci/run installs it where it can
        pytest.skip(f"Fashion-MNIST not installed ({exc})")
    model = zoo.resnet((28, 28, 1), 10, widths=(4, 8), blocks=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, batch_size=64, epochs=1, verbose=0)
    bn = model.get_layer("s2b2_bn2")
    gamma, beta, mean, var = bn.get_weights()
    beta[0] = np.inf
    bn.set_weights([gamma, beta, mean, var])
    return model


@pytest.fixture(scope="module")
def base_path(base_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base") / "base.keras"
    base_model.save(path)
    return path


@pytest.fixture(scope="module")
def run(base_model, tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("spec") / "run"
    hof = evokeras.specialize(base_model, "mnist", out, config=CONFIG, seed=0)
    return out, hof


def _rows(out: Path) -> list[Any]:
    with RunStore(out / "run.db", readonly=True) as store:
        return [r for _, r in store.evaluations()]


def test_specialize_is_exported_at_the_top_level() -> None:
    assert evokeras.specialize is specialize and "specialize" in evokeras.__all__


def test_search_front_members_are_saved_specialized_models(run) -> None:
    out, hof = run
    assert (out / "base.keras").is_file() and (out / "hall_of_fame.json").is_file()
    assert hof["members"] and list(hof["objectives"]) == ["val_error", "params"]
    x = datasets.mnist_splits(train_size=1, val_limit=0, test_limit=5).x_test
    for m in hof["members"]:
        program = EditProgram.from_dict(m["genome"])
        assert program.key == m["key"]
        assert m["status"] == "ok" and 0.0 <= m["test_error"] <= 1.0 and m["test_exec_time"] > 0
        assert m["metrics"]["steps"] == program.steps()
        assert m["params"] == m["objectives"]["params"] < m["metrics"]["base_params"] * 20
        model = keras.saving.load_model(out / m["model"], compile=False)
        probs = np.asarray(predict(model, x))
        assert probs.shape == (5, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # the front is non-dominated on (val_error, params)
    pts = [(m["objectives"]["val_error"], m["objectives"]["params"]) for m in hof["members"]]
    for a in pts:
        assert not any(b[0] <= a[0] and b[1] <= a[1] and b != a for b in pts)


def test_run_db_holds_edit_programs_and_nan_candidates(run) -> None:
    out, _ = run
    rows = _rows(out)
    assert len(rows) >= 4
    statuses = set()
    for r in rows:
        program = EditProgram.from_dict(r.genome)
        assert program.key == r.key
        keeps_poison = POISONED not in program.drop and program.cut in ("s2b2_add", "s2b2_relu", "pool")
        expected = "nan" if keeps_poison else "ok"
        assert r.status == expected, (r.key, program.steps(), r.status, r.error)
        if r.status == "nan":
            assert "not finite" in r.error
        statuses.add(r.status)
    # the seed gives both kinds: a failed candidate does not stop the search
    assert statuses == {"ok", "nan"}


def test_report_and_continuation(run, base_model) -> None:
    out, hof = run
    text = format_report(out)
    for m in hof["members"]:
        assert m["key"] in text
    before = len(_rows(out))
    again = specialize(base_model, "mnist", out, config=CONFIG, seed=0)
    assert again == hof
    assert len(_rows(out)) == before


def test_cli_report(run, capsys) -> None:
    from evokeras.app.cli import main

    out, hof = run
    assert main(["report", str(out)]) == 0
    assert hof["members"][0]["key"] in capsys.readouterr().out


def test_config_error_names_the_option_and_writes_no_run(base_model, tmp_path) -> None:
    out = tmp_path / "bad"
    with pytest.raises(ConfigError, match="'bogus'"):
        specialize(base_model, "mnist", out, config={**CONFIG, "space": {"bogus": 1}})
    assert not (out / "run.db").exists()
    assert not (out / "base.keras").exists()
    for config, key in (({"space": {"importance": ["fisher"]}}, "importance"),
                        ({"task_options": {"temperature": 0}}, "temperature"),
                        ({"task_options": {"distill_weight": 1.5}}, "distill_weight")):
        with pytest.raises(ConfigError, match=f"config key '(space|task_options)': .*{key}"):
            specialize(base_model, "mnist", out, config={**CONFIG, **config})
        assert not (out / "run.db").exists()


# --------------------------------------------------------------------------- #
# The task                                                                     #
# --------------------------------------------------------------------------- #
def test_task_rejects_a_missing_base_and_a_base_of_the_wrong_shape(base_path, tmp_path) -> None:
    with pytest.raises(ValueError, match="base"):
        Specialization(tmp_path / "missing.keras", "mnist")
    zoo.plain_cnn((16, 16, 1), 2, widths=(4,), dense=8).save(tmp_path / "small.keras")
    with pytest.raises(ValueError, match=r"base: .*\(16, 16, 1\)"):
        Specialization(tmp_path / "small.keras", "mnist")
    with pytest.raises(ValueError, match="base"):
        Specialization(tmp_path / "small.keras", "fashion_mnist")
    with pytest.raises(ValueError, match="^space:"):
        Specialization(base_path, "mnist", space="default")  # type: ignore[arg-type]
    task = Specialization(base_path, "fashion_mnist")
    assert task.input_shape == (28, 28, 1) and task.n_outputs == 10 and task.name == "specialize:fashion_mnist"


def test_build_fits_the_head_and_fine_tunes_only_unfrozen_units(base_path) -> None:
    task = Specialization(base_path, "mnist", distill_weight=0.0)  # the poisoned base has no finite teacher
    data = datasets.mnist_splits(train_size=64, val_limit=0, test_limit=0)
    program = EditProgram(cut="s1b2_relu", pool="avg", head="logistic", learning_rate=3e-3)
    ctx = ScoreContext(budget=Budget(), seed=0, run_seed=0, objectives=(), data_fn=lambda: data)
    plain = task.build(program, data.x_train, data.y_train, timed=ctx.timed)
    assert set(ctx.times) == {"build", "head"}
    assert plain.output.shape[-1] == 10 and plain.layers[-1].name == "specialized_softmax"
    np.testing.assert_allclose(np.asarray(plain.predict_on_batch(data.x_train[:4])).sum(axis=1), 1.0, rtol=1e-5)
    # the head is the closed-form fit on the body's features
    body = keras.Model(plain.inputs, plain.get_layer("specialized_pool").output)
    w, b = fit_head(predict(body, data.x_train), data.y_train, 10, "logistic", program.alpha)
    for got, want in zip(plain.get_layer("specialized_head").get_weights(), (w, b), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # fine-tuning with the whole body frozen changes the head only
    tuned_program = program.replace(finetune=1, freeze="s1b2_relu")
    task.space.check(tuned_program)
    ctx = ScoreContext(budget=Budget(), seed=0, run_seed=0, objectives=(), data_fn=lambda: data)
    tuned = task.build(tuned_program, data.x_train, data.y_train, timed=ctx.timed)
    assert "fit" in ctx.times
    base = task.base_model()
    for layer in tuned.layers:
        if layer.weights and layer.name != "specialized_head":
            assert not layer.trainable
            for a, b in zip(layer.get_weights(), base.get_layer(layer.name).get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)
    assert not np.array_equal(tuned.get_layer("specialized_head").get_weights()[0],
                              plain.get_layer("specialized_head").get_weights()[0])


def test_fine_tuning_does_not_undo_the_head_fit(base_path) -> None:
    task = Specialization(base_path, "mnist", distill_weight=0.0)
    data = datasets.mnist_splits(train_size=128, val_limit=0, test_limit=0)
    program = EditProgram(cut="s1b2_relu", pool="avg", head="logistic", learning_rate=1e-3)
    before = task.build(program, data.x_train, data.y_train).evaluate(
        data.x_train, data.y_train, verbose=0, return_dict=True)
    losses: list[float] = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            losses.append(float(logs["loss"]))

    tuned = task.build(program.replace(finetune=1), data.x_train, data.y_train, callbacks=[Record()])
    after = tuned.evaluate(data.x_train, data.y_train, verbose=0, return_dict=True)
    assert losses[0] < 2 * before["loss"]
    assert after["accuracy"] >= before["accuracy"] - 0.05


# --------------------------------------------------------------------------- #
# Teacher, data-driven importance and distillation (a clean base)              #
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def clean_path(base_model, tmp_path_factory) -> Path:
    model = keras.models.clone_model(base_model)
    model.set_weights(base_model.get_weights())
    bn = model.get_layer("s2b2_bn2")
    gamma, beta, mean, var = bn.get_weights()
    beta[0] = 0.0
    bn.set_weights([gamma, beta, mean, var])
    path = tmp_path_factory.mktemp("clean") / "base.keras"
    model.save(path)
    return path


def test_teacher_gives_cached_scores_and_soft_targets(clean_path) -> None:
    task = Specialization(clean_path, "mnist", teacher_epochs=1, importance_samples=64)
    data = datasets.mnist_splits(train_size=128, val_limit=64, test_limit=0)
    teacher = task.teacher(data.x_train, data.y_train)
    assert set(teacher["scores"]) == {"taylor", "activation"}
    assert teacher["scores"]["taylor"]["stem_conv"].shape == (2, 4)  # 64 samples in batches of 32
    assert teacher["logits"].shape == (128, 10) and np.all(np.isfinite(teacher["logits"]))
    assert task.teacher(data.x_train, data.y_train) is teacher  # once per training set
    # a squeeze by each criterion builds; the criteria keep different stem channels here
    stems = {}
    for criterion in ("weight_norm", "activation", "taylor"):
        program = EditProgram(cut="s2b2_relu", pool="avg", squeeze={"stem_conv": 0.5}, importance=criterion)
        task.space.check(program)
        model = task.build(program, data.x_train, data.y_train)
        stems[criterion] = tuple(model.get_layer("stem_bn").get_weights()[2])
    assert len(set(stems.values())) >= 2, stems
    # a fine-tuned candidate, distilled, records what its fine-tuning recovered
    program = EditProgram(cut="s2b2_relu", pool="avg", squeeze={"stem_conv": 0.5}, importance="taylor", finetune=1)
    ctx = ScoreContext(budget=Budget(time_repeats=0), seed=0, run_seed=0, objectives=("val_error",),
                       data_fn=lambda: data)
    metrics = task.score(program, ctx)
    assert {"teacher", "build", "head", "fit"} <= set(ctx.times)
    assert 0 <= metrics["head_val_error"] <= 1 and metrics["finetune_seconds"] > 0
    assert metrics["recovered_per_second"] == pytest.approx(
        (metrics["head_val_error"] - metrics["val_error"]) / metrics["finetune_seconds"])


def test_distillation_loss_mixes_labels_and_softened_teacher() -> None:
    from evokeras.training.stock import distillation_loss

    rng = np.random.default_rng(0)
    s, t = rng.normal(0, 2, (5, 4)), rng.normal(0, 2, (5, 4))
    y = np.array([0, 3, 1, 2, 3])

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    w, temp = 0.3, 2.0
    hard = -log_softmax(s)[np.arange(5), y]
    soft = -(np.exp(log_softmax(t / temp)) * log_softmax(s / temp)).sum(axis=1) * temp ** 2
    got = distillation_loss(w, temp)(np.concatenate([y[:, None], t], axis=1).astype("float32"), s.astype("float32"))
    np.testing.assert_allclose(np.asarray(got), (1 - w) * hard + w * soft, rtol=1e-4)


# --------------------------------------------------------------------------- #
# The toolbox of edit programs                                                 #
# --------------------------------------------------------------------------- #
def test_toolbox_individuals_are_edit_programs(base_path) -> None:
    task = Specialization(base_path, "mnist")
    tb = make_toolbox(task, objectives={"val_error": -1.0, "params": -1.0}, seed=3)
    pop = tb.population(6)
    for ind in pop:
        assert isinstance(ind, EditIndividual) and isinstance(ind, EditProgram)
        assert not ind.fitness.valid and ind.parent is None
        task.space.check(ind)
        assert ind.as_genome() == ind and type(ind.as_genome()) is EditProgram
    ind = pop[0]
    ind.fitness.values = (0.25, 1234.0)
    ind.parent = "0123456789abcdef"
    back = pickle.loads(pickle.dumps(ind))
    assert isinstance(back, EditIndividual) and back == ind and back.key == ind.key
    assert back.fitness.values == (0.25, 1234.0) and back.parent == "0123456789abcdef"
    twin = copy.deepcopy(ind)
    assert twin == ind and twin.fitness.values == ind.fitness.values and twin.fitness is not ind.fitness
    assert tb.clone(ind).parent == ind.parent
    a, b = pop[1], pop[2]
    ca, cb = tb.mate(a, b)
    assert isinstance(ca, EditIndividual) and ca.parent == a.key and cb.parent == b.key
    assert not ca.fitness.valid
    (child,) = tb.mutate(a)
    assert isinstance(child, EditIndividual) and child.parent == a.key and child != a
    task.space.check(child)
    assert tb.select(pop[:1] + [back], 1)[0] is not None
    # same seed, same individuals
    again = make_toolbox(task, objectives={"val_error": -1.0, "params": -1.0}, seed=3).population(6)
    assert [p.key for p in again] == [p.key for p in pop]


def test_reference_architectures_start_a_specialization_search(base_model, base_path, tmp_path) -> None:
    """With ``reference_architectures`` the first generation holds the width-multiplier
    programs, evaluated first and in order."""
    space = Specialization(base_path, "mnist").space.replace(finetune=(0,), importance=("weight_norm",))
    refs = reference_programs(space)
    out = tmp_path / "run"
    config = {**CONFIG, "population": len(refs) + 1, "generations": 0, "reference_architectures": True}
    evokeras.specialize(base_model, "mnist", out, config=config, seed=0)
    keys = [r.key for r in _rows(out)]
    assert keys[: len(refs)] == [p.key for p in refs]


# --------------------------------------------------------------------------- #
# choose / ratios                                                              #
# --------------------------------------------------------------------------- #
def _member(key: str, val_error: float, exec_time: float, params: int, test_error: float,
            status: str = "ok") -> dict[str, Any]:
    return {"key": key, "status": status, "metrics": {"val_error": val_error, "exec_time": exec_time},
            "test_exec_time": exec_time, "params": params, "test_error": test_error}


def test_choose_takes_the_fastest_member_better_than_the_baseline_on_validation() -> None:
    baseline = {"exec_time": 1.0, "params": 1000, "test_error": 0.2, "val_error": 0.15}
    members = [
        _member("big", 0.01, 0.5, 900, 0.01),
        _member("fast_worse", 0.2, 0.05, 50, 0.05),  # faster, but not better than the baseline
        _member("fast_better", 0.1, 0.1, 50, 0.3),  # its test error plays no part
        _member("failed", 0.0, 0.01, 10, 0.0, status="nan"),
    ]
    assert choose(members, baseline)["key"] == "fast_better"
    assert choose(members[1:2], baseline)["key"] == "fast_worse"  # none better: the lowest validation error
    assert choose([members[-1]], baseline) is None
    r = ratios(members[2], baseline)
    assert r == pytest.approx({"speedup": 10.0, "size_ratio": 20.0, "relative_error_reduction": -0.5,
                               "specialized_test_error": 0.3, "baseline_test_error": 0.2})


def test_train_best_keeps_the_learning_rate_of_lowest_validation_error() -> None:
    from evokeras.app.specialization import train_best

    data = datasets.mnist_splits(train_size=128, val_limit=64, test_limit=64)

    def build() -> Any:
        return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(10, activation="softmax")])

    model, info = train_best(build, data, learning_rates=[1e-6, 1e-2], loss="sparse_categorical_crossentropy",
                             epochs=3, batch_size=32, patience=1)
    grid = info["baseline_lr_grid"]
    assert [g["learning_rate"] for g in grid] == [1e-6, 1e-2]
    assert info["learning_rate"] == min(grid, key=lambda g: g["val_error"])["learning_rate"] == 1e-2
    assert info["train_seconds"] == pytest.approx(sum(g["train_seconds"] for g in grid))
    assert "test_error" in info and all("test_error" not in g for g in grid)


# --------------------------------------------------------------------------- #
# The study, end to end                                                        #
# --------------------------------------------------------------------------- #
def _study_module() -> Any:
    return importlib.import_module("evokeras.studies.specialize_objects")  # studies/specialize_objects.py wraps it


@pytest.mark.slow
def test_specialize_objects_study_smoke(tmp_path, monkeypatch, capsys) -> None:
    study = _study_module()
    # the script's smoke budget, made smaller: a narrower network, fewer samples
    monkeypatch.setattr(study, "ARCH", {"widths": (4, 8), "dense": 16})
    smoke = study.BUDGETS["smoke"]
    budgets = {"smoke": {
        "base": {**smoke["base"], "train_samples": 128, "val_samples": 64},
        "baseline": {**smoke["baseline"], "train_samples": 128, "val_samples": 64},
        "search": {**smoke["search"], "strategy": {"population": 2, "offspring": 1, "generations": 0},
                   "space": {"finetune": [0]},
                   "evaluation": {**smoke["search"]["evaluation"], "train_samples": 100, "val_samples": 64,
                                  "time_batch": 32},
                   "final": {"train_samples": 128}},
    }}
    out = tmp_path / "study"
    argv = ["--budget", "smoke", "--out", str(out), "--no-progress"]

    def run_study() -> int:
        return study.run_specialization_study("specialize_objects", budgets, target="objects",
                                              train_base=study.train_base, train_baseline=study.train_baseline,
                                              argv=argv)

    assert run_study() == 0
    summary = json.loads((out / "summary.json").read_text())
    chosen = summary["chosen"]
    assert chosen is not None and (out / "search" / chosen["model"]).is_file()
    EditProgram.from_dict(chosen["genome"])
    assert set(summary["ratios"]) == {"speedup", "size_ratio", "relative_error_reduction",
                                      "specialized_test_error", "baseline_test_error"}
    assert summary["ratios"]["specialized_test_error"] == chosen["test_error"]
    assert summary["baseline"]["params"] == summary["ratios"]["size_ratio"] * chosen["params"]
    assert summary["evaluations"] >= 2 and summary["target"] == "objects"
    wall = summary["wall_seconds"]
    assert set(wall) == {"base", "baseline", "search", "final_models", "total"}
    assert all(v > 0 for v in wall.values())
    assert wall["total"] == pytest.approx(sum(v for k, v in wall.items() if k != "total"))
    assert (out / "search" / "plots" / "specialize.png").stat().st_size > 0
    for name in ("base.keras", "base.json", "baseline.keras", "baseline.json"):
        assert (out / name).is_file()
    stamps = {name: os.path.getmtime(out / name) for name in ("base.keras", "baseline.keras")}
    capsys.readouterr()
    # a second run reuses the base, the baseline and the finished search
    assert run_study() == 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert {name: os.path.getmtime(out / name) for name in stamps} == stamps
    assert "chosen" in capsys.readouterr().out
