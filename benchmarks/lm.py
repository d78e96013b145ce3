"""Language-model benchmark: the best evolved skip-step cell vs a standard LSTM.

For each level (``char``: King James Bible, ``word``: Brown corpus), side by side in one
run: the best member of a finished ``default`` study run (lowest *validation* figure
among the front; the test split plays no part in the choice) and a standard LSTM
language model -- the same embedding stem and softmax head around one
``keras.layers.LSTM`` whose width is chosen so that the whole model has the parameter
count closest to the evolved model's. Both are trained from scratch with the same
budget: the same training windows, epochs, batch size and optimizer, the same seed; the
evolved model with its evolved learning rate (chosen by the search on validation data),
the LSTM with the best of three learning rates (1e-3, 3e-3, 1e-2) chosen on the same
validation windows -- so that the baseline is tuned too. Both are then scored once on
the test split.

Reported per level: test bits per character (char) / test perplexity (word), inference
milliseconds per character, parameters, training seconds; and the search's wall time of
each default run (from its run store).

Targets: word -- the evolved cell's test perplexity is lower than the LSTM's; char --
the evolved cell's test bits per character are lower at no more time per character.

Usage::

    python studies/char_lm.py --budget default --out runs/char_lm-default
    python studies/word_lm.py --budget default --out runs/word_lm-default
    python benchmarks/lm.py --char-run runs/char_lm-default --word-run runs/word_lm-default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

VAL_WINDOWS = 200  # validation windows for choosing the LSTM's learning rate
LSTM_LEARNING_RATES = (1e-3, 3e-3, 1e-2)


def lstm_units_for(task: Any, params: int) -> int:
    """The LSTM width whose model (same stem and head) has the closest parameter count."""
    v, e = task.n_outputs, task.embedding

    def count(u: int) -> int:
        return v * e + 4 * u * (e + u + 1) + (u + 1) * v

    return min(range(1, 2049), key=lambda u: abs(count(u) - params))


def lstm_model(task: Any, units: int) -> Any:
    import keras

    inputs = keras.Input(shape=task.input_shape, name="inputs")
    x = task.stem(inputs)
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm")(x)
    return keras.Model(inputs, task.head(x), name=f"lstm_{units}")


def train_and_test(task: Any, model: Any, genome: Any, data: Any, epochs: int, seed: int, timer: Any) -> dict[str, Any]:
    import keras

    from evokeras.build.decode import build_optimizer

    model.compile(optimizer=build_optimizer(genome), loss=task.loss())
    t0 = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=genome.training.batch_size, epochs=epochs, verbose=0)
    fit_seconds = time.perf_counter() - t0
    val_loss = float(model.evaluate(data.x_val, data.y_val, batch_size=64, verbose=0))
    loss = float(model.evaluate(data.x_test, data.y_test, batch_size=64, verbose=0))
    figures = task.val_metrics({"loss": loss})
    per_token = timer.time_inference(model, data.x_test) / task.seq_len
    keras.utils.clear_session(free_memory=True)
    return {"val_loss": val_loss, "test_loss": loss, "test_metric": figures[task.metric],
            "ms_per_token": 1e3 * per_token, "params": int(model.count_params()), "fit_seconds": fit_seconds,
            "learning_rate": float(genome.training.learning_rate)}


def search_wall_seconds(run_dir: Path) -> float | None:
    from evokeras.engine.store import RunStore

    with RunStore(run_dir / "run.db", readonly=True) as store:
        gens = store.generations()
    return float(gens[-1]["elapsed"]) if gens else None


def compare(run_dir: Path, *, train_windows: int, epochs: int, seed: int) -> dict[str, Any]:
    import keras

    from evokeras.build.decode import decode
    from evokeras.genomes.network import Genome
    from evokeras.tasks import make_task
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget

    config = json.loads((run_dir / "config.json").read_text())["config"]
    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    task = make_task(config["task"])
    metric = task.metric
    members = [m for m in hof["members"] if m.get("status") == "ok"]
    best = min(members, key=lambda m: m["metrics"][metric])
    genome = Genome.from_dict(best["genome"])
    data = task.data(train_size=train_windows, val_limit=VAL_WINDOWS, test_limit=None)
    budget = Budget(time_batch=int(config["evaluation"].get("time_batch", 16)), time_repeats=5)
    timer = Evaluator(task, budget, {metric: -1.0}, seed=seed)

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    evolved = train_and_test(task, decode(genome, task, compile=False), genome, data, epochs, seed, timer)
    units = lstm_units_for(task, evolved["params"])
    trials = []
    for lr in LSTM_LEARNING_RATES:
        keras.utils.set_random_seed(seed)
        tuned = genome.replace(training=dataclasses.replace(genome.training, learning_rate=lr))
        trials.append(train_and_test(task, lstm_model(task, units), tuned, data, epochs, seed, timer))
        print(f"  lstm({units}) lr {lr:g}: val loss {trials[-1]['val_loss']:.4f}", flush=True)
    lstm = min(trials, key=lambda r: r["val_loss"])
    return {"key": best["key"], "genome": best["genome"], "evolved": evolved, "lstm": lstm, "lstm_units": units,
            "lstm_trials": trials,
            "train_windows": len(data.x_train), "test_windows": len(data.x_test), "epochs": epochs,
            "search_wall_seconds": search_wall_seconds(run_dir)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--char-run", type=Path, default=Path("runs/char_lm-default"))
    p.add_argument("--word-run", type=Path, default=Path("runs/word_lm-default"))
    p.add_argument("--train-windows", type=int, default=4000, help="training windows of both models")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    for run in (args.char_run, args.word_run):
        if not (run / "hall_of_fame.json").is_file():
            print(f"error: {run} is not a finished study run (no hall_of_fame.json)", file=sys.stderr)
            return 2
    char = compare(args.char_run, train_windows=args.train_windows, epochs=args.epochs, seed=args.seed)
    print(f"char: evolved {char['evolved']}\n      lstm({char['lstm_units']}) {char['lstm']}", flush=True)
    word = compare(args.word_run, train_windows=args.train_windows, epochs=args.epochs, seed=args.seed)
    print(f"word: evolved {word['evolved']}\n      lstm({word['lstm_units']}) {word['lstm']}", flush=True)
    result = {
        "word": {"evolved_test_perplexity": word["evolved"]["test_metric"],
                 "lstm_test_perplexity": word["lstm"]["test_metric"],
                 "params": {"evolved": word["evolved"]["params"], "lstm": word["lstm"]["params"]}},
        "char": {"evolved_test_bpc": char["evolved"]["test_metric"], "lstm_test_bpc": char["lstm"]["test_metric"],
                 "evolved_ms_per_char": char["evolved"]["ms_per_token"], "lstm_ms_per_char": char["lstm"]["ms_per_token"],
                 "params": {"evolved": char["evolved"]["params"], "lstm": char["lstm"]["params"]}},
        "search_wall_seconds": {"char": char["search_wall_seconds"], "word": word["search_wall_seconds"]},
        "targets": {
            "word_evolved_lower_perplexity": word["evolved"]["test_metric"] < word["lstm"]["test_metric"],
            "char_evolved_lower_bpc": char["evolved"]["test_metric"] < char["lstm"]["test_metric"],
            "char_no_more_time": char["evolved"]["ms_per_token"] <= char["lstm"]["ms_per_token"],
        },
        "details": {"char": char, "word": word, "train_windows": args.train_windows, "epochs": args.epochs},
        "machine": _common.machine_info(),
    }
    path = _common.write_result("lm", result)
    print(json.dumps(result["targets"]), f"\nwrote {path}")
    return 0 if all(math.isfinite(v) for v in (word["evolved"]["test_metric"], char["evolved"]["test_metric"])) else 1


if __name__ == "__main__":
    raise SystemExit(main())
