"""Constrained domination (``max_val_error``), reference architectures in the first
generation, and the spread of finished front members -- on the cheap fake evaluator."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import fake_for, small_config  # noqa: E402

from evokeras.engine.config import ConfigError, SearchConfig  # noqa: E402
from evokeras.engine.final import spread  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402


def test_members_above_max_val_error_never_enter_the_front(tmp_path: Path) -> None:
    probe = small_config()
    errors = sorted(fake_for(probe).metrics(g)["val_error"] for g in probe.build_task().reference_genomes()
                    + [ind.as_genome() for ind in Search(probe, tmp_path / "probe",
                                                         evaluate=fake_for(probe)).toolbox.population(12)])
    limit = errors[len(errors) // 2]  # about half the candidates are over it
    cfg = small_config(max_val_error=limit, generations=3)
    with Search(cfg, tmp_path / "run", evaluate=fake_for(cfg)) as search:
        result = search._run()
        stored = [r for _, r in search.store.evaluations() if r.ok]
    assert result.front and all(fake_for(cfg).metrics(ind)["val_error"] <= limit for ind in result.front)
    assert any(r.metrics["val_error"] > limit for r in stored)  # kept in the store, off the front
    # a resumed search knows which stored candidates are infeasible
    again = Search.resume(tmp_path / "run", evaluate=fake_for(cfg))
    try:
        assert again.standing.violation and all(v > 0 for v in again.standing.violation.values())
    finally:
        again.close()


def test_default_constraint_is_the_tasks() -> None:
    cfg = small_config()
    assert cfg.max_val_error is None and cfg.build_task().default_max_val_error == pytest.approx(0.45)


def test_reference_architectures_start_the_first_generation(tmp_path: Path) -> None:
    cfg = small_config(reference_architectures=True, generations=0)
    refs = cfg.build_task().reference_genomes()
    with Search(cfg, tmp_path / "run", evaluate=fake_for(cfg)) as search:
        first = search.strategy.ask(search.config.strategy.population)
    assert [ind.key for ind in first[: len(refs)]] == [g.key for g in refs]
    assert len(first) == cfg.strategy.population
    plain = small_config(generations=0)
    with Search(plain, tmp_path / "plain", evaluate=fake_for(plain)) as search:
        assert not {ind.key for ind in search.strategy.ask(search.config.strategy.population)} & {g.key for g in refs}


def test_spread_keeps_both_ends() -> None:
    assert spread(10, None) is None and spread(3, 5) is None
    assert spread(10, 4) == {0, 3, 6, 9} and spread(7, 1) == {0} and spread(5, 2) == {0, 4}


@pytest.mark.parametrize(("key", "value", "path"), [("max_val_error", 0, "max_val_error"),
                                                    ("max_val_error", 1.5, "max_val_error"),
                                                    ("final_members", 0, "final.members"),
                                                    ("final_schedule", "linear", "final.schedule"),
                                                    ("final_augment", -1, "final.augment")])
def test_new_keys_are_checked(key: str, value: object, path: str) -> None:
    with pytest.raises(ConfigError, match=f"config key '{path}'"):
        small_config(**{key: value})


def test_final_augment_defaults_to_the_tasks_and_is_refused_where_unsupported() -> None:
    cfg = small_config()
    assert cfg.final.augment is None and cfg.augment(cfg.build_task()) == 2
    assert small_config(final_augment=0).augment(cfg.build_task()) == 0
    cart = SearchConfig.from_dict({"task": "cartpole", "objectives": {"return": 1.0, "params": -1.0}})
    assert cart.augment(cart.build_task()) == 0
    with pytest.raises(ConfigError, match=r"final\.augment"):
        SearchConfig.from_dict({"task": "cartpole", "objectives": {"return": 1.0, "params": -1.0},
                                "final_augment": 1}).build_task()
