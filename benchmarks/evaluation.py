"""Low-cost evaluation benchmark: stock vs fast training path; inheritance + multi-fidelity.

Two measurements, side by side in one run on this machine (CPU):

1. **Candidate evaluations per minute, stock ``model.fit`` vs the fast path**
   (:func:`evokeras.training.fast.fit_fast`, ``Budget.fast``): the same ``--n-genomes``
   genomes drawn (seeded) from the MNIST ``smoke`` and ``default`` search spaces of
   ``studies/mnist.py``, each evaluated by the real :class:`~evokeras.training.evaluator.Evaluator`
   at that budget, once per path (one warm-up evaluation per path is not timed).
2. **Time to target**: the MNIST ``default`` study twice, with weight inheritance and
   multi-fidelity (``{"eta": 3, "fraction": 0.25}``) off and on, same seed, same wall
   budget, no final retraining. The target accuracy is the best validation accuracy the
   "off" run reaches (full-fidelity evaluations only); reported: the wall seconds from
   each run's start until its first evaluation at or above it (``null``: never).

Target: the "on" run reaches the target in <= 1/3 of the "off" run's time.
``gpu`` is ``null`` here (no GPU on this machine; see ../shared/GPU.md for the GPU run).

Usage::

    python benchmarks/evaluation.py                    # -> benchmarks/results/evaluation.json
    python benchmarks/evaluation.py --quick --results-dir /tmp/ev    # a short check
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def evals_per_minute(budget_name: str, n: int, seed: int) -> dict[str, Any]:
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.toolbox import make_toolbox
    from evokeras.training.evaluator import Evaluator

    cfg = SearchConfig.from_dict({**_common.study_budgets("mnist")[budget_name], "seed": seed})
    task = cfg.build_task()
    genomes = [ind.as_genome() for ind in make_toolbox(task, seed=seed).population(n + 1)]
    out: dict[str, Any] = {"n_genomes": n}
    for path in ("stock", "fast"):
        ev = Evaluator(task, cfg.budget(), cfg.objectives, seed=seed,
                       settings=dataclasses.replace(cfg.train_settings(), fast=path == "fast"))
        ev(genomes[0])  # warm-up: data loading, first tracing
        t0 = time.perf_counter()
        results = [ev(g) for g in genomes[1:]]
        seconds = time.perf_counter() - t0
        ok = [r for r in results if r.ok]
        out[path] = {
            "evals_per_min": 60.0 * n / seconds,
            "seconds": seconds,
            "failed": n - len(ok),
            "mean_val_accuracy": sum(r.metrics["val_accuracy"] for r in ok) / max(len(ok), 1),
            "paths": sorted({r.metrics.get("train_path", "?") for r in results}),
        }
        print(f"{budget_name} {path}: {out[path]['evals_per_min']:.1f} evals/min "
              f"(mean val acc {out[path]['mean_val_accuracy']:.4f})", flush=True)
    out["speedup"] = out["fast"]["evals_per_min"] / out["stock"]["evals_per_min"]
    return out


def study_run(levers: bool, wall_seconds: float, seed: int, out_dir: Path) -> dict[str, Any]:
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.search import Search

    extra = {"inherit_weights": True, "multi_fidelity": {"eta": 3, "fraction": 0.25}} if levers else {}
    cfg = SearchConfig.from_dict({"seed": seed, "strategy": {"wall_seconds": wall_seconds, "generations": 1000},
                                  "evaluation": extra},
                                 base=SearchConfig.from_dict(_common.study_budgets("mnist")["default"]))
    start = time.time()
    with Search(cfg, out_dir) as search:
        result = search._run()
    db = sqlite3.connect(f"file:{out_dir / 'run.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT key, status, metrics, finished FROM evaluations ORDER BY id").fetchall()
    db.close()
    history = []
    for key, status, metrics, finished in rows:
        m = json.loads(metrics)
        if status == "ok" and m.get("fidelity", 1.0) == 1.0:
            history.append((finished - start, float(m["val_accuracy"]), key))
    return {"wall_seconds": result.wall_seconds, "evaluations": len(rows), "full_evaluations": len(history),
            "generations": result.generations_done, "history": history}


def time_to(history: list[tuple[float, float, str]], target: float) -> float | None:
    return next((t for t, acc, _ in history if acc >= target - 1e-12), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-genomes", type=int, default=None, help="genomes per space and path (default 8; --quick 2)")
    p.add_argument("--wall-seconds", type=float, default=None, help="wall budget of each study run (default 840)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a few genomes and a 60 s study budget: a check")
    p.add_argument("--results-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    n = args.n_genomes or (2 if args.quick else 8)
    wall = args.wall_seconds or (60.0 if args.quick else 840.0)

    throughput = {name: evals_per_minute(name, n, args.seed) for name in ("smoke", "default")}
    with tempfile.TemporaryDirectory() as tmp:
        off = study_run(False, wall, args.seed, Path(tmp) / "off")
        print(f"off: {off['full_evaluations']} full evaluations in {off['wall_seconds']:.0f} s", flush=True)
        on = study_run(True, wall, args.seed, Path(tmp) / "on")
        print(f"on:  {on['full_evaluations']} full evaluations ({on['evaluations']} in all) "
              f"in {on['wall_seconds']:.0f} s", flush=True)
    target = max(acc for _, acc, _ in off["history"]) if off["history"] else None
    t_off = time_to(off["history"], target) if target is not None else None
    t_on = time_to(on["history"], target) if target is not None else None
    result = {
        "cpu": {
            "stock_evals_per_min": throughput["default"]["stock"]["evals_per_min"],
            "fast_evals_per_min": throughput["default"]["fast"]["evals_per_min"],
            "time_to_target_off_s": t_off,
            "time_to_target_on_s": t_on,
        },
        "gpu": None,
        "target_val_accuracy": target,
        "targets": {"on_within_a_third": (t_on is not None and t_off is not None and t_on <= t_off / 3)},
        "details": {"throughput": throughput, "off": off, "on": on, "wall_seconds": wall, "seed": args.seed,
                    "quick": args.quick},
        "machine": _common.machine_info(),
    }
    path = _common.write_result("evaluation", result)
    print(json.dumps(result["cpu"]), f"\ntarget val accuracy {target}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
