"""The task classes: the contract between a task and the engine, and the helpers that
implement most of it.

* :class:`Task` -- the contract the engine needs: the genome type (its search space and
  operators), :meth:`~Task.score`, the declared measures and objectives, the final model,
  and a few hooks with defaults (the recipe that rebuilds the task, reference genomes,
  verification, figures). Subclass it for a task that evolves another genome type or
  scores in its own way (:class:`~evokeras.tasks.specialize.Specialization` evolves edit
  programs).
* :class:`NetworkTask` -- a task whose genomes are evokeras networks
  (:class:`~evokeras.genomes.network.Genome` on a
  :class:`~evokeras.genomes.space.SearchSpace`), decoded into Keras models: input shape,
  stem, head, the network operators. Control tasks
  (:class:`~evokeras.tasks.control.GymControl`) build on it: their weights evolve.
* :class:`SupervisedTask` -- a network task trained with Keras on a fixed
  train/validation/test split: loss, metrics, data, the default :meth:`~SupervisedTask.score`
  (``fit`` under the budget, weight inheritance, timed training), augmentation, and the
  final model trained on train + validation and scored once on the test split.
  :class:`Classification` is one with a softmax head.

The engine asks for a capability through the type (a supervised task's training honours
``evaluation.inherit_weights``, ``final.seconds`` and ``evaluation.anneal``) or through one member
(:attr:`SupervisedTask.augment`, :meth:`Task.builds_keras_models`, :meth:`Task.data`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evokeras._io import atomic_path
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace, default_space
from evokeras.nets.decode import build_optimizer, decode
from evokeras.training.context import FinalContext, ScoreContext
from evokeras.training.fast import evaluate_fast, fit_fast
from evokeras.training.records import DEFAULT_OBJECTIVES, EVAL_BATCH, Budget, NonFiniteError
from evokeras.training.stock import timed_schedule
from evokeras.variation.network import crossover, mutate, random_genome

__all__ = ["Classification", "NetworkTask", "SupervisedTask", "Task", "accuracy_figures", "finish_trained_model"]


class Task(ABC):
    """What the engine needs of a task.

    A task declares its :attr:`name`, the figures its :meth:`score` reports that may be
    objectives (:attr:`measures`) and its :attr:`default_objectives`; it owns its search
    :attr:`space` and the operators of its genome type (:meth:`random_genome`,
    :meth:`mutate`, :meth:`crossover`, :meth:`genome_from_dict`); it scores one genome
    (:meth:`score`) and finishes a front member (:meth:`final_model`). Everything else
    has a default.

    Args:
        space: the search space of the task's genomes (passed to the operators).
    """

    #: The task's name in reports and messages.
    name: str = "task"
    #: The figures :meth:`score` reports that may be objectives (config key ``objectives``).
    measures: tuple[str, ...] = ()
    #: The measure the ``max_val_error`` constraint reads (a validation error in [0, 1]:
    #: the lower the better); ``None``: the task reports none, and the constraint is off.
    error_measure: str | None = "val_error"
    #: The objectives of a search on this task when none are configured.
    default_objectives: dict[str, float] = {}
    #: The direction (+1 maximise, -1 minimise) of measures that are not minimised by
    #: default (e.g. CartPole's ``return``): an objective named without a weight gets it.
    objective_directions: dict[str, float] = {}
    #: The :attr:`~evokeras.training.context.FinalContext.augment` strength the final
    #: stage passes when the configuration sets none (config key ``final.augment``; 0: none).
    default_final_augment: int = 0

    def __init__(self, *, space: Any) -> None:
        self.space = self._bind(space)

    def _bind(self, space: Any) -> Any:
        """``space`` fitted to this task (e.g. its shapes); a task that allows only some
        spaces raises :class:`ValueError` here. The default keeps it as it is."""
        return space

    def with_space(self, space: Any) -> Task:
        """This task on another search space (bound to the task); the task is not rebuilt
        (its data and options are kept)."""
        new = copy.copy(self)
        new.space = new._bind(space)
        return new

    # -- the genome type (the toolbox's individual/mutate/mate and checkpoints call these)
    @abstractmethod
    def random_genome(self, rng: np.random.Generator, space: Any) -> Any:
        """A random genome of ``space``."""

    @abstractmethod
    def mutate(self, genome: Any, rng: np.random.Generator, space: Any, **kwargs: Any) -> Any:
        """A mutated child of ``genome`` (``kwargs``: the toolbox's mutation weights)."""

    @abstractmethod
    def crossover(self, a: Any, b: Any, rng: np.random.Generator, space: Any) -> tuple[Any, Any]:
        """Two children of ``a`` and ``b``."""

    @abstractmethod
    def genome_from_dict(self, data: Any) -> Any:
        """A genome from its dictionary form (``genome.to_dict()``: checkpoints, records)."""

    # -- evaluation --------------------------------------------------------------------
    @abstractmethod
    def score(self, genome: Any, ctx: ScoreContext) -> dict[str, Any]:
        """Score one candidate; return its figures (every configured objective among them).

        Raise to fail the candidate (:class:`~evokeras.training.records.NonFiniteError`
        for a NaN loss). ``ctx`` gives the data, the budget, the seeds, timing and Keras
        callbacks (:class:`~evokeras.training.context.ScoreContext`)."""

    def data(self, *, train_size: int | None = None, val_limit: int | None = None,
             test_limit: int | None = None) -> Any:
        """The task's fixed split (an :class:`evokeras.data.Split`) with ``train_size``,
        ``val_limit``, ``test_limit`` prefixes; the evaluator loads it once per process,
        before the first candidate's clocks start, and :meth:`score` gets it through
        ``ctx.data()``. ``None`` (the default): the task reads no data set."""
        return None

    def builds_keras_models(self, objectives: Sequence[str]) -> bool:
        """Whether :meth:`score` builds Keras models for these objectives (the evaluator
        then frees the previous candidate's models first, outside its clocks, and seeds
        Keras; otherwise it seeds Python's and NumPy's generators and never imports Keras)."""
        return True

    def scaled_budget(self, budget: Budget, fraction: float) -> Budget:
        """The budget of a ``fraction``-fidelity evaluation (multi-fidelity search, the
        final rung)."""
        return budget.scaled(fraction)

    # -- the search ------------------------------------------------------------------
    def recipe(self, out_dir: Any) -> dict[str, Any] | None:
        """How a new process rebuilds this task: the configuration keys ``{"task": name,
        "task_options": {...}}`` that :func:`~evokeras.tasks.registry.make_task` turns back
        into an equal task, or ``None`` when the run's configuration already names it (the
        registered tasks built from their options). A task built from data in memory writes
        that data into the run directory ``out_dir`` here; a task built from data files
        records their paths and sha256 digests (a rebuild refuses changed files).
        :class:`~evokeras.engine.search.Search` calls it once, when it creates the run."""
        return None

    def reference_genomes(self) -> list[Any]:
        """Hand-designed genomes, valid in :attr:`space`; a search with
        ``strategy.reference_architectures`` starts its first generation from them (none by
        default)."""
        return []

    @property
    def default_max_val_error(self) -> float | None:
        """The largest validation error a front member may have when the configuration
        sets none (``max_val_error``): ``None`` means no constraint."""
        return None

    def is_candidate(self, metrics: dict[str, Any]) -> bool:
        """Whether a front member's search figures make it worth :meth:`verify` -ing
        (never, by default)."""
        return False

    def verify(self, genome: Any, seed: int) -> dict[str, Any]:
        """Check a candidate on data the search never used; ``{"solved": bool, ...}``.
        A search stops early once a member is verified solved (e.g. CartPole's 100
        episodes); tasks without such a criterion never get here (:meth:`is_candidate`)."""
        raise NotImplementedError(f"task {self.name!r} has no verification")

    # -- the final stage -------------------------------------------------------------
    @abstractmethod
    def final_model(self, genome: Any, final: FinalContext, path: Any) -> dict[str, Any]:
        """Finish a front member as the task sees fit (train it, test it once on data the
        search never used) and save its model to ``path``.

        Returns the figures for the hall of fame (``status``, ``test_*`` keys)."""

    def save_plots(self, out_dir: Any, hall_of_fame: dict[str, Any]) -> list[Any]:
        """Task-specific figures of a finished run into ``out_dir``; returns their paths."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class NetworkTask(Task):
    """A task whose genomes are evokeras networks (:class:`~evokeras.genomes.network.Genome`
    on a :class:`~evokeras.genomes.space.SearchSpace`), which
    :func:`~evokeras.nets.decode.decode` turns into Keras models: ``stem`` -> the genome's
    genes -> ``head``.

    Subclasses set :attr:`family`, :attr:`input_shape`, :attr:`n_outputs` and implement
    :meth:`head` (and :meth:`stem` as needed). A task whose stem changes the shape (an
    Embedding of token ids) also sets :attr:`stem_params` and overrides :attr:`stem_shape`;
    one that predicts every time step (a language model) sets :attr:`sequence_output`.

    Args:
        space: a search space instead of the default of :attr:`family`; bound to the
            task's shapes.
    """

    #: The default search space: ``"image"``, ``"sequence"`` or ``"vector"``.
    family: str = "image"
    input_shape: tuple[int, ...] = ()
    n_outputs: int = 1
    #: Whether the model keeps the time axis to the head: nothing is reduced, dense
    #: genes and :meth:`head` act on every time step (e.g. next-token prediction).
    sequence_output: bool = False
    #: Parameters of :meth:`stem` (e.g. an Embedding's table), counted by the space.
    stem_params: int = 0

    def __init__(self, *, space: SearchSpace | None = None) -> None:
        super().__init__(space=space if space is not None else default_space(self.family))

    @property
    def stem_shape(self) -> tuple[int, ...]:
        """The shape :meth:`stem` outputs (what the first gene reads), without the batch
        axis: :attr:`input_shape` by default, e.g. ``(T, embedding)`` after an Embedding."""
        return tuple(self.input_shape)

    def _bind(self, space: SearchSpace) -> SearchSpace:
        """``space`` with this task's shapes."""
        return space.replace(
            input_shape=tuple(self.stem_shape),
            n_outputs=int(self.n_outputs),
            sequence_output=bool(self.sequence_output),
            stem_params=int(self.stem_params),
        )

    # -- model pieces (Keras; :class:`~evokeras.nets.decode.ModelSpec`) ----------------
    def stem(self, inputs: Any) -> Any:
        """Map the model input to what the first gene reads (identity by default)."""
        return inputs

    @abstractmethod
    def head(self, x: Any) -> Any:
        """Map the last features (flat, or per time step with :attr:`sequence_output`)
        to the task's output."""

    def loss(self) -> Any:
        """The loss a decoded model is compiled with (none: the task does not ``fit`` it)."""
        return None

    def metrics(self) -> list[Any]:
        """The metrics a decoded model is compiled with."""
        return []

    # -- the genome type -------------------------------------------------------------
    def genome_from_dict(self, data: Any) -> Genome:
        return Genome.from_dict(data)

    def random_genome(self, rng: np.random.Generator, space: SearchSpace) -> Genome:
        """A random genome (:func:`evokeras.variation.network.random_genome`)."""
        return random_genome(rng, space)

    def mutate(self, genome: Genome, rng: np.random.Generator, space: SearchSpace, **kwargs: Any) -> Genome:
        """A mutated child (:func:`evokeras.variation.network.mutate`)."""
        return mutate(genome, rng, space, **kwargs)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator, space: SearchSpace) -> tuple[Genome, Genome]:
        """Two children (:func:`evokeras.variation.network.crossover`)."""
        return crossover(a, b, rng, space)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, n_outputs={self.n_outputs})"


def accuracy_figures(scores: dict[str, float]) -> dict[str, float]:
    """``val_loss``, ``val_accuracy`` and ``val_error`` (1 - accuracy) from ``model.evaluate``'s
    scores."""
    accuracy = float(scores.get("accuracy", float("nan")))
    return {"val_loss": float(scores["loss"]), "val_accuracy": accuracy, "val_error": 1.0 - accuracy}


def finish_trained_model(model: Any, data: Any, final: FinalContext, path: Any, *, fit_seconds: float,
                         val_metrics: Callable[[dict[str, float]], dict[str, float]] = accuracy_figures,
                         tokens_per_sample: int = 1) -> dict[str, Any]:
    """Score a trained final ``model`` once on the test split of ``data`` (figures named by
    ``val_metrics``, ``val_`` becoming ``test_``), time it (per token), save it to ``path``;
    the hall-of-fame figures (``test_*``, ``status``, ``final_fit_seconds``)."""
    scores = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
    if not math.isfinite(scores["loss"]):
        raise FloatingPointError("the final model's test loss is not finite")
    exec_time = final.time_inference(model, data.x_test) / tokens_per_sample
    with atomic_path(path) as tmp:
        model.save(tmp)
    test = {"test_" + k.removeprefix("val_"): v for k, v in val_metrics(scores).items()}
    return {"status": "ok", **test, "test_exec_time": exec_time, "final_fit_seconds": fit_seconds}


class SupervisedTask(NetworkTask):
    """A network task trained with Keras on a fixed train/validation/test split.

    Subclasses implement :meth:`data`, :meth:`head` and :meth:`loss` (:class:`Classification`
    gives the head and loss of a softmax classifier). The inherited :meth:`score` trains
    the decoded model with ``fit`` under the budget -- starting from the parent's weights
    when the search inherits them, by seconds under an annealed budget -- and
    :meth:`final_model` retrains a front member on train + validation (by epochs or
    seconds, optionally augmented) and scores it once on the test split.
    """

    measures: tuple[str, ...] = ("val_error", "val_loss", "exec_time", "params", "flops")
    default_objectives: dict[str, float] = DEFAULT_OBJECTIVES
    #: Tokens per sample: ``exec_time`` is reported per token (language models: the window).
    tokens_per_sample: int = 1
    #: Whether :func:`evokeras.training.fast.fit_fast` can train this task's models (one
    #: per-sample loss, accuracy as its metric); the fast path applies only then.
    fast_trainable: bool = False
    #: ``augment(x, strength, rng)``: training inputs ``x`` lightly changed for one epoch of
    #: final training (the image tasks move each image by up to ``strength`` pixels). A
    #: task with augmentation defines this method (and :attr:`default_final_augment`);
    #: ``None``: none, and the configuration refuses ``final.augment``.
    augment: Callable[[Any, int, np.random.Generator], Any] | None = None

    #: ``(n, x, y, split)`` of :meth:`final_data` (per instance once set).
    _final_cache: tuple[Any, ...] | None = None

    def data(self, *, train_size: int | None = None, val_limit: int | None = None,
             test_limit: int | None = None) -> Any:
        """The task's fixed train/validation/test split (an :class:`evokeras.data.Split`);
        ``train_size``, ``val_limit``, ``test_limit`` take prefixes. Every supervised task
        that trains implements it (a task only decoded into models need not)."""
        raise NotImplementedError(f"task {self.name!r} has no data split (implement {type(self).__name__}.data)")

    @abstractmethod
    def loss(self) -> Any:
        """The training loss (a Keras loss or its name)."""

    def val_metrics(self, scores: dict[str, float]) -> dict[str, float]:
        """Figures from ``model.evaluate``'s validation scores (loss, accuracy -> error)."""
        return accuracy_figures(scores)

    # -- evaluation --------------------------------------------------------------------
    def score(self, genome: Genome, ctx: ScoreContext) -> dict[str, Any]:
        """Train and score one candidate; returns its figures (every measure among them).

        Trains the decoded model with ``fit`` on ``ctx.data()`` (with inheritance, on this
        evaluation's window of it, :meth:`ScoreContext.train_window`) under the budget (early
        stopping on validation loss) -- or with :func:`evokeras.training.fast.fit_fast`
        when ``ctx.fast`` is set and the task is :attr:`fast_trainable` (``train_path``
        says which; an annealed budget, :attr:`~evokeras.training.records.Budget.anneal`,
        trains with ``fit`` and the learning rate warmed up and decayed over its seconds,
        without early stopping) -- starting from the parent's weights where inheritance
        is on, scores the validation split with :meth:`val_metrics` and times inference.
        """
        data = ctx.data()
        with ctx.timed("build"):
            model = decode(genome, self)
            metrics: dict[str, Any] = {"params": int(model.count_params()), "flops": int(self.space.analyze(genome).flops)}
            metrics.update(ctx.inherit(model, genome=genome, stem_channels=int(self.stem_shape[-1])))
            ctx.note(**metrics)
        x_train, y_train = ctx.train_window(data.x_train, data.y_train)
        with ctx.timed("fit"):
            fit_data = data if x_train is data.x_train else dataclasses.replace(data, x_train=x_train, y_train=y_train)
            losses, hist = self._fit(model, genome, fit_data, ctx)
        metrics["train_path"] = "stock" if hist is None else "fast"
        metrics["epochs"] = len(losses)
        # optimizer steps taken (``fit`` may stop inside an epoch at the budget's time limit)
        steps = len(losses) * hist.steps_per_epoch if hist is not None else int(np.asarray(model.optimizer.iterations))
        ctx.note(train_path=metrics["train_path"], epochs=len(losses))
        if not losses or not all(math.isfinite(v) for v in losses):
            raise NonFiniteError("training loss became NaN or infinite")
        with ctx.timed("evaluate"):
            if hist is not None and hist.best_epoch is not None:  # scored inside the last epoch
                scores = {"loss": hist.final_val_loss, "accuracy": hist.final_val_accuracy}
            elif hist is not None:
                loss, accuracy = evaluate_fast(model, data.x_val, data.y_val)
                scores = {"loss": loss, "accuracy": accuracy}
            else:
                scores = model.evaluate(data.x_val, data.y_val, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        if not math.isfinite(scores["loss"]):
            raise NonFiniteError("validation loss is NaN or infinite")
        metrics.update(self.val_metrics(scores))
        if ctx.weights is not None and ctx.fidelity == 1.0:  # the training along this lineage, with this evaluation's
            # (a screening or final-rung evaluation trains the genome anew: its weights are not kept)
            before = ctx.lineage()
            metrics["train_steps"] = steps
            metrics["lineage_steps"] = before["steps"] + steps
            metrics["lineage_seconds"] = before["seconds"] + ctx.times["fit"]
            ctx.save_weights(model, genome.key, genome=genome, steps=metrics["lineage_steps"],
                             seconds=metrics["lineage_seconds"])
        if ctx.wants_exec_time:
            with ctx.timed("timing"):
                metrics["exec_time"] = ctx.time_inference(model, data.x_val) / self.tokens_per_sample
        return metrics

    def _fit(self, model: Any, genome: Genome, data: Any, ctx: ScoreContext) -> tuple[list[float], Any]:
        """Train ``model`` under ``ctx.budget``: the training losses, and the fast path's
        history (``None`` when ``fit`` trained it)."""
        budget = ctx.budget
        batch = genome.training.batch_size
        if ctx.fast and self.fast_trainable and not budget.anneal:
            hist = fit_fast(
                model, data.x_train, data.y_train, data.x_val, data.y_val,
                batch_size=batch, epochs=budget.epochs, patience=budget.patience if budget.epochs > 1 else 0,
                seconds=budget.seconds, timeout=budget.timeout, start=ctx.start, seed=ctx.seed,
            )
            return (list(hist.loss) if not hist.nan else [math.nan]), hist
        callbacks = ctx.callbacks(learning_rate=float(genome.training.learning_rate),
                                  steps=budget.epochs * -(-len(data.x_train) // batch))
        history = model.fit(  # annealed: no early stopping, so no validation per epoch
            data.x_train, data.y_train, batch_size=batch, epochs=budget.epochs,
            validation_data=None if budget.anneal else (data.x_val, data.y_val), callbacks=callbacks, verbose=0,
        )
        return list(history.history.get("loss", [])), None

    # -- the final stage -------------------------------------------------------------
    def final_model(self, genome: Genome, final: FinalContext, path: Any) -> dict[str, Any]:
        """Finish a front member: train it on train + validation -- from the search's
        weights of it where :class:`FinalContext` has them, else from scratch -- (``final.epochs``,
        ``final.train_samples``, the learning rate decaying by ``final.schedule``; with
        ``final.seconds``, for that many seconds with the learning rate warmed up and
        decayed over them, ``final.epochs`` only a cap; with ``final.augment``, the inputs
        redrawn by :attr:`augment` each epoch), score it once on the test split, save it
        to ``path``.

        Returns the figures for the hall of fame (``test_*`` keys, ``status``).
        """
        x, y, data = self.final_data(final.train_samples)
        model = decode(genome, self, compile=False)
        start = final.start(model)
        batch = genome.training.batch_size
        timed = final.seconds is not None
        steps = final.epochs * -(-len(x) // batch)  # what the epochs allow
        decay = steps if final.schedule == "cosine" and not timed else None
        model.compile(optimizer=build_optimizer(genome, decay_steps=decay), loss=self.loss(), metrics=self.metrics())
        callbacks = [timed_schedule(final.seconds, float(genome.training.learning_rate), steps=steps)] if timed else []
        t0 = time.perf_counter()
        if final.augment:
            if self.augment is None:
                raise ValueError(f"task {self.name!r} has no augmentation (config key 'final.augment')")
            rng = np.random.default_rng(final.seed)
            for epoch in range(final.epochs):  # a fresh draw of the augmentation each epoch
                model.fit(self.augment(x, final.augment, rng), y, batch_size=batch, epochs=epoch + 1,
                          initial_epoch=epoch, callbacks=callbacks, verbose=0)
                if timed and callbacks[0].done:
                    break
        else:
            model.fit(x, y, batch_size=batch, epochs=final.epochs, callbacks=callbacks, verbose=0)
        fit_seconds = time.perf_counter() - t0
        start["final_steps"] = int(np.asarray(model.optimizer.iterations))
        return {**start, **self.finish_model(model, data, final, path, fit_seconds=fit_seconds)}

    def final_data(self, n: int | None) -> tuple[Any, Any, Any]:
        """``(x, y, split)``: the first ``n`` examples of train + validation (all when
        ``None``) for a final model, and the split (its test part scores it); cached."""
        if self._final_cache is None or self._final_cache[0] != n:
            data = self.data(train_size=None, val_limit=None, test_limit=None)
            x = np.concatenate([data.x_train, data.x_val])
            y = np.concatenate([data.y_train, data.y_val])
            self._final_cache = (n, x[:n], y[:n], data)
        return self._final_cache[1], self._final_cache[2], self._final_cache[3]

    def finish_model(self, model: Any, data: Any, final: FinalContext, path: Any, *, fit_seconds: float) -> dict[str, Any]:
        """Score a final ``model`` once on the test split of ``data``, time it, save it to
        ``path`` (:func:`finish_trained_model` with :meth:`val_metrics`)."""
        return finish_trained_model(model, data, final, path, fit_seconds=fit_seconds, val_metrics=self.val_metrics,
                                    tokens_per_sample=self.tokens_per_sample)


class Classification(SupervisedTask):
    """A task whose model ends in a softmax over :attr:`n_outputs` classes (a Dense layer
    named ``"head"``), trained with sparse cross-entropy on integer labels; accuracy."""

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, activation="softmax", name="head")(x)

    def loss(self) -> Any:
        return "sparse_categorical_crossentropy"

    def metrics(self) -> list[Any]:
        return ["accuracy"]
