"""Specialization benchmark: specialized models vs fully trained baselines.

For each of the three specialization studies (object recognition from a position
network; ResNet from Fashion-MNIST to MNIST; LSTM language model to Brown genres), read
the finished study directories (objects: one per seed) and report, per seed, the
chosen specialized model against the baseline.

**Baselines** (trained by the study, :func:`evokeras.app.specialization.train_best`): the
base's full architecture trained from scratch on the target task to convergence --
early stopping on validation loss (best weights restored), the best of at least three
learning rates on validation (``baseline_lr_grid``: each run's validation figures,
epochs and seconds; ``training_seconds.baseline`` is the whole grid's) -- and, where
the budget has one, a larger variant (``baseline_large``, the same protocol).

**Chosen member** (fixed before the runs, validation figures only:
:data:`evokeras.app.specialization.CHOICE_RULE`): the fastest final front member whose
validation error is below the baseline's validation error; if none is, the member of
lowest validation error. Test errors play no part in the choice.

Figures (``speedup``, ``size_ratio``, ``relative_error_reduction`` against the baseline,
and the same against ``baseline_large`` under ``vs_large``):

* ``speedup`` -- baseline / specialized inference time per sample, both re-timed here
  in one process, alternating, on the test inputs (median of ``--rounds`` rounds of
  :func:`evokeras.training.evaluator.time_inference` at the study's batch size);
* ``size_ratio`` -- baseline / specialized parameters;
* ``relative_error_reduction`` -- (baseline - specialized) / baseline test error (each
  model scored once on the same test split by its study);
* ``recovery`` -- of the search's fine-tuned candidates: the median validation error
  their fine-tuning removed per second of it (``recovered_per_second``), and the chosen
  member's own figures;
* ``importance`` -- the squeeze criterion of the chosen member and the count of front
  members per criterion;
* ``most_accurate``: the same figures for the front member of lowest validation error
  (the other end of the trade-off);
* ``at_speedup`` -- every front member re-timed with the baseline (:func:`at_speedup`):
  the most accurate member at least :data:`MIN_SPEEDUP` times faster, whether it beats
  the baseline's test error (the resnet and lstm targets), and the fastest member that
  does (``vs_pruning`` gives the same figures from its own timing of the front).

Objects with several seeds: ``per_seed`` holds each seed's figures and the top-level
figures are their medians (``seeds`` lists them).

Targets (the seed paper's object-recognition figures, all three at once): speedup >= 8,
size_ratio >= 17, relative_error_reduction >= 0.13.

Usage::

    for study in objects resnet; do
        python studies/specialize_$study.py --budget default --seed 0 --out runs/$study-seed0
        for s in 1 2; do  # three searches of one trained base: seeds 1 and 2 reuse seed 0's
            mkdir -p runs/$study-seed$s && cp runs/$study-seed0/base{,line}.* runs/$study-seed$s/
            python studies/specialize_$study.py --budget default --seed $s --out runs/$study-seed$s
        done
    done
    for s in 0 1 2; do python studies/specialize_lstm.py --budget default --seed $s --out runs/lstm-seed$s; done
    python benchmarks/specialize.py --objects runs/objects-seed{0,1,2} --resnet runs/resnet-seed{0,1,2} \\
        --lstm runs/lstm-seed{0,1,2}

The objects and resnet seeds share one trained base and its baselines (what varies for
a user who specializes the network they have is the search), so the models the fronts
are set against (``vs_pruning``) are trained once per base and re-timed with each seed's
front (:func:`_methods`).

``--ladder DIR`` (an objects study directory) adds ``objects_ladder``: what the edit space
reaches without a search -- hand-written programs from the whole convolution stack down to
one convolution (:data:`LADDER`), each fine-tuned as a final model, with their
errors, speed and size against that study's baseline.

``--only objects`` measures one study (``--only ladder`` the ladder alone), keeping the
other parts the result file holds; ``--result NAME`` writes
``benchmarks/results/NAME.json`` (e.g. a partial or smaller-budget run) instead of
``specialize.json``. ``--append`` adds seeds: the study directories given are measured
and the per-seed records the file holds for other seeds are kept (their directories may
be gone), the medians taken over all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

TARGETS = {"speedup": 8.0, "size_ratio": 17.0, "relative_error_reduction": 0.13}
#: The same targets for ``headline`` (one front member against the larger baseline).
HEADLINE = {"speedup": TARGETS["speedup"], "size_ratio": TARGETS["size_ratio"],
            "error_reduction": TARGETS["relative_error_reduction"]}


#: The speed-up at which resnet and lstm ask for a member more accurate than the baseline.
MIN_SPEEDUP = 4.0


def at_speedup(members: dict[str, dict[str, Any]], baseline: dict[str, Any],
               min_speedup: float = MIN_SPEEDUP) -> dict[str, Any]:
    """The front ``members`` (``{key: {"test_error", "exec_time"}}``, timed with
    ``baseline``) at ``min_speedup``: ``at``, the most accurate member at least that much
    faster (its ``member`` key, ``speedup``, ``test_error``; ``None`` if none is), and
    whether it beats the baseline's test error (``met``); and ``fastest_better``, the
    fastest member more accurate than the baseline (how close the front comes when it is
    not met)."""
    def figures(key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None
        m = members[key]
        return {"member": key, "speedup": baseline["exec_time"] / m["exec_time"], "test_error": m["test_error"]}

    from evokeras.app.comparison import against_front

    # the baseline sped up min_speedup times: the point a member must dominate
    row = against_front(members, "baseline", {"test_error": baseline["test_error"],
                                              "exec_time": baseline["exec_time"] / min_speedup}, min_speedup)
    better = [k for k, m in members.items() if m["test_error"] < baseline["test_error"]]
    return {"min_speedup": min_speedup, "baseline_test_error": baseline["test_error"],
            "at": figures(row["front_member"]), "met": row["dominated"],
            "fastest_better": figures(min(better, key=lambda k: members[k]["exec_time"]) if better else None)}


def _speedup_medians(fast: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' :func:`at_speedup`: in how many the target is met, and the median
    speed-up of the fastest member more accurate than the baseline (seeds with one)."""
    import numpy as np

    closest = [f["fastest_better"]["speedup"] for f in fast if f["fastest_better"] is not None]
    return {"min_speedup": MIN_SPEEDUP, "met_seeds": sum(f["met"] for f in fast), "met": all(f["met"] for f in fast),
            "fastest_better_speedup": float(np.median(closest)) if closest else None}


def _recovery(run: Path, chosen: dict[str, Any]) -> dict[str, Any]:
    """What fine-tuning recovered in the search (full-fidelity fine-tuned candidates)."""
    import numpy as np

    from evokeras.engine.store import RunStore

    with RunStore(run / "run.db", readonly=True) as store:
        rates = [r.metrics["recovered_per_second"] for _, r in store.evaluations()
                 if r.ok and r.full and "recovered_per_second" in r.metrics]
    m = chosen["metrics"]
    return {"candidates": len(rates), "median_recovered_per_second": float(np.median(rates)) if rates else None,
            "chosen_head_val_error": m.get("head_val_error"), "chosen_val_error": m.get("val_error"),
            "chosen_finetune_seconds": m.get("finetune_seconds"),
            "chosen_recovered_per_second": m.get("recovered_per_second")}


def measure(study_dir: Path, rounds: int) -> dict[str, Any]:
    import keras
    import numpy as np

    import evokeras.nets.layers  # noqa: F401 - registers LastStep for loading
    from evokeras.app.specialization import CHOICE_RULE, ratios
    from evokeras.engine.config import load_stored
    from evokeras.genomes.edits import EditProgram
    from evokeras.tasks import make_task
    from evokeras.training.stock import time_inference

    summary = json.loads((study_dir / "summary.json").read_text())
    chosen = summary["chosen"]
    if chosen is None:
        return {"error": f"{study_dir}: no specialized model succeeded"}
    run = study_dir / "search"
    config = json.loads((run / "config.json").read_text())["config"]
    budget = load_stored(config).budget()
    target = make_task(config["task_options"]["target"], **config["task_options"].get("target_options", {}))
    x = target.data(train_size=1, val_limit=0, test_limit=budget.time_batch).x_test
    hof = json.loads((run / "hall_of_fame.json").read_text())
    members = [m for m in hof["members"] if m.get("status") == "ok" and "test_error" in m]
    accurate = min(members, key=lambda m: m["metrics"]["val_error"])
    # every model once: the chosen and the most accurate member are front members
    models = {"baseline": keras.saving.load_model(study_dir / "baseline.keras")}
    files = {m["key"]: m["model"] for m in [chosen, *members]}
    models.update({key: keras.saving.load_model(run / file) for key, file in files.items()})
    if "baseline_large" in summary:
        models["baseline_large"] = keras.saving.load_model(study_dir / "baseline_large.keras")
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(time_inference(model, x, budget.time_batch, budget.time_repeats))
    base_line = dict(summary["baseline"], exec_time=float(np.median(times["baseline"])),
                     params=int(models["baseline"].count_params()))

    def retimed(name: str, m: dict[str, Any]) -> dict[str, Any]:
        return dict(m, test_exec_time=float(np.median(times[name])), params=int(models[name].count_params()))

    member = retimed(chosen["key"], chosen)
    out = ratios(member, base_line)
    if "baseline_large" in summary:
        large = dict(summary["baseline_large"], exec_time=float(np.median(times["baseline_large"])),
                     params=int(models["baseline_large"].count_params()))
        out["vs_large"] = dict(ratios(member, large), baseline_params=large["params"],
                               baseline_val_error=large["val_error"], baseline_lr_grid=large.get("baseline_lr_grid"),
                               train_seconds=large["train_seconds"], arch=large.get("arch"))
    programs = [EditProgram.from_dict(m["genome"]) for m in members]
    criteria = [p.importance if p.squeeze else "none" for p in programs]
    out["most_accurate"] = dict(ratios(retimed(accurate["key"], accurate), base_line), key=accurate["key"],
                                steps=accurate["metrics"].get("steps"))
    out["at_speedup"] = at_speedup({m["key"]: {"test_error": m["test_error"], "exec_time": float(np.median(times[m["key"]]))}
                                    for m in members}, base_line)
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
        baseline_lr_grid=summary["baseline"].get("baseline_lr_grid"),
        baseline_learning_rate=summary["baseline"].get("learning_rate"),
        choice_rule=summary.get("choice_rule", CHOICE_RULE),
        importance={"chosen": EditProgram.from_dict(chosen["genome"]).importance,
                    "front": {c: criteria.count(c) for c in sorted(set(criteria))}},
        recovery=_recovery(run, chosen),
        evaluations=summary.get("evaluations"),
        targets_met={k: bool(out[k] >= v) for k, v in TARGETS.items()},
    )
    return out


#: The objects ladder: hand-written programs of the plain CNN base, from the whole
#: convolution stack to one convolution, each fine-tuned as a final model would be.
LADDER = {
    "all convolutions": {"cut": "stage3_conv2"},
    "all convolutions, squeezed to 0.5": {"cut": "stage3_conv2", "squeeze": {
        f"stage{i}_conv{j}": 0.5 for i in (1, 2, 3) for j in (1, 2)}},
    "one convolution per stage": {"cut": "stage3_conv1", "drop": ["stage1_conv2", "stage2_conv2"]},
    "one convolution per stage, squeezed to 0.5": {"cut": "stage3_conv1", "drop": ["stage1_conv2", "stage2_conv2"],
                                                   "squeeze": {f"stage{i}_conv1": 0.5 for i in (1, 2, 3)}},
    "one convolution per stage, squeezed to 0.25": {"cut": "stage3_conv1", "drop": ["stage1_conv2", "stage2_conv2"],
                                                    "squeeze": {f"stage{i}_conv1": 0.25 for i in (1, 2, 3)}},
    "the first convolution only": {"cut": "stage1_conv1"},
}
LADDER_FINETUNE = {"head": "logistic", "alpha": 1e-2, "finetune": 8, "learning_rate": 3e-3, "importance": "taylor",
                   "pool": "max"}


def ladder(study_dir: Path, rounds: int) -> dict[str, Any]:
    """What the edit space can reach on the objects base, without a search: each
    :data:`LADDER` program (with :data:`LADDER_FINETUNE`) built as a final model of the
    study (head fitted and fine-tuned -- distilled where the study sets ``distill_weight``
    -- on its final training examples), its validation and test error, and its speed and
    size against the study's baseline (timed alternately, as :func:`measure` does)."""
    import keras
    import numpy as np

    from evokeras.engine.config import load_stored
    from evokeras.genomes.edits import EditProgram
    from evokeras.tasks.specialize import Specialization
    from evokeras.training.stock import time_inference

    config = load_stored(json.loads((study_dir / "search" / "config.json").read_text())["config"])
    budget = config.budget()
    task = Specialization(study_dir / "base.keras", "objects")
    x, y, data = task.final_data(config.final.train_samples)
    baseline = keras.saving.load_model(study_dir / "baseline.keras")
    summary = json.loads((study_dir / "summary.json").read_text())
    out: dict[str, Any] = {"finetune": LADDER_FINETUNE, "train_samples": len(y),
                           "baseline_val_error": summary["baseline"]["val_error"],
                           "baseline_test_error": summary["baseline"]["test_error"], "programs": {}}
    for name, edits in LADDER.items():
        program = EditProgram(**LADDER_FINETUNE, **edits)
        keras.utils.clear_session(free_memory=True)
        keras.utils.set_random_seed(0)
        t0 = time.perf_counter()
        model = task.build(program, x, y)
        seconds = time.perf_counter() - t0
        errors = {f"{split}_error": 1.0 - float(model.evaluate(xs, ys, batch_size=512, verbose=0,
                                                               return_dict=True)["accuracy"])
                  for split, xs, ys in (("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test))}
        times: dict[str, list[float]] = {"baseline": [], "program": []}
        for _ in range(rounds):
            for key, m in (("baseline", baseline), ("program", model)):
                times[key].append(time_inference(m, data.x_test, budget.time_batch, budget.time_repeats))
        r = dict(errors, steps=program.steps(), params=int(model.count_params()), build_seconds=seconds,
                 speedup=float(np.median(times["baseline"]) / np.median(times["program"])),
                 size_ratio=baseline.count_params() / model.count_params(),
                 us_per_sample=1e6 * float(np.median(times["program"])))
        r["relative_error_reduction"] = (out["baseline_test_error"] - r["test_error"]) / out["baseline_test_error"]
        out["programs"][name] = r
        print(f"  ladder: {name}: {r['speedup']:.2f}x faster, {r['size_ratio']:.1f}x smaller, "
              f"val error {r['val_error']:.4f}, test error {r['test_error']:.4f}", flush=True)
    return out


# --------------------------------------------------------------------------- #
# Against pruning, transfer learning and distillation (issue 31)               #
# --------------------------------------------------------------------------- #
#: The Keras guide's fine-tuning rate of a transferred model ("a very low learning rate").
TRANSFER_RATE = 1e-5
#: The Keras example's distillation: weight 0.9 on the softened teacher (its alpha 0.1 on the labels), T 10.
DISTILL = {"weight": 0.9, "temperature": 10.0}
#: The distilled student: the plain CNN at 1/4 of the objects base's widths, distilled from the
#: study's baseline (the full architecture trained from scratch on the target task).
STUDENT = {"widths": (4, 8, 16), "dense": 64}


def _spec(model: Any) -> list[dict[str, Any]]:
    """``model``'s layers for ``mct_prune.py`` (class, config, inputs), input to output."""
    out = []
    for layer in model.layers:
        nodes = layer._inbound_nodes  # noqa: SLF001 - Keras keeps the graph on the layers
        inbound = [t._keras_history[0].name for t in nodes[0].input_tensors] if nodes else []  # noqa: SLF001
        out.append({"name": layer.name, "class": type(layer).__name__, "config": layer.get_config(),
                    "inbound": [] if type(layer).__name__ == "InputLayer" else inbound})
    return out


def _from_weights(source: Any, weights: dict[str, Any]) -> Any:
    """``source`` rebuilt in Keras 3 with the (pruned) ``weights`` by layer name, each
    Conv/Dense as wide as its kernel."""
    import keras

    def clone(layer: Any) -> Any:
        cfg = layer.get_config()
        key = {"Conv2D": "filters", "Conv1D": "filters", "Dense": "units"}.get(type(layer).__name__)
        if key and f"{layer.name}:0" in weights:
            cfg[key] = int(weights[f"{layer.name}:0"].shape[-1])
        return type(layer).from_config(cfg)

    model = keras.models.clone_model(source, clone_function=clone)
    for layer in model.layers:
        n = sum(1 for k in weights if k.startswith(layer.name + ":"))
        if n:
            layer.set_weights([weights[f"{layer.name}:{i}"] for i in range(n)])
    return model


def _mct(source: Any, x: Any, y: Any, levels: tuple[float, ...], seconds: float, work: Path,
         python: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """MCT's pruning of ``source`` to ``levels`` of its parameters, each fine-tuned
    ``seconds`` (``mct_prune.py`` in its own environment ``python``), rebuilt here:
    ``({name: (model, info)}, MCT's report)``; ``({}, None)`` with a printed reason when
    MCT fails."""
    import subprocess

    import numpy as np

    work.mkdir(parents=True, exist_ok=True)
    (work / "spec.json").write_text(json.dumps(_spec(source), default=str))
    np.savez(work / "weights.npz", **{f"{layer.name}:{i}": w for layer in source.layers
                                      for i, w in enumerate(layer.get_weights())})
    np.savez(work / "data.npz", x=x, y=y)
    (work / "job.json").write_text(json.dumps({"levels": list(levels), "seconds": seconds}))
    proc = subprocess.run([python, str(Path(__file__).with_name("mct_prune.py")), str(work)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        print(f"  MCT failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return {}, None
    info = json.loads((work / "mct_prune.json").read_text())
    out = {}
    for level in levels:
        if "error" in info["levels"][f"{level:g}"]:
            print(f"  MCT {level:g}: {info['levels'][f'{level:g}']['error']}")
            continue
        weights = dict(np.load(work / f"mct_{level:g}.npz"))
        out[f"MCT {level:g}"] = (_from_weights(source, weights), {**info["levels"][f"{level:g}"], "mct": info["mct"],
                                                                 "tensorflow": info["tensorflow"]})
    return out, info


def _timed_fit(model: Any, x: Any, y: Any, seconds: float, **fit: Any) -> float:
    """Fit ``model`` (compiled) for ``seconds`` of wall time (after its first batch); the seconds spent."""
    import keras

    class Stop(keras.callbacks.Callback):
        start: float | None = None

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.start is None:
                self.start = time.perf_counter()
            elif time.perf_counter() - self.start > seconds:
                self.model.stop_training = True

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=fit.pop("epochs", 10_000), verbose=0,
              callbacks=[Stop(), *fit.pop("callbacks", [])], **fit)
    return time.perf_counter() - t0


def _student(task: Any, x: Any, y: Any, teacher: Any, seconds: float) -> tuple[Any, dict[str, Any]]:
    """The Keras example's knowledge distillation: a small plain CNN (:data:`STUDENT`)
    trained from scratch on ``teacher``'s softened outputs (:data:`DISTILL`), Adam 1e-3,
    early stopping (patience 3) on the last tenth of ``(x, y)`` held out, at most 30
    epochs and ``seconds``."""
    import keras
    import numpy as np

    from evokeras.nets import zoo
    from evokeras.training.stock import distillation_loss, distillation_targets, predict

    def targets(xs: Any, ys: Any) -> Any:
        return distillation_targets(ys, np.log(np.clip(predict(teacher, xs), 1e-7, 1.0)))

    n = len(x) - len(x) // 10
    student = zoo.plain_cnn(task.input_shape, task.n_outputs, activation=None, **STUDENT)
    student.compile(keras.optimizers.Adam(1e-3), distillation_loss(DISTILL["weight"], DISTILL["temperature"]))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    spent = _timed_fit(student, x[:n], targets(x[:n], y[:n]), seconds, epochs=30, callbacks=[stop],
                       validation_data=(x[n:], targets(x[n:], y[n:])))
    model = keras.Model(student.input, keras.layers.Activation("softmax")(student.output))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, {"train_seconds": spent, "teacher": "baseline", **STUDENT, **DISTILL}


def _methods(study_dir: Path, seconds: float,
             mct_python: str | None) -> tuple[dict[str, tuple[Any, float]], dict[str, Any], dict[str, Any]]:
    """The models the front is set against, trained on the study's base: evokeras.prune
    (L1, uniform) to :data:`LEVELS` of the MACs and of the parameters, MCT to the same
    shares of the parameters, the Keras guide's transfer learning and the Keras example's
    distilled student -- each fine-tuned ``seconds`` (the student: the study's search and
    final-model seconds). They depend on the base alone, so they are trained once per base
    and kept beside the study directories, in ``methods-<digest of base.keras>/``, for
    every seed's study of that base: ``({name: (model, test error)}, {name: details},
    {"finetune_seconds": the seconds they had, "mct": MCT's own report or None})``."""
    import hashlib

    import keras

    from evokeras._io import atomic_path, write_json_atomic
    from evokeras.app.comparison import LEVELS, run_task, transfer_source
    from evokeras.training.pruning import UnreachableTarget, prune

    digest = hashlib.sha256((study_dir / "base.keras").read_bytes()).hexdigest()[:12]
    cache = study_dir.parent / f"methods-{digest}"
    if (cache / "methods.json").is_file():
        kept = json.loads((cache / "methods.json").read_text())
        models = {name: (keras.saving.load_model(cache / m["file"]), m["test_error"]) for name, m in kept["methods"].items()}
        return models, {name: m["details"] for name, m in kept["methods"].items()}, kept["meta"]
    task, config = run_task(study_dir / "search")
    x, y, data = task.final_data(config.final.train_samples)
    summary = json.loads((study_dir / "summary.json").read_text())
    models: dict[str, tuple[Any, float]] = {}
    info: dict[str, Any] = {}

    def add(name: str, model: Any, extra: dict[str, Any] | None = None) -> None:
        error = 1.0 - float(model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0,
                                           return_dict=True)["accuracy"])
        models[name], info[name] = (model, error), extra or {}
        print(f"  {name}: test error {error:.4f}", flush=True)

    source = transfer_source(task, x, y)
    for resource, suffix in (("macs", ""), ("params", "params ")):
        for level in LEVELS:
            keras.utils.set_random_seed(0)
            try:
                pruned = prune(source, level, resource=resource, data=(x, y), seconds=seconds)
            except UnreachableTarget as exc:
                print(f"  prune l1 uniform {suffix}{level:g}: {exc}")
                continue
            add(f"prune l1 uniform {suffix}{level:g}", pruned, pruned.pruning)
    mct, mct_info = _mct(source, x, y, LEVELS, seconds, cache / "mct", mct_python) if mct_python else ({}, None)
    for name, (model, extra) in mct.items():
        add(name, model, extra)
    # the source itself, last: pruning copied it and MCT has read it
    source.compile(keras.optimizers.Adam(TRANSFER_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"])
    add("transfer", source, {"learning_rate": TRANSFER_RATE, "train_seconds": _timed_fit(source, x, y, seconds)})
    wall = summary["wall_seconds"]
    keras.utils.set_random_seed(0)
    # the teacher: the best network the user has for the task, the from-scratch baseline
    teacher = keras.saving.load_model(study_dir / "baseline.keras")
    student, extra = _student(task, x, y, teacher, (wall.get("search") or 0) + wall.get("final_models", 0))
    add("distilled student", student, extra)
    kept = {}
    for n, (name, (model, error)) in enumerate(models.items()):
        with atomic_path(cache / f"method{n}.keras") as tmp:
            model.save(tmp)
        kept[name] = {"file": f"method{n}.keras", "test_error": error, "details": info[name]}
    meta = {"finetune_seconds": seconds, "mct": mct_info}
    write_json_atomic(cache / "methods.json", {"base": str(study_dir / "base.keras"), "meta": meta, "methods": kept})
    return models, info, meta


def vs_pruning(study_dir: Path, rounds: int, mct_python: str | None) -> dict[str, Any]:
    """One study's front against the models of :func:`_methods` and the study's baselines,
    all timed together (:func:`evokeras.app.comparison.compare_pruning`); kept in
    ``STUDY/vs_pruning.json`` and read from there on later calls."""
    import keras
    import numpy as np

    from evokeras._io import write_json_atomic
    from evokeras.app.comparison import LEVELS, against_front, compare_pruning

    cached = study_dir / "vs_pruning.json"
    if cached.is_file():  # each study's comparison once (it trains and times for minutes)
        return json.loads(cached.read_text())
    run = study_dir / "search"
    front = [m for m in json.loads((run / "hall_of_fame.json").read_text())["members"] if "test_error" in m]
    own_seconds = float(np.median([float(m["final_fit_seconds"]) for m in front]))
    summary = json.loads((study_dir / "summary.json").read_text())
    others, info, meta = _methods(study_dir, own_seconds, mct_python)
    for label in ("baseline", "baseline_large"):
        if (study_dir / f"{label}.keras").is_file():
            others[label] = (keras.saving.load_model(study_dir / f"{label}.keras"), summary[label]["test_error"])
    result = compare_pruning(run, levels=(), seconds=meta["finetune_seconds"], rounds=rounds, others=others,
                             log=lambda line: print(line, flush=True))
    members = result["members"]
    levels = [against_front(members, f"{prefix}{lv:g}", result["methods"][f"{prefix}{lv:g}"], lv)
              for prefix in ("prune l1 uniform ", "prune l1 uniform params ", "MCT ") for lv in LEVELS
              if f"{prefix}{lv:g}" in result["methods"]]
    for name, extra in info.items():
        result["methods"][name]["details"] = extra
    result["levels"], result["dominates"] = levels, bool(levels) and all(r["dominated"] for r in levels)
    out = {"levels": levels, "dominates": result["dominates"],
           "finetune_seconds": meta["finetune_seconds"], "front_finetune_seconds": own_seconds,
           "comparison": result, "headline": _headline(result, summary), "mct": meta["mct"]}
    write_json_atomic(cached, out)
    return out


def _headline(result: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The front member closest to the seed's headline against the larger baseline (the
    baseline when the study has no larger one): the largest smallest share of the three
    targets (speed, size, error reduction) it reaches."""
    label = "baseline_large" if "baseline_large" in result["methods"] else "baseline"
    ref = result["methods"][label]

    def figures(m: dict[str, Any]) -> dict[str, float]:
        return {"speedup": ref["exec_time"] / m["exec_time"], "size_ratio": ref["params"] / m["params"],
                "error_reduction": (ref["test_error"] - m["test_error"]) / ref["test_error"]}

    key = max(result["members"], key=lambda k: min(figures(result["members"][k])[g] / v for g, v in HEADLINE.items()))
    out = figures(result["members"][key])
    return {**out, "member": key, "against": label, "met": all(out[g] >= v for g, v in HEADLINE.items())}


def _vs_pruning_medians(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (method, level): the medians over seeds of the pruned model's and its front
    member's figures, and in how many seeds a front member dominated it
    (``dominated_seeds`` of ``seeds``; a seed without a member as fast counts as not
    dominated); ``dominated`` when it was in every seed."""
    import numpy as np

    rows: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in per_seed:
        for row in r["levels"]:
            rows.setdefault((row["level"], row["method"]), []).append(row)
    levels = []
    for (level, method), group in rows.items():
        row: dict[str, Any] = {"level": level, "method": method, "seeds": len(group),
                               "dominated_seeds": sum(bool(g["dominated"]) for g in group)}
        for k in ("test_error", "exec_time", "front_member_test_error", "front_member_exec_time"):
            values = [g[k] for g in group if g[k] is not None]
            row[k] = float(np.median(values)) if values else None
        row["dominated"] = row["dominated_seeds"] == len(group)
        levels.append(row)
    fast = [at_speedup(r["comparison"]["members"], r["comparison"]["methods"]["baseline"]) for r in per_seed]
    return {"levels": levels, "dominates": bool(levels) and all(r["dominated"] for r in levels),
            "finetune_seconds": float(np.median([r["finetune_seconds"] for r in per_seed])),
            "at_speedup": {**_speedup_medians(fast), "per_seed": fast}}


def _plot_vs_pruning(name: str, r: dict[str, Any], path: Path) -> None:
    """Test error against measured inference time of every model of one seed's comparison."""
    from evokeras.results.plotting import new_figure

    c = r["comparison"]
    fig = new_figure(figsize=(7.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    members = sorted(c["members"].values(), key=lambda m: m["exec_time"])
    ax.plot([1e6 * m["exec_time"] for m in members], [m["test_error"] for m in members], "o-", color="tab:blue",
            label="evokeras front (final models)")
    styles = {"prune l1 uniform 0": ("s", "tab:orange", "evokeras.prune, L1 uniform, MACs levels"),
              "prune l1 uniform params": ("^", "tab:olive", "evokeras.prune, L1 uniform, params levels"),
              "MCT": ("v", "tab:purple", "MCT structured pruning, params levels"),
              "transfer": ("P", "tab:green", "transfer learning (Keras guide)"),
              "distilled student": ("X", "tab:brown", "distilled student (Keras example)"),
              "baseline_large": ("*", "darkred", "larger baseline, from scratch"),
              "baseline": ("*", "tab:red", "baseline, from scratch")}
    seen = set()
    for method, m in c["methods"].items():
        prefix = next(p for p in [*styles, method] if method.startswith(p))
        marker, color, label = styles.get(prefix, ("o", "0.5", method))
        ax.scatter([1e6 * m["exec_time"]], [m["test_error"]], marker=marker, color=color, s=70,
                   label=None if label in seen else label, zorder=5)
        seen.add(label)
        if method.startswith(("prune", "MCT")):
            ax.annotate(method.rsplit(" ", 1)[-1], (1e6 * m["exec_time"], m["test_error"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("inference time per sample (us, log scale)")
    ax.set_ylabel("test error (log scale)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{name}: specialization vs pruning, transfer and distillation", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _median(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-seed results with the headline figures replaced by their medians."""
    import numpy as np

    ok = [r for r in per_seed if "error" not in r]
    if not ok:
        return {"error": "; ".join(r["error"] for r in per_seed), "per_seed": per_seed}
    out = dict(ok[0])
    for key in ("speedup", "size_ratio", "relative_error_reduction", "specialized_test_error", "baseline_test_error",
                "specialized_us_per_sample", "baseline_us_per_sample"):
        out[key] = float(np.median([r[key] for r in ok]))
    out["targets_met"] = {k: bool(out[k] >= v) for k, v in TARGETS.items()}
    timed = [r for r in ok if "at_speedup" in r]  # records measured before at_speedup existed lack it
    if timed:
        out["at_speedup"] = {**_speedup_medians([r["at_speedup"] for r in timed]), "seeds": [r["seed"] for r in timed]}
    out["per_seed"] = per_seed
    return out


def _speedup_line(fast: dict[str, Any], seeds: int) -> str:
    closest = fast["fastest_better_speedup"]
    return (f"  a member more accurate than the baseline at >= {MIN_SPEEDUP:g}x: in {fast['met_seeds']} of {seeds} "
            f"seeds; the fastest more accurate member: {'none' if closest is None else f'{closest:.2f}x'} (median)")


def _merge(kept: list[dict[str, Any]], measured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--append``: the per-seed records ``measured`` now, with those of ``kept`` (the
    result file's) for the seeds not measured now, by seed."""
    seeds = {r["seed"] for r in measured}
    return sorted([r for r in kept if r["seed"] not in seeds] + measured, key=lambda r: r["seed"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--objects", type=Path, nargs="+", default=[Path("runs/specialize_objects-default")],
                   help="study directories, one per seed")
    p.add_argument("--resnet", type=Path, nargs="+", default=[Path("runs/specialize_resnet-default")])
    p.add_argument("--lstm", type=Path, nargs="+", default=[Path("runs/specialize_lstm-default")])
    p.add_argument("--only", choices=("objects", "resnet", "lstm", "ladder", "vs_pruning"), action="append",
                   help="measure only these studies, or the ladder (repeatable); the file's other keys are kept")
    p.add_argument("--append", action="store_true",
                   help="keep the result file's per-seed records of the seeds not measured now (their study "
                        "directories may be gone) and take the medians over all")
    p.add_argument("--result", default="specialize", help="write benchmarks/results/RESULT.json")
    p.add_argument("--rounds", type=int, default=7, help="timing rounds per model (alternating)")
    p.add_argument("--ladder", type=Path, default=None, metavar="DIR",
                   help="also build the LADDER programs on this objects study's base (key objects_ladder)")
    p.add_argument("--mct-python", default="/tmp/mct/bin/python",
                   help="the Python of MCT's environment (see mct_prune.py); '' to leave MCT out")
    args = p.parse_args(argv)
    parts = args.only or ["objects", "resnet", "lstm", "vs_pruning"] + (["ladder"] if args.ladder is not None else [])
    if "ladder" in parts and (args.ladder is None or not (args.ladder / "summary.json").is_file()):
        print(f"error: --ladder {args.ladder}/summary.json not found (--only ladder needs --ladder DIR)",
              file=sys.stderr)
        return 2
    # a partial run (--only) keeps what the file holds for the other parts
    result: dict[str, Any] = _common.read_result(args.result) if args.only or args.append else {}
    for name in (n for n in parts if n not in ("ladder", "vs_pruning")):
        dirs = getattr(args, name)
        for study_dir in dirs:
            if not (study_dir / "summary.json").is_file():
                print(f"error: {study_dir}/summary.json not found: run studies/specialize_{name}.py first",
                      file=sys.stderr)
                return 2
        per_seed = []
        for study_dir in dirs:
            r = measure(study_dir, args.rounds)
            r["seed"] = json.loads((study_dir / "summary.json").read_text()).get("seed")
            per_seed.append(r)
        if args.append:
            per_seed = _merge(result.get(name, {}).get("per_seed", []), per_seed)
        result[name] = _median(per_seed)
        result[name]["seeds"] = [r["seed"] for r in per_seed]
        r = result[name]
        if "error" in r:
            print(f"{name}: {r['error']}")
            continue
        print(f"{name}: {r['speedup']:.2f}x faster ({r['specialized_us_per_sample']:.1f} vs "
              f"{r['baseline_us_per_sample']:.1f} us/sample), {r['size_ratio']:.1f}x smaller "
              f"({r['specialized_params']:,} vs {r['baseline_params']:,} params), test error "
              f"{r['specialized_test_error']:.4f} vs {r['baseline_test_error']:.4f} "
              f"({100 * r['relative_error_reduction']:+.1f}% relative reduction)")
        if "at_speedup" in r:
            print(_speedup_line(r["at_speedup"], len(r["at_speedup"]["seeds"])))
        rec = r["recovery"]
        if rec["median_recovered_per_second"] is not None:
            print(f"  fine-tuning recovered {rec['median_recovered_per_second']:.2e} validation error per second "
                  f"(median of {rec['candidates']} fine-tuned candidates)")
    if "ladder" in parts:
        result["objects_ladder"] = ladder(args.ladder, args.rounds)
    if "vs_pruning" in parts:
        mct_python = args.mct_python if args.mct_python and Path(args.mct_python).is_file() else None
        kept, result["vs_pruning"] = result.get("vs_pruning", {}), {}
        for name in ("objects", "resnet"):
            per_seed = []
            for study_dir in (d for d in getattr(args, name) if (d / "summary.json").is_file()):
                print(f"{name} vs pruning: {study_dir}", flush=True)
                r = vs_pruning(study_dir, args.rounds, mct_python)
                r["seed"] = json.loads((study_dir / "summary.json").read_text()).get("seed")
                per_seed.append(r)
            if args.append:
                per_seed = _merge(kept.get(name, {}).get("per_seed", []), per_seed)
            if not per_seed:
                continue
            _plot_vs_pruning(name, per_seed[0], _common.RESULTS_DIR / f"specialize_{name}_vs_pruning.png")
            result["vs_pruning"][name] = {**_vs_pruning_medians(per_seed), "seeds": [r["seed"] for r in per_seed],
                                          "per_seed": per_seed, "mct": [r.get("mct") is not None for r in per_seed]}
            if name == "objects":
                import numpy as np

                heads = [r["headline"] for r in per_seed]
                result["headline"] = {k: float(np.median([h[k] for h in heads])) for k in HEADLINE}
                result["headline"].update(against=heads[0]["against"], per_seed=heads,
                                          met=all(result["headline"][k] >= v for k, v in HEADLINE.items()))
            print(_speedup_line(result["vs_pruning"][name]["at_speedup"], len(per_seed)))
            for row in result["vs_pruning"][name]["levels"]:
                member = "none as fast" if row["front_member_test_error"] is None else \
                    f"{row['front_member_test_error']:.4f} at {1e6 * row['front_member_exec_time']:.1f} us"
                print(f"  {row['method']}: {row['test_error']:.4f} at {1e6 * row['exec_time']:.1f} us; "
                      f"front: {member}; dominated: {row['dominated']}")
    result["targets"] = TARGETS
    result["machine"] = _common.machine_info()
    path = _common.write_result(args.result, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
