"""Search strategies on the engine's seam (:mod:`evokeras.engine.strategies`), with the
analytic evaluator (no training): NSGA-II reproduces the 0.10 search loop exactly; the
asynchronous steady-state strategy passes the engine's contract (failures recorded,
wall clock, callbacks, resume after ``kill -9``); the worked example of
``docs/architecture.md`` runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fakes import REPO_ROOT, TESTS_DIR, KeyMod, fake_for, small_config  # noqa: E402

from evokeras.engine.callbacks import Callback  # noqa: E402
from evokeras.engine.config import ConfigError  # noqa: E402
from evokeras.engine.search import Search  # noqa: E402
from evokeras.engine.store import RunStore  # noqa: E402
from evokeras.engine.strategies import STRATEGIES, Strategy  # noqa: E402
from evokeras.results.plotting import nondominated  # noqa: E402

GOLDEN = TESTS_DIR / "data" / "nsga2_golden.json"
STEADY = {"name": "steady_state"}


def _load_golden_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("nsga2_golden", TESTS_DIR / "data" / "nsga2_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scenario", ["seed0", "seed1", "constrained", "failures"])
def test_nsga2_reproduces_the_0_10_search_loop(tmp_path: Path, scenario: str) -> None:
    """Every generation's population and front, and the order of evaluations, are those
    evokeras 0.10 (the loop before strategies) wrote (``tests/data/nsga2_golden.json``)."""
    golden = json.loads(GOLDEN.read_text())[scenario]
    module = _load_golden_module()
    overrides, options = module.SCENARIOS[scenario]
    got = module.record(scenario, overrides, options, tmp_path)
    assert got["calls"] == golden["calls"]
    assert got["front"] == golden["front"]
    assert got["generations"] == golden["generations"]


def _steady(tmp: Path, name: str = "run", *, fake_options: dict | None = None, **overrides):
    cfg = small_config(strategy=STEADY, **overrides)
    fake = fake_for(cfg, **(fake_options or {}))
    search = Search(cfg, tmp / name, evaluate=fake)
    return search, search._run(), fake


def _rows(out: Path) -> dict[str, tuple]:
    with RunStore(out / "run.db", create=False) as store:
        return {r.key: (r.status, r.objectives) for _, r in store.evaluations()}


def test_steady_state_asks_the_whole_budget_and_checkpoints_each_generation(tmp_path: Path) -> None:
    search, result, fake = _steady(tmp_path)
    s = search.config.strategy
    assert search.config.strategy.name == "steady_state" and search.strategy.asynchronous
    assert result.stopped_by == "generations" and result.generations_done == s.generations
    assert [r["gen"] for r in search.store.generations()] == list(range(s.generations + 1))
    # every candidate asked was evaluated once or told its stored result
    assert len(fake.calls) == len(set(fake.calls)) == result.evaluations
    assert search.told <= s.population + s.generations * s.offspring
    assert search.told >= s.population + (s.generations - 1) * s.offspring
    checkpoint = search.store.latest_checkpoint()
    assert checkpoint["strategy"] == "steady_state" and checkpoint["gen"] == s.generations
    assert len(checkpoint["state"]["population"]) == s.population
    # the front is exactly the non-dominated set of every successful evaluation of the run
    weights = np.array(search.weights)
    rows = {k: v for k, v in _rows(search.out_dir).items() if v[0] == "ok"}
    keys = list(rows)
    points = np.array([rows[k][1] for k in keys]) * -np.sign(weights)
    expected = sorted(k for k, keep in zip(keys, nondominated(points), strict=True) if keep)
    assert expected and sorted(ind.key for ind in result.front) == expected
    search.close()


def test_steady_state_records_failed_candidates_and_keeps_them_out_of_the_front(tmp_path: Path) -> None:
    search, result, fake = _steady(tmp_path, fake_options={"fail_if": KeyMod(3)})
    rows = _rows(search.out_dir)
    failed = {k for k, (status, _) in rows.items() if status == "failed"}
    assert failed, "no candidate failed: the test checks nothing"
    assert not failed & {ind.key for ind in result.front}
    assert sum(r["nfailed"] for r in search.store.generations()) == len(failed)
    search.close()


def test_steady_state_wall_clock_limit_holds(tmp_path: Path) -> None:
    """50 generations of 0.05-second evaluations would take 15 s; the limit stops asking
    after 1 s and only the candidate in flight finishes."""
    search, result, fake = _steady(tmp_path, fake_options={"delay": 0.05}, generations=50, wall_seconds=1.0)
    assert result.stopped_by == "wall_seconds"
    assert result.wall_seconds < 1.0 + 2.0
    assert len(fake.calls) < 6 + 50 * 6
    assert search.store.latest_checkpoint()["told"] == search.told  # the part generation is checkpointed
    search.close()


class _Counting(Callback):
    def __init__(self) -> None:
        self.calls: dict[str, int] = {"begin": 0, "evaluation": 0, "generation": 0, "end": 0}

    def on_search_begin(self, search) -> None:
        self.calls["begin"] += 1

    def on_evaluation(self, result, generation) -> None:
        self.calls["evaluation"] += 1

    def on_generation(self, record, front) -> None:
        self.calls["generation"] += 1

    def on_search_end(self, result) -> None:
        self.calls["end"] += 1


@pytest.mark.parametrize("name", ["nsga2", "steady_state"])
def test_callbacks_run_with_either_strategy(tmp_path: Path, name: str) -> None:
    cfg = small_config(strategy={"name": name})
    counting = _Counting()
    with Search(cfg, tmp_path / name, evaluate=fake_for(cfg), callbacks=[counting]) as search:
        search._run()
        assert counting.calls["begin"] == counting.calls["end"] == 1
        assert counting.calls["evaluation"] == search.store.count_evaluations()
        assert counting.calls["generation"] == len(search.store.generations()) == cfg.strategy.generations + 1


def test_steady_state_with_two_process_workers(tmp_path: Path) -> None:
    cfg = small_config(strategy=STEADY, parallel={"workers": 2, "backend": "process"})
    with Search(cfg, tmp_path / "p2", evaluate=fake_for(cfg, delay=0.02)) as search:
        result = search._run()
        assert result.stopped_by == "generations"
        assert search.told >= cfg.strategy.population + (cfg.strategy.generations - 1) * cfg.strategy.offspring
        assert result.front


_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from _fakes import fake_for, small_config
from evokeras.engine.search import Search

cfg = small_config(strategy={{"name": "steady_state"}})
Search(cfg, {out!r}, evaluate=fake_for(cfg, delay=0.05))._run()
print("finished")
"""


def test_steady_state_resume_after_kill_9_gives_the_same_front(tmp_path: Path) -> None:
    ref, ref_result, _ = _steady(tmp_path, "ref")
    ref_front = sorted(ind.key for ind in ref_result.front)
    ref_rows = _rows(ref.out_dir)
    ref.close()
    out = tmp_path / "killed"
    script = textwrap.dedent(_CHILD).format(tests=str(TESTS_DIR), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # kill it in the middle of generation 2
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child made no progress"
            if (out / "run.db").is_file():
                try:
                    with RunStore(out / "run.db", readonly=True) as store:
                        if store.count_evaluations() >= 6 + 6 + 2:
                            break
                except Exception:  # noqa: BLE001 - the file may be half made
                    pass
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(_rows(out)) < len(ref_rows), "the child was not killed mid-run"
    cfg = small_config(strategy=STEADY)
    fresh = fake_for(cfg)
    done = set(_rows(out))
    with Search.resume(out, evaluate=fresh) as resumed:
        result = resumed._run()
    assert not set(fresh.calls) & done, "evaluations already in the store were redone"
    assert sorted(ind.key for ind in result.front) == ref_front
    assert _rows(out) == ref_rows


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="strategy.name"):
        small_config(strategy={"name": "simulated_annealing"})


def _worked_example() -> str:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = text.split("### A search strategy", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_worked_example_strategy_of_the_architecture_doc_runs(tmp_path: Path) -> None:
    code = _worked_example()
    assert len(code.splitlines()) < 100
    namespace: dict = {}
    exec(compile(code, "docs/architecture.md", "exec"), namespace)  # noqa: S102 - our own document
    cls = namespace["RandomSearch"]
    try:
        assert issubclass(cls, Strategy) and STRATEGIES[cls.name] is cls
        cfg = small_config(strategy={"name": cls.name})
        with Search(cfg, tmp_path / "random", evaluate=fake_for(cfg)) as search:
            result = search._run()
            assert result.stopped_by == "generations" and result.front
            assert search.store.count_evaluations() > cfg.strategy.population
        with Search.resume(tmp_path / "random", evaluate=fake_for(cfg)) as again:
            assert again._run().front  # the strategy's state round-trips
    finally:
        STRATEGIES.pop(cls.name, None)


def test_successive_halving_needs_a_generational_strategy() -> None:
    with pytest.raises(ConfigError, match="evaluation.multi_fidelity"):
        small_config(strategy=STEADY, evaluation={"multi_fidelity": {"eta": 3}})


#: The first generation of ``python studies/mnist.py --budget default --seed 0`` as
#: evokeras 0.10.0 drew it (the reference architectures, then random networks).
MAIN_JOB_GEN0_0_10 = ["bc09f45b4b7d6639", "f628103389297615", "97f5b1bfb5dcae07", "f0f554d685d8307d",
                      "7f201e97b8d5cd3e", "3246caa9ade8e845", "03f8f3f1474a468e", "8d32643dfb47cc16",
                      "ea6f1df978976737", "7976be1da3972113", "8a38e578a9df007c", "572795e54669828e"]


def test_the_main_jobs_first_generation_is_that_of_0_10(tmp_path: Path) -> None:
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.parallel import serial_map
    from evokeras.studies.mnist import BUDGETS

    cfg = SearchConfig.from_dict({**BUDGETS["default"], "seed": 0})
    with Search(cfg, tmp_path / "main", map_fn=serial_map) as search:
        assert [ind.key for ind in search.strategy.ask(cfg.strategy.population)] == MAIN_JOB_GEN0_0_10
