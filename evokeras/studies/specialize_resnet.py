"""Specialization study: a ResNet trained on Fashion-MNIST becomes an MNIST digit classifier.

The **base** is a small ResNet (:func:`evokeras.nets.zoo.resnet`: a conv + batch-norm stem,
three stages of two residual blocks of 16/32/64 channels, global average pooling)
trained on real Fashion-MNIST (garments). The search evolves edit programs of it --
dropping residual blocks, squeezing the layers inside blocks, cutting after any unit,
a new head fitted on the cut features, short fine-tuning -- for a *different* task:
classifying real MNIST digits. The **baseline** is the same ResNet architecture trained
from scratch on MNIST with a larger training budget.

Usage::

    python studies/specialize_resnet.py [--budget smoke|default|full] [--out DIR] [--seed N]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evokeras import data as datasets
from evokeras.app.specialization import run_specialization_study, train_best, train_model
from evokeras.nets import zoo

ARCH = {"widths": (16, 32, 64), "blocks": 2}


def _train(split: Any, cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    model = zoo.resnet((28, 28, 1), 10, **ARCH)
    info = train_model(model, split, loss="sparse_categorical_crossentropy", epochs=cfg["epochs"], batch_size=64)
    info["_data"] = split
    return model, info


def train_base(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    return _train(datasets.fashion_mnist_splits(train_size=cfg["train_samples"], val_limit=cfg["val_samples"],
                                                test_limit=None), cfg)


def train_baseline(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    """The base's architecture (or ``cfg["arch"]``) trained from scratch on MNIST:
    early stopping, the best of ``cfg["learning_rates"]`` on validation."""
    data = datasets.mnist_splits(train_size=cfg["train_samples"], val_limit=cfg["val_samples"], test_limit=None)
    arch = {**ARCH, **cfg.get("arch", {})}
    model, info = train_best(lambda: zoo.resnet((28, 28, 1), 10, **arch), data, learning_rates=cfg["learning_rates"],
                             loss="sparse_categorical_crossentropy", epochs=cfg["epochs"],
                             patience=cfg.get("patience", 3), batch_size=64)
    info.update(arch={k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()}, _data=data)
    return model, info


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
        "baseline": {"train_samples": 20000, "val_samples": 5000, "epochs": 15, "learning_rates": LRS},
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 10, "offspring": 10, "generations": 5, "wall_seconds": 600,
                                "reference_architectures": True},
                   "evaluation": {"train_samples": 3000, "val_samples": 2000, "seconds": 60, "timeout": 240,
                                  "time_repeats": 5},
                   "final": {"train_samples": 20000}},
    },
    "full": {
        "base": {"train_samples": None, "val_samples": None, "epochs": 15},
        "baseline": {"train_samples": None, "val_samples": None, "epochs": 30, "learning_rates": LRS},
        "baseline_large": {"train_samples": None, "val_samples": None, "epochs": 30, "learning_rates": LRS,
                           "arch": {"widths": (24, 48, 96)}},
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 24, "offspring": 24, "generations": 20},
                   "evaluation": {"train_samples": 20000, "val_samples": None, "seconds": 300, "timeout": 900},
                   "final": {"train_samples": None}},
    },
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_specialization_study("specialize_resnet", BUDGETS, target="mnist",
                                    train_base=train_base, train_baseline=train_baseline, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
