"""Specialization benchmark: specialized models vs fully trained larger networks.

For each of the three specialization studies (object recognition from a position
network; ResNet from Fashion-MNIST to MNIST; LSTM language model to Brown genres), read
the finished ``default`` study directory, take its chosen specialized model
(:func:`evokeras.app.specialization.choose`: among the final front members >= 8x faster and
>= 17x smaller than the baseline, the lowest *validation* error, else the lowest
validation error overall -- test errors play no part) and the baseline (the base's
full architecture trained from scratch on the new task with a larger budget), and
report:

* ``speedup`` -- baseline / specialized inference time per sample, both re-timed here
  in one process, alternating, on the test inputs (median of ``--rounds`` rounds of
  :func:`evokeras.training.evaluator.time_inference` at the study's batch size);
* ``size_ratio`` -- baseline / specialized parameters;
* ``relative_error_reduction`` -- (baseline - specialized) / baseline test error (each
  model scored once on the same test split by its study);
* the test errors, and the training time each side used (base training + search +
  final model vs the baseline's training);
* ``most_accurate``: the same figures for the front member of lowest validation error
  (the other end of the trade-off).

Targets (the seed paper's object-recognition figures, all three at once): speedup >= 8,
size_ratio >= 17, relative_error_reduction >= 0.13.

Usage::

    python studies/specialize_objects.py --budget default --out runs/specialize_objects-default
    python studies/specialize_resnet.py --budget default --out runs/specialize_resnet-default
    python studies/specialize_lstm.py --budget default --out runs/specialize_lstm-default
    python benchmarks/specialize.py --objects runs/specialize_objects-default \\
        --resnet runs/specialize_resnet-default --lstm runs/specialize_lstm-default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGETS = {"speedup": 8.0, "size_ratio": 17.0, "relative_error_reduction": 0.13}


def measure(study_dir: Path, rounds: int) -> dict[str, Any]:
    import keras
    import numpy as np

    import evokeras.build.layers  # noqa: F401 - registers LastStep for loading
    from evokeras.app.specialization import ratios
    from evokeras.tasks import make_task
    from evokeras.training.records import Budget
    from evokeras.training.stock import time_inference

    summary = json.loads((study_dir / "summary.json").read_text())
    chosen = summary["chosen"]
    if chosen is None:
        return {"error": f"{study_dir}: no specialized model succeeded"}
    run = study_dir / "search"
    config = json.loads((run / "config.json").read_text())["config"]
    budget = Budget.from_dict(config["evaluation"])
    target = make_task(config["task_options"]["target"], **config["task_options"].get("target_options", {}))
    x = target.data(train_size=1, val_limit=0, test_limit=budget.time_batch).x_test
    hof = json.loads((run / "hall_of_fame.json").read_text())
    members = [m for m in hof["members"] if m.get("status") == "ok" and "test_error" in m]
    accurate = min(members, key=lambda m: m["metrics"]["val_error"])
    models = {"specialized": keras.saving.load_model(run / chosen["model"]),
              "most_accurate": keras.saving.load_model(run / accurate["model"]),
              "baseline": keras.saving.load_model(study_dir / "baseline.keras")}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(time_inference(model, x, budget.time_batch, budget.time_repeats))
    base_line = dict(summary["baseline"], exec_time=float(np.median(times["baseline"])),
                     params=int(models["baseline"].count_params()))

    def retimed(name: str, m: dict[str, Any]) -> dict[str, Any]:
        return dict(m, test_exec_time=float(np.median(times[name])), params=int(models[name].count_params()))

    member = retimed("specialized", chosen)
    out = ratios(member, base_line)
    out["most_accurate"] = dict(ratios(retimed("most_accurate", accurate), base_line), key=accurate["key"],
                                steps=accurate["metrics"].get("steps"))
    out.update(
        specialized_key=chosen["key"],
        specialized_steps=chosen["metrics"].get("steps"),
        specialized_params=member["params"],
        baseline_params=base_line["params"],
        specialized_us_per_sample=1e6 * member["test_exec_time"],
        baseline_us_per_sample=1e6 * base_line["exec_time"],
        specialized_val_error=chosen["metrics"]["val_error"],
        baseline_val_error=summary["baseline"]["val_error"],
        training_seconds={
            "base": summary["base"]["train_seconds"],
            "search": summary.get("search_seconds"),
            "final_model": chosen.get("final_fit_seconds"),
            "baseline": summary["baseline"]["train_seconds"],
        },
        baseline_epochs=summary["baseline"]["epochs"],
        evaluations=summary.get("evaluations"),
        targets_met={k: bool(out[k] >= v) for k, v in TARGETS.items()},
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--objects", type=Path, default=Path("runs/specialize_objects-default"))
    p.add_argument("--resnet", type=Path, default=Path("runs/specialize_resnet-default"))
    p.add_argument("--lstm", type=Path, default=Path("runs/specialize_lstm-default"))
    p.add_argument("--rounds", type=int, default=7, help="timing rounds per model (alternating)")
    args = p.parse_args(argv)
    result: dict[str, Any] = {}
    for name in ("objects", "resnet", "lstm"):
        study_dir = getattr(args, name)
        if not (study_dir / "summary.json").is_file():
            print(f"error: {study_dir}/summary.json not found: run studies/specialize_{name}.py first", file=sys.stderr)
            return 2
        result[name] = measure(study_dir, args.rounds)
        r = result[name]
        if "error" in r:
            print(f"{name}: {r['error']}")
            continue
        print(f"{name}: {r['speedup']:.2f}x faster ({r['specialized_us_per_sample']:.1f} vs "
              f"{r['baseline_us_per_sample']:.1f} us/sample), {r['size_ratio']:.1f}x smaller "
              f"({r['specialized_params']:,} vs {r['baseline_params']:,} params), test error "
              f"{r['specialized_test_error']:.4f} vs {r['baseline_test_error']:.4f} "
              f"({100 * r['relative_error_reduction']:+.1f}% relative reduction)")
    result["targets"] = TARGETS
    result["machine"] = _common.machine_info()
    path = _common.write_result("specialize", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
