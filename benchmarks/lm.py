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

``--part speed`` instead times one training step (forward, backward, Adam update) and
one inference call per token, at a character-level shape (the ``bible_chars`` task's
embedding stem and softmax head, windows of ``--seq-len`` tokens, ``--batch`` windows),
for the stock ``keras.layers.LSTM(units)`` and skip-step layers of the same width: the
one-node cell equal to an LSTM and a few multi-node cells with links across time and
depth. Models are timed in interleaved rounds (each round times every model once) so that
a change of machine load falls on all of them alike; the figures are medians over rounds.
Run once per Keras backend; each run fills ``speed.<backend>`` of ``lm.json`` and keeps
every other key::

    KERAS_BACKEND=tensorflow python benchmarks/lm.py --part speed
    KERAS_BACKEND=jax python benchmarks/lm.py --part speed
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


#: The skip-step cells timed by ``--part speed`` (name -> constructor of a CellGenome of
#: ``units``): the one-node cell equal to an LSTM, then typical evolved shapes.
SPEED_CELLS: dict[str, Any] = {
    "cell_lstm": lambda u: _cell(u, ("lstm",), rec_links=((0, 1, 0),)),
    "lstm_tanh_lag3": lambda u: _cell(u, ("lstm", "tanh"), rec_links=((1, 3, 0),)),
    "tanh_lstm_lag2": lambda u: _cell(u, ("tanh", "lstm"), rec_links=((0, 2, 1), (1, 1, 0))),
    "gru_tanh_lstm_skip": lambda u: _cell(u, ("gru", "tanh", "lstm"), ff_links=((0, 2),),
                                          rec_links=((0, 4, 1), (2, 2, 0))),
}


def _cell(units: int, nodes: tuple[str, ...], **links: Any) -> Any:
    from evokeras.genomes.cell import CellGenome

    return CellGenome(units, nodes, **links)


def speed(*, units: list[int], batch: int, seq_len: int, rounds: int, warmup: int, seed: int) -> dict[str, Any]:
    """Training and inference milliseconds per token of the LSTM and the skip-step layers."""
    import keras
    import numpy as np

    from evokeras.build.decode import decode
    from evokeras.genomes.analysis import cell_cost
    from evokeras.genomes.network import Genome, LayerGene
    from evokeras.tasks.language import LanguageModel

    task = LanguageModel("bible_chars", seq_len=seq_len)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, task.n_outputs, (batch, seq_len)).astype("int32")
    y = rng.integers(0, task.n_outputs, (batch, seq_len)).astype("int32")
    tokens = batch * seq_len
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    figures: dict[str, Any] = {}
    for u in units:
        keras.utils.clear_session(free_memory=True)
        keras.utils.set_random_seed(seed)
        models = {"lstm": lstm_model(task, u)}
        flops = {"lstm": cell_cost(SPEED_CELLS["cell_lstm"](u), task.embedding)[1]}  # the same step
        for name, make in SPEED_CELLS.items():
            cell = make(u)
            models[name] = decode(Genome((LayerGene("recurrent", cell=cell),)), task, compile=False)
            flops[name] = cell_cost(cell, task.embedding)[1]
        for model in models.values():
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=task.loss())
            for _ in range(max(warmup, 1)):  # compiles the train and predict functions
                model.train_on_batch(x, y)
                model.predict_on_batch(x)
        train: dict[str, list[float]] = {name: [] for name in models}
        infer: dict[str, list[float]] = {name: [] for name in models}
        loads = []
        for _ in range(rounds):
            for name, model in models.items():
                t0 = time.perf_counter()
                model.train_on_batch(x, y)
                t1 = time.perf_counter()
                model.predict_on_batch(x)
                infer[name].append(time.perf_counter() - t1)
                train[name].append(t1 - t0)
            loads.append(os.getloadavg()[0])
        per_token = {name: 1e3 * float(np.median(v)) / tokens for name, v in train.items()}
        per_char = {name: 1e3 * float(np.median(v)) / tokens for name, v in infer.items()}
        rows = {}
        for name in models:
            rows[name] = {
                "ms_per_token": per_token[name],
                "ratio_to_lstm": per_token[name] / per_token["lstm"],
                "infer_ms_per_token": per_char[name],
                "infer_ratio_to_lstm": per_char[name] / per_char["lstm"],
                "flops_per_step": flops[name],
                "flops_ratio_to_lstm": flops[name] / flops["lstm"],
                "params": int(models[name].count_params()),
                "train_step_ms_all": [1e3 * t for t in train[name]],
            }
            if name != "lstm":
                rows[name]["cell"] = SPEED_CELLS[name](u).to_dict()
            print(f"  units {u} {name:>20}: train {per_token[name]:.4f} ms/token "
                  f"(x{rows[name]['ratio_to_lstm']:.2f} LSTM, flops x{rows[name]['flops_ratio_to_lstm']:.2f}), "
                  f"inference {per_char[name]:.5f} ms/token (x{rows[name]['infer_ratio_to_lstm']:.2f})", flush=True)
        figures[str(u)] = {
            "models": rows,
            "evolved_ms_per_char": per_char["cell_lstm"],
            "lstm_ms_per_char": per_char["lstm"],
            "load_avg_1m_per_round": loads,
        }
    return {
        "backend": keras.backend.backend(),
        "units": figures,
        "batch": batch, "seq_len": seq_len, "embedding": task.embedding, "vocab": task.n_outputs,
        "rounds": rounds, "warmup": warmup, "seed": seed,
        "wall_seconds": time.perf_counter() - t_start,
        "load_avg_before": list(load_before),
        "load_avg_after": list(os.getloadavg()),
        "niceness": os.nice(0),
        "target": "skip-step ms_per_token <= 1.5 x stock LSTM's (same units)",
        "machine": _common.machine_info(),
    }


def _read_result(name: str) -> dict[str, Any]:
    path = _common.RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def update_result(name: str, updates: dict[str, Any]) -> Path:
    """Merge ``updates`` into ``benchmarks/results/<name>.json`` (a nested dict is merged,
    not replaced) and write it back; keys the updates do not name are kept."""
    data = _read_result(name)

    def merge(into: dict[str, Any], new: dict[str, Any]) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(data, updates)
    return _common.write_result(name, data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("compare", "speed"), default="compare",
                   help="compare: evolved vs LSTM language models; speed: time per token of the layers")
    p.add_argument("--units", type=int, nargs="+", default=[128, 256], help="speed: state sizes")
    p.add_argument("--batch", type=int, default=64, help="speed: windows per training step")
    p.add_argument("--seq-len", type=int, default=100, help="speed: tokens per window")
    p.add_argument("--rounds", type=int, default=7, help="speed: timed rounds (medians)")
    p.add_argument("--warmup", type=int, default=2, help="speed: untimed steps per model first")
    p.add_argument("--char-run", type=Path, default=Path("runs/char_lm-default"))
    p.add_argument("--word-run", type=Path, default=Path("runs/word_lm-default"))
    p.add_argument("--train-windows", type=int, default=4000, help="training windows of both models")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    if args.part == "speed":
        result = speed(units=args.units, batch=args.batch, seq_len=args.seq_len, rounds=args.rounds,
                       warmup=args.warmup, seed=args.seed)
        path = update_result("lm", {"speed": {result["backend"]: result}})
        print(f"wrote speed.{result['backend']} of {path}")
        return 0
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
    old = _read_result("lm")
    if "speed" in old:  # written by --part speed; keep it
        result["speed"] = old["speed"]
    path = _common.write_result("lm", result)
    print(json.dumps(result["targets"]), f"\nwrote {path}")
    return 0 if all(math.isfinite(v) for v in (word["evolved"]["test_metric"], char["evolved"]["test_metric"])) else 1


if __name__ == "__main__":
    raise SystemExit(main())
