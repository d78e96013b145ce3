"""Language-model benchmark: the best evolved skip-step cell vs a tuned stock LSTM.

One level at a time (``char``: King James Bible, ``word``: Brown corpus), from a finished
``default`` study run of that level:

``--part compare``
    The run's best member (lowest *validation* figure on the front; the test split plays
    no part in the choice) and a stock Keras LSTM language model -- the same embedding
    stem and softmax head around one ``keras.layers.LSTM`` whose width gives the whole
    model the parameter count closest to the evolved model's (the ratio is reported) --
    are each trained from scratch with the same protocol: the whole training split, the
    same wall-clock seconds (``--seconds``, the study's ``final_seconds``), the same batch
    size, the learning rate warmed up and decayed over those seconds
    (:func:`evokeras.training.stock.timed_schedule`). The evolved model uses its evolved
    optimizer and learning rate (chosen by the search on validation data); the LSTM uses
    Adam with the best of ``LSTM_LEARNING_RATES`` on the validation split (seed 0; the
    grid extended while the best is at its edge), then the other seeds at that rate.
    Each model is scored once on the test split; medians over ``--seeds``. Reported:
    test bits per character / perplexity, inference milliseconds per token, parameters,
    training seconds, tokens seen.

``--part rank``
    Whether the search's evaluation ranks cells as longer training does: ``--cells``
    evaluated candidates of the run (spread over its validation figures) are retrained
    from scratch for ``--rank-seconds`` (the same annealed protocol, the whole training
    split) and scored on ``RANK_VAL_WINDOWS`` validation windows; the Spearman
    correlation of the search figure and that figure is reported.

Every part merges its figures into ``benchmarks/results/lm.json`` and keeps every other
key. Usage (the studies' ``default`` budgets, then the benchmark)::

    python studies/char_lm.py --budget default --out runs/char_lm-default
    python benchmarks/lm.py --part compare --level char --run runs/char_lm-default
    python benchmarks/lm.py --part rank --level char --run runs/char_lm-default
    (the same with word_lm / --level word)

``--part user-view``
    The user's choice: the study's whole ``default`` run, end to end (search, final
    training, test), against a stock LSTM-256 language model (the same stem and head;
    at the word level with dropout 0.3, ``USER_VIEW_DROPOUT``) trained for that whole
    wall time. The LSTM uses Adam at the best of
    ``USER_VIEW_LEARNING_RATES`` on the validation split, each trial ``--grid-seconds``
    long (the grid's time is counted apart), then trains on the windows the study's
    final model trains on (train + validation) for the study's wall seconds, the rate
    warmed up and decayed over them, and is scored once on the test split. Per seed
    (``--seeds``): the study runs in a subprocess into ``--out``/``<level>-seed<N>``
    unless that run finished there before (its wall time kept in ``user_view.json``).
    ``--text FILE`` runs the same comparison on any UTF-8 file (the study's default
    budget on :func:`evokeras.from_text` of it; results under ``user_view.text``)::

        python benchmarks/lm.py --part user-view --level char --seeds 0 1 2
        python benchmarks/lm.py --part user-view --level char --text my.txt --seeds 0

``--part speed`` instead times one training step (forward, backward, Adam update) and
one inference call per token, at a character-level shape (the ``bible_chars`` task's
embedding stem and softmax head, windows of ``--seq-len`` tokens, ``--batch`` windows),
for the stock ``keras.layers.LSTM(units)`` and skip-step layers of the same width: the
one-node cell equal to an LSTM and a few multi-node cells with links across time and
depth. Models are timed in interleaved rounds (each round times every model once) so that
a change of machine load falls on all of them alike; the figures are medians over rounds.
Run once per Keras backend; each run fills ``speed.<backend>`` of ``lm.json``::

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

LSTM_LEARNING_RATES = (1e-3, 3e-3, 1e-2)  # Adam; the best on validation (seed 0) is kept
USER_VIEW_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)  # Adam for the user's LSTM-256
USER_VIEW_UNITS = 256
#: Dropout of the user's LSTM-256 per level: words as users train them on a corpus of a
#: million words (the stock recipe of issue 30: dropout 0.3); characters without.
USER_VIEW_DROPOUT = {"char": 0.0, "word": 0.3}
RANK_VAL_WINDOWS = 1000  # validation windows of the rank part's longer trainings
LEVELS = {"char": ("bible_chars", "val_bpc", "test_bpc"), "word": ("brown_words", "val_perplexity", "test_perplexity")}


def lstm_units_for(task: Any, params: int) -> int:
    """The LSTM width whose model (same stem and head) has the closest parameter count."""
    v, e = task.n_outputs, task.embedding

    def count(u: int) -> int:
        return v * e + 4 * u * (e + u + 1) + (u + 1) * v

    return min(range(1, 2049), key=lambda u: abs(count(u) - params))


def lstm_model(task: Any, units: int, dropout: float = 0.0) -> Any:
    """The stock LSTM language model: the task's stem, ``keras.layers.LSTM(units)`` and
    head, with ``dropout`` on the embeddings and on the LSTM's outputs (Zaremba et al.'s
    recipe) when given."""
    import keras

    inputs = keras.Input(shape=task.input_shape, name="inputs")
    x = task.stem(inputs)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    x = keras.layers.LSTM(units, return_sequences=True, name="lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="lstm_dropout")(x)
    return keras.Model(inputs, task.head(x), name=f"lstm_{units}")


def train_timed(task: Any, model: Any, genome: Any, data: Any, seconds: float, seed: int) -> dict[str, Any]:
    """Train ``model`` from scratch on the whole training split for ``seconds`` (the
    learning rate of ``genome``'s training genes warmed up and decayed over them), score
    the validation and test splits once, time inference per token."""
    import keras

    from evokeras.nets.decode import build_optimizer
    from evokeras.training.stock import time_inference, timed_schedule

    batch = genome.training.batch_size
    model.compile(optimizer=build_optimizer(genome), loss=task.loss())
    schedule = timed_schedule(seconds, float(genome.training.learning_rate))
    t0 = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=batch, epochs=1000, callbacks=[schedule], verbose=0)
    fit_seconds = time.perf_counter() - t0
    val_loss = float(model.evaluate(data.x_val, data.y_val, batch_size=64, verbose=0))
    loss = float(model.evaluate(data.x_test, data.y_test, batch_size=64, verbose=0))
    if not (math.isfinite(val_loss) and math.isfinite(loss)):
        raise FloatingPointError("the loss is not finite")
    per_token = time_inference(model, data.x_test, 32, 5) / task.seq_len
    result = {"val_loss": val_loss, "val_metric": task.val_metrics({"loss": val_loss})[task.metric],
              "test_loss": loss, "test_metric": task.val_metrics({"loss": loss})[task.metric],
              "ms_per_token": 1e3 * per_token, "params": int(model.count_params()), "fit_seconds": fit_seconds,
              "tokens_seen": schedule.batches * batch * task.seq_len, "learning_rate": float(genome.training.learning_rate),
              "optimizer": genome.training.optimizer, "batch_size": batch, "seed": seed}
    keras.utils.clear_session(free_memory=True)
    return result


def _run(run_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The run's configuration, task and hall of fame."""
    from evokeras.engine.config import load_stored

    cfg = load_stored(json.loads((run_dir / "config.json").read_text())["config"])
    return cfg, cfg.build_task(), json.loads((run_dir / "hall_of_fame.json").read_text())


def search_wall_seconds(run_dir: Path) -> float | None:
    from evokeras.engine.store import RunStore

    with RunStore(run_dir / "run.db", readonly=True) as store:
        gens = store.generations()
    return float(gens[-1]["elapsed"]) if gens else None


def median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values))


def lr_grid_step(grid: list[float], best: float) -> float | None:
    """The next learning rate to try when ``best`` is at an edge of ``grid`` (the grid
    extended by its outer ratio), else ``None``: the tuned rate must lie inside."""
    grid = sorted(grid)
    if best == grid[-1]:
        return grid[-1] * grid[-1] / grid[-2]
    if best == grid[0]:
        return grid[0] * grid[0] / grid[1]
    return None


def compare(run_dir: Path, *, seconds: float, seeds: list[int], max_extensions: int = 2,
            member: str | None = None, evolved_adam: float | None = None) -> dict[str, Any]:
    """The run's best member and the matched, tuned LSTM, each trained ``seconds`` per seed.

    The LSTM's learning rate is the best on validation of ``LSTM_LEARNING_RATES`` at the
    first seed; while the best is at an edge of the rates tried, the grid is extended past
    it (up to ``max_extensions`` times). ``member``: another evaluated candidate of the
    run instead of the best (exploratory: not the fixed choice rule); ``evolved_adam``:
    train the evolved model with Adam at this rate instead of its evolved optimizer and
    rate (exploratory: the LSTM's optimizer). Every training is
    kept in
    ``RUN/lm_compare_<seconds>s.json`` as it ends, so a rerun (a longer grid, more seeds)
    trains only what is missing."""
    import keras

    from evokeras.genomes.network import Genome
    from evokeras.nets.decode import decode

    cfg, task, hof = _run(run_dir)
    metric = task.metric
    members = [m for m in hof["members"] if metric in m.get("metrics", {})]
    if not members:
        raise SystemExit(f"error: {run_dir}: no front member has a {metric} figure")
    best = min(members, key=lambda m: m["metrics"][metric])  # validation only
    if member is not None:  # an exploratory comparison of another evaluated candidate
        from evokeras.engine.store import RunStore

        with RunStore(run_dir / "run.db", readonly=True) as store:
            record = store.get_evaluation(member)
        if record is None or record.status != "ok":
            raise SystemExit(f"error: --member {member}: no successful evaluation of it in {run_dir}")
        best = {"key": member, "genome": record.genome, "metrics": record.metrics}
    genome = Genome.from_dict(best["genome"])
    tag = ""
    if evolved_adam is not None:
        genome = genome.replace(training=dataclasses.replace(genome.training, optimizer="adam",
                                                             learning_rate=evolved_adam))
        tag = f" adam {evolved_adam:g}"
    data = task.data(train_size=None, val_limit=None, test_limit=None)
    cache_path = run_dir / f"lm_compare_{seconds:g}s.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}

    def trained(name: str, seed: int, make: Any, genes: Any) -> dict[str, Any]:
        if name not in cache:
            keras.utils.clear_session(free_memory=True)
            keras.utils.set_random_seed(seed)
            cache[name] = train_timed(task, make(), genes, data, seconds, seed)
            cache_path.write_text(json.dumps(cache, indent=1))
            print(f"  {name}: {cache[name]['test_metric']:.4f} test, {cache[name]['val_metric']:.4f} val, "
                  f"{cache[name]['tokens_seen']} tokens", flush=True)
        return cache[name]

    evolved = [trained(f"evolved {best['key']}{tag} seed {seed}", seed, lambda: decode(genome, task, compile=False), genome)
               for seed in seeds]
    units = lstm_units_for(task, evolved[0]["params"])

    def lstm_run(lr: float, seed: int) -> dict[str, Any]:
        genes = genome.replace(training=dataclasses.replace(genome.training, optimizer="adam", learning_rate=lr))
        return trained(f"lstm {units} lr {lr:g} seed {seed}", seed, lambda: lstm_model(task, units), genes)

    grid = list(LSTM_LEARNING_RATES)
    trials = [lstm_run(lr, seeds[0]) for lr in grid]
    for _ in range(max_extensions):
        lr = lr_grid_step(grid, min(trials, key=lambda r: r["val_loss"])["learning_rate"])
        if lr is None:
            break
        grid.append(lr)
        trials.append(lstm_run(lr, seeds[0]))
    lr = min(trials, key=lambda r: r["val_loss"])["learning_rate"]
    lstm = [lstm_run(lr, seed) for seed in seeds]
    return {"key": best["key"], "genome": best["genome"], "search_val_metric": best["metrics"][metric],
            "evolved": evolved, "lstm": lstm, "lstm_units": units, "lstm_lr_trials": trials, "lstm_learning_rate": lr,
            "lstm_lr_grid": sorted(grid), "lstm_lr_at_edge": lr in (min(grid), max(grid)),
            "train_windows": len(data.x_train), "val_windows": len(data.x_val), "test_windows": len(data.x_test),
            "seconds": seconds, "seeds": seeds, "search_wall_seconds": search_wall_seconds(run_dir),
            "study_budget": cfg.budget_name, "run_dir": str(run_dir)}


def rank(run_dir: Path, *, cells: int, seconds: float, seed: int, progress: Path | None = None) -> dict[str, Any]:
    """Spearman correlation of the search figure and a longer training's validation figure."""
    import numpy as np

    from evokeras.engine.store import RunStore
    from evokeras.genomes.network import Genome
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget

    cfg, task, _ = _run(run_dir)
    metric = task.metric
    with RunStore(run_dir / "run.db", readonly=True) as store:
        ok = sorted((r for _, r in store.evaluations() if r.status == "ok" and r.metrics.get("fidelity", 1.0) == 1.0
                     and math.isfinite(r.metrics.get(metric, math.nan))), key=lambda r: r.metrics[metric])
    picks = [ok[int(i)] for i in np.unique(np.linspace(0, len(ok) - 1, min(cells, len(ok))).round().astype(int))]
    budget = Budget(epochs=1000, train_samples=None, val_samples=RANK_VAL_WINDOWS, patience=0, seconds=seconds,
                    anneal=True, timeout=seconds * 3 + 300, time_repeats=1)
    long = Evaluator(task, budget, {metric: -1.0}, seed=seed, settings=cfg.train_settings())
    done: dict[str, Any] = json.loads(progress.read_text()) if progress is not None and progress.is_file() else {}
    t0 = time.perf_counter()
    for r in picks:
        if r.key not in done:
            res = long(Genome.from_dict(r.genome))
            done[r.key] = {"search": r.metrics[metric], "long": res.metrics.get(metric) if res.ok else None,
                           "status": res.status, "params": r.metrics.get("params")}
            print(f"  {r.key}: search {r.metrics[metric]:.4f} -> {done[r.key]['long']}", flush=True)
            if progress is not None:
                progress.write_text(json.dumps(done))
    pairs = [(done[r.key]["search"], done[r.key]["long"]) for r in picks if done[r.key]["long"] is not None]
    return {"spearman": _common.spearman([a for a, _ in pairs], [b for _, b in pairs]), "cells": len(pairs),
            "search_budget": cfg.budget().to_dict(), "long_seconds": seconds, "long_val_windows": RANK_VAL_WINDOWS,
            "pairs": {r.key: done[r.key] for r in picks}, "seconds": time.perf_counter() - t0, "run_dir": str(run_dir)}


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

    from evokeras.genomes.analysis import cell_cost
    from evokeras.genomes.network import Genome, LayerGene
    from evokeras.nets.decode import decode
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


def _study(level: str, out: Path, seed: int, text: Path | None) -> float:
    """Run the ``default`` study of ``level`` into ``out`` (on ``text`` when given) in a
    subprocess; its wall seconds, end to end."""
    import subprocess

    if text is None:
        study = Path(__file__).resolve().parent.parent / "studies" / f"{level}_lm.py"
        cmd = [sys.executable, str(study), "--budget", "default", "--out", str(out), "--seed", str(seed), "--no-progress"]
    else:
        code = (f"import sys, evokeras; from evokeras.studies.{level}_lm import BUDGETS; "
                f"evokeras.search(evokeras.from_text(path=sys.argv[1], level='{level}'), sys.argv[2], "
                "config=BUDGETS['default'], seed=int(sys.argv[3]))")
        cmd = [sys.executable, "-c", code, str(text), str(out), str(seed)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def user_view(level: str, *, seeds: list[int], out: Path, grid_seconds: float, text: Path | None = None) -> dict[str, Any]:
    """Per seed: the study end to end, and the stock LSTM-256 tuned on the grid and
    trained for the study's wall seconds (see the module docstring); medians."""
    rows = [_user_view_seed(level, seed, out / f"{level}-seed{seed}", grid_seconds, text) for seed in seeds]
    name = "bpc" if level == "char" else "ppl"
    evolved, lstm = median([r["evolved_test"] for r in rows]), median([r["lstm_test"] for r in rows])
    speed = {side: median([r[f"{side}_ms_per_token"] for r in rows]) for side in ("evolved", "lstm")}
    targets = {"evolved_lower": evolved < lstm, "no_slower_than_lstm256": speed["evolved"] <= speed["lstm"]}
    if level == "word":
        targets["perplexity_at_most_150"] = evolved <= 150
    return {"seeds": seeds, f"evolved_{name}": evolved, f"lstm256_{name}": lstm,
            "wall_seconds": median([r["wall_seconds"] for r in rows]),
            "evolved_ms_per_token": speed["evolved"], "lstm256_ms_per_token": speed["lstm"], "targets": targets,
            "per_seed": rows}


def _user_view_seed(level: str, seed: int, run_dir: Path, grid_seconds: float, text: Path | None) -> dict[str, Any]:
    """One seed of :func:`user_view`; every training kept in ``run_dir/user_view.json`` as
    it ends, so a rerun trains only what is missing."""
    import keras
    import numpy as np

    from evokeras.data import Split
    from evokeras.genomes.network import Genome, TrainingGenes

    record_path = run_dir / "user_view.json"
    record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if "wall_seconds" not in record:
        record = {"wall_seconds": _study(level, run_dir, seed, text)}
        record_path.write_text(json.dumps(record, indent=1))
    if text is None:
        _, task, hof = _run(run_dir)
    else:
        import evokeras

        task, hof = evokeras.from_text(path=text, level=level), json.loads((run_dir / "hall_of_fame.json").read_text())
    test_key = "test_" + task.metric.removeprefix("val_")
    members = [m for m in hof["members"] if m.get("status") == "ok" and test_key in m]
    chosen = min(members, key=lambda m: m["metrics"][task.metric])  # the study's own choice: validation
    data = task.data(train_size=None, val_limit=None, test_limit=None)
    genes = Genome((), training=TrainingGenes("adam", 1e-3, 64))

    dropout = USER_VIEW_DROPOUT[level]
    tag = f" dropout {dropout:g}" if dropout else ""

    def lstm(lr: float, seconds: float, split: Any, name: str) -> dict[str, Any]:
        name += tag
        if name not in record:
            keras.utils.clear_session(free_memory=True)
            keras.utils.set_random_seed(seed)
            g = genes.replace(training=dataclasses.replace(genes.training, learning_rate=lr))
            record[name] = train_timed(task, lstm_model(task, USER_VIEW_UNITS, dropout), g, split, seconds, seed)
            record_path.write_text(json.dumps(record, indent=1))
            print(f"  seed {seed} {name}: {record[name]['val_metric']:.4f} val, {record[name]['test_metric']:.4f} test",
                  flush=True)
        return record[name]

    trials = {lr: lstm(lr, grid_seconds, data, f"grid lr {lr:g}") for lr in USER_VIEW_LEARNING_RATES}
    best_lr = min(trials, key=lambda lr: trials[lr]["val_loss"])
    full = Split(np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val]),
                 data.x_val, data.y_val, data.x_test, data.y_test)
    wall = float(record["wall_seconds"])
    final = lstm(best_lr, wall, full, f"lstm{USER_VIEW_UNITS} lr {best_lr:g} {wall:.0f}s")
    m = chosen["metrics"]
    return {
        "seed": seed, "run_dir": str(run_dir), "wall_seconds": wall, "key": chosen["key"],
        "evolved_test": chosen[test_key], "evolved_val": m[task.metric], "genome": chosen["genome"],
        "evolved_ms_per_token": 1e3 * chosen.get("test_exec_time", m.get("exec_time", math.nan)),
        "evolved_params": m.get("params"), "final_start": chosen.get("final_start"),
        "evolved_accumulated_seconds": (chosen.get("search_seconds") or 0.0) + (chosen.get("final_fit_seconds") or 0.0),
        "lstm_test": final["test_metric"], "lstm_learning_rate": best_lr, "lstm_ms_per_token": final["ms_per_token"],
        "lstm_params": final["params"], "lstm_tokens_seen": final["tokens_seen"], "lstm_dropout": dropout,
        "grid": {f"{lr:g}": {"val": r["val_metric"], "test": r["test_metric"]} for lr, r in trials.items()},
        "grid_seconds_total": grid_seconds * len(trials),
    }


def update_result(name: str, updates: dict[str, Any], *, replace: dict[tuple[str, ...], Any] | None = None) -> Path:
    """Merge ``updates`` into ``benchmarks/results/<name>.json`` (a nested dict is merged,
    not replaced), set each path of ``replace`` to its value whole, and write it back;
    keys neither names are kept."""
    data = _common.read_result(name)
    for path, value in (replace or {}).items():
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

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
    p.add_argument("--part", choices=("compare", "rank", "speed", "user-view"), default="compare",
                   help="compare: evolved vs LSTM language models; rank: cheap vs long evaluations; "
                        "speed: time per token of the layers")
    p.add_argument("--level", choices=tuple(LEVELS), help="compare/rank: the level of --run")
    p.add_argument("--run", type=Path, help="compare/rank: a finished default study run of --level")
    p.add_argument("--seconds", type=float, default=None,
                   help="compare: training seconds of each model (default: the run's final.seconds)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="compare: seeds (medians)")
    p.add_argument("--member", default=None,
                   help="compare: this evaluated candidate's key instead of the best member (exploratory, "
                        "written under 'exploratory')")
    p.add_argument("--evolved-adam", type=float, default=None,
                   help="compare: train the evolved model with Adam at this rate instead of its genes (exploratory)")
    p.add_argument("--cells", type=int, default=20, help="rank: candidates retrained")
    p.add_argument("--rank-seconds", type=float, default=120.0, help="rank: training seconds of each candidate")
    p.add_argument("--units", type=int, nargs="+", default=[128, 256], help="speed: state sizes")
    p.add_argument("--batch", type=int, default=64, help="speed: windows per training step")
    p.add_argument("--seq-len", type=int, default=100, help="speed: tokens per window")
    p.add_argument("--rounds", type=int, default=7, help="speed: timed rounds (medians)")
    p.add_argument("--warmup", type=int, default=2, help="speed: untimed steps per model first")
    p.add_argument("--seed", type=int, default=0, help="speed/rank: seed")
    p.add_argument("--out", type=Path, default=Path("runs/lm_user_view"), help="user-view: where the study runs go")
    p.add_argument("--grid-seconds", type=float, default=90.0, help="user-view: seconds of each learning-rate trial")
    p.add_argument("--text", type=Path, default=None, help="user-view: a UTF-8 file instead of the level's corpus")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    if args.part == "user-view":
        if args.level is None:
            print("error: --part user-view needs --level", file=sys.stderr)
            return 2
        if args.text is not None and not args.text.is_file():
            print(f"error: --text {args.text}: no such file", file=sys.stderr)
            return 2
        out = args.out if args.text is None else args.out / args.text.stem
        result = user_view(args.level, seeds=args.seeds, out=out, grid_seconds=args.grid_seconds, text=args.text)
        machine = _common.machine_info() | {"affinity": sorted(os.sched_getaffinity(0))}
        where = ("user_view", args.level) if args.text is None else ("user_view", "text", f"{args.text.name} {args.level}")
        path = update_result("lm", {}, replace={where: result | {"machine": machine}})
        print(json.dumps({k: v for k, v in result.items() if k != "per_seed"}, indent=1), f"\nwrote {path}")
        return 0
    if args.part == "speed":
        result = speed(units=args.units, batch=args.batch, seq_len=args.seq_len, rounds=args.rounds,
                       warmup=args.warmup, seed=args.seed)
        path = update_result("lm", {"speed": {result["backend"]: result}})
        print(f"wrote speed.{result['backend']} of {path}")
        return 0
    if args.level is None or args.run is None:
        print(f"error: --part {args.part} needs --level and --run", file=sys.stderr)
        return 2
    if not (args.run / "hall_of_fame.json").is_file():
        print(f"error: --run {args.run} is not a finished study run (no hall_of_fame.json)", file=sys.stderr)
        return 2
    task_name, _, name = LEVELS[args.level]
    config = json.loads((args.run / "config.json").read_text())["config"]
    if config.get("task") != task_name:
        print(f"error: --run {args.run} is a run of task {config.get('task')!r}, not {task_name!r} (--level {args.level})",
              file=sys.stderr)
        return 2
    machine = _common.machine_info() | {"affinity": sorted(os.sched_getaffinity(0))}
    if args.part == "rank":
        # resumable: the retrained cells of this run, seconds and seed (outside the results)
        progress = args.run / f"lm_rank_{args.rank_seconds:g}s_seed{args.seed}.json"
        result = rank(args.run, cells=args.cells, seconds=args.rank_seconds, seed=args.seed, progress=progress)
        path = update_result("lm", {"rank_correlation": {args.level: result["spearman"]}},
                             replace={("details", "rank", args.level): result | {"machine": machine}})
        progress.unlink(missing_ok=True)
        print(f"{args.level}: Spearman {result['spearman']:.3f} over {result['cells']} cells; wrote {path}")
        return 0
    from evokeras.engine.config import load_stored

    seconds = args.seconds if args.seconds is not None else load_stored(config).final.seconds
    if not seconds:
        print(f"error: --seconds: the run {args.run} has no final.seconds; give --seconds", file=sys.stderr)
        return 2
    c = compare(args.run, seconds=float(seconds), seeds=args.seeds, member=args.member, evolved_adam=args.evolved_adam)
    ev, ls = c["evolved"], c["lstm"]
    summary: dict[str, Any] = {
        f"evolved_{name}": median([r["test_metric"] for r in ev]),
        f"lstm_{name}": median([r["test_metric"] for r in ls]),
        "params": {"evolved": ev[0]["params"], "lstm": ls[0]["params"], "ratio": ls[0]["params"] / ev[0]["params"]},
        "train_seconds": float(seconds),
        "evolved_ms_per_char" if args.level == "char" else "evolved_ms_per_word": median([r["ms_per_token"] for r in ev]),
        "lstm_ms_per_char" if args.level == "char" else "lstm_ms_per_word": median([r["ms_per_token"] for r in ls]),
        "lstm_units": c["lstm_units"], "lstm_learning_rate": c["lstm_learning_rate"],
        "per_seed": {"evolved": [r["test_metric"] for r in ev], "lstm": [r["test_metric"] for r in ls]},
        "search_wall_seconds": c["search_wall_seconds"],
    }
    ratio = summary[f"evolved_{name}"] / summary[f"lstm_{name}"]
    targets = ({"char_evolved_lower_bpc": ratio < 1.0,
                "char_no_more_time": summary["evolved_ms_per_char"] <= summary["lstm_ms_per_char"],
                "char_baseline_good": summary["lstm_test_bpc"] <= 2.1}
               if args.level == "char" else
               {"word_evolved_5pct_lower_perplexity": ratio <= 0.95, "word_baseline_good": summary["lstm_test_perplexity"] <= 160})
    if args.member is not None or args.evolved_adam is not None:  # kept apart from the headline and targets
        label = (args.member or c["key"]) + (f" adam {args.evolved_adam:g}" if args.evolved_adam is not None else "")
        path = update_result("lm", {}, replace={("exploratory", args.level, label):
                                                summary | {"targets": targets, "details": c | {"machine": machine}}})
    else:
        path = update_result("lm", {"seeds": args.seeds, "targets": targets},
                             replace={(args.level,): summary, ("details", args.level): c | {"machine": machine}})
    print(json.dumps(summary | {"targets": targets}, indent=1), f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
