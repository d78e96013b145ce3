"""The resolved configuration of a search, checked key by key.

A study's budget preset (``smoke``/``default``/``full``) is a dictionary overlaid on
:class:`SearchConfig` defaults; a user's overrides (``--config FILE.json``) are
overlaid on that. Unknown keys and wrong types raise :class:`ConfigError` naming the
key, before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evokeras.data.files import DataChangedError
from evokeras.engine.parallel import BACKENDS
from evokeras.tasks import Task, make_task, registered_tasks
from evokeras.training.records import (
    DEFAULT_OBJECTIVES,
    FINAL_RUNG_DEFAULTS,
    LEGACY_BUDGET_KEYS,
    MULTI_FIDELITY_DEFAULTS,
    Budget,
    TrainSettings,
)

__all__ = ["ConfigError", "SearchConfig"]


class ConfigError(ValueError):
    """A configuration key is unknown or has a wrong value; the message names it."""


def _check_finite(where: str, value: Any) -> None:
    """No NaN or infinity anywhere in a key's value (``wall_seconds: NaN`` would mean no limit)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {where!r}: expected a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_finite(f"{where}.{k}", v)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_finite(f"{where}[{i}]", v)


def _check_type(key: str, value: Any, kind: str) -> None:
    _check_finite(key, value)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "dict": isinstance(value, Mapping),
        "optnum": value is None or (isinstance(value, int | float) and not isinstance(value, bool)),
        "optstr": value is None or isinstance(value, str),
        "optint": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        "optdict": value is None or isinstance(value, Mapping),
    }[kind]
    if not ok:
        raise ConfigError(f"config key {key!r}: expected {kind}, got {type(value).__name__} {value!r}")


def _migrate(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Configurations of run directories before 0.4 kept ``fast`` and ``deterministic`` in
    ``evaluation``: move them to their top-level keys (a top-level key given too wins)."""
    evaluation = data.get("evaluation")
    if not isinstance(evaluation, Mapping) or not set(evaluation) & set(LEGACY_BUDGET_KEYS):
        return data
    moved = {new: evaluation[old] for old, new in LEGACY_BUDGET_KEYS.items() if old in evaluation}
    rest = {k: v for k, v in evaluation.items() if k not in LEGACY_BUDGET_KEYS}
    return {**moved, **data, "evaluation": rest}


@dataclass(frozen=True)
class SearchConfig:
    """Everything that determines a search run.

    Attributes:
        study: the study name (for labels and the default run directory).
        task: registered task name.
        budget_name: ``smoke``, ``default``, ``full`` or ``custom``.
        seed: the one seed all randomness derives from.
        population: mu, the population kept by NSGA-II.
        offspring: lambda, offspring per generation.
        generations: generations after the initial one.
        cxpb, mutpb: probabilities that an offspring comes from crossover / mutation
            (else it is a copy of a parent).
        wall_seconds: stop at the end of the generation that passes this (``None``: no limit).
        objectives: ``{name: weight}``; weight < 0 minimises.
        evaluation: :class:`~evokeras.training.records.Budget` fields.
        space: :class:`~evokeras.genomes.space.SearchSpace` options overriding the task default.
        final_epochs: epochs of the final retraining of front members on train + validation.
        final_train_samples: training examples of that retraining (``None``: all).
        final_seconds: train each final model for this many seconds instead of by
            epochs (``final_epochs`` is then a cap): the learning rate warms up and
            decays over them (:func:`evokeras.training.stock.timed_schedule`), whatever
            ``final_schedule`` says; ``None``: by epochs.
        workers: evaluations run at once (1: in this process).
        backend: ``serial``, ``process`` or ``dask`` (``None``: ``process`` when
            ``workers > 1``, else ``serial``); see :mod:`evokeras.engine.parallel`.
        scheduler: address of a running Dask scheduler (``tcp://HOST:PORT``); implies
            ``dask``. ``None`` with ``dask`` starts a local cluster of ``workers``.
        recycle_after: process workers (backend ``process``) are replaced by fresh
            processes after this many evaluations each (``None``: never): TensorFlow
            keeps the graphs of every model a process has trained, so a long-lived
            worker's memory and clean-up time grow with each candidate. Results do not
            change.
        reference_architectures: the first generation starts from the task's hand-designed
            architectures (:meth:`evokeras.tasks.Task.reference_genomes`), the rest random.
        max_val_error: the largest validation error a front member may have (constrained
            domination: candidates above it rank behind every one below it and never enter
            the front; they stay in the run store). ``None``: the task's default
            (classification: half the error of guessing); ``1`` switches it off.
        final_members: finish at most this many front members (spread along the front:
            the most accurate, the fastest and evenly between); ``None``: all.
        final_augment: light augmentation in the final training, redrawn each epoch
            (image tasks: random shifts of up to this many pixels); ``None``: the task's
            default (:attr:`evokeras.tasks.Task.default_final_augment`: 2 on images, else 0).
        final_schedule: the final training's learning rate: ``"cosine"`` (decays to 0)
            or ``"constant"`` (tasks that retrain their members; specialization and
            CartPole finish members without it).
        fast_path: train with :func:`evokeras.training.fast.fit_fast` where the task allows it.
        deterministic: ask the backend for deterministic ops (TensorFlow): slower, exact.
        inherit_weights: a child starts from its parent's trained weights where layers
            are unchanged (same position, same shapes); weights are cached in
            ``DIR/weights/<key>.npz`` (see :class:`evokeras.training.inheritance.WeightCache`).
        task_options: keyword arguments of the task's constructor (e.g. the base model
            and target task of ``"specialize"``; see :func:`evokeras.specialize`).
        multi_fidelity: ``None`` (off) or ``{"eta": 3, "fraction": 0.25}``: successive
            halving inside each generation after the first -- every new offspring is
            first trained with ``fraction`` of the budget, the best ``1/eta`` of them
            (NSGA-II ranking among these comparable low-fidelity figures) with the full
            budget; the others are recorded with status ``pruned`` and the worst values,
            so they rank behind every fully evaluated individual and never enter the front.
        final_rung: ``None`` (off) or ``{"candidates": 4, "factor": 4}``: a last rung
            after the generations -- the ``candidates`` most accurate candidates of the
            whole run (by the first objective, within ``max_val_error``) are evaluated
            again with ``factor`` times the evaluation budget (stored as
            ``<key>@<factor>``), and the final models are chosen from the Pareto front of
            these longer evaluations instead of the search's front. Short evaluations
            favour what learns fastest; the rung lets what keeps learning win (language
            models: :mod:`evokeras.studies.char_lm`).
    """

    study: str = "custom"
    task: str = "mnist"
    budget_name: str = "custom"
    seed: int = 0
    population: int = 8
    offspring: int = 8
    generations: int = 3
    cxpb: float = 0.3
    mutpb: float = 0.6
    wall_seconds: float | None = None
    objectives: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OBJECTIVES))
    evaluation: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    final_epochs: int = 3
    final_train_samples: int | None = None
    final_seconds: float | None = None
    workers: int = 1
    backend: str | None = None
    scheduler: str | None = None
    recycle_after: int | None = 20
    inherit_weights: bool = False
    fast_path: bool = False
    deterministic: bool = True
    reference_architectures: bool = False
    max_val_error: float | None = None
    final_members: int | None = None
    final_schedule: str = "cosine"
    final_augment: int | None = None
    multi_fidelity: dict[str, Any] | None = None
    final_rung: dict[str, Any] | None = None
    task_options: dict[str, Any] = field(default_factory=dict)

    _TYPES = {
        "study": "str", "task": "str", "budget_name": "str", "seed": "int", "population": "int",
        "offspring": "int", "generations": "int", "cxpb": "num", "mutpb": "num",
        "wall_seconds": "optnum", "objectives": "dict", "evaluation": "dict", "space": "dict",
        "final_epochs": "int", "final_train_samples": "optint", "final_seconds": "optnum",
        "workers": "int", "backend": "optstr", "scheduler": "optstr", "recycle_after": "optint",
        "inherit_weights": "bool", "fast_path": "bool", "deterministic": "bool",
        "reference_architectures": "bool", "max_val_error": "optnum", "final_members": "optint", "final_schedule": "str", "final_augment": "optint", "multi_fidelity": "optdict", "final_rung": "optdict", "task_options": "dict",
    }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: SearchConfig | None = None) -> SearchConfig:
        """Overlay ``data`` on ``base`` (defaults if ``None``), checking every key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config: expected a JSON object, got {type(data).__name__}")
        values = dataclasses.asdict(base) if base is not None else {}
        data = _migrate(data)
        for key, value in data.items():
            if key not in cls._TYPES:
                raise ConfigError(f"unknown config key {key!r} (known: {sorted(cls._TYPES)})")
            _check_type(key, value, cls._TYPES[key])
            if key in ("evaluation", "space") and key in values:
                value = {**values[key], **value}
            values[key] = value
        config = cls(**values)
        config.check()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def augment(self, task: Any) -> int:
        """The final training's augmentation strength (key ``final_augment``, else the task's default)."""
        return task.default_final_augment if self.final_augment is None else self.final_augment

    def train_settings(self) -> TrainSettings:
        """How candidates are trained (keys ``fast_path``, ``deterministic``)."""
        return TrainSettings(fast=self.fast_path, deterministic=self.deterministic)

    def budget(self) -> Budget:
        try:
            return Budget.from_dict(self.evaluation, where="config key 'evaluation'")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def search_space(self, task: Any) -> Any:
        """The task's search space with this configuration's ``space`` overrides."""
        try:
            return type(task.space).from_dict(self.space, base=task.space)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config key 'space': {exc}") from exc

    def make_task(self) -> Task:
        """The task that ``task`` and ``task_options`` name, as its factory builds it (no
        search space or checks applied: :meth:`build_task`); :class:`ConfigError` naming
        the key (a changed data file: the file)."""
        try:
            return make_task(self.task, **self.task_options)
        except DataChangedError as exc:
            raise ConfigError(str(exc)) from exc
        except (TypeError, ValueError, OSError) as exc:
            key = "task_options" if self.task_options and self.task in registered_tasks() else "task"
            raise ConfigError(f"config key {key!r}: {exc}") from exc

    def with_task_objectives(self, task: Task) -> SearchConfig:
        """This configuration with ``task``'s default objectives (for a configuration that
        names none: the defaults of :class:`SearchConfig` are the image tasks')."""
        return SearchConfig.from_dict({"objectives": dict(task.default_objectives)}, base=self)

    def build_task(self, task: Task | None = None) -> Task:
        """The configured task (``task`` with ``task_options``, or the task object given)
        on its configured search space, built once, after the checks that need it
        (objectives it measures, weight inheritance, multi-fidelity); raises
        :class:`ConfigError` naming the key (a changed data file: the file)."""
        if task is None:
            task = self.make_task()
        if self.space:
            space = self.search_space(task)
            try:
                task = task.with_space(space)
            except ValueError as exc:  # the task rejects the space (e.g. CartPole: no conv genes)
                raise ConfigError(f"config key 'space': {exc}") from exc
        unknown = sorted(set(self.objectives) - set(task.measures))
        if unknown:
            raise ConfigError(
                f"config key 'objectives': {unknown[0]!r} is not measured by task {self.task!r} "
                f"(measured: {list(task.measures)})"
            )
        if self.max_val_error is not None and "val_error" not in task.measures:
            raise ConfigError(f"config key 'max_val_error': task {self.task!r} reports no val_error")
        if self.reference_architectures and not task.reference_genomes():
            raise ConfigError(f"config key 'reference_architectures': task {self.task!r} has no reference architectures")
        if self.final_augment and not task.supports_augment:
            raise ConfigError(f"config key 'final_augment': task {self.task!r} has no augmentation")
        if not task.supports_timed_training:
            if self.final_seconds is not None:
                raise ConfigError(f"config key 'final_seconds': task {self.task!r} does not train its final models by seconds")
            if self.budget().anneal:
                raise ConfigError(f"config key 'evaluation.anneal': task {self.task!r} does not train by seconds")
        if self.inherit_weights and not task.supports_inheritance:
            raise ConfigError(f"config key 'inherit_weights': task {self.task!r} does not train from inherited weights")
        if self.multi_fidelity is not None:
            budget = self.budget()
            fraction = float(self.multi_fidelity.get("fraction", MULTI_FIDELITY_DEFAULTS["fraction"]))
            if task.scaled_budget(budget, fraction) == budget:
                raise ConfigError(f"config key 'multi_fidelity.fraction': {fraction:g} of this evaluation budget "
                                  "is the full budget (nothing to save)")
        if self.final_rung is not None:
            budget = self.budget()
            factor = float(self.final_rung.get("factor", FINAL_RUNG_DEFAULTS["factor"]))
            rung = task.scaled_budget(budget, factor)
            if rung == budget:
                raise ConfigError(f"config key 'final_rung.factor': {factor:g} times this evaluation budget "
                                  "is the same budget (nothing to learn)")
            if rung.anneal and rung.seconds >= rung.timeout:
                raise ConfigError(f"config key 'final_rung.factor': {factor:g} x {budget.seconds:g} s of training "
                                  f"passes evaluation.timeout ({budget.timeout:g} s)")
        return task

    def check_data(self, task: Task) -> None:
        """Raise :class:`ConfigError` (key ``evaluation``) when ``task``'s data cannot give
        the evaluation budget's sizes (loads the data, as the first evaluation would)."""
        if not task.needs_data:
            return
        budget = self.budget()
        try:
            task.data(train_size=budget.train_samples, val_limit=budget.val_samples, test_limit=1)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"config key 'evaluation': {exc}") from exc

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid key (the checks that need
        the task are in :meth:`build_task`)."""
        for key, kind in self._TYPES.items():
            _check_type(key, getattr(self, key), kind)
        if self.seed < 0:
            raise ConfigError(f"config key 'seed': must be >= 0, got {self.seed}")
        if self.population < 2:
            raise ConfigError(f"config key 'population': must be >= 2, got {self.population}")
        if self.offspring < 1:
            raise ConfigError(f"config key 'offspring': must be >= 1, got {self.offspring}")
        if self.generations < 0:
            raise ConfigError(f"config key 'generations': must be >= 0, got {self.generations}")
        if not (0 <= self.cxpb and 0 <= self.mutpb and self.cxpb + self.mutpb <= 1):
            raise ConfigError(f"config keys 'cxpb'/'mutpb': need cxpb, mutpb >= 0 and cxpb + mutpb <= 1, got {self.cxpb}, {self.mutpb}")
        if self.final_epochs < 1:
            raise ConfigError(f"config key 'final_epochs': must be >= 1, got {self.final_epochs}")
        if self.final_train_samples is not None and self.final_train_samples < 1:
            raise ConfigError(f"config key 'final_train_samples': must be >= 1 or null, got {self.final_train_samples}")
        if self.max_val_error is not None and not 0 < self.max_val_error <= 1:
            raise ConfigError(f"config key 'max_val_error': must be in (0, 1] or null, got {self.max_val_error}")
        if self.final_seconds is not None and not self.final_seconds > 0:
            raise ConfigError(f"config key 'final_seconds': must be > 0 or null, got {self.final_seconds}")
        if self.final_members is not None and self.final_members < 1:
            raise ConfigError(f"config key 'final_members': must be >= 1 or null, got {self.final_members}")
        if self.final_augment is not None and self.final_augment < 0:
            raise ConfigError(f"config key 'final_augment': must be >= 0 or null, got {self.final_augment}")
        if self.final_schedule not in ("cosine", "constant"):
            raise ConfigError(f"config key 'final_schedule': expected 'cosine' or 'constant', got {self.final_schedule!r}")
        if self.wall_seconds is not None and self.wall_seconds <= 0:
            raise ConfigError(f"config key 'wall_seconds': must be > 0 or null, got {self.wall_seconds}")
        if self.recycle_after is not None and self.recycle_after < 1:
            raise ConfigError(f"config key 'recycle_after': must be >= 1 or null, got {self.recycle_after}")
        if self.workers < 1:
            raise ConfigError(f"config key 'workers': must be >= 1, got {self.workers}")
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(f"config key 'backend': expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "serial" and self.workers > 1:
            raise ConfigError(f"config key 'backend': 'serial' runs one evaluation at a time, got workers={self.workers}")
        if self.scheduler is not None:
            if "://" not in self.scheduler:
                raise ConfigError(f"config key 'scheduler': expected an address like tcp://HOST:PORT, got {self.scheduler!r}")
            if self.backend not in (None, "dask"):
                raise ConfigError(f"config key 'scheduler': a scheduler address needs backend 'dask', got {self.backend!r}")
        if self.multi_fidelity is not None:
            mf = dict(self.multi_fidelity)
            unknown = sorted(set(mf) - {"eta", "fraction"})
            if unknown:
                raise ConfigError(f"config key 'multi_fidelity': unknown key {unknown[0]!r} (known: eta, fraction)")
            eta, fraction = mf.get("eta", MULTI_FIDELITY_DEFAULTS["eta"]), mf.get("fraction", MULTI_FIDELITY_DEFAULTS["fraction"])
            if not isinstance(eta, int) or isinstance(eta, bool) or eta < 2:
                raise ConfigError(f"config key 'multi_fidelity.eta': expected an integer >= 2, got {eta!r}")
            if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction < 1:
                raise ConfigError(f"config key 'multi_fidelity.fraction': expected a number in (0, 1), got {fraction!r}")
        if self.final_rung is not None:
            rung = dict(self.final_rung)
            unknown = sorted(set(rung) - set(FINAL_RUNG_DEFAULTS))
            if unknown:
                raise ConfigError(f"config key 'final_rung': unknown key {unknown[0]!r} (known: candidates, factor)")
            candidates = rung.get("candidates", FINAL_RUNG_DEFAULTS["candidates"])
            factor = rung.get("factor", FINAL_RUNG_DEFAULTS["factor"])
            if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1:
                raise ConfigError(f"config key 'final_rung.candidates': expected an integer >= 1, got {candidates!r}")
            if not isinstance(factor, int | float) or isinstance(factor, bool) or not 1 < factor < math.inf:
                raise ConfigError(f"config key 'final_rung.factor': expected a number > 1, got {factor!r}")
        if not self.objectives or any(
            not isinstance(w, int | float) or isinstance(w, bool) or w == 0 or not math.isfinite(w)
            for w in self.objectives.values()
        ):
            raise ConfigError(f"config key 'objectives': expected {{name: non-zero weight}}, got {self.objectives!r}")
        self.budget()
        if self.inherit_weights and self.scheduler is not None:
            raise ConfigError("config key 'inherit_weights': needs workers that share the run directory's disk, "
                              "not an external Dask scheduler")
