"""Specialization study: an LSTM language model becomes a genre classifier.

The **base** is a word-level LSTM language model (:func:`evokeras.nets.zoo.lstm_model`: a
64-wide embedding of the 10,000-word Brown vocabulary, two stacked 128-unit LSTMs, a
softmax over the vocabulary at every step) trained to predict the next word of real
Brown-corpus text (windows of 35 words, split by document). The search evolves edit
programs of it -- squeezing the embedding and LSTM units (the gates' and recurrent
weights kept consistent), dropping the second LSTM, cutting after any layer with the
last step or the mean over steps as features, a new head, short fine-tuning -- that
classify the *genre* (15 classes) of a 100-word window (:func:`evokeras.data.brown_genre`).
The **baseline** is the same architecture with a genre head on the last step, trained
from scratch on genre classification with a larger budget.

Usage::

    python studies/specialize_lstm.py [--budget smoke|default|full] [--out DIR] [--seed N]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evokeras import data as datasets
from evokeras.app.specialization import run_specialization_study, train_best, train_model
from evokeras.nets import zoo
from evokeras.tasks import make_task

ARCH = {"embedding": 64, "units": (128, 128)}
VOCAB = 10_001


def train_base(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    import keras

    data = make_task("brown_words").data(train_size=cfg["train_samples"], val_limit=cfg["val_samples"],
                                         test_limit=cfg["val_samples"])
    model = zoo.lstm_model(VOCAB, VOCAB, per_step=True, **ARCH)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    info = train_model(model, data, loss=loss, metrics=(), epochs=cfg["epochs"], batch_size=32)
    info["_data"] = data
    return model, info


def train_baseline(cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    """The base's architecture (or ``cfg["arch"]``) trained from scratch on the genres:
    early stopping, the best of ``cfg["learning_rates"]`` on validation."""
    data = datasets.brown_genre(train_size=cfg["train_samples"], val_limit=cfg["val_samples"], test_limit=None)
    arch = {**ARCH, **cfg.get("arch", {})}
    n = len(datasets.brown_genre_names())
    model, info = train_best(lambda: zoo.lstm_model(VOCAB, n, per_step=False, activation="softmax", **arch), data,
                             learning_rates=cfg["learning_rates"], loss="sparse_categorical_crossentropy",
                             epochs=cfg["epochs"], patience=cfg.get("patience", 3), batch_size=32)
    info.update(arch={k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()}, _data=data)
    return model, info


LRS = [3e-4, 1e-3, 3e-3]


BUDGETS = {
    "smoke": {
        "base": {"train_samples": 300, "val_samples": 100, "epochs": 1},
        "baseline": {"train_samples": 300, "val_samples": 100, "epochs": 1, "learning_rates": [1e-3, 3e-3]},
        "search": {"objectives": {"val_error": -1.0, "params": -1.0},
                   "strategy": {"population": 4, "offspring": 4, "generations": 1},
                   "evaluation": {"train_samples": 300, "val_samples": 100, "seconds": 20, "timeout": 120,
                                  "time_repeats": 1, "time_batch": 64},
                   "final": {"train_samples": 400}, "space": {"finetune": [0, 1]}},
    },
    "default": {
        "base": {"train_samples": 12000, "val_samples": 1000, "epochs": 3},
        "baseline": {"train_samples": None, "val_samples": None, "epochs": 15, "learning_rates": LRS},
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 10, "offspring": 10, "generations": 8, "wall_seconds": 900,
                                "reference_architectures": True},
                   "evaluation": {"train_samples": 3000, "val_samples": None, "seconds": 60, "timeout": 240,
                                  "time_repeats": 5},
                   "final": {"train_samples": None}},
    },
    "full": {
        "base": {"train_samples": None, "val_samples": None, "epochs": 10},
        "baseline": {"train_samples": None, "val_samples": None, "epochs": 30, "learning_rates": LRS},
        "search": {"objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "strategy": {"population": 24, "offspring": 24, "generations": 20},
                   "evaluation": {"train_samples": None, "val_samples": None, "seconds": 300, "timeout": 900},
                   "final": {"train_samples": None}},
    },
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_specialization_study("specialize_lstm", BUDGETS, target="brown_genre",
                                    train_base=train_base, train_baseline=train_baseline, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
