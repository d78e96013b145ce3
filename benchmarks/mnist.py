"""MNIST benchmark: evokeras's default study against KerasTuner at equal wall time.

Figures (written to ``benchmarks/results/mnist.json``):

* ``evokeras``: the default study (``studies/mnist.py --budget default``), or an already
  finished run given with ``--run DIR``: best test accuracy of the front, wall seconds,
  and the fastest front member with >= 98.5% test accuracy with the ratio of its
  inference time to that of the most accurate member.
* ``kerastuner_random`` / ``kerastuner_hyperband``: KerasTuner's RandomSearch and
  Hyperband over a comparable convolutional space (1-3 conv blocks of 8-64 filters,
  kernel 3/5, optional batch norm and pooling, dense 16-256, dropout, learning rate),
  trials on the full 55,000-image training split as its users run them, scored on the
  validation split; each stops creating trials when evokeras's search time is spent,
  then its best configuration is retrained with evokeras's final protocol (train +
  validation, ``final_epochs``, cosine learning-rate decay) and scored once on the test
  split. Its wall time includes that retraining.
* ``overhead_fraction``: wall time of the evokeras search outside fit/evaluate, over
  the search's wall time.
* ``rss_growth_mb``: process RSS growth across 200 consecutive small evaluations (after
  10 warm-up evaluations).

Usage::

    python benchmarks/mnist.py [--run DIR] [--seed N] [--skip-kerastuner] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_info, study_budgets, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def evokeras_figures(run_dir: Path, wall_seconds: float | None) -> tuple[dict, float]:
    from evokeras.engine.store import RunStore

    hof = json.loads((run_dir / "hall_of_fame.json").read_text())
    members = [m for m in hof["members"] if m.get("status", "ok") == "ok"]
    best = max(members, key=lambda m: m["test_accuracy"])
    fast_pool = [m for m in members if m["test_accuracy"] >= 0.985]
    fast = min(fast_pool, key=lambda m: m["test_exec_time"]) if fast_pool else None
    with RunStore(run_dir / "run.db", readonly=True) as store:
        state = store.latest_checkpoint()
        search_wall = float(state["elapsed"])
        inside = sum(r.times.get("fit", 0.0) + r.times.get("evaluate", 0.0) for _, r in store.evaluations())
        n_evals = store.count_evaluations()
    final_fit = sum(m.get("final_fit_seconds", 0.0) for m in members)
    out = {
        "best_test_accuracy": best["test_accuracy"],
        "best_key": best["key"],
        "best_exec_time": best["test_exec_time"],
        "wall_seconds": wall_seconds,
        "search_wall_seconds": search_wall,
        "final_fit_seconds": final_fit,
        "evaluations": n_evals,
        "front_size": len(hof["members"]),
        "finalized_members": len(members),
        "fast_test_accuracy": fast["test_accuracy"] if fast else None,
        "fast_key": fast["key"] if fast else None,
        "fast_time_ratio": (fast["test_exec_time"] / best["test_exec_time"]) if fast else None,
        "run_dir": str(run_dir),
    }
    return out, (search_wall - inside) / search_wall


def run_evokeras(out: Path, seed: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "studies" / "mnist.py"), "--budget", "default", "--out", str(out),
         "--seed", str(seed), "--no-progress"],
        check=True,
    )
    return time.perf_counter() - t0



def run_kerastuner(kind: str, wall_seconds: float, seed: int, final_epochs: int | None = None) -> dict:
    import keras
    import keras_tuner as kt
    import numpy as np

    from evokeras.data import mnist_splits

    budget = study_budgets("mnist")["default"]
    ev = budget["evaluation"]
    d = mnist_splits()
    # As KerasTuner's users run it: trials on the full 55,000-image training split, scored
    # on the 5,000-image validation split (evokeras's candidates see 10,000 images).
    x_tr, y_tr = d.x_train, d.y_train
    x_va, y_va = d.x_val, d.y_val

    def build(hp: kt.HyperParameters) -> keras.Model:
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

    start = time.perf_counter()
    deadline = start + wall_seconds
    tmp = tempfile.mkdtemp(prefix=f"kt-{kind}-")
    common = {"objective": "val_accuracy", "seed": seed, "directory": tmp, "project_name": kind, "overwrite": True}
    if kind == "random":
        tuner = kt.RandomSearch(build, max_trials=10_000, **common)
    else:
        tuner = kt.Hyperband(build, max_epochs=ev["epochs"] * 3, factor=3, hyperband_iterations=1000, **common)
    populate = tuner.oracle.populate_space

    def populate_until_deadline(trial_id: str) -> dict:
        if time.perf_counter() >= deadline:
            return {"status": "STOPPED", "values": None}
        return populate(trial_id)

    tuner.oracle.populate_space = populate_until_deadline
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=max(ev["patience"], 1), restore_best_weights=True)
    fit_kwargs = {"validation_data": (x_va, y_va), "callbacks": [stop], "verbose": 0}
    if kind == "random":
        fit_kwargs["epochs"] = ev["epochs"]
    tuner.search(x_tr, y_tr, **fit_kwargs)
    trials = len(tuner.oracle.trials)
    best_hp = tuner.get_best_hyperparameters(1)[0]
    keras.utils.clear_session()
    model = build(best_hp)
    # evokeras's final-training protocol: train + validation, final_epochs, cosine decay
    # from the found learning rate (so that the comparison is of the searches).
    epochs = final_epochs or budget["final_epochs"]
    x_all, y_all = np.concatenate([d.x_train, d.x_val]), np.concatenate([d.y_train, d.y_val])
    steps = epochs * -(-len(x_all) // 128)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(best_hp.get("lr"), steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_all, y_all, batch_size=128, epochs=epochs, verbose=0)
    acc = float(model.evaluate(d.x_test, d.y_test, verbose=0, return_dict=True)["accuracy"])
    return {"best_test_accuracy": acc, "wall_seconds": time.perf_counter() - start, "trials": trials,
            "best_hyperparameters": best_hp.values}


def rss_growth_mb(n: int = 200, warmup: int = 10, seed: int = 0) -> dict:
    import numpy as np

    from evokeras.tasks import make_task
    from evokeras.training.evaluator import Evaluator
    from evokeras.training.records import Budget
    from evokeras.variation.network import random_genome

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    ev = Evaluator(make_task("mnist"), Budget(epochs=1, train_samples=512, val_samples=256, patience=0, time_repeats=1),
                   {"val_error": -1.0, "exec_time": -1.0}, seed=seed)
    rng = np.random.default_rng(seed)
    space = ev.task.space.replace(max_params=50_000)
    before = None
    t0 = time.perf_counter()
    for i in range(warmup + n):
        if i == warmup:
            before = rss_mb()
        ev(random_genome(rng, space))
    after = rss_mb()
    return {"rss_before_mb": before, "rss_after_mb": after, "rss_growth_mb": after - before,
            "evaluations": n, "seconds": time.perf_counter() - t0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None, help="a finished default-budget run to read instead of running one")
    p.add_argument("--wall-seconds", type=float, default=None, help="evokeras's wall time when --run is given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-kerastuner", action="store_true")
    p.add_argument("--kerastuner", nargs="+", choices=("random", "hyperband"), default=["random", "hyperband"],
                   help="which KerasTuner searches to run (each part is merged into the results file)")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    run_dir = args.run
    wall = args.wall_seconds
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="evokeras-mnist-")) / "run"
        wall = run_evokeras(run_dir, args.seed)
    evo, overhead = evokeras_figures(run_dir, wall)
    if wall is None:
        wall = evo["search_wall_seconds"] + evo["final_fit_seconds"]
        evo["wall_seconds"] = wall
        evo["wall_seconds_note"] = "search wall + final retraining (the run was given with --run)"
    result: dict = {"evokeras": evo, "overhead_fraction": overhead, "seed": args.seed, "machine": machine_info()}
    print(f"evokeras: best test acc {evo['best_test_accuracy']:.4f}, wall {wall:.0f} s, "
          f"fast member {evo['fast_test_accuracy']} at {evo['fast_time_ratio']} of the best's time; "
          f"overhead {overhead:.1%}")
    if not args.skip_kerastuner:
        for kind in args.kerastuner:
            r = run_kerastuner(kind, evo["search_wall_seconds"], args.seed)  # trials for as long as evokeras searched
            result[f"kerastuner_{kind}"] = r
            print(f"kerastuner {kind}: best test acc {r['best_test_accuracy']:.4f}, wall {r['wall_seconds']:.0f} s, {r['trials']} trials")
    if not args.skip_memory:
        mem = rss_growth_mb(seed=args.seed)
        result["rss_growth_mb"] = mem["rss_growth_mb"]
        result["memory"] = mem
        print(f"rss growth over {mem['evaluations']} evaluations: {mem['rss_growth_mb']:.0f} MB")
    # Merge into the results file: parts not run this time (e.g. --skip-kerastuner) keep
    # their earlier figures, each with the machine description of its own sitting.
    previous = RESULTS_DIR / "mnist.json"
    merged = json.loads(previous.read_text()) if previous.is_file() else {}
    for key in ("evokeras", *(k for k in result if k.startswith("kerastuner_"))):
        result[key]["machine"] = result["machine"]
    priors = RESULTS_DIR / "priors.json"
    if priors.is_file():
        result["generation0_learning_share"] = json.loads(priors.read_text())["generation0_learning_share"]
    merged.update(result)
    path = write_result("mnist", merged)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
