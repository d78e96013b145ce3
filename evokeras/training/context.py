"""What a task may use while it scores one candidate: :class:`ScoreContext`.

The evaluator builds one context per evaluation and calls ``task.score(genome, ctx)``;
the task returns its figures and never sees the evaluator (as an Optuna objective gets a
trial, not the study). The context gives the data at the budget's sizes, the budget, the
evaluation's seed, a clock with named sections, Keras callbacks that enforce the budget,
inference timing, and the trained-weight cache of weight inheritance.

A final model (:meth:`evokeras.tasks.Task.final_model`) gets a :class:`FinalContext`:
the final training settings and the same inference timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evokeras.training.inheritance import WeightCache
from evokeras.training.records import Budget
from evokeras.training.stock import budget_callbacks, time_inference

__all__ = ["FinalContext", "ScoreContext"]


@dataclass
class ScoreContext:
    """One evaluation's view of the evaluator.

    Attributes:
        budget: the evaluation budget (already scaled for a low-fidelity evaluation).
        seed: this evaluation's seed (the run seed mixed with the genome key).
        run_seed: the run's seed (e.g. to derive episode seeds the whole run shares).
        objectives: the names of the run's objectives.
        parent: the key of the genome's parent (weight inheritance), or ``None``.
        seed_key: the key whose episode seeds this evaluation shares (common random
            numbers: an antithetic pair of strategy ``"es"`` and its centre), or ``None``:
            the genome's own key.
        fast: train with the fast path where the task allows it (:class:`TrainSettings`).
        fidelity: the fraction of the full budget (1.0, or less while screening).
        start: ``time.perf_counter()`` when the candidate's work began, after the previous
            models were freed and the data loaded (the budget's clocks start here).
        times: seconds per named section (:meth:`timed`), read by the evaluator.
        notes: figures measured before a failure (:meth:`note`), kept in a failed record.
    """

    budget: Budget
    seed: int
    run_seed: int
    objectives: tuple[str, ...]
    data_fn: Callable[[], Any]
    parent: str | None = None
    seed_key: str | None = None
    weights: WeightCache | None = None
    fast: bool = False
    fidelity: float = 1.0
    start: float = field(default_factory=time.perf_counter)
    times: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def note(self, **figures: Any) -> None:
        """Keep ``figures`` (e.g. the parameter count) for the record even if the
        candidate fails later; :meth:`evokeras.tasks.Task.score` still returns all of them."""
        self.notes.update(figures)

    def data(self) -> Any:
        """The task's split at the budget's sizes (a :class:`evokeras.data.Split`; cached);
        with inheritance the whole training split (:meth:`train_window` takes this
        evaluation's examples from it)."""
        return self.data_fn()

    @contextmanager
    def timed(self, section: str) -> Iterator[None]:
        """Add the seconds spent in the ``with`` block to ``times[section]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[section] = self.times.get(section, 0.0) + time.perf_counter() - t0

    @property
    def wants_exec_time(self) -> bool:
        """Whether inference time is measured (an objective, or ``time_repeats > 0``)."""
        return "exec_time" in self.objectives or self.budget.time_repeats > 0

    def callbacks(self, *, early_stopping: bool = True, learning_rate: float | None = None,
                  steps: int | None = None) -> list[Any]:
        """Keras callbacks enforcing the budget for a ``fit`` of this evaluation; given the
        genome's ``learning_rate``, an annealed budget's timed schedule
        (:func:`~evokeras.training.stock.budget_callbacks`)."""
        return budget_callbacks(self.budget, self.start, early_stopping=early_stopping,
                                learning_rate=learning_rate, steps=steps)

    def time_inference(self, model: Any, x: np.ndarray) -> float:
        """Median seconds per sample of ``model`` at the budget's timing batch."""
        return time_inference(model, x, self.budget.time_batch, self.budget.time_repeats)

    def inherit(self, model: Any, *, genome: Any = None, stem_channels: int | None = None) -> dict[str, Any]:
        """Start ``model`` from the parent's cached trained weights (through the morphism
        from the parent's genome to ``genome`` where both are known); the figures to record
        (empty when inheritance is off)."""
        if self.weights is None:
            return {}
        return self.weights.inherit(model, self.parent, genome=genome, stem_channels=stem_channels)

    def lineage(self) -> dict[str, float]:
        """The ``steps`` and ``seconds`` of training the parent's weights have had along
        their lineage (zeros without inheritance or a parent)."""
        return self.weights.lineage(self.parent) if self.weights is not None else {"steps": 0.0, "seconds": 0.0}

    def train_window(self, x: Any, y: Any) -> tuple[Any, Any]:
        """The training examples of this evaluation: with inheritance, a window of
        ``budget.train_samples`` drawn from the whole training split by this evaluation's
        seed (a lineage sees new examples at each step); else ``x``, ``y`` as loaded."""
        n = self.budget.train_samples
        if self.weights is None or n is None or n >= len(x):
            return x, y
        index = np.random.default_rng(self.seed).choice(len(x), size=n, replace=False)
        return x[index], y[index]

    def save_weights(self, model: Any, key: str, *, genome: Any = None, steps: float = 0.0,
                     seconds: float = 0.0) -> None:
        """Cache ``model``'s trained weights for its children, with its genome and the
        lineage's training (no-op when inheritance is off)."""
        if self.weights is not None:
            self.weights.save(model, key, genome=genome, steps=steps, seconds=seconds)


@dataclass(frozen=True)
class FinalContext:
    """The settings of a front member's final model.

    Attributes:
        epochs: training epochs on train + validation.
        train_samples: examples of train + validation used (``None``: all).
        seed: the final model's seed.
        run_seed: the run's seed.
        time_batch, time_repeats: how inference is timed.
        schedule: the learning-rate schedule of the final training: ``"cosine"`` (decay
            to 0 over the epochs) or ``"constant"``.
        augment: light augmentation of the training examples, redrawn each epoch
            (images: the largest random shift in pixels; 0: none).
        seconds: train for this many seconds (the learning rate warmed up and decayed
            over them, :func:`~evokeras.training.stock.timed_schedule`) instead of by
            epochs; ``None``: by epochs.
        weights: the search's trained weights of this member (a
            :class:`~evokeras.training.inheritance.WeightCache` and its key) to continue
            from; ``None``: train from scratch.
    """

    epochs: int
    train_samples: int | None
    seed: int
    run_seed: int
    time_batch: int = 256
    time_repeats: int = 5
    schedule: str = "cosine"
    augment: int = 0
    seconds: float | None = None
    weights: tuple[WeightCache, str] | None = None

    def start(self, model: Any) -> dict[str, Any]:
        """Set ``model`` from the search's trained weights of this member, if any; the
        figures to record: ``final_start`` (``"search"`` or ``"scratch"``) and, from the
        search, ``search_steps`` and ``search_seconds`` (its lineage's training)."""
        if self.weights is None:
            return {"final_start": "scratch"}
        cache, key = self.weights
        if cache.inherit(model, key).get("inherited_layers", 0) == 0:
            return {"final_start": "scratch"}
        lineage = cache.lineage(key)
        return {"final_start": "search", "search_steps": lineage["steps"], "search_seconds": lineage["seconds"]}

    def time_inference(self, model: Any, x: np.ndarray) -> float:
        """Median seconds per sample of ``model`` (:func:`~evokeras.training.stock.time_inference`)."""
        return time_inference(model, x, self.time_batch, self.time_repeats)
