"""Your own task: ``evokeras.search`` on data a user brings, against a stock baseline given
the same wall time.

* **images** -- Fashion-MNIST as *user arrays* (``evokeras.from_arrays`` on the raw
  ``uint8`` arrays: the 60,000 training images with a seeded 10% validation split, the
  official 10,000 test images as ``test_data``) against a standard small CNN (conv 32 ->
  pool -> conv 64 -> pool -> dense 128, Adam) trained on the same training images for as
  long as evokeras took (search and final models together); figure: test error.
* **text** -- a UTF-8 file of at least 1 MB (the King James Bible, first ``--text-mb`` MB,
  written to the run directory), character level (``evokeras.from_text(path=...)``),
  against an LSTM of the same parameter count as evokeras's best member, trained for the
  same time; figure: test bits per character.
* **control** -- ``Acrobot-v1`` (no vector entry point, 3 actions, 6 observations) with
  ``evokeras.from_gym``, against random search over linear policies for the same time
  (each scored on the same number of episodes, the best tested on 100 episodes); figure:
  mean test return (solved: >= -100).

Usage::

    python benchmarks/your_task.py [--budget smoke|default] [--parts images text control]
                                   [--out runs/your_task] [--results-dir DIR]

``default`` writes ``benchmarks/results/your_task.json`` (about an hour on 2 CPU cores);
``smoke`` checks the script in minutes (write its result elsewhere with ``--results-dir``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_result  # noqa: E402

import evokeras  # noqa: E402
from evokeras.data import bible_verses, load_fashion_mnist_arrays  # noqa: E402

BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "images": {"population": 2, "offspring": 2, "generations": 1, "final_members": 1, "final_epochs": 1,
                   "max_val_error": 1.0,
                   "final_train_samples": 2000, "objectives": {"val_error": -1.0, "exec_time": -1.0},
                   "evaluation": {"epochs": 1, "train_samples": 1000, "val_samples": 500, "time_repeats": 1},
                   "space": {"max_params": 50_000, "max_layers": 5}},
        "text": {"population": 2, "offspring": 1, "generations": 1, "final_members": 1, "final_epochs": 1,
                 "final_train_samples": 200,
                 "evaluation": {"epochs": 1, "train_samples": 100, "val_samples": 20, "time_repeats": 1},
                 "space": {"cell_units": [16, 32], "max_layers": 1, "init_layers": [1, 1]}},
        "control": {"population": 4, "offspring": 4, "generations": 1, "evaluation": {"episodes": 2}},
    },
    "default": {
        "images": {"population": 12, "offspring": 12, "generations": 60, "wall_seconds": 900,
                   "objectives": {"val_error": -1.0, "exec_time": -1.0}, "fast_path": True,
                   "reference_architectures": True, "final_members": 4, "final_epochs": 10,
                   "evaluation": {"epochs": 2, "train_samples": 10000, "val_samples": 5000, "patience": 0,
                                  "seconds": 30, "timeout": 120, "time_repeats": 5},
                   "space": {"max_params": 200_000, "max_layers": 10, "init_layers": [3, 7]}},
        "text": {"population": 8, "offspring": 8, "generations": 30, "wall_seconds": 900, "final_members": 2,
                 "final_epochs": 3, "final_train_samples": 20000,
                 "evaluation": {"epochs": 1, "train_samples": 2000, "val_samples": 300, "seconds": 60,
                                "timeout": 240, "time_repeats": 3}},
        "control": {"population": 24, "offspring": 24, "generations": 60, "wall_seconds": 600,
                    "evaluation": {"episodes": 5, "timeout": 120}},
    },
}


def _until(seconds: float) -> Any:
    import keras

    class Stop(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.perf_counter() - self.start > seconds:
                self.model.stop_training = True

    return Stop()


def _chosen(run: Any, figure: str) -> dict[str, Any]:
    """The member reported: the best by the search's first objective (a validation figure,
    never a test figure), among the members whose final model has ``figure``."""
    name, weight = next(iter(run.hall_of_fame["objectives"].items()))
    return max((m for m in run.front if figure in m), key=lambda m: weight * m["objectives"][name])


def images(cfg: dict[str, Any], out: Path, seed: int) -> dict[str, Any]:
    import keras

    raw = load_fashion_mnist_arrays()
    x, y = raw["train_images"], raw["train_labels"].astype(np.int64)
    test = (raw["test_images"], raw["test_labels"].astype(np.int64))
    t0 = time.perf_counter()
    run = evokeras.search(evokeras.from_arrays(x, y, test_data=test, name="fashion_arrays"), out / "images",
                          config=cfg, seed=seed)
    seconds = time.perf_counter() - t0
    best = _chosen(run, "test_error")
    keras.utils.set_random_seed(seed)
    cnn = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                            keras.layers.MaxPooling2D(), keras.layers.Conv2D(64, 3, activation="relu"),
                            keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                            keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    cnn.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    xs = (x.astype("float32") / 255.0)[..., None]
    cnn.fit(xs, y, batch_size=128, epochs=1000, verbose=0, callbacks=[_until(seconds)])
    _, acc = cnn.evaluate((test[0].astype("float32") / 255.0)[..., None], test[1], verbose=0)
    return {"evokeras": {"wall_seconds": seconds, "test_error": best["test_error"], "params": best["metrics"]["params"],
                         "test_exec_time": best.get("test_exec_time"), "members": len(run.front)},
            "baseline_small_cnn": {"wall_seconds": seconds, "test_error": 1.0 - float(acc),
                                   "params": int(cnn.count_params())}}


def text(cfg: dict[str, Any], out: Path, seed: int, megabytes: float) -> dict[str, Any]:
    import keras

    corpus = "\n".join(v.text for v in bible_verses())[: int(megabytes * 1_000_000)]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "kjv.txt"
    path.write_text(corpus, encoding="utf-8")
    task = evokeras.from_text(path=path)
    t0 = time.perf_counter()
    run = evokeras.search(task, out / "text", config=cfg, seed=seed)
    seconds = time.perf_counter() - t0
    best = _chosen(run, "test_bpc")
    params, vocab, emb = int(best["metrics"]["params"]), task.n_outputs, task.embedding
    # the LSTM width whose parameter count is closest to the best member's
    units = min(range(4, 1025), key=lambda u: abs(vocab * emb + 4 * u * (emb + u + 1) + u * vocab + vocab - params))
    keras.utils.set_random_seed(seed)
    lstm = keras.Sequential([keras.Input((task.seq_len,)), keras.layers.Embedding(vocab, emb),
                             keras.layers.LSTM(units, return_sequences=True), keras.layers.Dense(vocab)])
    lstm.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = task.data()
    lstm.fit(data.x_train, data.y_train, batch_size=64, epochs=1000, verbose=0, callbacks=[_until(seconds)])
    loss = float(lstm.evaluate(data.x_test, data.y_test, verbose=0))
    return {"file_bytes": len(corpus.encode("utf-8")),
            "evokeras": {"wall_seconds": seconds, "test_bpc": best["test_bpc"], "params": params,
                         "members": len(run.front)},
            "baseline_lstm": {"wall_seconds": seconds, "test_bpc": loss / math.log(2), "units": units,
                              "params": int(lstm.count_params())}}


def control(cfg: dict[str, Any], out: Path, seed: int) -> dict[str, Any]:
    from evokeras.tasks.control import TEST_SEED_BASE, rollout

    task = evokeras.from_gym("Acrobot-v1")
    t0 = time.perf_counter()
    run = evokeras.search(task, out / "control", config=cfg, seed=seed)
    seconds = time.perf_counter() - t0
    best = _chosen(run, "test_return")
    rng = np.random.default_rng(seed)
    episodes = int(cfg.get("evaluation", {}).get("episodes", 5))
    d, k = task.input_shape[0], task.n_outputs
    top, top_w, tried, start = -math.inf, None, 0, time.perf_counter()
    while time.perf_counter() - start < seconds or top_w is None:
        w = rng.normal(0.0, 1.0, (d + 1, k))
        returns, _ = rollout(lambda obs, w=w: obs @ w[:-1] + w[-1], episodes, int(rng.integers(2**30)),
                             env_id=task.env_id, act=task.act)
        tried += 1
        if returns.mean() > top:
            top, top_w = float(returns.mean()), w
    assert top_w is not None
    test, _ = rollout(lambda obs: obs @ top_w[:-1] + top_w[-1], 100, TEST_SEED_BASE + seed, env_id=task.env_id,
                      act=task.act)
    return {"env_id": task.env_id, "threshold": task.threshold,
            "evokeras": {"wall_seconds": seconds, "test_return": best["test_return"], "solved": best["test_solved"],
                         "params": best["metrics"]["params"], "members": len(run.front)},
            "baseline_linear_random_search": {"wall_seconds": seconds, "test_return": float(test.mean()),
                                              "solved": bool(task.threshold is not None and test.mean() >= task.threshold),
                                              "policies_tried": tried}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default="default")
    p.add_argument("--parts", nargs="+", choices=["images", "text", "control"], default=["images", "text", "control"])
    p.add_argument("--out", type=Path, default=Path("runs/your_task"), help="where the run directories go (replaced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-mb", type=float, default=2.0, help="megabytes of the text file (>= 1 for the benchmark)")
    p.add_argument("--results-dir", type=Path, default=None, help="where your_task.json goes (default benchmarks/results)")
    args = p.parse_args(argv)
    out = args.out / args.budget
    shutil.rmtree(out, ignore_errors=True)
    budget = BUDGETS[args.budget]
    result: dict[str, Any] = {"budget": args.budget, "seed": args.seed, "machine": machine_info(),
                              "configs": {part: budget[part] for part in args.parts}}
    if "images" in args.parts:
        result["images"] = images(budget["images"], out, args.seed)
    if "text" in args.parts:
        result["text"] = text(budget["text"], out, args.seed, args.text_mb)
    if "control" in args.parts:
        result["control"] = control(budget["control"], out, args.seed)
    if args.results_dir is not None:
        path = args.results_dir / "your_task.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    else:
        path = write_result("your_task", result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "configs")}, indent=2, default=str))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
