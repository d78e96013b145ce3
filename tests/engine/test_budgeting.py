"""The time budget (:mod:`evokeras.engine.budgeting`): parsing, the derived keys at each
data size, capping sample counts at what the data holds."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import evokeras
from evokeras.engine.budgeting import (
    data_sizes,
    fit_to_data,
    parse_time_budget,
    time_budget_config,
    wants_time_budget,
    with_time_budget,
)
from evokeras.engine.config import ConfigError, SearchConfig


@pytest.mark.parametrize(("text", "seconds"), [("15min", 900), ("15m", 900), ("90s", 90), ("1.5h", 5400),
                                                (" 2 hours ", 7200), (120, 120), ("300", 300)])
def test_time_budgets_read_as_seconds(text: str | int, seconds: float) -> None:
    assert parse_time_budget(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "15 parsecs", "30s", 0, "-5m", True])
def test_unreadable_or_tiny_time_budgets_name_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match="time_budget"):
        parse_time_budget(bad)  # type: ignore[arg-type]


def _vectors(n: int, seed: int = 0) -> evokeras.tasks.Task:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return evokeras.from_arrays(rng.normal(size=(n, 8)).astype(np.float32) + y[:, None], y)


@pytest.mark.parametrize(("n", "seconds"), [(500, 120), (500, 3600), (60_000, 900), (60_000, 4 * 3600)])
def test_the_derived_budget_fits_the_time_and_the_data(n: int, seconds: float) -> None:
    task = _vectors(n)
    n_train, n_val = data_sizes(task)  # type: ignore[misc]
    derived = time_budget_config(seconds, task)
    s, e, f = derived["strategy"], derived["evaluation"], derived["final"]
    assert s["name"] == "lineage" and e["inherit_weights"] and s["population"] == s["offspring"]
    assert e["train_samples"] <= min(n_train, 20_000) and e["val_samples"] <= n_val
    # the search and the final models end within the budget, with the last generation planned in
    generation = s["offspring"] * e["seconds"] * 1.3
    assert s["wall_seconds"] + 0.75 * generation + f["members"] * f["seconds"] <= seconds
    assert f["train_samples"] is None and f["seconds"] > 0
    longer = time_budget_config(seconds * 4, task)
    assert longer["strategy"]["wall_seconds"] > s["wall_seconds"] and longer["final"]["members"] >= f["members"]
    assert SearchConfig.from_dict({**derived, "task": "arrays"}).strategy.wall_seconds == s["wall_seconds"]
    if n < 20_000:  # small data: several epochs per evaluation, stopped early
        assert e["epochs"] > 1 and e["patience"] > 0


def test_data_that_cannot_be_loaded_is_a_config_error() -> None:
    class Broken(type(_vectors(50))):  # type: ignore[misc]
        def data(self, **limits: int | None) -> None:
            raise ValueError("no rows")

    task = _vectors(50)
    task.__class__ = Broken
    with pytest.raises(ConfigError, match="'task': its data: no rows"):
        fit_to_data(SearchConfig.from_dict({"task": "arrays"}), task)


def test_a_control_task_gets_the_wall_clock_only() -> None:
    derived = time_budget_config(600, evokeras.from_gym("CartPole-v1"))
    assert set(derived) == {"strategy"} and 0 < derived["strategy"]["wall_seconds"] < 600


def test_keys_the_user_gives_win_over_the_derived_ones() -> None:
    data = {"task": "arrays", "strategy": {"population": 3}, "evaluation": {"seconds": 5}}
    merged = with_time_budget(data, "10min", _vectors(500))
    assert merged["strategy"]["population"] == 3 and merged["strategy"]["name"] == "lineage"
    assert merged["evaluation"]["seconds"] == 5 and merged["evaluation"]["inherit_weights"]


@pytest.mark.parametrize(("config", "wants"), [({}, True), ({"objectives": {"val_error": -1}}, True),
                                               ({"space": {"max_layers": 3}}, True), ({"strategy": {}}, False),
                                               ({"final": {"members": 1}}, False), ({"generations": 2}, False)])
def test_a_configuration_without_budget_sections_gets_the_time_budget(config: dict, wants: bool) -> None:
    assert wants_time_budget(config) is wants


def test_sample_counts_are_capped_at_what_the_data_holds(caplog: pytest.LogCaptureFixture) -> None:
    task = _vectors(800)
    n_train, n_val = data_sizes(task)  # type: ignore[misc]
    cfg = SearchConfig.from_dict({"task": "arrays", "evaluation": {"train_samples": 10_000, "val_samples": 2_000},
                                  "final": {"train_samples": 50_000}})
    with caplog.at_level(logging.INFO, logger="evokeras.engine.budgeting"):
        fitted = fit_to_data(cfg, task)
    assert fitted.evaluation.train_samples == n_train and fitted.evaluation.val_samples == n_val
    assert fitted.final.train_samples == n_train + n_val  # a final model trains on both
    capped = [r.getMessage() for r in caplog.records if "capped" in r.getMessage()]
    assert len(capped) == 3 and any("evaluation.val_samples=2000" in m for m in capped)
    small = SearchConfig.from_dict({"task": "arrays", "evaluation": {"train_samples": 100, "val_samples": 10}})
    assert fit_to_data(small, task) == small  # nothing to cap: unchanged


def test_a_study_budget_beyond_a_built_in_data_set_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    """MNIST's 55,000 training images: a budget asking for 60,000 trains on all of them."""
    pytest.importorskip("pureml")
    cfg = SearchConfig.from_dict({"task": "mnist", "evaluation": {"train_samples": 60_000, "val_samples": 500}})
    task = cfg.build_task(cfg.make_task())
    with caplog.at_level(logging.INFO, logger="evokeras.engine.budgeting"):
        fitted = fit_to_data(cfg, task)
    assert fitted.evaluation.train_samples == 55_000 and fitted.evaluation.val_samples == 500
    assert [r.getMessage() for r in caplog.records] == [
        "evaluation.train_samples=60000 capped to the 55000 examples available"]
