"""Test helpers: a cheap analytic evaluator and small search configurations.

:class:`FakeEvaluator` stands in for :class:`evokeras.training.evaluator.Evaluator` in search
tests: it trains nothing and never imports Keras. Its objectives are deterministic
functions of the genome (from :meth:`SearchSpace.analyze`), with a real trade-off
(bigger networks have a lower "validation error" and more FLOPs), so NSGA-II has a
non-trivial front to find.

The tests import this module after putting ``tests/`` on ``sys.path``; a subprocess
does the same (see :data:`TESTS_DIR`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from evokeras.engine.config import SearchConfig
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace
from evokeras.tasks import make_task
from evokeras.training.records import EvalResult, worst_values

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

#: The search-space overrides of the MNIST smoke budget (small genomes).
SMALL_SPACE = {"max_params": 50_000, "max_layers": 6, "init_layers": [2, 4]}


class FakeCrash(BaseException):
    """Raised by a :class:`FakeEvaluator` to simulate a crash of the search process.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that no ``except Exception``
    in the library can swallow it as a candidate failure.
    """


class KeyMod:
    """A picklable predicate ``key -> bool`` true for about one key in ``n``
    (by the key's hexadecimal value), for :class:`FakeEvaluator`'s ``fail_if``."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __call__(self, key: str) -> bool:
        return int(key, 16) % self.n == 0


class FakeEvaluator:
    """A picklable, deterministic ``genome -> EvalResult`` without training.

    Objectives (any of ``val_error``, ``val_loss``, ``exec_time``, ``params``,
    ``flops``, in the order of ``objectives``):

    * ``params``/``flops`` -- from ``space.analyze(genome)``;
    * ``val_error`` -- ``1 / (1 + log(params))`` plus a small learning-rate and
      batch-size term (so that genomes of equal size differ);
    * ``val_loss`` -- ``2 * val_error``; ``exec_time`` -- ``flops * 1e-12 + 1e-7``.

    Args:
        space: the search space bound to the task shapes (``task.space``).
        objectives: ``{name: weight}`` as in :class:`~evokeras.engine.config.SearchConfig`.
        fail_if: ``key -> bool``; matching genomes get status ``failed`` and the worst values.
        crash_after: after this many calls, the next call crashes (see ``crash``).
        crash: ``"raise"`` (raise :class:`FakeCrash`) or ``"exit"`` (``os._exit(3)``).
        delay: seconds to sleep in every call (to make a subprocess killable mid-run).

    Attributes:
        calls: the keys of the genomes evaluated, in order.
    """

    def __init__(
        self,
        space: SearchSpace,
        objectives: Mapping[str, float],
        *,
        fail_if: Callable[[str], bool] | None = None,
        crash_after: int | None = None,
        crash: str = "raise",
        delay: float = 0.0,
    ) -> None:
        self.space = space
        self.objectives = dict(objectives)
        self.fail_if = fail_if
        self.crash_after = crash_after
        self.crash = crash
        self.delay = float(delay)
        self.calls: list[str] = []

    @property
    def objective_names(self) -> tuple[str, ...]:
        return tuple(self.objectives)

    def metrics(self, genome: Genome) -> dict[str, Any]:
        a = self.space.analyze(genome)
        t = genome.training
        val_error = 1.0 / (1.0 + math.log(a.params)) + 1e-3 * abs(math.log10(t.learning_rate) + 3.0)
        val_error += 1e-5 * t.batch_size
        return {
            "params": int(a.params),
            "flops": int(a.flops),
            "val_error": val_error,
            "val_accuracy": 1.0 - val_error,
            "val_loss": 2.0 * val_error,
            "exec_time": a.flops * 1e-12 + 1e-7,
            "epochs": 1,
        }

    def __call__(self, genome: Genome) -> EvalResult:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            if self.crash == "exit":
                os._exit(3)
            raise FakeCrash(f"simulated crash after {len(self.calls)} evaluations")
        genome = genome.as_genome()
        self.calls.append(genome.key)
        if self.delay:
            time.sleep(self.delay)
        names = self.objective_names
        try:
            self.space.check(genome)
        except ValueError as exc:
            return EvalResult(genome.key, genome.to_dict(), "failed", worst_values(list(self.objectives.values())),
                              names, error=f"invalid genome: {exc}")
        if self.fail_if is not None and self.fail_if(genome.key):
            return EvalResult(genome.key, genome.to_dict(), "failed", worst_values(list(self.objectives.values())),
                              names, error="FakeFailure: simulated candidate failure")
        metrics = self.metrics(genome)
        return EvalResult(
            key=genome.key,
            genome=genome.to_dict(),
            status="ok",
            objectives=tuple(float(metrics[n]) for n in names),
            objective_names=names,
            metrics=metrics,
            times={"build": 0.0, "fit": 0.0, "evaluate": 0.0, "total": self.delay},
        )


def small_config(**overrides: Any) -> SearchConfig:
    """A small MNIST search configuration (objectives val_error and flops)."""
    data: dict[str, Any] = {
        "task": "mnist",
        "population": 6,
        "offspring": 6,
        "generations": 4,
        "objectives": {"val_error": -1.0, "flops": -1.0},
        "space": dict(SMALL_SPACE),
        "seed": 0,
    }
    data.update(overrides)
    return SearchConfig.from_dict(data)


def fake_for(config: SearchConfig, **kwargs: Any) -> FakeEvaluator:
    """A :class:`FakeEvaluator` for the task and space of ``config``."""
    base = make_task(config.task)
    task = make_task(config.task, space=config.search_space(base))
    return FakeEvaluator(task.space, config.objectives, **kwargs)


def _brown_installed() -> bool:
    from evokeras.data import DatasetNotFoundError, find_brown

    try:
        find_brown()
    except DatasetNotFoundError:
        return False
    return True


#: Skip a test when the Brown corpus is not installed.
needs_brown = pytest.mark.skipif(
    not _brown_installed(),
    reason="Brown corpus absent (scripts/install_brown.sh installs it into ~/nltk_data)",
)
