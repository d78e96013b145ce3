"""Tasks from your own data and environments: arrays, text, any gymnasium id, importable
factories; the recipe a run directory records; failing fast."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evokeras  # noqa: E402
from evokeras import from_arrays, from_gym, from_text  # noqa: E402
from evokeras.data import DataChangedError  # noqa: E402
from evokeras.engine.config import ConfigError, SearchConfig  # noqa: E402
from evokeras.engine.runner import complete  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.tasks import make_task, register_factory  # noqa: E402
from evokeras.tasks.control import ActionMap, rollout  # noqa: E402


def _images(n: int = 70) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 12, 20, 3), dtype=np.uint8), np.arange(n) % 7


def test_array_task_recipe_rebuilds_it(tmp_path: Path) -> None:
    x, y = _images()
    task = from_arrays(x, y, split_seed=2)
    assert (task.input_shape, task.n_outputs, task.family) == ((12, 20, 3), 7, "image")
    assert task.default_max_val_error == pytest.approx(0.5 * 6 / 7)
    assert task.reference_genomes()  # the image networks, repaired into a 12x20 space
    spec = task.recipe(tmp_path)
    assert spec["task"] == "arrays" and Path(spec["task_options"]["path"]) == tmp_path / "data.npz"
    again = make_task(spec["task"], **spec["task_options"])
    a, b = task.data(), again.data()
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_test, b.y_test)
    assert again.recipe(tmp_path / "elsewhere") == spec  # a file task records itself, writes nothing
    # the file changes: refused, naming it
    np.savez(tmp_path / "data.npz", x_train=x[:10], y_train=y[:10])
    with pytest.raises(DataChangedError, match="data.npz has changed"):
        make_task(spec["task"], **spec["task_options"])
    cfg = SearchConfig.from_dict({"task": spec["task"], "task_options": spec["task_options"]})
    with pytest.raises(ConfigError, match="^data file .*data.npz has changed"):
        cfg.build_task()


def test_array_task_limits_and_vectors() -> None:
    rng = np.random.default_rng(1)
    task = from_arrays(rng.random((50, 5)), np.arange(50) % 3, validation_data=(rng.random((8, 5)), np.arange(8) % 3))
    assert task.family == "vector" and task.reference_genomes() == []
    data = task.data(train_size=10, val_limit=4, test_limit=2)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (10, 4, 2)
    with pytest.raises(ValueError, match="val_limit=9"):
        task.data(val_limit=9)
    with pytest.raises(ValueError, match="either path"):
        make_task("arrays")


def test_text_task_from_string_and_file(tmp_path: Path) -> None:
    text = "It was the best of times, it was the worst of times.\n" * 30
    task = from_text(text, seq_len=16)
    assert task.level == "char" and task.metric == "val_bpc" and task.input_shape == (16,)
    spec = task.recipe(tmp_path)
    assert (tmp_path / "data.txt").read_text(encoding="utf-8") == text
    again = make_task(spec["task"], **spec["task_options"])
    assert again.text().vocab == task.text().vocab and np.array_equal(again.data().x_val, task.data().x_val)
    words = from_text(tmp_path / "data.txt", level="word", vocab_size=5, seq_len=4)
    assert words.metric == "val_perplexity" and words.n_outputs == 6 and words.name == "data"
    with pytest.raises(ValueError, match="seq_len"):
        from_text(text, seq_len=len(text))


def test_gym_sizes_from_spaces() -> None:
    car = from_gym("MountainCar-v0")  # no vector entry point, 3 actions, 2 observations
    assert (car.input_shape, car.n_outputs, car.threshold, car.name) == ((2,), 3, -110.0, "MountainCar-v0")
    genome = car.random_genome(np.random.default_rng(0), car.space)
    returns, steps = car.rollout(genome, 2, seed=5)
    assert returns.shape == (2,) and np.all(returns == -200.0) and steps == 400  # a random policy never gets up
    assert np.array_equal(car.rollout(genome, 2, seed=5)[0], returns)
    assert from_gym("Acrobot-v1", threshold=-300).threshold == -300.0
    assert make_task("cartpole").threshold == 475.0 and make_task("cartpole").name == "cartpole"


def test_box_actions_are_squashed_into_bounds() -> None:
    pendulum = from_gym("Pendulum-v1")
    assert (pendulum.input_shape, pendulum.n_outputs, pendulum.threshold) == ((3,), 1, None)
    actions = pendulum.act(np.array([[-50.0], [0.0], [50.0]]))
    assert actions.shape == (3, 1) and np.allclose(actions[:, 0], [-2.0, 0.0, 2.0])
    returns, _ = rollout(lambda obs: obs[:, :1] * 0.0, 2, 1, env_id="Pendulum-v1", act=pendulum.act)
    assert returns.shape == (2,) and np.all(returns < 0)
    assert not pendulum.is_candidate({"return": 1e9})  # no threshold: never solved
    assert np.array_equal(ActionMap(True)(np.array([[0.0, 2.0, 1.0]])), [1])


@pytest.mark.parametrize(
    ("env_id", "named"),
    [("NoSuchEnv-v0", "not in gymnasium's registry"), ("os:Evil-v0", "would import a module"),
     ("FrozenLake-v1", "observation space")],
)
def test_unusable_environment_refused(env_id: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        from_gym(env_id)


def test_factory_only_when_named() -> None:
    with pytest.raises(ValueError, match="--factory _own_tasks:mountain_car"):
        make_task("_own_tasks:mountain_car")
    register_factory("_own_tasks:mountain_car")
    assert make_task("_own_tasks:mountain_car").env_id == "MountainCar-v0"
    for bad, named in (("no_such_module:f", "ModuleNotFoundError"), ("_own_tasks:nothing", "AttributeError"),
                       ("os.path", "expected 'package.module:function'")):
        with pytest.raises(ValueError, match=named):
            register_factory(bad)


def test_fail_fast_when_generation_zero_fails_alike(tmp_path: Path) -> None:
    register_factory("_own_tasks:wrong_input")
    cfg = SearchConfig.from_dict({"task": "_own_tasks:wrong_input", "population": 3, "offspring": 3,
                                  "generations": 2, "objectives": {"return": 1.0, "params": -1.0},
                                  "evaluation": {"episodes": 1, "timeout": 60}})
    outcome = complete(Search(cfg, tmp_path / "run"))
    assert outcome.status == "all_failed" and outcome.exit_code == 1
    assert "all 3 candidates of generation 0 failed with ValueError" in (outcome.error or "")
    search = Search.resume(tmp_path / "run")
    assert search.store.get_meta("failed_fast") and search.store.latest_checkpoint() is None
    again = complete(search)  # evaluated again (the cause could have been fixed), fails again
    assert again.status == "all_failed"
    with Search.resume(tmp_path / "run") as search:
        assert search.store.count_evaluations(0, failed=True) == 3


def test_regression_from_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1
    task = from_arrays(x, y, regression=True)
    assert (task.family, task.input_shape, task.n_outputs) == ("vector", (4,), 1)
    assert task.data().y_train.shape == (96, 1) and task.default_max_val_error is None
    spec = task.recipe(tmp_path)
    assert spec["task"] == "arrays_regression" and "n_classes" not in spec["task_options"]
    assert make_task(spec["task"], **spec["task_options"]).n_outputs == 1
    with pytest.raises(ValueError, match="y_train"):
        from_arrays(x, np.array(["a"] * 120), regression=True)
    run = evokeras.search(from_arrays(x, np.stack([y, -y], axis=1), regression=True), tmp_path / "run", config={
        "population": 2, "offspring": 1, "generations": 1, "final_members": 1, "final_epochs": 2,
        "evaluation": {"epochs": 2, "train_samples": None, "val_samples": None, "time_repeats": 1}})
    member = run.front[0]
    assert set(member["objectives"]) == {"val_loss", "exec_time"} and member["test_mae"] >= 0
    assert run.load_model().output_shape == (None, 2)


class _Batches:
    """A ``keras.utils.PyDataset`` of (images, labels) batches, the last one short."""

    def __new__(cls, x: np.ndarray, y: np.ndarray, batch: int):
        import keras

        class Images(keras.utils.PyDataset):
            def __len__(self) -> int:
                return -(-len(x) // batch)

            def __getitem__(self, i: int):
                return x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]

        return Images()


def test_tasks_from_datasets_equal_those_from_arrays(tmp_path: Path) -> None:
    """A PyDataset, a batched tf.data pipeline and a list of batches give the task the
    arrays give (same split, same recipe file); a search runs on it."""
    x, y = _images(90)
    xv, yv = _images(20)
    expected = from_arrays(x, y, validation_data=(xv, yv), split_seed=1)
    given = [from_arrays(_Batches(x, y, 16), validation_data=[(xv[:7], yv[:7]), (xv[7:], yv[7:])], split_seed=1)]
    tf = pytest.importorskip("tensorflow")
    given.append(from_arrays(tf.data.Dataset.from_tensor_slices((x, y)).batch(32),
                             validation_data=tf.data.Dataset.from_tensor_slices((xv, yv)).batch(8), split_seed=1))
    for task in given:
        a, b = expected.data(), task.data()
        for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            assert np.array_equal(getattr(a, part), getattr(b, part)), part
        assert task.input_shape == (12, 20, 3) and task.n_outputs == 7
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert given[0].recipe(tmp_path / "a")["task_options"]["sha256"] == expected.recipe(tmp_path / "b")["task_options"]["sha256"]
    run = evokeras.search(from_arrays(_Batches(x, y, 16)), tmp_path / "run", config={
        "population": 2, "offspring": 1, "generations": 1, "max_val_error": 1.0, "final_members": 1,
        "final_epochs": 1, "evaluation": {"epochs": 1, "train_samples": 40, "val_samples": 9, "time_repeats": 1}})
    assert run.models and run.front[0]["status"] == "ok"


@pytest.mark.parametrize(("dataset", "match"), [
    (np.zeros((4, 3)), "an .x, y. pair of arrays.*got ndarray"),
    ([], "empty"),
    ([(np.zeros((4, 3)), np.zeros(3))], "batch 0 has inputs"),
    ([(np.zeros((4, 3)), np.zeros(4)), (np.zeros((4, 5)), np.zeros(4))], "batch 1 has inputs"),
    ([({"a": np.zeros(3)}, np.zeros(3))], "dict inputs"),
    ([np.zeros(3)], "batch 0 is not an"),
])
def test_bad_datasets_are_named(dataset, match: str) -> None:
    with pytest.raises(ValueError, match=f"^x: .*{match}"):
        from_arrays(dataset)


def test_infinite_datasets_are_refused() -> None:
    tf = pytest.importorskip("tensorflow")
    x, y = _images(8)
    with pytest.raises(ValueError, match="^validation_data: an infinite tf.data.Dataset"):
        from_arrays(x, y, validation_data=tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat())
