"""The task interface: what a task owns (data split, input stem, output head, metric)."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np

from evokeras._io import atomic_path
from evokeras.nets.decode import build_optimizer, decode
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace, default_space
from evokeras.training.context import FinalContext, ScoreContext
from evokeras.training.fast import evaluate_fast, fit_fast
from evokeras.training.records import DEFAULT_OBJECTIVES, EVAL_BATCH, Budget, NonFiniteError
from evokeras.training.stock import timed_schedule
from evokeras.variation.network import crossover, mutate, random_genome

__all__ = ["Classification", "Task"]


class Task:
    """Base class of tasks. A task owns its input shape, output head, loss and metric,
    its search space and its data.

    Subclasses set :attr:`name`, :attr:`family`, :attr:`input_shape`, :attr:`n_outputs`
    and override :meth:`head` (and :meth:`stem`, :meth:`loss`, :meth:`data` as needed).
    A task whose stem changes the shape (an Embedding of token ids) also sets
    :attr:`stem_params` and overrides :attr:`stem_shape`; one that predicts every time
    step (a language model) sets :attr:`sequence_output`.
    """

    name: str = "task"
    family: str = "image"
    input_shape: tuple[int, ...] = ()
    n_outputs: int = 1
    #: Metrics the evaluator measures for this task (each may be an objective).
    measures: tuple[str, ...] = ("val_error", "val_loss", "exec_time", "params", "flops")
    #: Whether :meth:`score` reads :meth:`data` (the evaluator loads it up front).
    needs_data: bool = True
    #: Whether :meth:`score` builds Keras models (the evaluator frees Keras memory first).
    builds_models: bool = True
    #: Tokens per sample: ``exec_time`` is reported per token (language models: the window).
    tokens_per_sample: int = 1
    #: Whether :func:`evokeras.training.fast.fit_fast` can train this task's models (one
    #: per-sample loss, accuracy as its metric); the fast path applies only then.
    fast_trainable: bool = False
    #: Whether :meth:`score` starts children from their parent's trained weights when
    #: the evaluator caches weights (config key ``inherit_weights``).
    supports_inheritance: bool = True
    #: Whether :meth:`score` and :meth:`final_model` train by seconds when asked (the
    #: evaluation budget's ``anneal``, config key ``final_seconds``).
    supports_timed_training: bool = True
    #: Whether the model keeps the time axis to the head: nothing is reduced, dense
    #: genes and :meth:`head` act on every time step (e.g. next-token prediction).
    sequence_output: bool = False
    #: Parameters of :meth:`stem` (e.g. an Embedding's table), counted by the space.
    stem_params: int = 0
    #: The objectives of a search on this task when none are configured.
    default_objectives: dict[str, float] = DEFAULT_OBJECTIVES
    #: The direction (+1 maximise, -1 minimise) of measures that are not minimised by
    #: default (e.g. CartPole's ``return``): an objective named without a weight gets it.
    objective_directions: dict[str, float] = {}

    #: ``(n, x, y, split)`` of :meth:`final_data` (per instance once set).
    _final_cache: tuple[Any, ...] | None = None

    def __init__(self, *, space: SearchSpace | None = None) -> None:
        self.space = self._bind(space if space is not None else default_space(self.family))

    def recipe(self, out_dir: Any) -> dict[str, Any] | None:
        """How a new process rebuilds this task: the configuration keys ``{"task": name,
        "task_options": {...}}`` that :func:`~evokeras.tasks.registry.make_task` turns back
        into an equal task, or ``None`` when the run's configuration already names it (the
        registered tasks built from their options). A task built from data in memory writes
        that data into the run directory ``out_dir`` here; a task built from data files
        records their paths and sha256 digests (a rebuild refuses changed files).
        :class:`~evokeras.engine.search.Search` calls it once, when it creates the run."""
        return None

    @property
    def stem_shape(self) -> tuple[int, ...]:
        """The shape :meth:`stem` outputs (what the first gene reads), without the batch
        axis: :attr:`input_shape` by default, e.g. ``(T, embedding)`` after an Embedding."""
        return tuple(self.input_shape)

    def with_space(self, space: SearchSpace) -> Task:
        """This task on another search space (bound to the task's shapes); the task is
        not rebuilt (its data and options are kept)."""
        new = copy.copy(self)
        new.space = self._bind(space)
        return new

    def _bind(self, space: SearchSpace) -> SearchSpace:
        """``space`` with this task's shapes; a task that allows only some spaces
        raises :class:`ValueError` here."""
        return space.replace(
            input_shape=tuple(self.stem_shape),
            n_outputs=int(self.n_outputs),
            sequence_output=bool(self.sequence_output),
            stem_params=int(self.stem_params),
        )

    # -- model pieces (Keras) -------------------------------------------------------
    def stem(self, inputs: Any) -> Any:
        """Map the model input to what the first gene reads (identity by default)."""
        return inputs

    def head(self, x: Any) -> Any:
        """Map the last features (flat, or per time step with :attr:`sequence_output`)
        to the task's output."""
        raise NotImplementedError

    def loss(self) -> Any:
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        return []

    # -- variation (the toolbox's individual/mutate/mate call these) ---------------------
    def genome_from_dict(self, data: Any) -> Any:
        """The genome of this task's individuals from its dictionary form (checkpoints)."""

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

    # -- evaluation --------------------------------------------------------------------
    def score(self, genome: Genome, ctx: ScoreContext) -> dict[str, Any]:
        """Train and score one candidate; returns its figures (every objective among them).

        The default trains the decoded model with ``fit`` on ``ctx.data()`` under the
        budget (early stopping on validation loss) -- or with
        :func:`evokeras.training.fast.fit_fast` when ``ctx.fast`` is set and the task
        is :attr:`fast_trainable` (``train_path`` says which; an annealed budget,
        :attr:`~evokeras.training.records.Budget.anneal`, trains with ``fit`` and the
        learning rate warmed up and decayed over its seconds, without early stopping)
        -- starting from the parent's weights where inheritance is on, scores the
        validation split with :meth:`val_metrics` and times inference. Raise to fail the candidate
        (:class:`~evokeras.training.records.NonFiniteError` for a NaN loss).
        """
        data = ctx.data()
        budget = ctx.budget
        with ctx.timed("build"):
            model = decode(genome, self)
            metrics: dict[str, Any] = {"params": int(model.count_params()), "flops": int(self.space.analyze(genome).flops)}
            metrics.update(ctx.inherit(model))
            ctx.note(**metrics)
        hist = None
        with ctx.timed("fit"):
            if ctx.fast and self.fast_trainable and not budget.anneal:
                hist = fit_fast(
                    model, data.x_train, data.y_train, data.x_val, data.y_val,
                    batch_size=genome.training.batch_size, epochs=budget.epochs,
                    patience=budget.patience if budget.epochs > 1 else 0,
                    seconds=budget.seconds, timeout=budget.timeout, start=ctx.start, seed=ctx.seed,
                )
                losses = list(hist.loss) if not hist.nan else [math.nan]
                metrics["train_path"] = "fast"
            else:
                batch = genome.training.batch_size
                callbacks = ctx.callbacks(learning_rate=float(genome.training.learning_rate),
                                          steps=budget.epochs * -(-len(data.x_train) // batch))
                history = model.fit(  # annealed: no early stopping, so no validation per epoch
                    data.x_train, data.y_train, batch_size=batch, epochs=budget.epochs,
                    validation_data=None if budget.anneal else (data.x_val, data.y_val), callbacks=callbacks,
                    verbose=0,
                )
                losses = history.history.get("loss", [])
                metrics["train_path"] = "stock"
        metrics["epochs"] = len(losses)
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
        ctx.save_weights(model, genome.key)
        if ctx.wants_exec_time:
            with ctx.timed("timing"):
                metrics["exec_time"] = ctx.time_inference(model, data.x_val) / self.tokens_per_sample
        return metrics

    def scaled_budget(self, budget: Budget, fraction: float) -> Budget:
        """The budget of a ``fraction``-fidelity evaluation (multi-fidelity search)."""
        return budget.scaled(fraction)

    def val_metrics(self, scores: dict[str, float]) -> dict[str, float]:
        """Metrics from ``model.evaluate``'s validation scores (loss, accuracy -> error)."""
        accuracy = float(scores.get("accuracy", float("nan")))
        return {"val_loss": float(scores["loss"]), "val_accuracy": accuracy, "val_error": 1.0 - accuracy}

    def is_candidate(self, metrics: dict[str, Any]) -> bool:
        """Whether a front member's search figures make it worth :meth:`verify` -ing
        (never, by default)."""
        return False

    def verify(self, genome: Genome, seed: int) -> dict[str, Any]:
        """Check a candidate on data the search never used; ``{"solved": bool, ...}``.
        A search stops early once a member is verified solved (e.g. CartPole's 100
        episodes); tasks without such a criterion never get here (:meth:`is_candidate`)."""
        raise NotImplementedError(f"task {self.name!r} has no verification")

    def final_model(self, genome: Genome, final: FinalContext, path: Any) -> dict[str, Any]:
        """Finish a front member: retrain it on train + validation (``final.epochs``,
        ``final.train_samples``, the learning rate decaying by ``final.schedule``; with
        ``final.seconds``, for that many seconds with the learning rate warmed up and
        decayed over them, ``final.epochs`` only a cap), score it once on the test
        split, save it to ``path``.

        Returns the figures for the hall of fame (``test_*`` keys, ``status``).
        """
        x, y, data = self.final_data(final.train_samples)
        model = decode(genome, self, compile=False)
        batch = genome.training.batch_size
        timed = final.seconds is not None
        steps = final.epochs * -(-len(x) // batch)  # what the epochs allow
        decay = steps if final.schedule == "cosine" and not timed else None
        model.compile(optimizer=build_optimizer(genome, decay_steps=decay), loss=self.loss(), metrics=self.metrics())
        callbacks = [timed_schedule(final.seconds, float(genome.training.learning_rate), steps=steps)] if timed else []
        t0 = time.perf_counter()
        if final.augment:
            rng = np.random.default_rng(final.seed)
            for epoch in range(final.epochs):  # a fresh draw of the augmentation each epoch
                model.fit(self.augment(x, final.augment, rng), y, batch_size=batch, epochs=epoch + 1,
                          initial_epoch=epoch, callbacks=callbacks, verbose=0)
                if timed and callbacks[0].done:
                    break
        else:
            model.fit(x, y, batch_size=batch, epochs=final.epochs, callbacks=callbacks, verbose=0)
        return self.finish_model(model, data, final, path, fit_seconds=time.perf_counter() - t0)

    #: The final training's augmentation strength when the configuration sets none
    #: (config key ``final_augment``; 0: none).
    default_final_augment: int = 0

    @property
    def supports_augment(self) -> bool:
        """Whether :meth:`augment` is implemented (config key ``final_augment`` > 0)."""
        return type(self).augment is not Task.augment

    def augment(self, x: Any, strength: int, rng: np.random.Generator) -> Any:
        """Training inputs ``x`` lightly changed for one epoch of final training (the
        image tasks move each image by up to ``strength`` pixels)."""
        raise NotImplementedError(f"task {self.name!r} has no augmentation (config key 'final_augment')")

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
        ``path``; the hall-of-fame figures (``test_*``, ``status``, ``final_fit_seconds``)."""
        scores = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        if not math.isfinite(scores["loss"]):
            raise FloatingPointError("the final model's test loss is not finite")
        exec_time = final.time_inference(model, data.x_test) / self.tokens_per_sample
        with atomic_path(path) as tmp:
            model.save(tmp)
        test = {"test_" + k.removeprefix("val_"): v for k, v in self.val_metrics(scores).items()}
        return {"status": "ok", **test, "test_exec_time": exec_time, "final_fit_seconds": fit_seconds}

    def save_plots(self, out_dir: Any, hall_of_fame: dict[str, Any]) -> list[Any]:
        """Task-specific figures of a finished run into ``out_dir``; returns their paths."""
        return []

    # -- search priors --------------------------------------------------------------------
    def reference_genomes(self) -> list[Any]:
        """Hand-designed architectures for this task, valid in :attr:`space`; a search
        with ``reference_architectures`` starts its first generation from them (none by
        default)."""
        return []

    @property
    def default_max_val_error(self) -> float | None:
        """The largest validation error a front member may have when the configuration
        sets none (``max_val_error``): ``None`` means no constraint."""
        return None

    # -- data ------------------------------------------------------------------------
    def data(self, **limits: int | None) -> Any:
        """The task's fixed train/validation/test split (a :class:`evokeras.data.Split`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, n_outputs={self.n_outputs})"


class Classification(Task):
    """A task whose model ends in a softmax over :attr:`n_outputs` classes (a Dense layer
    named ``"head"``), trained with sparse cross-entropy on integer labels; accuracy."""

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, activation="softmax", name="head")(x)

    def loss(self) -> Any:
        return "sparse_categorical_crossentropy"

    def metrics(self) -> list[Any]:
        return ["accuracy"]
