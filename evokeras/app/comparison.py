"""A specialization's front against what its user would otherwise do: prune the trained
base (with a new head for the target task) and fine-tune it (:func:`compare_pruning`).

The **source** of pruning is the whole base with a new softmax head fitted on its frozen
features of the final training examples (what the Keras guide's transfer learning does
first; the head is fitted in closed form, :func:`evokeras.tasks.specialize.fit_head`).
It is pruned by :func:`evokeras.prune` to each level of its multiply-accumulates (or
parameters, or latency) and fine-tuned on the same examples as the front's final models,
for the median of their fitting seconds. Every model -- front members, pruned models
and any others given -- is re-timed in one process, alternating, on the test inputs.

At a level, the front **dominates** the pruned model when a member at least as fast has
a lower test error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evokeras.engine.config import load_stored
from evokeras.genomes.edits import EditProgram
from evokeras.nets.surgery import count_flops
from evokeras.results.report import read_front
from evokeras.tasks.specialize import Specialization
from evokeras.training.pruning import UnreachableTarget, prune
from evokeras.training.stock import time_inference

__all__ = ["LEVELS", "against_front", "compare_pruning", "format_table", "run_task", "transfer_source"]

#: The resource levels pruned to (shares of the source's resource).
LEVELS = (0.5, 0.25, 0.125)


def run_task(run_dir: Path) -> tuple[Specialization, Any]:
    """The specialization task and configuration of the run at ``run_dir``."""
    config = load_stored(json.loads((Path(run_dir) / "config.json").read_text())["config"])
    return Specialization(**config.task_options), config


def transfer_source(task: Specialization, x: np.ndarray, y: np.ndarray) -> Any:
    """The whole base with a new softmax head fitted on its frozen features of ``(x, y)``."""
    cut = task.space.base.cut_points[-1]
    return task.build(EditProgram(cut=cut, pool=task.space.pools(cut)[0], head="logistic", alpha=1e-2), x, y)


def _test_error(model: Any, data: Any) -> float:
    scores = model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0, return_dict=True)
    return 1.0 - float(scores["accuracy"])


def compare_pruning(run_dir: str | Path, *, levels: tuple[float, ...] = LEVELS, resource: str = "macs",
                    criterion: str = "l1", ratios: str = "uniform", seconds: float | None = None, rounds: int = 5,
                    others: Mapping[str, tuple[Any, float]] | None = None, log: Any = print) -> dict[str, Any]:
    """Prune and fine-tune the run's base at ``levels`` and set the front against them.

    ``seconds``: the fine-tuning seconds of each pruned model (default: the median
    ``final_fit_seconds`` of the front's members). ``others``: more models to time with
    them, ``{name: (model, test error)}``. Returns ``source`` (the unpruned source's
    figures), ``methods`` (each pruned model's and other's ``test_error``,
    ``exec_time``, ``params``, ``macs``), ``members`` (the front's, re-timed), ``levels``
    (per level: the pruned model and the most accurate member at least as fast, or
    ``None``; ``error`` instead where pruning cannot reach the level) and ``dominates``
    (at every level reached)."""
    import keras

    run_dir = Path(run_dir)
    task, config = run_task(run_dir)
    budget = config.budget()
    x, y, data = task.final_data(config.final.train_samples)
    front = [m for m in read_front(run_dir).get("members", []) if m.get("status") == "ok" and "test_error" in m]
    if not front:
        raise ValueError(f"{run_dir}: the run has no finished front member to compare")
    if seconds is None:
        seconds = float(np.median([float(m.get("final_fit_seconds", 0.0)) for m in front]))
        if seconds <= 0:
            raise ValueError(f"{run_dir}: its front members record no fitting seconds: give seconds=")
    models: dict[str, Any] = {f"member {m['key']}": keras.saving.load_model(run_dir / m["model"]) for m in front}
    errors = {f"member {m['key']}": float(m["test_error"]) for m in front}
    t0 = time.perf_counter()
    source = transfer_source(task, x, y)
    models["source"], errors["source"] = source, _test_error(source, data)
    info: dict[str, Any] = {"source_seconds": time.perf_counter() - t0, "finetune_seconds": seconds}
    unreachable: dict[float, str] = {}
    for level in levels:
        name = f"prune {criterion} {ratios} {level:g}"
        keras.utils.set_random_seed(0)
        try:
            pruned = prune(source, level, resource=resource, criterion=criterion, ratios=ratios, data=(x, y),
                           seconds=seconds)
        except UnreachableTarget as exc:  # a level below what one unit per layer costs
            unreachable[level] = str(exc)
            log(f"  {name}: {exc}")
            continue
        models[name], errors[name] = pruned, _test_error(pruned, data)
        log(f"  {name}: {pruned.pruning['achieved']:.3f} of the {resource}, test error {errors[name]:.4f}")
    for name, (model, error) in (others or {}).items():
        models[name], errors[name] = model, float(error)
    x_time = data.x_test[: budget.time_batch]
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(time_inference(model, x_time, budget.time_batch, budget.time_repeats))

    def figures(name: str) -> dict[str, Any]:
        model = models[name]
        return {"test_error": errors[name], "exec_time": float(np.median(times[name])),
                "params": int(model.count_params()), "macs": count_flops(model) // 2}

    members = {m["key"]: figures(f"member {m['key']}") for m in front}
    out: dict[str, Any] = {**info, "resource": resource, "source": figures("source"),
                           "methods": {n: figures(n) for n in models if not n.startswith("member ") and n != "source"},
                           "members": members, "levels": []}
    for level in levels:
        name = f"prune {criterion} {ratios} {level:g}"
        if level in unreachable:
            out["levels"].append({"level": level, "method": name, "error": unreachable[level]})
            continue
        out["levels"].append(against_front(members, name, out["methods"][name], level))
    reached = [r for r in out["levels"] if "error" not in r]
    out["dominates"] = bool(reached) and all(r["dominated"] for r in reached)
    return out


def against_front(members: Mapping[str, Mapping[str, Any]], method: str, point: Mapping[str, Any],
                  level: float) -> dict[str, Any]:
    """A pruned model ``point`` (``test_error``, ``exec_time``) of ``method`` at ``level``
    against the front ``members`` (``{key: figures}``): the most accurate member at least
    as fast (``front_member``, ``None`` if none is) and whether it is more accurate
    (``dominated``)."""
    faster = [(k, m) for k, m in members.items() if m["exec_time"] <= point["exec_time"]]
    key, member = min(faster, key=lambda km: km[1]["test_error"]) if faster else (None, None)
    return {"level": level, "method": method, "test_error": point["test_error"], "exec_time": point["exec_time"],
            "front_member": key, "front_member_test_error": None if member is None else member["test_error"],
            "front_member_exec_time": None if member is None else member["exec_time"],
            "dominated": member is not None and member["test_error"] < point["test_error"]}


def format_table(result: Mapping[str, Any]) -> str:
    """The comparison as a text table, one line per level."""
    lines = [f"{'level':>6}  {'pruned: test error':>18}  {'us/sample':>9}  {'front member: test error':>24}  "
             f"{'us/sample':>9}  dominated"]
    for r in result["levels"]:
        if "error" in r:
            lines.append(f"{r['level']:>6g}  not reached: {r['error']}")
            continue
        member = ("—", "—") if r["front_member"] is None else (
            f"{r['front_member_test_error']:.4f}", f"{1e6 * r['front_member_exec_time']:.1f}")
        lines.append(f"{r['level']:>6g}  {r['test_error']:>18.4f}  {1e6 * r['exec_time']:>9.1f}  {member[0]:>24}  "
                     f"{member[1]:>9}  {'yes' if r['dominated'] else 'no'}")
    src = result["source"]
    lines.append(f"source (the whole base, new head): test error {src['test_error']:.4f}, "
                 f"{1e6 * src['exec_time']:.1f} us/sample; fine-tuning {result['finetune_seconds']:.1f} s per pruned model")
    return "\n".join(lines)
