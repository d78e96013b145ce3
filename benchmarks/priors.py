"""Priors benchmark: do the networks of the default image space learn?

Draws the first generation of the MNIST ``default`` study as a search does (pure
evolution: random genomes only, no reference architectures) for several seeds, trains
each candidate under the study's evaluation budget and reports the share of candidates
below 10% validation error (``generation0_learning_share``), the median parameter count
and the evaluation time split. The same for the wide space (``SearchSpace()``'s class
defaults, the image default before the priors) when ``--wide`` is given.

Usage::

    python benchmarks/priors.py [--seeds 0 1] [--wide]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, study_budgets, write_result  # noqa: E402


def generation0(space_name: str, seeds: list[int]) -> dict[str, Any]:
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.toolbox import make_toolbox
    from evokeras.genomes.space import SearchSpace
    from evokeras.training.evaluator import Evaluator

    budget = dict(study_budgets("mnist")["default"])
    results = []
    t0 = time.perf_counter()
    for seed in seeds:
        cfg = SearchConfig.from_dict({"seed": seed, "strategy": {"reference_architectures": False}},
                                     base=SearchConfig.from_dict(budget))
        task = cfg.build_task()
        if space_name == "wide":
            task = task.with_space(SearchSpace.from_dict(cfg.space, base=SearchSpace()))
        ev = Evaluator(task, cfg.budget(), cfg.objectives, seed=seed, settings=cfg.train_settings())
        for ind in make_toolbox(task, objectives=cfg.objectives, seed=seed).population(cfg.strategy.population):
            r = ev(ind)
            results.append(r)
            print(f"{space_name} seed {seed} {r.key} {r.status} val_error {r.metrics.get('val_error')} "
                  f"params {r.metrics.get('params')} {r.times.get('total', 0):.1f}s", flush=True)
    ok = [r for r in results if r.ok]
    errors = [float(r.metrics["val_error"]) for r in ok]
    times = {k: sum(r.times.get(k, 0.0) for r in results) for k in ("build", "fit", "evaluate", "timing", "total")}
    return {
        "candidates": len(results),
        "failed": len(results) - len(ok),
        "generation0_learning_share": sum(e < 0.10 for e in errors) / len(results),
        "share_below_50pct_error": sum(e < 0.50 for e in errors) / len(results),
        "median_val_error": statistics.median(errors) if errors else None,
        "median_params": statistics.median(int(r.metrics["params"]) for r in ok) if ok else None,
        "seconds_per_candidate": (time.perf_counter() - t0) / len(results),
        "time_split_seconds": times,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--wide", action="store_true", help="also measure the wide space")
    args = p.parse_args(argv)
    out: dict[str, Any] = {"machine": machine_info(), "seeds": args.seeds, "budget": "mnist default"}
    out["image_priors"] = generation0("priors", args.seeds)
    if args.wide:
        out["wide_space"] = generation0("wide", args.seeds)
    out["generation0_learning_share"] = out["image_priors"]["generation0_learning_share"]
    print(write_result("priors", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
