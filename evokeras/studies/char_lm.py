"""Character-level language-model study: evolve skip-step recurrent cells on the King James Bible.

Task ``bible_chars`` (:mod:`evokeras.tasks.language`): the Bible as one character stream
(65 symbols), contiguous splits 90/5/5 (train/validation/test), windows of 64
characters, an embedding stem of 16 and a per-character softmax head. The genes are
evolved skip-step recurrent layers (:class:`evokeras.nets.layers.SkipStepCell`: nodes of
tanh/GRU-like/LSTM-like type, feed-forward links within a step and recurrent links
that read any node's state from k steps back), 1 or 2 of them stacked (``default``; 3 in ``full``).

Objectives: validation bits per character and inference time per character (both
minimised); the smoke budget uses FLOPs instead of time (deterministic). The final
models are trained on train + validation windows and scored once on the test split
(test bits per character); ``plots/cell.png`` draws the best member's cell,
``plots/lineages.png`` bits per character against the training accumulated along each
lineage.

Budgets: ``smoke`` (seconds, tests and CI); ``default`` (the README's run, under 30
minutes on 2 CPU cores): a lineage search (:mod:`evokeras.engine.strategies.lineage`:
children continue their parents' training through cell morphisms, 40% of them
promotions that only rescale the learning rate) of 6 + 6 candidates per generation,
stopped after the generation that passes 18 minutes; the first generation starts from
the stock LSTM at each width (``strategy.reference_architectures``, Adam at 3e-2); each
evaluation trains 30 seconds more on the whole training split, the learning rate warmed
up and decayed over them (``evaluation.anneal``), learning rates 1e-3 to 5e-2; then the
most accurate member continues from its search weights for 300 seconds
(``final.seconds``) on train + validation; ``full``: 120-second
evaluations for 4 hours, the 6 most accurate trained again for 8 minutes each, then
three members of their front trained 30 minutes each (not run here: bounded by its
budget at about 7 hours).

Usage::

    python studies/char_lm.py [--budget smoke|default|full] [--out DIR] [--seed N] [--config FILE.json]
"""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.app.study import run_study

BUDGETS = {
    "smoke": {
        "task": "bible_chars",
        "objectives": {"val_bpc": -1.0, "flops": -1.0},
        "strategy": {"population": 3, "offspring": 3, "generations": 1},
        "evaluation": {"epochs": 1, "train_samples": 96, "val_samples": 32, "patience": 0,
                       "seconds": 30, "timeout": 120, "time_batch": 16, "time_repeats": 1},
        "final": {"epochs": 1, "train_samples": 128},
        "space": {"max_layers": 2, "cell_units": [16, 32], "cell_max_nodes": 3, "cell_max_lag": 4},
    },
    "default": {
        "task": "bible_chars",
        "objectives": {"val_bpc": -1.0, "exec_time": -1.0},
        # lineage: children continue their parents' training (cell morphisms; 40% promotions)
        "strategy": {"name": "lineage", "population": 6, "offspring": 6, "generations": 100, "wall_seconds": 1080,
                     "reference_architectures": True, "cxpb": 0.1, "mutpb": 0.5},
        # each evaluation: 30 s more training, the learning rate warmed up and decayed over them
        "evaluation": {"epochs": 50, "train_samples": None, "val_samples": 300, "patience": 0,
                       "seconds": 30, "anneal": True, "timeout": 180, "time_batch": 32, "time_repeats": 3,
                       "inherit_weights": True},
        # the most accurate member continues from its search weights for 300 s
        "final": {"epochs": 50, "seconds": 300, "members": 1},
        "parallel": {"backend": "process", "workers": 1},
        "space": {"max_layers": 2, "cell_units": [64, 128, 256], "batch_sizes": [64, 128],
                  "learning_rate": [1e-3, 5e-2]},
    },
    "full": {
        "task": "bible_chars",
        "objectives": {"val_bpc": -1.0, "exec_time": -1.0},
        "strategy": {"population": 16, "offspring": 16, "generations": 60, "wall_seconds": 14400,
                     "reference_architectures": True},
        "evaluation": {"epochs": 100, "train_samples": None, "val_samples": 1000, "patience": 0,
                       "seconds": 120, "anneal": True, "timeout": 600, "time_batch": 64, "time_repeats": 5,
                       "final_rung": {"candidates": 6, "factor": 4}},
        "final": {"epochs": 100, "seconds": 1800, "members": 3},
        "space": {"max_layers": 3, "cell_units": [128, 256, 512], "batch_sizes": [64, 128]},
    },
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_study("char_lm", BUDGETS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
