"""The resolved configuration of a search, in sections, checked key by key.

A configuration has 12 top-level keys: ``study``, ``task``, ``task_options``,
``budget_name``, ``seed``, ``objectives``, ``max_val_error`` and the sections
``strategy`` (:class:`StrategyConfig`), ``evaluation`` (:class:`EvaluationConfig`),
``final`` (:class:`FinalConfig`), ``parallel`` (:class:`ParallelConfig`) and ``space``
(the task's search-space options, checked by :meth:`SearchConfig.build_task`).

A study's budget preset (``smoke``/``default``/``full``) is a dictionary overlaid on
:class:`SearchConfig` defaults; a user's overrides (``--config FILE.json``) are overlaid
on that, section by section, key by key. Every field is declared once, with its type and
bounds (:mod:`evokeras.engine.fields`): unknown keys and wrong values raise
:class:`ConfigError` naming the full key path (``strategy.population``) before anything
is written, and :func:`config_schema` is the same declaration as JSON Schema
(``docs/config.schema.json``). The flat keys of earlier versions (``population``,
``final_epochs``, ``workers``, ...) are still accepted: :func:`migrate` moves them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from evokeras.data.files import DataChangedError
from evokeras.engine.fields import Checked, ConfigError, check, check_keys, schema_of
from evokeras.engine.parallel import BACKENDS
from evokeras.engine.strategies import STRATEGIES
from evokeras.engine.strategies.es import ES_DEFAULTS
from evokeras.tasks import SupervisedTask, Task, make_task, registered_tasks
from evokeras.training.records import DEFAULT_OBJECTIVES, Budget, TrainSettings

__all__ = [
    "FINAL_RUNG_DEFAULTS", "FLAT_KEYS", "LEGACY_BUDGET_KEYS", "LEGACY_RESUME_DEFAULTS", "MULTI_FIDELITY_DEFAULTS",
    "SECTIONS", "ConfigError", "ESSettings", "EvaluationConfig", "FinalConfig", "FinalRung", "MultiFidelity",
    "ParallelConfig", "SearchConfig", "StrategyConfig", "config_schema", "load_stored", "migrate", "overlay",
]

# -- sections ------------------------------------------------------------------------------
def _probabilities(s: StrategyConfig) -> tuple[str, str] | None:
    if s.cxpb + s.mutpb > 1:
        return "cxpb", f"cxpb + mutpb must be <= 1, got {s.cxpb} + {s.mutpb}"
    return None


def _es_settings_need_es(s: StrategyConfig) -> tuple[str, str] | None:
    if s.es is not None and s.name != "es":
        return "es", f"these settings are read by strategy 'es' only, not by {s.name!r}"
    return None


@dataclass(frozen=True)
class ESSettings(Checked):
    """The weight ES's settings (config key ``strategy.es``;
    :mod:`evokeras.engine.strategies.es`).

    Attributes:
        sigma: the standard deviation of the antithetic weight perturbations.
        learning_rate: Adam's step size for the mean of the weights.
        weight_decay: the pull of the mean toward zero per step.
        architecture_share: the share of each generation that is NSGA-II's children
            (architecture and weights varied by the task's operators); the rest are
            antithetic pairs around the centre.
        flat_generations: after this many generations in a row whose returns are all the
            same, the ES restarts from a new random genome.
        novelty: break ties between equal returns by novelty (the task's ``behaviour``
            metric against an archive of behaviours seen).
    """

    KEY: ClassVar[str] = "strategy.es"

    sigma: float = field(default=ES_DEFAULTS["sigma"], metadata={"exclusiveMinimum": 0})
    learning_rate: float = field(default=ES_DEFAULTS["learning_rate"], metadata={"exclusiveMinimum": 0})
    weight_decay: float = field(default=ES_DEFAULTS["weight_decay"], metadata={"minimum": 0})
    architecture_share: float = field(default=ES_DEFAULTS["architecture_share"], metadata={"minimum": 0, "maximum": 1})
    flat_generations: int = field(default=ES_DEFAULTS["flat_generations"], metadata={"minimum": 1})
    novelty: bool = ES_DEFAULTS["novelty"]


@dataclass(frozen=True)
class StrategyConfig(Checked):
    """How candidates are searched for (config key ``strategy``).

    Attributes:
        name: the search strategy: ``"nsga2"`` (generations of NSGA-II, mu + lambda),
            ``"steady_state"`` (a new candidate whenever a worker is free), ``"lineage"``
            (NSGA-II whose children continue their parents' training; needs
            ``evaluation.inherit_weights``: :mod:`evokeras.engine.strategies.lineage`),
            ``"es"`` (OpenAI-ES on the weights genomes carry, for control tasks:
            :mod:`evokeras.engine.strategies.es`) or one
            registered with :func:`evokeras.engine.strategies.register_strategy`.
        population: mu, the population kept.
        offspring: lambda, offspring per generation.
        generations: generations after the initial one.
        cxpb, mutpb: probabilities that an offspring comes from crossover / mutation
            (else it is a copy of a parent; with ``"lineage"``, a promotion).
        reference_architectures: the first generation starts from the task's hand-designed
            architectures (:meth:`evokeras.tasks.Task.reference_genomes`), the rest random.
        wall_seconds: stop at the end of the generation that passes this (an asynchronous
            strategy: ask no more candidates once it passed; those in flight finish);
            ``None``: no limit.
        es: ``None`` or the settings of strategy ``"es"`` (:class:`ESSettings`); keys not
            given take their defaults.
    """

    KEY: ClassVar[str] = "strategy"
    RULES: ClassVar[tuple] = (_probabilities, _es_settings_need_es)

    # the registry itself: a strategy registered later is a valid name too
    name: str = field(default="nsga2", metadata={"enum": STRATEGIES})
    population: int = field(default=8, metadata={"minimum": 2})
    offspring: int = field(default=8, metadata={"minimum": 1})
    generations: int = field(default=3, metadata={"minimum": 0})
    cxpb: float = field(default=0.3, metadata={"minimum": 0, "maximum": 1})
    mutpb: float = field(default=0.6, metadata={"minimum": 0, "maximum": 1})
    reference_architectures: bool = False
    wall_seconds: float | None = field(default=None, metadata={"exclusiveMinimum": 0})
    es: dict[str, Any] | None = field(default=None, metadata={"shape": ESSettings})


@dataclass(frozen=True)
class MultiFidelity(Checked):
    """Successive halving inside each generation after the first (``evaluation.multi_fidelity``).

    Attributes:
        eta: the best ``1/eta`` of the offspring screened at low fidelity get the full budget.
        fraction: the part of the evaluation budget each new offspring is screened with.
    """

    KEY: ClassVar[str] = "evaluation.multi_fidelity"

    eta: int = field(default=3, metadata={"minimum": 2})
    fraction: float = field(default=0.25, metadata={"exclusiveMinimum": 0, "exclusiveMaximum": 1})


@dataclass(frozen=True)
class FinalRung(Checked):
    """A last rung of longer evaluations after the search (``evaluation.final_rung``).

    Attributes:
        candidates: how many of the run's most accurate candidates are evaluated again.
        factor: how many times the evaluation budget they get.
    """

    KEY: ClassVar[str] = "evaluation.final_rung"

    candidates: int = field(default=4, metadata={"minimum": 1})
    factor: float = field(default=4, metadata={"exclusiveMinimum": 1})


#: ``evaluation.multi_fidelity`` keys not given take these values.
MULTI_FIDELITY_DEFAULTS: dict[str, Any] = dataclasses.asdict(MultiFidelity())
#: ``evaluation.final_rung`` keys not given take these values.
FINAL_RUNG_DEFAULTS: dict[str, Any] = dataclasses.asdict(FinalRung())


@dataclass(frozen=True)
class EvaluationConfig(Budget, Checked):
    """How each candidate is evaluated (config key ``evaluation``): the fields of
    :class:`~evokeras.training.records.Budget` (:meth:`SearchConfig.budget`) and how to train.

    Attributes:
        fast_path: train with :func:`evokeras.training.fast.fit_fast` where the task allows it.
        deterministic: ask the backend for deterministic ops (TensorFlow): slower, exact.
        inherit_weights: a child starts from its parent's trained weights, moved through
            the network morphism between their genomes (:mod:`evokeras.nets.morph`), and
            each evaluation trains on its own window of ``train_samples`` examples drawn
            from the whole training split; weights are cached in ``DIR/weights/<key>.npz``
            (see :class:`evokeras.training.inheritance.WeightCache`) and records keep the
            lineage's training (``lineage_steps``, ``lineage_seconds``).
        multi_fidelity: ``None`` (off) or ``{"eta": 3, "fraction": 0.25}``: successive
            halving inside each generation after the first -- every new offspring is
            first trained with ``fraction`` of the budget, the best ``1/eta`` of them
            (ranked among these comparable low-fidelity figures) with the full budget;
            the others are recorded with status ``pruned`` and the worst values, so they
            rank behind every fully evaluated individual and never enter the front.
            Keys not given take their defaults (the value holds them all).
        final_rung: ``None`` (off) or ``{"candidates": 4, "factor": 4}``: a last rung
            after the search -- the ``candidates`` most accurate candidates of the whole
            run (by the first objective, within ``max_val_error``) are evaluated again
            with ``factor`` times the evaluation budget (stored as ``<key>@<factor>``),
            and the final models are chosen from the Pareto front of these longer
            evaluations. Short evaluations favour what learns fastest; the rung lets what
            keeps learning win. Keys not given take their defaults.
    """

    KEY: ClassVar[str] = "evaluation"

    fast_path: bool = False
    deterministic: bool = True
    inherit_weights: bool = False
    multi_fidelity: dict[str, Any] | None = field(default=None, metadata={"shape": MultiFidelity})
    final_rung: dict[str, Any] | None = field(default=None, metadata={"shape": FinalRung})


@dataclass(frozen=True)
class FinalConfig(Checked):
    """The final training of the front's members (config key ``final``).

    Attributes:
        epochs: epochs of the final retraining of front members on train + validation.
        train_samples: training examples of that retraining (``None``: all).
        seconds: train each final model for this many seconds instead of by epochs
            (``epochs`` is then a cap): the learning rate warms up and decays over them
            (:func:`evokeras.training.stock.timed_schedule`), whatever ``schedule`` says;
            ``None``: by epochs.
        members: finish at most this many front members (spread along the front: the
            most accurate, the fastest and evenly between); ``None``: all.
        schedule: the learning rate: ``"cosine"`` (decays to 0) or ``"constant"`` (tasks
            that retrain their members; specialization and CartPole finish members
            without it).
        augment: light augmentation, redrawn each epoch (image tasks: random shifts of up
            to this many pixels); ``None``: the task's default
            (:attr:`evokeras.tasks.Task.default_final_augment`: 2 on images, else 0).
        from_search: a member's final training continues from the weights the search
            trained (where the run keeps them: ``evaluation.inherit_weights``) instead of
            starting from scratch.
    """

    KEY: ClassVar[str] = "final"

    epochs: int = field(default=3, metadata={"minimum": 1})
    train_samples: int | None = field(default=None, metadata={"minimum": 1})
    seconds: float | None = field(default=None, metadata={"exclusiveMinimum": 0})
    members: int | None = field(default=None, metadata={"minimum": 1})
    schedule: str = field(default="cosine", metadata={"enum": ("cosine", "constant")})
    augment: int | None = field(default=None, metadata={"minimum": 0})
    from_search: bool = True


def _serial_is_one_at_a_time(p: ParallelConfig) -> tuple[str, str] | None:
    if p.backend == "serial" and p.workers > 1:
        return "backend", f"'serial' runs one evaluation at a time, got workers={p.workers}"
    return None


def _scheduler_needs_dask(p: ParallelConfig) -> tuple[str, str] | None:
    if p.scheduler is not None and p.backend not in (None, "dask"):
        return "scheduler", f"a scheduler address needs backend 'dask', got {p.backend!r}"
    return None


@dataclass(frozen=True)
class ParallelConfig(Checked):
    """Where and how many evaluations run at once (config key ``parallel``); results do
    not depend on it, and a run directory never says it (:func:`load_stored`).

    Attributes:
        workers: evaluations run at once (1: in this process).
        backend: ``serial``, ``process`` or ``dask`` (``None``: ``process`` when
            ``workers > 1``, else ``serial``); see :mod:`evokeras.engine.parallel`.
        scheduler: address of a running Dask scheduler (``tcp://HOST:PORT``); implies
            ``dask``. ``None`` with ``dask`` starts a local cluster of ``workers``.
        recycle_after: process workers (backend ``process``) are replaced by fresh
            processes after this many evaluations each (``None``: never): TensorFlow
            keeps the graphs of every model a process has trained, so a long-lived
            worker's memory and clean-up time grow with each candidate.
    """

    KEY: ClassVar[str] = "parallel"
    RULES: ClassVar[tuple] = (_serial_is_one_at_a_time, _scheduler_needs_dask)

    workers: int = field(default=1, metadata={"minimum": 1})
    backend: str | None = field(default=None, metadata={"enum": tuple(BACKENDS)})
    scheduler: str | None = field(default=None, metadata={
        "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://", "expected": "an address like tcp://HOST:PORT"})
    recycle_after: int | None = field(default=20, metadata={"minimum": 1})


def _weighted_objectives(c: SearchConfig) -> tuple[str, str] | None:
    if not c.objectives or 0 in c.objectives.values():
        return "objectives", f"expected {{name: non-zero weight}}, got {c.objectives!r}"
    return None


def _inheritance_needs_a_shared_disk(c: SearchConfig) -> tuple[str, str] | None:
    if c.evaluation.inherit_weights and c.parallel.scheduler is not None:
        return ("evaluation.inherit_weights", "needs workers that share the run directory's disk, "
                "not an external Dask scheduler")
    return None


def _lineage_needs_inheritance(c: SearchConfig) -> tuple[str, str] | None:
    if c.strategy.name == "lineage" and not c.evaluation.inherit_weights:
        return ("strategy.name", "'lineage' continues the parents' training: it needs evaluation.inherit_weights: true")
    return None


def _halving_needs_generations(c: SearchConfig) -> tuple[str, str] | None:
    if c.evaluation.multi_fidelity is not None and c.strategy.name == "es":
        return ("evaluation.multi_fidelity", "strategy 'es' shapes every antithetic pair by its full return; "
                "successive halving would prune half of each pair (use no multi_fidelity)")
    if c.evaluation.multi_fidelity is not None and STRATEGIES[c.strategy.name].asynchronous:
        return ("evaluation.multi_fidelity", f"successive halving ranks a generation; strategy "
                f"{c.strategy.name!r} asks for one candidate at a time (use 'nsga2' or no multi_fidelity)")
    return None


@dataclass(frozen=True)
class SearchConfig(Checked):
    """Everything that determines a search run.

    Attributes:
        study: the study name (for labels and the default run directory).
        task: registered task name.
        task_options: keyword arguments of the task's constructor (e.g. the base model
            and target task of ``"specialize"``; see :func:`evokeras.specialize`).
        budget_name: ``smoke``, ``default``, ``full`` or ``custom``.
        seed: the one seed all randomness derives from.
        objectives: ``{name: weight}``; weight < 0 minimises.
        max_val_error: the largest validation error a front member may have (constrained
            domination: candidates above it rank behind every one below it and never enter
            the front; they stay in the run store). ``None``: the task's default
            (classification: half the error of guessing); ``1`` switches it off.
        strategy: how candidates are searched for (:class:`StrategyConfig`).
        evaluation: how each candidate is evaluated (:class:`EvaluationConfig`).
        final: the final training of the front's members (:class:`FinalConfig`).
        parallel: where evaluations run (:class:`ParallelConfig`).
        space: :class:`~evokeras.genomes.space.SearchSpace` (or
            :class:`~evokeras.genomes.edits.EditSpace`) options overriding the task default.
    """

    RULES: ClassVar[tuple] = (_weighted_objectives, _inheritance_needs_a_shared_disk, _halving_needs_generations,
                              _lineage_needs_inheritance)

    study: str = "custom"
    task: str = "mnist"
    task_options: dict[str, Any] = field(default_factory=dict)
    budget_name: str = "custom"
    seed: int = field(default=0, metadata={"minimum": 0})
    objectives: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OBJECTIVES))
    max_val_error: float | None = field(default=None, metadata={"exclusiveMinimum": 0, "maximum": 1})
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    space: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: SearchConfig | None = None) -> SearchConfig:
        """Overlay ``data`` (flat keys of earlier versions migrated, a ``"$schema"`` key
        ignored) on ``base`` (defaults if ``None``), checking every key: a section is
        merged key by key over the base's section, ``space`` too; any other key replaces."""
        if isinstance(data, Mapping) and "$schema" in data:
            data = {k: v for k, v in data.items() if k != "$schema"}
        data = migrate(data)
        check_keys(cls, data, "", {flat: f"{section}.{name}" for flat, (section, name) in FLAT_KEYS.items()})
        base = base if base is not None else cls()
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key in SECTIONS:
                check_keys(SECTIONS[key], value, key)
                value = dataclasses.replace(values[key], **value)
            elif key == "space" and isinstance(value, Mapping):
                value = {**values[key], **value}
            values[key] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The sectioned dictionary (what a run directory's ``config.json`` stores)."""
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid key (the checks that need
        the task are in :meth:`build_task`); construction has checked already."""
        check(self)

    def augment(self, task: Any) -> int:
        """The final training's augmentation strength (key ``final.augment``, else the task's default)."""
        return task.default_final_augment if self.final.augment is None else self.final.augment

    def train_settings(self) -> TrainSettings:
        """How candidates are trained (keys ``evaluation.fast_path``, ``evaluation.deterministic``)."""
        return TrainSettings(fast=self.evaluation.fast_path, deterministic=self.evaluation.deterministic)

    def budget(self) -> Budget:
        """The budget of one evaluation (the :class:`Budget` fields of ``evaluation``)."""
        return Budget(**{f.name: getattr(self.evaluation, f.name) for f in dataclasses.fields(Budget)})

    def search_space(self, task: Any) -> Any:
        """The task's search space with this configuration's ``space`` overrides."""
        try:
            return type(task.space).from_dict(self.space, base=task.space)
        except (TypeError, ValueError) as exc:
            names = [f.name for f in dataclasses.fields(task.space)] if dataclasses.is_dataclass(task.space) else []
            typo = next((str(k) for k in self.space if k not in names), None) if names else None
            hint = _did_you_mean(typo, names) if typo is not None and repr(typo) in str(exc) else ""
            raise ConfigError(f"config key 'space': {exc}{hint}") from exc

    def make_task(self) -> Task:
        """The task that ``task`` and ``task_options`` name, as its factory builds it (no
        search space or checks applied: :meth:`build_task`); :class:`ConfigError` naming
        the key (a changed data file: the file)."""
        try:
            return make_task(self.task, **self.task_options)
        except DataChangedError as exc:
            raise ConfigError(str(exc)) from exc
        except (TypeError, ValueError, OSError) as exc:
            known = registered_tasks()
            key = "task_options" if self.task_options and self.task in known else "task"
            hint = _did_you_mean(self.task, known) if isinstance(self.task, str) and self.task not in known else ""
            raise ConfigError(f"config key {key!r}: {exc}{hint}") from exc

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
                f"(measured: {list(task.measures)}){_did_you_mean(unknown[0], task.measures)}"
            )
        if self.max_val_error is not None and task.error_measure not in task.measures:
            raise ConfigError(f"config key 'max_val_error': task {self.task!r} reports no validation error "
                              f"({task.error_measure or 'none declared'})")
        if self.strategy.name == "es" and not hasattr(task, "weight_vector"):
            raise ConfigError(f"config key 'strategy.name': 'es' evolves the weights genomes carry; task {self.task!r} "
                              "trains its weights (use 'nsga2' or 'lineage')")
        if self.strategy.reference_architectures and not task.reference_genomes():
            raise ConfigError(f"config key 'strategy.reference_architectures': task {self.task!r} has no reference architectures")
        if self.final.augment and not (isinstance(task, SupervisedTask) and task.augment is not None):
            raise ConfigError(f"config key 'final.augment': task {self.task!r} has no augmentation")
        if not isinstance(task, SupervisedTask):  # it trains its own way, not by the keys of a supervised training
            if self.final.seconds is not None:
                raise ConfigError(f"config key 'final.seconds': task {self.task!r} does not train its final models by seconds")
            if self.budget().anneal:
                raise ConfigError(f"config key 'evaluation.anneal': task {self.task!r} does not train by seconds")
            if self.evaluation.inherit_weights:
                raise ConfigError(f"config key 'evaluation.inherit_weights': task {self.task!r} does not train from inherited weights")
        if self.evaluation.multi_fidelity is not None:
            budget = self.budget()
            fraction = float(self.evaluation.multi_fidelity["fraction"])
            if task.scaled_budget(budget, fraction) == budget:
                raise ConfigError(f"config key 'evaluation.multi_fidelity.fraction': {fraction:g} of this evaluation budget "
                                  "is the full budget (nothing to save)")
        if self.evaluation.final_rung is not None:
            budget = self.budget()
            factor = float(self.evaluation.final_rung["factor"])
            rung = task.scaled_budget(budget, factor)
            if rung == budget:
                raise ConfigError(f"config key 'evaluation.final_rung.factor': {factor:g} times this evaluation budget "
                                  "is the same budget (nothing to learn)")
            if rung.anneal and rung.seconds >= rung.timeout:
                raise ConfigError(f"config key 'evaluation.final_rung.factor': {factor:g} x {budget.seconds:g} s of training "
                                  f"passes evaluation.timeout ({budget.timeout:g} s)")
        return task


def _did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the choice closest to ``word`` (a typo), else ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


#: The sections: key -> class.
SECTIONS: dict[str, type] = {"strategy": StrategyConfig, "evaluation": EvaluationConfig, "final": FinalConfig,
                             "parallel": ParallelConfig}


# -- migration -----------------------------------------------------------------------------
#: The flat top-level keys of configurations before 0.11 -> (section, key) they moved to.
FLAT_KEYS: dict[str, tuple[str, str]] = {
    **{k: ("strategy", k) for k in ("population", "offspring", "generations", "cxpb", "mutpb",
                                    "reference_architectures", "wall_seconds")},
    **{k: ("evaluation", k) for k in ("fast_path", "deterministic", "inherit_weights", "multi_fidelity", "final_rung")},
    **{f"final_{k}": ("final", k) for k in ("epochs", "train_samples", "seconds", "members", "schedule", "augment")},
    **{k: ("parallel", k) for k in ("workers", "backend", "scheduler", "recycle_after")},
}

#: Keys that run directories up to 0.3.0 kept in ``evaluation`` under other names -> the
#: ``evaluation`` keys they are now (their ``evaluation.deterministic`` is the key of today).
LEGACY_BUDGET_KEYS: dict[str, str] = {"fast": "fast_path"}

#: What a stored configuration (a run directory's) that lacks these keys gets instead of
#: today's defaults: runs written before they existed (0.3) keep the behaviour they
#: started with -- no constraint on the front, a constant final learning rate, no augmentation.
LEGACY_RESUME_DEFAULTS: dict[str, Any] = {"max_val_error": 1.0,
                                          "final": {"schedule": "constant", "augment": 0, "from_search": False}}


def migrate(data: Mapping[str, Any], *, stored: bool = False) -> dict[str, Any]:
    """``data`` in today's sectioned shape: flat keys of earlier versions (:data:`FLAT_KEYS`)
    moved into their sections, ``evaluation.fast`` (:data:`LEGACY_BUDGET_KEYS`) renamed.
    A key given in both forms is refused (:class:`ConfigError` naming both: the one
    would silently hide the other); a legacy ``evaluation`` name gives way to today's.
    ``stored``: ``data`` is a run directory's configuration, which gets
    :data:`LEGACY_RESUME_DEFAULTS` where it lacks those keys (and a ``gym`` task without
    ``normalize`` in its options, from before 0.15, ``normalize: false``). Nothing is checked here but
    that ``data`` is an object; :meth:`SearchConfig.from_dict` checks the rest."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a JSON object, got {type(data).__name__}")
    out = {k: v for k, v in data.items() if k not in FLAT_KEYS}
    for section in SECTIONS:
        given = out.get(section, {})
        if not isinstance(given, Mapping):
            continue  # from_dict names the key
        moved = {name: data[flat] for flat, (where, name) in FLAT_KEYS.items() if where == section and flat in data}
        twice = sorted(set(moved) & set(given))
        if twice:
            flat = next(f for f, (where, name) in FLAT_KEYS.items() if where == section and name == twice[0])
            raise ConfigError(f"config key '{section}.{twice[0]}' is given twice: as {flat!r} (the form before 0.11) "
                              "and in its section; keep one")
        if section == "evaluation":
            legacy = {new: given[old] for old, new in LEGACY_BUDGET_KEYS.items() if old in given}
            given = {k: v for k, v in given.items() if k not in LEGACY_BUDGET_KEYS}
            moved = {**legacy, **given, **moved}
        else:
            moved = {**given, **moved}
        if moved or section in out:
            out[section] = moved
    if stored:
        for key, value in LEGACY_RESUME_DEFAULTS.items():
            if not isinstance(value, Mapping):
                out.setdefault(key, value)
            elif isinstance(out.get(key, {}), Mapping):
                out[key] = {**value, **out.get(key, {})}
        options = out.get("task_options")
        if out.get("task") == "gym" and isinstance(options, Mapping) and "normalize" not in options:
            out["task_options"] = {**options, "normalize": False}  # control runs before 0.15 read raw observations
    return out


def overlay(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base`` as :meth:`SearchConfig.from_dict` overlays a configuration on
    its base: both migrated, each section (and ``space``) merged key by key, every other
    key replaced (an ``evokeras run`` file's budget over the file's other keys)."""
    base, top = migrate(base), migrate(top)
    merged = {**base, **top}
    for key in (*SECTIONS, "space"):
        if isinstance(base.get(key), Mapping) and isinstance(top.get(key), Mapping):
            merged[key] = {**base[key], **top[key]}
    return merged


def load_stored(data: Mapping[str, Any]) -> SearchConfig:
    """The configuration a run directory stores (its ``config.json``'s ``"config"``
    object, of any version): migrated with ``stored=True``; ``parallel.backend`` and
    ``parallel.scheduler`` reset to ``None`` -- a run directory is data, never
    instructions: where to evaluate (a Dask scheduler runs code in this process through
    the results it sends) comes from the caller only. :class:`ConfigError` when invalid."""
    migrated = migrate(data, stored=True)
    parallel = migrated.get("parallel", {})
    if isinstance(parallel, Mapping):
        migrated["parallel"] = {**parallel, "backend": None, "scheduler": None}
    return SearchConfig.from_dict(migrated)


# -- JSON Schema ---------------------------------------------------------------------------
def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a configuration file, from the same declarations
    as the checks (``docs/config.schema.json`` is this; a test keeps it up to date).
    Besides the configuration's keys it allows ``"$schema"`` and, for ``evokeras run``,
    ``"budgets"``: named presets of keys overlaid on the file's."""
    schema = schema_of(SearchConfig)
    schema["properties"] = {
        "$schema": {"type": "string", "description": "the JSON Schema of this file (ignored by evokeras)"},
        **schema["properties"],
        "budgets": {"type": "object", "additionalProperties": {"$ref": "#"},
                    "description": "`evokeras run` only: budget name -> keys overlaid on the file's (--budget picks one)"},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "evokeras search configuration", **schema}
