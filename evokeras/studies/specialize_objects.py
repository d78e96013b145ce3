"""Specialization study: a position network becomes a small, fast object classifier.

Scenes (:func:`evokeras.data.object_scenes`): one real MNIST digit at a random
position on a 48x48 canvas among 8 fragments of other digits (splits of MNIST's fixed
55,000 / 5,000 / 10,000). The **base** is a plain CNN (:func:`evokeras.nets.zoo.plain_cnn`:
three stages of two 3x3 convolutions and a max pool, a 256-unit dense layer) trained to
predict the digit's *position* (two sigmoid outputs, mean squared error). The search
evolves edit programs of the base (:func:`evokeras.specialize`) that *classify* the
digit: objectives validation error and inference time per sample. The **baseline** is
the base's full architecture with a 10-way softmax head trained from scratch on
classification to convergence (early stopping on validation loss, the best of three
learning rates: :func:`evokeras.app.specialization.train_best`); the ``full`` budget adds
a larger variant (1.5x the widths) trained the same way (the "fully trained larger
network"; it would take the ``default`` study past 45 minutes on 2 cores).

Usage::

    python studies/specialize_objects.py [--budget smoke|default|full] [--out DIR] [--seed N]

Writes DIR/base.keras, DIR/baseline.keras, DIR/search/ (a run directory: run.db,
hall_of_fame.json, models/, plots/ incl. specialize.png) and DIR/summary.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evokeras import data as datasets
from evokeras.app.specialization import run_specialization_study, train_best, train_model
from evokeras.nets import zoo

ARCH = {"widths": (16, 32, 64), "dense": 256}


def train_base(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    data = datasets.object_scenes(target="position", train_size=cfg["train_samples"],
                                  val_limit=cfg["val_samples"], test_limit=cfg["val_samples"])
    model = zoo.plain_cnn((48, 48, 1), 2, activation="sigmoid", **ARCH)
    info = train_model(model, data, loss="mse", metrics=("mae",), epochs=cfg["epochs"], batch_size=64)
    info["test_mae_pixels"] = info.get("test_mae", float("nan")) * 48
    info["_data"] = data
    return model, info


def train_baseline(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    data = datasets.object_scenes(target="class", train_size=cfg["train_samples"],
                                  val_limit=cfg["val_samples"], test_limit=None)
    arch = {**ARCH, **cfg.get("arch", {})}
    model, info = train_best(lambda: zoo.plain_cnn((48, 48, 1), 10, **arch), data,
                             learning_rates=cfg["learning_rates"], loss="sparse_categorical_crossentropy",
                             epochs=cfg["epochs"], patience=cfg.get("patience", 3), batch_size=64)
    info.update(arch={k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()}, _data=data)
    return model, info


EVALUATION = {"train_samples": 8000, "val_samples": 2000, "seconds": 90, "timeout": 300, "time_repeats": 5}
LRS = [3e-4, 1e-3, 3e-3]
BUDGETS = {
    "smoke": {
        "base": {"train_samples": 600, "val_samples": 200, "epochs": 1},
        "baseline": {"train_samples": 600, "val_samples": 200, "epochs": 1, "learning_rates": [1e-3, 3e-3]},
        "search": {"objectives": {"val_error": -1.0, "params": -1.0},
                   "strategy": {"population": 4, "offspring": 4, "generations": 1},
                   "evaluation": {"train_samples": 300, "val_samples": 200, "seconds": 20, "timeout": 120,
                                  "time_repeats": 1, "time_batch": 64},
                   "final": {"train_samples": 500}, "space": {"finetune": [0, 1]}},
    },
    "default": {
        "base": {"train_samples": 20000, "val_samples": 5000, "epochs": 4},
        "baseline": {"train_samples": 20000, "val_samples": 5000, "epochs": 20, "learning_rates": LRS},
        # successive halving: every offspring fine-tuned on a quarter of the examples, the
        # best third promoted to the full evaluation
        # generation 0 starts from the width-multiplier programs (strategy.reference_architectures)
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 12, "offspring": 12, "generations": 10, "wall_seconds": 900,
                                "reference_architectures": True},
                   "evaluation": {**EVALUATION, "multi_fidelity": {"eta": 3, "fraction": 0.25}},
                   "final": {"train_samples": 20000}, "space": {"finetune": [0, 2, 4, 8]}},
    },
    "full": {
        "base": {"train_samples": None, "val_samples": None, "epochs": 10},
        "baseline": {"train_samples": None, "val_samples": None, "epochs": 40, "learning_rates": LRS},
        "baseline_large": {"train_samples": None, "val_samples": None, "epochs": 40, "learning_rates": LRS,
                           "arch": {"widths": (24, 48, 96), "dense": 384}},
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 24, "offspring": 24, "generations": 20},
                   "evaluation": {**EVALUATION, "train_samples": 20000, "val_samples": None},
                   "final": {"train_samples": None}},
    },
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_specialization_study("specialize_objects", BUDGETS, target="objects",
                                    train_base=train_base, train_baseline=train_baseline, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
