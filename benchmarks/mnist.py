"""MNIST benchmark: evokeras's default study against KerasTuner at equal wall time.

The benchmark runs in parts (``--part``), each merged into
``benchmarks/results/mnist.json`` with the machine description (and load) of its own
sitting, so that the whole benchmark (hours of CPU) can be built up over several sittings.
``--task fashion_mnist`` runs the same parts on Fashion-MNIST (key ``fashion_mnist``).

Parts:

* ``evokeras`` -- the default study (``studies/mnist.py --budget default``) with
  ``--seed N``, or a finished run given with ``--run DIR`` (and its ``--wall-seconds``).
  Per seed (``per_seed``): the test accuracy of the front's **most accurate member by
  validation error** (the rule is fixed in advance and never looks at the test split),
  wall seconds (search + final models + plots), the fastest finished member with >=
  98.5% test accuracy and the ratio of its inference time to the best member's,
  ``time_to_99_s`` (the first finished member that reaches 99.0% test accuracy: seconds
  from the start of the search until it was evaluated, plus its final training), the
  evaluation time split and ``overhead_fraction`` (search wall time outside
  build/fit/evaluate/timing). ``evokeras`` holds the medians over the seeds run so far.
* ``quick`` -- the study's ``quick`` budget (a short lineage search, its most accurate
  member trained on from its search weights for a fixed time) on ``--seeds``:
  per seed the end-to-end wall seconds, the test accuracy and the share of the model's
  training steps the search did; ``quick.median_time_to_99_s`` (also
  ``time_to_99_quick_s``) is the median over the seeds of that wall time where the
  model reached 99.0% (a seed that did not counts as never). It answers "how long until
  I hold a 99% model" as a user would run it; ``time_to_99_s`` keeps its definition on
  the default run.
* ``kerastuner-random`` / ``kerastuner-hyperband`` -- KerasTuner's RandomSearch and
  Hyperband over a comparable convolutional space (1-3 conv blocks of 8-64 filters,
  kernel 3/5, optional batch norm and pooling, dense 16-256, dropout, learning rate),
  trials on the full 55,000-image training split as its users run them, scored on the
  validation split; each stops creating trials when evokeras's median search time is
  spent, then its best configuration is retrained with evokeras's final protocol (train +
  validation, ``final.epochs``, cosine learning-rate decay, the final augmentation) and
  scored once on the test split. Its wall time includes that retraining.
  ``--retrain-only`` keeps a recorded trial phase and retrains its best configuration
  under the current final protocol (when that protocol changed).
* ``memory`` -- RSS over 200 consecutive small evaluations after 10 warm-up ones, in
  this process (``serial``) and in the default study's recycled worker process
  (``recycled``: the largest worker RSS minus the first worker's RSS after warm-up).
  ``rss_growth_mb`` is that of the default configuration (recycled).
* ``final-start`` -- a finished lineage run's most accurate member (``--run DIR``, its
  ``--seed``) finished twice under the run's final protocol, continuing from its search
  weights and from scratch (same seed and seconds): does continuing pay? (key
  ``final_start``).
* ``rank`` -- Spearman rank correlation between the search's low-fidelity validation
  error and a full-budget one (every candidate retrained 3 epochs on the full
  55,000-image split, the search's training path) on 30 candidates of a run (``--run DIR``),
  spread over its validation errors below the front constraint.

Usage::

    python benchmarks/mnist.py --part evokeras --seed 0 [--run DIR --wall-seconds S]
    python benchmarks/mnist.py --part quick --seeds 0 1 2
    python benchmarks/mnist.py --part kerastuner-random [--retrain-only]
    python benchmarks/mnist.py --part memory [--recycled-only]
    python benchmarks/mnist.py --part rank --run DIR
    python benchmarks/mnist.py --task fashion_mnist --part evokeras --seed 0
    python benchmarks/mnist.py --task fashion_mnist --part final-start --seed 0 --run runs/fashion_mnist-default-seed0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_info, read_result, spearman, study_budgets, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("evokeras", "quick", "kerastuner-random", "kerastuner-hyperband", "memory", "rank", "final-start")
FAST_MEMBER_ACCURACY = 0.985
TIME_TO_ACCURACY = 0.99


def _evaluations(run_dir: Path) -> list[Any]:
    from evokeras.engine.store import RunStore

    with RunStore(run_dir / "run.db", readonly=True) as store:
        return [r for _, r in store.evaluations()]


def evokeras_figures(run_dir: Path, wall_seconds: float | None) -> dict:
    """The figures of one finished default-budget run (see the module docstring)."""
    import sqlite3

    from evokeras.engine.store import RunStore

    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    members = [m for m in hof["members"] if m.get("status", "ok") == "ok"]
    best = min(members, key=lambda m: m["objectives"]["val_error"])  # validation only
    fast_pool = [m for m in members if m["test_accuracy"] >= FAST_MEMBER_ACCURACY]
    fast = min(fast_pool, key=lambda m: m["test_exec_time"]) if fast_pool else None
    with RunStore(run_dir / "run.db", readonly=True) as store:
        search_wall = float(store.latest_checkpoint()["elapsed"])
        records = [r for _, r in store.evaluations()]
    with sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True) as db:
        finished = dict(db.execute("SELECT key, finished FROM evaluations").fetchall())
    first_key = min(finished, key=finished.get)  # the search started when its first evaluation did
    first = finished[first_key] - next(r.times.get("total", 0.0) for r in records if r.key == first_key)
    split = {part: sum(r.times.get(part, 0.0) for r in records) for part in ("build", "fit", "evaluate", "timing")}
    reached = [finished[m["key"]] - first + m.get("final_fit_seconds", 0.0)
               for m in members if m["test_accuracy"] >= TIME_TO_ACCURACY]
    learning = sum(1 for r in records if r.status == "ok" and r.metrics.get("val_error", 1.0) < 0.1)
    near = [m for m in members if m["test_accuracy"] >= best["test_accuracy"] - 0.01]
    quickest = min(near, key=lambda m: m["test_exec_time"])  # within 1 point of the best, the fastest
    return {
        "fast_member": {"key": quickest["key"], "time_ratio": quickest["test_exec_time"] / best["test_exec_time"],
                        "accuracy_gap": best["test_accuracy"] - quickest["test_accuracy"]},
        "accumulated_training_share": accumulated_share(members),
        "best_test_accuracy": best["test_accuracy"],
        "best_key": best["key"],
        "best_val_error": best["objectives"]["val_error"],
        "best_exec_time": best["test_exec_time"],
        "best_params": best["metrics"].get("params"),
        "finalized_test_accuracies": {m["key"]: m["test_accuracy"] for m in members},
        "wall_seconds": wall_seconds,
        "search_wall_seconds": search_wall,
        "final_fit_seconds": sum(m.get("final_fit_seconds", 0.0) for m in members),
        "evaluations": len(records),
        "evaluations_below_10pct_val_error": learning,
        "front_size": len(hof["members"]),
        "finalized_members": len(members),
        "fast_test_accuracy": fast["test_accuracy"] if fast else None,
        "fast_key": fast["key"] if fast else None,
        "fast_time_ratio": (fast["test_exec_time"] / best["test_exec_time"]) if fast else None,
        "time_to_99_s": min(reached) if reached else None,
        "evaluation_seconds": split,
        "overhead_fraction": (search_wall - sum(split.values())) / search_wall,
        "run_dir": str(run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir),
    }


def accumulated_share(members: list[dict]) -> float | None:
    """The median over finished members of the share of their training steps the search
    had done (``search_steps / (search_steps + final_steps)``; 0 for a member trained
    from scratch); ``None`` when the run recorded no steps (before 0.12)."""
    shares = [m.get("search_steps", 0.0) / (m.get("search_steps", 0.0) + m["final_steps"])
              for m in members if m.get("final_steps")]
    return statistics.median(shares) if shares else None


def run_evokeras(task: str, out: Path, seed: int, budget: str = "default") -> float:
    """Run the study's ``budget`` (as a user runs it) and return its wall seconds."""
    cmd = [sys.executable, str(ROOT / "studies" / "mnist.py"), "--budget", budget, "--out", str(out),
           "--seed", str(seed), "--no-progress"]
    if task != "mnist":
        cfg = Path(tempfile.mkdtemp(prefix="evokeras-bench-")) / "task.json"
        cfg.write_text(json.dumps({"task": task}))
        cmd += ["--config", str(cfg)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def medians(per_seed: list[dict]) -> dict:
    """Median of each numeric figure over the seeds (``seeds`` lists them)."""
    out: dict[str, Any] = {"seeds": [e["seed"] for e in per_seed]}
    for key in per_seed[0]:
        values = [e.get(key) for e in per_seed]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = statistics.median(values)
        elif key == "time_to_99_s":  # a seed that never reached it counts as never
            out[key] = statistics.median([v if v is not None else float("inf") for v in values])
    return out


def final_retrain(build: Any, lr: float, data: Any, epochs: int, augment: int, seed: int) -> tuple[float, float]:
    """evokeras's final protocol for a KerasTuner model: train + validation, ``epochs``
    at batch 128, cosine decay from ``lr``, images shifted by up to ``augment`` pixels
    (a new draw each epoch); returns (test accuracy, fit seconds)."""
    import keras
    import numpy as np

    from evokeras.data import random_shift

    keras.utils.set_random_seed(seed)
    model = build()
    x_all, y_all = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])
    steps = epochs * -(-len(x_all) // 128)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.fit(random_shift(x_all, augment, rng), y_all, batch_size=128, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
    fit = time.perf_counter() - t0
    return float(model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]), fit


def kerastuner_model(hp: Any) -> Any:
    """The KerasTuner side's model space."""
    import keras

    inputs = keras.Input((28, 28, 1))
    x = inputs
    for i in range(hp.Int("blocks", 1, 3)):
        x = keras.layers.Conv2D(hp.Choice(f"filters_{i}", [8, 16, 32, 64]), hp.Choice(f"kernel_{i}", [3, 5]),
                                padding="same", activation=hp.Choice(f"act_{i}", ["relu", "elu", "swish"]))(x)
        if hp.Boolean(f"bn_{i}"):
            x = keras.layers.BatchNormalization()(x)
        if hp.Boolean(f"pool_{i}", default=True):
            x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Flatten()(x) if hp.Choice("reduce", ["flatten", "gap"]) == "flatten" else keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(hp.Choice("units", [16, 32, 64, 128, 256]), activation="relu")(x)
    x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1))(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run_kerastuner(kind: str, task: str, search_seconds: float, seed: int, recorded: dict | None = None) -> dict:
    """One KerasTuner search (or, with ``recorded``, only the retraining of its best
    configuration under the current final protocol)."""
    import keras
    import keras_tuner as kt

    from evokeras.engine.config import SearchConfig
    from evokeras.tasks import make_task

    cfg = SearchConfig.from_dict(study_budgets("mnist")["default"])
    ev = cfg.budget()
    task_obj = make_task(task)
    d = task_obj.data(train_size=None, val_limit=None, test_limit=None)
    start = time.perf_counter()
    if recorded is None:
        deadline = start + search_seconds
        tmp = tempfile.mkdtemp(prefix=f"kt-{kind}-")
        common = {"objective": "val_accuracy", "seed": seed, "directory": tmp, "project_name": kind, "overwrite": True}
        if kind == "random":
            tuner = kt.RandomSearch(kerastuner_model, max_trials=10_000, **common)
        else:
            tuner = kt.Hyperband(kerastuner_model, max_epochs=ev.epochs * 3, factor=3, hyperband_iterations=1000, **common)
        populate = tuner.oracle.populate_space

        def populate_until_deadline(trial_id: str) -> dict:
            if time.perf_counter() >= deadline:
                return {"status": "STOPPED", "values": None}
            return populate(trial_id)

        tuner.oracle.populate_space = populate_until_deadline
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=max(ev.patience, 1), restore_best_weights=True)
        # As KerasTuner's users run it: trials on the full 55,000-image training split,
        # scored on the 5,000-image validation split.
        fit_kwargs: dict[str, Any] = {"validation_data": (d.x_val, d.y_val), "callbacks": [stop], "verbose": 0}
        if kind == "random":
            fit_kwargs["epochs"] = ev.epochs
        tuner.search(d.x_train, d.y_train, **fit_kwargs)
        trials = len(tuner.oracle.trials)
        best_hp = tuner.get_best_hyperparameters(1)[0]
        search_wall = time.perf_counter() - start
        values = dict(best_hp.values)
    else:
        trials, search_wall, values = recorded["trials"], recorded["search_wall_seconds"], recorded["best_hyperparameters"]
        best_hp = kt.HyperParameters()
        kerastuner_model(best_hp)  # registers the space
        for name, value in values.items():
            if name in best_hp.values:
                best_hp.values[name] = value
    keras.utils.clear_session()
    augment = cfg.augment(task_obj)
    acc, fit = final_retrain(lambda: kerastuner_model(best_hp), values["lr"], d, cfg.final.epochs, augment, seed)
    return {"best_test_accuracy": acc, "wall_seconds": search_wall + fit, "search_wall_seconds": search_wall,
            "final_fit_seconds": fit, "trials": trials, "best_hyperparameters": values,
            "protocol": (f"trials on the full 55,000-image split for {search_seconds:.0f} s"
                         + (" (a trial phase of an earlier sitting, retrained now)" if recorded
                            else " (evokeras's median search time)")
                         + f", best configuration retrained {cfg.final.epochs} epochs on train + validation, "
                         f"cosine decay, shifts of up to {augment} px")}


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory(task: str, n: int = 200, warmup: int = 10, seed: int = 0, serial: bool = True) -> dict:
    """RSS growth over ``n`` small evaluations: in this process, and in a worker process
    recycled as the default study's is."""
    import numpy as np

    from evokeras.engine.config import SearchConfig
    from evokeras.engine.parallel import ProcessBackend
    from evokeras.tasks import make_task
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget
    from evokeras.variation.network import random_genome

    task_obj = make_task(task)
    ev = Evaluator(task_obj, Budget(epochs=1, train_samples=512, val_samples=256, patience=0, time_repeats=1),
                   {"val_error": -1.0, "exec_time": -1.0}, seed=seed)
    space = task_obj.space.replace(max_params=50_000)
    rng = np.random.default_rng(seed)
    genomes = [random_genome(rng, space) for _ in range(warmup + n)]
    out: dict[str, Any] = {"evaluations": n, "warmup": warmup}
    recycle = SearchConfig().parallel.recycle_after
    t0 = time.perf_counter()
    with ProcessBackend(1, gpus=0, recycle_after=recycle) as backend:
        samples = []
        for i, g in enumerate(genomes):
            backend.map(ev, [g])
            worker = backend._pool[0]  # the live worker (None right after a recycle)
            if i >= warmup and worker is not None and worker.proc.is_alive():
                samples.append(rss_mb(worker.proc.pid))
    out["recycled"] = {"recycle_after": recycle, "rss_first_mb": samples[0], "rss_max_mb": max(samples),
                       "rss_growth_mb": max(samples) - samples[0], "seconds": time.perf_counter() - t0}
    out["rss_growth_mb"] = out["recycled"]["rss_growth_mb"]
    if not serial:
        return out
    t0 = time.perf_counter()
    before = None
    for i, g in enumerate(genomes):
        if i == warmup:
            before = rss_mb()
        ev(g)
    after = rss_mb()
    out["serial"] = {"rss_before_mb": before, "rss_after_mb": after, "rss_growth_mb": after - before,
                     "seconds": time.perf_counter() - t0}
    return out


def rank_correlation(task: str, run_dir: Path, n: int = 30, epochs: int = 3, seed: int = 0) -> dict:
    """Spearman correlation of low-fidelity (the run's) and full-budget validation errors."""
    import numpy as np

    from evokeras.engine.config import load_stored
    from evokeras.genomes.network import Genome
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget

    cfg = load_stored(json.loads((run_dir / "config.json").read_text())["config"])
    task_obj = cfg.build_task()
    limit = cfg.max_val_error if cfg.max_val_error is not None else task_obj.default_max_val_error
    ok = sorted((r for r in _evaluations(run_dir) if r.status == "ok" and r.metrics.get("val_error", 1.0) < limit),
                key=lambda r: r.metrics["val_error"])
    picks = [ok[int(i)] for i in np.unique(np.linspace(0, len(ok) - 1, n).round().astype(int))]
    full = Evaluator(task_obj, Budget(epochs=epochs, train_samples=None, val_samples=None, patience=0, seconds=3000.0,
                                      timeout=3600, time_repeats=1), {"val_error": -1.0}, seed=seed,
                     settings=cfg.train_settings())
    low, high, t0 = [], [], time.perf_counter()
    for r in picks:
        res = full(Genome.from_dict(r.genome))
        if res.ok:
            low.append(r.metrics["val_error"])
            high.append(res.objectives[0])

    rho = spearman(low, high)
    return {"spearman": rho, "candidates": len(low), "full_budget": f"{epochs} epochs on the full 55,000-image split",
            "low_fidelity": cfg.budget().to_dict(), "low_val_error": low, "full_val_error": high,
            "seconds": time.perf_counter() - t0, "run_dir": str(run_dir)}


def final_start(run_dir: Path, final_keys: dict[str, Any]) -> dict:
    """The most accurate member (by search validation error) of a finished lineage run,
    finished twice under the run's final protocol (``final_keys`` overriding keys of its
    ``final`` section): continuing from its search weights, and from scratch (same seed,
    same settings); the test accuracy and steps of each."""
    import dataclasses
    import tempfile

    from evokeras.engine.run import Run
    from evokeras.training.context import FinalContext
    from evokeras.training.evaluator import release_keras_seed, seed_keras
    from evokeras.training.inheritance import WeightCache
    from evokeras.training.records import FINAL_SEED_OFFSET, derive_seed

    cfg = Run.read_config(run_dir)
    cfg = dataclasses.replace(cfg, final=dataclasses.replace(cfg.final, **final_keys))
    task = cfg.build_task()
    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    best = min((m for m in hof["members"] if m.get("status") == "ok"), key=lambda m: m["objectives"]["val_error"])
    genome = task.genome_from_dict(best["genome"])
    budget = cfg.budget()
    out: dict[str, Any] = {"key": best["key"], "run_dir": str(run_dir), "final": dataclasses.asdict(cfg.final),
                           "params": best["metrics"].get("params")}
    for start, weights in (("search", (WeightCache(run_dir / "weights"), best["key"])), ("scratch", None)):
        seed = derive_seed(cfg.seed + FINAL_SEED_OFFSET, genome.key)
        seed_keras(seed)
        final = FinalContext(epochs=cfg.final.epochs, train_samples=cfg.final.train_samples, seed=seed, run_seed=cfg.seed,
                             time_batch=budget.time_batch, time_repeats=budget.time_repeats, schedule=cfg.final.schedule,
                             augment=cfg.augment(task), seconds=cfg.final.seconds, weights=weights)
        with tempfile.TemporaryDirectory() as tmp:
            entry = task.final_model(genome, final, Path(tmp) / "model.keras")
        release_keras_seed()
        out[start] = {k: entry.get(k) for k in ("final_start", "test_accuracy", "final_steps", "search_steps",
                                                 "final_fit_seconds")}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=PARTS, required=True)
    p.add_argument("--task", choices=("mnist", "fashion_mnist"), default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recycled-only", action="store_true",
                   help="memory: measure the recycled worker only (keep the recorded in-process figure)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="quick: the seeds to run")
    p.add_argument("--run", type=Path, default=None, help="a finished default-budget run to read (evokeras, rank)")
    p.add_argument("--wall-seconds", type=float, default=None, help="that run's end-to-end wall time")
    p.add_argument("--retrain-only", action="store_true", help="kerastuner: retrain the recorded best configuration")
    p.add_argument("--search-seconds", type=float, default=None, help="kerastuner: trial time (default: evokeras's median)")
    p.add_argument("--final", default="{}", help="final-start: JSON keys overriding the run's final section")
    p.add_argument("--label", default="", help="final-start: a label for the result's key")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    merged = read_result("mnist")
    section = merged if args.task == "mnist" else merged.setdefault(args.task, {})
    machine = machine_info()
    if args.part == "evokeras":
        run_dir, wall = args.run, args.wall_seconds
        if run_dir is None:
            run_dir = ROOT / "runs" / f"{args.task}-default-seed{args.seed}"
            wall = run_evokeras(args.task, run_dir, args.seed)
        figures = {"seed": args.seed, **evokeras_figures(run_dir.resolve(), wall), "machine": machine}
        if any("accumulated_training_share" not in e for e in section.get("per_seed", [])):  # runs of 0.11 and before
            section["evokeras_0_11"] = {"evokeras": section.pop("evokeras", None), "per_seed": section.pop("per_seed")}
        per_seed = [e for e in section.get("per_seed", []) if e["seed"] != args.seed] + [figures]
        section["per_seed"] = sorted(per_seed, key=lambda e: e["seed"])
        section["evokeras"] = {**medians(section["per_seed"]), "protocol": "0.12: studies/mnist.py --budget default (lineage); "
                               "medians over seeds; best member = lowest search validation error"}
        for key in ("overhead_fraction", "time_to_99_s", "accumulated_training_share"):
            section[key] = section["evokeras"].get(key)
        fast = [e["fast_member"] for e in section["per_seed"] if "fast_member" in e]
        if fast:
            section["fast_member"] = {k: statistics.median(f[k] for f in fast) for k in ("time_ratio", "accuracy_gap")}
        section["seeds"] = section["evokeras"]["seeds"]
        print(json.dumps({k: figures[k] for k in ("seed", "best_test_accuracy", "wall_seconds", "fast_test_accuracy",
                                                  "fast_time_ratio", "time_to_99_s", "overhead_fraction", "evaluations")}))
    elif args.part == "final-start":
        if args.run is None:
            raise SystemExit("--part final-start needs --run DIR (a finished lineage run)")
        figures = final_start(args.run.resolve(), json.loads(args.final))
        section.setdefault("final_start", {})[f"{args.seed}{'-' + args.label if args.label else ''}"] = {**figures, "machine": machine}
        print(json.dumps(figures))
    elif args.part == "quick":
        taken = [d for d in (ROOT / "runs" / f"{args.task}-quick-seed{seed}" for seed in args.seeds) if d.exists()]
        if taken:
            raise SystemExit(f"--part quick: {taken[0]} exists (move it away to run that seed again)")
        runs = []
        for seed in args.seeds:
            run_dir = ROOT / "runs" / f"{args.task}-quick-seed{seed}"
            wall = run_evokeras(args.task, run_dir, seed, budget="quick")
            (member,) = [m for m in json.loads((run_dir / "hall_of_fame.json").read_text())["members"]
                         if m.get("status", "ok") == "ok"]
            runs.append({"seed": seed, "wall_seconds": wall, "test_accuracy": member["test_accuracy"],
                         "params": member["metrics"].get("params"), "final_fit_seconds": member.get("final_fit_seconds"),
                         "evaluations": len(_evaluations(run_dir)), "run_dir": str(run_dir.relative_to(ROOT)),
                         "accumulated_training_share": accumulated_share([member])})
        reached = [r["wall_seconds"] if r["test_accuracy"] >= TIME_TO_ACCURACY else float("inf") for r in runs]
        section["quick"] = {"per_seed": runs, "seeds": args.seeds,
                            "test_accuracy": statistics.median(r["test_accuracy"] for r in runs),
                            "wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
                            "protocol": "0.12: studies/mnist.py --budget quick (lineage search of 6 + 6 stopped after the "
                                        "generation past 40 s, its most accurate member by validation error trained "
                                        "100 s more from its search weights); wall seconds end to end", "machine": machine}
        median_reached = statistics.median(reached)
        section["quick"]["median_time_to_99_s"] = median_reached if median_reached != float("inf") else None
        section["time_to_99_quick_s"] = median_reached if median_reached != float("inf") else None
        print(json.dumps({"time_to_99_quick_s": section["time_to_99_quick_s"], "runs": runs}))
    elif args.part.startswith("kerastuner-"):
        kind = args.part.removeprefix("kerastuner-")
        key = f"kerastuner_{kind}"
        recorded = section.get(key) if args.retrain_only else None
        if args.retrain_only and not recorded:
            raise SystemExit(f"--retrain-only: no recorded {key} in {RESULTS_DIR / 'mnist.json'}")
        if recorded is not None and "search_wall_seconds" not in recorded:
            if args.search_seconds is None:
                raise SystemExit(f"--retrain-only: {key} records no search time; give its --search-seconds")
            recorded = {**recorded, "search_wall_seconds": args.search_seconds}
        seconds = args.search_seconds or (recorded or {}).get("search_wall_seconds") \
            or section.get("evokeras", {}).get("search_wall_seconds")
        if not seconds:
            raise SystemExit("no evokeras search time to match: run --part evokeras first or give --search-seconds")
        section[key] = {**run_kerastuner(kind, args.task, seconds, args.seed, recorded), "machine": machine}
        print(json.dumps({k: section[key][k] for k in ("best_test_accuracy", "wall_seconds", "trials")}))
    elif args.part == "memory":
        mem = memory(args.task, seed=args.seed, serial=not args.recycled_only)
        if args.recycled_only and "serial" in section.get("memory", {}):
            mem["serial"] = {**section["memory"]["serial"], "note": "recorded by an earlier sitting (--recycled-only)"}
        section["memory"] = {**mem, "machine": machine}
        section["rss_growth_mb"] = mem["rss_growth_mb"]
        print(json.dumps({"recycled": mem["recycled"], "serial": mem.get("serial")}))
    elif args.part == "rank":
        if args.run is None:
            raise SystemExit("--part rank needs --run DIR")
        rank = rank_correlation(args.task, args.run.resolve(), seed=args.seed)
        section["rank_correlation"] = {**rank, "machine": machine}
        section["rank_correlation_low_vs_full"] = rank["spearman"]
        print(json.dumps({k: rank[k] for k in ("spearman", "candidates", "seconds")}))
    priors = RESULTS_DIR / "priors.json"
    if priors.is_file():
        merged["generation0_learning_share"] = json.loads(priors.read_text())["generation0_learning_share"]
    merged["machine"] = machine
    print(f"wrote {write_result('mnist', merged)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
