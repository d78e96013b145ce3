"""Specialization: evolve edit programs that turn a trained base network into a model
for a target task (see :mod:`evokeras.genomes.edits` and :mod:`evokeras.nets.surgery`).

The individuals are :class:`~evokeras.genomes.edits.EditProgram` objects. Evaluating one
(:meth:`Specialization.score`): apply it to the base (drops, squeezes, cut, pool),
compute the cut features of the training examples (``Budget.train_samples``), fit the
new softmax head on them (ridge in closed form, or L2 softmax regression), fine-tune
when the program asks for it (under the budget's time limits), then measure the
validation error and the inference time per sample of the whole model, its parameters
and FLOPs. A front member's final model is made the same way with the head fitted on
train + validation (``final.train_samples``) and is scored once on the test split.

The **teacher** (once per process and training set, :meth:`Specialization.teacher`): the
whole base up to its last cut point with a softmax head fitted on the training examples.
It gives the data-driven squeeze criteria (``activation``, ``taylor``:
:func:`evokeras.nets.importance.unit_scores`, on the first ``importance_samples``
examples) and, after ``teacher_epochs`` of fine-tuning, the soft targets of
**distillation**: fine-tuning minimises ``(1 - w) * CE(labels) + w * T^2 * CE(softmax(t/T),
softmax(s/T))`` (Hinton et al., 2015; ``w``: ``distill_weight``, ``T``: ``temperature``)
with a learning rate that warms up linearly over the first tenth of the steps and then
follows a cosine decay to 0. A fine-tuned candidate records ``head_val_error`` (before
fine-tuning) and ``recovered_per_second`` (validation error removed per second of it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from evokeras.genomes.edits import EditProgram, EditSpace
from evokeras.nets import layers  # noqa: F401 - registers evokeras' layers for loading
from evokeras.nets.importance import unit_scores
from evokeras.nets.surgery import apply_program, count_flops, structure
from evokeras.tasks.base import SupervisedTask, Task, accuracy_figures, finish_trained_model
from evokeras.tasks.registry import make_task
from evokeras.training.context import FinalContext, ScoreContext
from evokeras.training.records import DEFAULT_OBJECTIVES, EVAL_BATCH, NonFiniteError
from evokeras.training.stock import distillation_loss, distillation_targets, predict, warmup_cosine
from evokeras.variation.edits import (
    crossover_programs,
    mutate_program,
    random_program,
    reference_programs,
)

__all__ = ["Specialization", "fit_head", "predict"]

_BASES: dict[tuple[str, float], Any] = {}
_TEACHERS: dict[str, dict[str, Any]] = {}
_TEACHER_CACHE = 3


def _load_base(path: str) -> Any:
    """The base model at ``path``, loaded once per process (and file version)."""
    import keras


    key = (path, os.path.getmtime(path))
    if key not in _BASES:
        _BASES.clear()
        _BASES[key] = keras.saving.load_model(path, compile=False, safe_mode=True)  # no lambda code from a file
    return _BASES[key]


def fit_head(features: np.ndarray, y: np.ndarray, n_classes: int, method: str, alpha: float,
             *, steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(W, b)`` of a softmax head on ``features`` for integer labels ``y``.

    Features are standardised (statistics of ``features``, folded into ``W`` and ``b``).
    ``ridge``: least squares onto one-hot targets with penalty ``alpha`` (per sample),
    in closed form (primal or dual, whichever system is smaller); the logits are scaled
    so that the training cross-entropy is smallest. ``logistic``: multinomial logistic
    regression with L2 penalty ``alpha``, ``steps`` of Nesterov-accelerated gradient
    descent with the step size of the loss's Lipschitz bound, from the ridge solution.
    """
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n, d = f.shape
    mean = f.mean(axis=0)
    std = f.std(axis=0)
    std[std < 1e-8] = 1.0
    z = (f - mean) / std
    onehot = np.eye(n_classes)[np.asarray(y, dtype=np.int64)]
    target = onehot - onehot.mean(axis=0)
    if d <= n:
        w = np.linalg.solve(z.T @ z / n + alpha * np.eye(d), z.T @ target / n)
    else:
        w = z.T @ np.linalg.solve(z @ z.T / n + alpha * np.eye(n), target / n)
    b = onehot.mean(axis=0)
    logits = z @ w + b

    def xent(scale: float) -> float:
        s = scale * logits
        s = s - s.max(axis=1, keepdims=True)
        return float(-(s[np.arange(n), y] - np.log(np.exp(s).sum(axis=1))).mean())

    scale = min((2.0 ** k for k in range(-2, 9)), key=xent)
    w, b = w * scale, b * scale
    if method == "logistic":
        lipschitz = 0.5 * float(np.linalg.norm(z, 2) ** 2) / n + alpha
        step = 1.0 / lipschitz
        wv, bv, wp, bp = w.copy(), b.copy(), w.copy(), b.copy()
        for t in range(1, steps + 1):
            s = z @ wv + bv
            s -= s.max(axis=1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - onehot) / n
            wn = wv - step * (z.T @ g + alpha * wv)
            bn = bv - step * g.sum(axis=0)
            momentum = (t - 1) / (t + 2)
            wv, bv = wn + momentum * (wn - wp), bn + momentum * (bn - bp)
            wp, bp = wn, bn
        w, b = wp, bp
    w_raw = w / std[:, None]
    b_raw = b - mean @ w_raw
    return w_raw.astype(np.float32), b_raw.astype(np.float32)


class Specialization(Task):
    """Specialize a trained base network to a classification task.

    The genomes are :class:`~evokeras.genomes.edits.EditProgram` objects on an
    :class:`~evokeras.genomes.edits.EditSpace`; the data split comes from the target task
    (a :class:`~evokeras.tasks.base.SupervisedTask`). The task trains in its own way (head
    fit, fine-tuning): the configuration keys of a supervised task's training
    (``evaluation.inherit_weights``, ``final.seconds``, ``evaluation.anneal``, ``final.augment``)
    do not apply to it.

    Args:
        base: path of the trained base model (``.keras``); its input must accept the
            target task's inputs. Read with :func:`evokeras.nets.surgery.structure`.
        target: the target task's registered name (its data, loss, labels).
        target_options: keyword arguments of the target task.
        finetune_batch: batch size of fine-tuning.
        space: an :class:`~evokeras.genomes.edits.EditSpace` instead of the default one.
        distill_weight: weight of the teacher's soft targets in the fine-tuning loss
            (0, the default since 0.16: labels only; 1: teacher only). The teacher is
            the base with a head fitted and ``teacher_epochs`` of fine-tuning: on the
            objects study it has more error than the members, and distilling from it at
            0.5 doubled the best member's test error (8.9% against 4.4% on labels alone).
        temperature: softening temperature of distillation.
        teacher_epochs: epochs the teacher is fine-tuned before it gives soft targets
            (0: the base with its fitted head).
        importance_samples: training examples the data-driven squeeze criteria are
            measured on.
    """

    family = "specialize"
    measures = ("val_error", "val_loss", "val_accuracy", "exec_time", "params", "flops")
    default_objectives = DEFAULT_OBJECTIVES

    def __init__(self, base: str | os.PathLike[str], target: str = "objects", *,
                 target_options: dict[str, Any] | None = None, finetune_batch: int = 64,
                 space: EditSpace | None = None, distill_weight: float = 0.0, temperature: float = 4.0,
                 teacher_epochs: int = 1, importance_samples: int = 512) -> None:
        checks = (("distill_weight", distill_weight, float, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
                  ("temperature", temperature, float, lambda v: v > 0, "a number > 0"),
                  ("teacher_epochs", teacher_epochs, int, lambda v: v >= 0, "an integer >= 0"),
                  ("importance_samples", importance_samples, int, lambda v: v >= 1, "an integer >= 1"))
        for name, value, kind, ok, what in checks:
            if (isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value))
                    or not ok(value)):
                raise ValueError(f"{name}: {what}, got {value!r}")
        self.distill_weight, self.temperature = float(distill_weight), float(temperature)
        self.teacher_epochs, self.importance_samples = int(teacher_epochs), int(importance_samples)

        path = Path(base)
        if not path.is_file():
            raise ValueError(f"base: no model file at {path}")
        self.base_path = str(path.resolve())
        self.target_name = str(target)
        self.target_options = dict(target_options or {})
        target_task = make_task(self.target_name, **self.target_options)
        if not isinstance(target_task, SupervisedTask):
            raise ValueError(f"target: task {self.target_name!r} has no labelled data split "
                             "(a specialization needs a supervised task)")
        self.target = target_task
        self.finetune_batch = int(finetune_batch)
        self.name = f"specialize:{self.target_name}"
        self.input_shape = tuple(self.target.input_shape)
        self.n_outputs = int(self.target.n_outputs)
        self.tokens_per_sample = int(self.target.tokens_per_sample)
        model = self.base_model()
        wanted = tuple(model.inputs[0].shape[1:])
        if len(wanted) != len(self.input_shape) or any(w is not None and w != s for w, s in zip(wanted, self.input_shape, strict=False)):
            raise ValueError(f"base: the model at {path} reads inputs of shape {wanted}, "
                             f"task {self.target_name!r} gives {self.input_shape}")
        super().__init__(space=space if space is not None else EditSpace(structure(model)))

    def _bind(self, space: Any) -> Any:
        if not isinstance(space, EditSpace):
            raise ValueError(f"space: a specialization needs an EditSpace, got {type(space).__name__}")
        return space

    def base_model(self) -> Any:
        """The trained base model (loaded once per process)."""
        return _load_base(self.base_path)

    # -- the data come from the target ------------------------------------------------
    def data(self, **limits: int | None) -> Any:
        """The target task's split."""
        return self.target.data(**limits)

    def final_data(self, n: int | None) -> tuple[Any, Any, Any]:
        """The target task's :meth:`~evokeras.tasks.base.SupervisedTask.final_data`."""
        return self.target.final_data(n)

    # -- variation -------------------------------------------------------------------
    def genome_from_dict(self, data: Any) -> EditProgram:
        return EditProgram.from_dict(data)

    def random_genome(self, rng: np.random.Generator, space: Any) -> EditProgram:
        return random_program(rng, space)

    def mutate(self, genome: Any, rng: np.random.Generator, space: Any, **kwargs: Any) -> EditProgram:
        return mutate_program(genome, rng, space, **kwargs)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator, space: Any) -> tuple[EditProgram, EditProgram]:
        return crossover_programs(a, b, rng, space)

    def reference_genomes(self) -> list[EditProgram]:
        """Width-multiplier programs of the base (:func:`~evokeras.variation.edits.reference_programs`)."""
        return reference_programs(self.space)

    # -- building a specialized model -------------------------------------------------------
    def teacher(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The teacher of training set ``(x, y)`` (cached per process): ``scores``
        (``{criterion: unit_scores}`` of the data-driven criteria of the space, on the
        base with its fitted head) and ``logits`` (the teacher's logits for ``x`` after
        ``teacher_epochs`` of fine-tuning with the learning-rate schedule). Raises
        :class:`NonFiniteError` when the base's features or the teacher are not finite."""
        digest = hashlib.sha256(np.ascontiguousarray(x[: min(len(x), 256)]).tobytes()).hexdigest()[:16]
        key = json.dumps([self.base_path, os.path.getmtime(self.base_path), self.target_name, len(x), digest,
                          self.teacher_epochs if self.distill_weight > 0 else 0, self.importance_samples,
                          list(self.space.importance)],
                         sort_keys=True, default=str)
        if key not in _TEACHERS:
            # a few training sets at once: the search's, its low-fidelity prefix, the final models'
            while len(_TEACHERS) >= _TEACHER_CACHE:
                del _TEACHERS[next(iter(_TEACHERS))]
            try:
                _TEACHERS[key] = self._make_teacher(x, y)
            except NonFiniteError as exc:  # every candidate that needs it fails the same way (status nan)
                _TEACHERS[key] = {"error": str(exc)}
        if "error" in _TEACHERS[key]:
            raise NonFiniteError(_TEACHERS[key]["error"])
        return _TEACHERS[key]

    def _make_teacher(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        import keras

        cut = self.space.base.cut_points[-1]
        body = apply_program(self.base_model(), EditProgram(cut=cut, pool=self.space.pools(cut)[0]))
        features = predict(body, x)
        if not np.all(np.isfinite(features)):
            raise NonFiniteError(f"the teacher's features (the base up to {cut!r}) are not finite")
        w, b = fit_head(features, y, self.n_outputs, "logistic", 1e-2)
        head = keras.layers.Dense(self.n_outputs, name="teacher_head")
        model = keras.Model(body.input, head(body.output), name="teacher")
        head.set_weights([w, b])
        n = min(len(x), self.importance_samples)
        scores = {c: unit_scores(model, c, x[:n], y[:n]) for c in self.space.importance if c != "weight_norm"}
        if self.teacher_epochs and self.distill_weight > 0:  # its soft targets are only for distillation
            model.compile(optimizer=keras.optimizers.Adam(self._schedule(1e-3, self.teacher_epochs, len(x))),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, batch_size=self.finetune_batch, epochs=self.teacher_epochs, verbose=0)
        logits = predict(model, x)
        if not np.all(np.isfinite(logits)):
            raise NonFiniteError("the teacher's logits are not finite after its fine-tuning")
        return {"scores": scores, "logits": logits}

    def _schedule(self, learning_rate: float, epochs: int, n: int) -> Any:
        """Linear warm-up over the first tenth of the steps, then cosine decay to 0."""
        return warmup_cosine(learning_rate, epochs * math.ceil(n / self.finetune_batch))

    def build(self, program: EditProgram, x: np.ndarray, y: np.ndarray, *, callbacks: list[Any] | None = None,
              timed: Callable[[str], AbstractContextManager[None]] | None = None,
              on_head: Callable[[Any], None] | None = None) -> Any:
        """The specialized model ``program`` makes, its head fitted (and the model
        fine-tuned, distilled from :meth:`teacher`) on ``(x, y)``, integer class labels;
        compiled with sparse cross-entropy and accuracy (softmax outputs).
        ``timed(section)`` times the ``teacher``, ``build``, ``head`` and ``fit`` steps
        (:meth:`ScoreContext.timed`); ``on_head(model)`` sees the model before fine-tuning."""
        import keras

        timed = timed or (lambda section: nullcontext())
        data_driven = bool(program.squeeze) and program.importance != "weight_norm"
        distill = bool(program.finetune) and self.distill_weight > 0
        teacher = None
        if data_driven or distill:
            with timed("teacher"):
                teacher = self.teacher(x, y)
        with timed("build"):
            scores = teacher["scores"].get(program.importance) if teacher is not None and data_driven else None
            if data_driven and scores is None:
                raise ValueError(f"importance: {program.importance!r} is not among the space's criteria "
                                 f"{self.space.importance}")
            body = apply_program(self.base_model(), program, scores)
        with timed("head"):
            features = predict(body, x)
            if not np.all(np.isfinite(features)):
                raise NonFiniteError("the cut features are not finite")
            w, b = fit_head(features, y, self.n_outputs, program.head, program.alpha)
            head = keras.layers.Dense(self.n_outputs, name="specialized_head")
            logits = head(body.output)
            model = keras.Model(body.input, keras.layers.Activation("softmax", name="specialized_softmax")(logits),
                                name="specialized")
            head.set_weights([w, b])
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        if program.finetune:
            if on_head is not None:
                on_head(model)
            # fine-tune on the logits (a numerically stable loss on every backend)
            trainer = keras.Model(body.input, logits)
            soft = teacher["logits"] if teacher is not None and distill else None
            target: Any = y
            loss: Any = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if soft is not None:
                target = distillation_targets(y, soft)
                loss = distillation_loss(self.distill_weight, self.temperature)
            trainer.compile(optimizer=keras.optimizers.Adam(self._schedule(program.learning_rate, program.finetune,
                                                                           len(x))), loss=loss)
            with timed("fit"):
                history = trainer.fit(x, target, batch_size=self.finetune_batch, epochs=program.finetune, verbose=0,
                                      callbacks=callbacks or [])
            losses = history.history.get("loss", [])
            if not losses or not all(math.isfinite(v) for v in losses):
                raise NonFiniteError("fine-tuning loss became NaN or infinite")
        return model

    def score(self, genome: Any, ctx: ScoreContext) -> dict[str, Any]:
        data = ctx.data()
        before: dict[str, float] = {}

        def on_head(model: Any) -> None:
            with ctx.timed("evaluate"):
                scores = model.evaluate(data.x_val, data.y_val, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
            before["head_val_error"] = 1.0 - float(scores["accuracy"])

        model = self.build(genome, data.x_train, data.y_train, callbacks=ctx.callbacks(early_stopping=False),
                           timed=ctx.timed, on_head=on_head)
        metrics: dict[str, Any] = {"params": int(model.count_params()), "flops": count_flops(model),
                                   "base_params": int(self.base_model().count_params()), "steps": genome.steps()}
        ctx.note(**metrics)
        with ctx.timed("evaluate"):
            scores = model.evaluate(data.x_val, data.y_val, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        metrics.update(accuracy_figures(scores))
        if before and "val_error" in metrics:
            fit = ctx.times.get("fit", 0.0)
            metrics.update(before, finetune_seconds=fit)
            if fit > 0:
                metrics["recovered_per_second"] = (before["head_val_error"] - metrics["val_error"]) / fit
        if ctx.wants_exec_time:
            with ctx.timed("timing"):
                metrics["exec_time"] = ctx.time_inference(model, data.x_val) / self.tokens_per_sample
        return metrics

    def final_model(self, genome: Any, final: FinalContext, path: Any) -> dict[str, Any]:
        """Build the member's model with its head fitted (and fine-tuned) on train +
        validation (``final.train_samples``), score it once on the test split, save it."""
        x, y, data = self.final_data(final.train_samples)
        t0 = time.perf_counter()
        model = self.build(genome, x, y)
        out = finish_trained_model(model, data, final, path, fit_seconds=time.perf_counter() - t0,
                                   tokens_per_sample=self.tokens_per_sample)
        return {**out, "params": int(model.count_params()), "flops": count_flops(model)}

    def __repr__(self) -> str:
        return f"Specialization(base={self.base_path!r}, target={self.target_name!r})"
