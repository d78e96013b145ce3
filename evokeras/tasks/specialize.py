"""Specialization: evolve edit programs that turn a trained base network into a model
for a target task (see :mod:`evokeras.genomes.edits` and :mod:`evokeras.build.surgery`).

The individuals are :class:`~evokeras.genomes.edits.EditProgram` objects. Evaluating one
(:meth:`Specialization.score`): apply it to the base (drops, squeezes, cut, pool),
compute the cut features of the training examples (``Budget.train_samples``), fit the
new softmax head on them (ridge in closed form, or L2 softmax regression), fine-tune
when the program asks for it (under the budget's time limits), then measure the
validation error and the inference time per sample of the whole model, its parameters
and FLOPs. A front member's final model is made the same way with the head fitted on
train + validation (``final_train_samples``) and is scored once on the test split.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from evokeras.build import layers  # noqa: F401 - registers evokeras' layers for loading
from evokeras.build.surgery import apply_program, count_flops, structure
from evokeras.genomes.edits import EditProgram, EditSpace
from evokeras.tasks.base import Task
from evokeras.tasks.registry import make_task
from evokeras.training.context import FinalContext, ScoreContext
from evokeras.training.records import EVAL_BATCH, NonFiniteError
from evokeras.variation.edits import crossover_programs, mutate_program, random_program

__all__ = ["Specialization", "fit_head", "predict"]

_BASES: dict[tuple[str, float], Any] = {}


def _load_base(path: str) -> Any:
    """The base model at ``path``, loaded once per process (and file version)."""
    import keras


    key = (path, os.path.getmtime(path))
    if key not in _BASES:
        _BASES.clear()
        _BASES[key] = keras.saving.load_model(path, compile=False, safe_mode=True)  # no lambda code from a file
    return _BASES[key]


def predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``model``'s outputs for ``x``, batch by batch (``predict_on_batch``: no input pipeline)."""
    return np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


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

    Args:
        base: path of the trained base model (``.keras``); its input must accept the
            target task's inputs. Read with :func:`evokeras.build.surgery.structure`.
        target: the target task's registered name (its data, loss, labels).
        target_options: keyword arguments of the target task.
        finetune_batch: batch size of fine-tuning.
        space: an :class:`~evokeras.genomes.edits.EditSpace` instead of the default one.
    """

    family = "specialize"
    supports_inheritance = False
    fast_trainable = False

    def __init__(self, base: str | os.PathLike[str], target: str = "objects", *,
                 target_options: dict[str, Any] | None = None, finetune_batch: int = 64,
                 space: EditSpace | None = None) -> None:

        path = Path(base)
        if not path.is_file():
            raise ValueError(f"base: no model file at {path}")
        self.base_path = str(path.resolve())
        self.target_name = str(target)
        self.target_options = dict(target_options or {})
        self.target = make_task(self.target_name, **self.target_options)
        self.finetune_batch = int(finetune_batch)
        self.name = f"specialize:{self.target_name}"
        self.input_shape = tuple(self.target.input_shape)
        self.n_outputs = int(self.target.n_outputs)
        self.tokens_per_sample = int(self.target.tokens_per_sample)
        self.measures = ("val_error", "val_loss", "val_accuracy", "exec_time", "params", "flops")
        model = self.base_model()
        wanted = tuple(model.inputs[0].shape[1:])
        if len(wanted) != len(self.input_shape) or any(w is not None and w != s for w, s in zip(wanted, self.input_shape, strict=False)):
            raise ValueError(f"base: the model at {path} reads inputs of shape {wanted}, "
                             f"task {self.target_name!r} gives {self.input_shape}")
        if space is not None and not isinstance(space, EditSpace):
            raise ValueError(f"space: a specialization needs an EditSpace, got {type(space).__name__}")
        self.space = space if space is not None else EditSpace(structure(model))

    def _bind(self, space: Any) -> Any:
        if not isinstance(space, EditSpace):
            raise ValueError(f"space: a specialization needs an EditSpace, got {type(space).__name__}")
        return space

    def base_model(self) -> Any:
        """The trained base model (loaded once per process)."""
        return _load_base(self.base_path)

    # -- the task's pieces come from the target ----------------------------------------
    def loss(self) -> Any:
        return self.target.loss()

    def metrics(self) -> list[Any]:
        return ["accuracy"]

    def data(self, **limits: int | None) -> Any:
        return self.target.data(**limits)

    # -- variation -------------------------------------------------------------------
    def genome_from_dict(self, data: Any) -> EditProgram:
        return EditProgram.from_dict(data)

    def random_genome(self, rng: np.random.Generator, space: Any) -> EditProgram:
        return random_program(rng, space)

    def mutate(self, genome: Any, rng: np.random.Generator, space: Any, **kwargs: Any) -> EditProgram:
        return mutate_program(genome, rng, space, **kwargs)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator, space: Any) -> tuple[EditProgram, EditProgram]:
        return crossover_programs(a, b, rng, space)

    # -- building a specialized model -------------------------------------------------------
    def build(self, program: EditProgram, x: np.ndarray, y: np.ndarray, *, callbacks: list[Any] | None = None,
              timed: Callable[[str], AbstractContextManager[None]] | None = None) -> Any:
        """The specialized model ``program`` makes, its head fitted (and the model
        fine-tuned) on ``(x, y)``, integer class labels; compiled with sparse
        cross-entropy and accuracy (softmax outputs). ``timed(section)`` times the
        ``build``, ``head`` and ``fit`` steps (:meth:`ScoreContext.timed`)."""
        import keras

        timed = timed or (lambda section: nullcontext())
        with timed("build"):
            body = apply_program(self.base_model(), program)
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
            # fine-tune on the logits (a numerically stable loss on every backend)
            trainer = keras.Model(body.input, logits)
            trainer.compile(optimizer=keras.optimizers.Adam(program.learning_rate),
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            with timed("fit"):
                history = trainer.fit(x, y, batch_size=self.finetune_batch, epochs=program.finetune, verbose=0,
                                      callbacks=callbacks or [])
            losses = history.history.get("loss", [])
            if not losses or not all(math.isfinite(v) for v in losses):
                raise NonFiniteError("fine-tuning loss became NaN or infinite")
        return model

    def score(self, genome: Any, ctx: ScoreContext) -> dict[str, Any]:
        data = ctx.data()
        model = self.build(genome, data.x_train, data.y_train, callbacks=ctx.callbacks(early_stopping=False),
                           timed=ctx.timed)
        metrics: dict[str, Any] = {"params": int(model.count_params()), "flops": count_flops(model),
                                   "base_params": int(self.base_model().count_params()), "steps": genome.steps()}
        ctx.note(**metrics)
        with ctx.timed("evaluate"):
            scores = model.evaluate(data.x_val, data.y_val, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
        metrics.update(self.val_metrics(scores))
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
        out = self.finish_model(model, data, final, path, fit_seconds=time.perf_counter() - t0)
        return {**out, "params": int(model.count_params()), "flops": count_flops(model)}

    def __repr__(self) -> str:
        return f"Specialization(base={self.base_path!r}, target={self.target_name!r})"
