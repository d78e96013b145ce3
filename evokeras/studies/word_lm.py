"""Word-level language-model study: evolve skip-step recurrent cells on the Brown corpus.

Task ``brown_words`` (:mod:`evokeras.tasks.language`): the Brown corpus (NLTK layout;
found in the NLTK data path or ``EVOKERAS_BROWN``; install with
``scripts/install_brown.sh``), Penn-Treebank-style preprocessing, a vocabulary of the
10,000 most frequent training words plus ``<unk>``, split by document within each genre
(90/5/5), windows of 35 words, an embedding stem of 64 and a per-word softmax head.
The genes are evolved skip-step recurrent layers (:class:`evokeras.nets.layers.SkipStepCell`)
1 or 2 of them stacked (``default``; 3 in ``full``).

Objectives: validation perplexity and inference time per word (minimised); the smoke
budget uses FLOPs instead of time. Final models: trained on train + validation
windows, test perplexity once; ``plots/cell.png`` draws the best member's cell.

Budgets: ``smoke`` (seconds, tests and CI); ``default`` (the README's run, under 30
minutes on 2 CPU cores): the lineage search of :mod:`evokeras.studies.char_lm`'s
``default`` (see there) on words, its most accurate member trained on for 300 seconds;
``full``: 120-second
evaluations for 4 hours, the 6 most accurate trained again for 8 minutes each, then
three members of their front trained 30 minutes each (not run here: bounded by its
budget at about 7 hours).

Usage::

    python studies/word_lm.py [--budget smoke|default|full] [--out DIR] [--seed N] [--config FILE.json]
"""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.app.study import run_study

BUDGETS = {
    "smoke": {
        "task": "brown_words",
        "objectives": {"val_perplexity": -1.0, "flops": -1.0},
        "strategy": {"population": 3, "offspring": 3, "generations": 1},
        "evaluation": {"epochs": 1, "train_samples": 96, "val_samples": 32, "patience": 0,
                       "seconds": 30, "timeout": 120, "time_batch": 8, "time_repeats": 1},
        "final": {"epochs": 1, "train_samples": 128},
        "space": {"max_layers": 2, "cell_units": [16, 32], "cell_max_nodes": 3, "cell_max_lag": 4},
    },
    "default": {
        "task": "brown_words",
        "objectives": {"val_perplexity": -1.0, "exec_time": -1.0},
        # lineage: children continue their parents' training (cell morphisms; 40% promotions)
        "strategy": {"name": "lineage", "population": 6, "offspring": 6, "generations": 100, "wall_seconds": 1080,
                     "reference_architectures": True, "cxpb": 0.1, "mutpb": 0.5},
        # each evaluation: 30 s more training, the learning rate warmed up and decayed over them
        "evaluation": {"epochs": 50, "train_samples": None, "val_samples": 200, "patience": 0,
                       "seconds": 30, "anneal": True, "timeout": 180, "time_batch": 16, "time_repeats": 3,
                       "inherit_weights": True},
        # the most accurate member continues from its search weights for 300 s
        "final": {"epochs": 50, "seconds": 300, "members": 1},
        "parallel": {"backend": "process", "workers": 1},
        "space": {"max_layers": 2, "cell_units": [64, 128, 256], "batch_sizes": [32, 64, 128],
                  "learning_rate": [1e-3, 5e-2]},
    },
    "full": {
        "task": "brown_words",
        "objectives": {"val_perplexity": -1.0, "exec_time": -1.0},
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
    return run_study("word_lm", BUDGETS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
