"""The specialization studies' runner: base network, baselines, search, report and figure,
with the helpers the studies share (:func:`train_model`, :func:`train_best`,
:func:`choose`, :func:`ratios`)."""


from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import atomic_path, write_json_atomic
from evokeras.api import SpecializationError, specialize
from evokeras.app.study import fail, study_prog
from evokeras.data import DatasetNotFoundError
from evokeras.engine.config import ConfigError, SearchConfig
from evokeras.engine.search import RunError
from evokeras.engine.store import RunStore
from evokeras.results.plotting import new_figure, nondominated
from evokeras.results.report import read_front
from evokeras.training.stock import time_inference

#: What :func:`evokeras.specialize` raises for bad input or a search without a front
#: (:func:`specialize_failed` turns each into an exit status).
SPECIALIZE_ERRORS = (ConfigError, DatasetNotFoundError, RunError, SpecializationError)


def specialize_failed(exc: Exception) -> int:
    """The exit status of a specialization that raised ``exc`` (:data:`SPECIALIZE_ERRORS`):
    1 when its search ended without a front (the reason printed), else 2 with one line
    (bad input)."""
    if isinstance(exc, SpecializationError):
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return fail(str(exc))


def train_model(model: Any, data: Any, *, loss: Any, epochs: int, batch_size: int = 64, learning_rate: float = 1e-3,
                patience: int = 2, metrics: Sequence[str] = ("accuracy",), test: bool = True) -> dict[str, Any]:
    """Compile and train ``model`` on ``data`` (a :class:`~evokeras.data.Split`) with
    Adam, early stopping on validation loss (best weights restored); score validation and
    (with ``test``) test. Returns the figures and ``train_seconds``."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=list(metrics))
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if patience and epochs > 1:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
    t0 = time.perf_counter()
    history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
                        batch_size=batch_size, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - t0
    val = model.evaluate(data.x_val, data.y_val, batch_size=512, verbose=0, return_dict=True)
    out: dict[str, Any] = {"train_seconds": seconds, "epochs": len(history.history["loss"]),
                           "train_samples": len(data.y_train), "params": int(model.count_params())}
    out.update({f"val_{k}": float(v) for k, v in val.items()})
    if "accuracy" in val:
        out["val_error"] = 1.0 - float(val["accuracy"])
    if test:
        out.update(_test_figures(model, data))
    return out


def _test_figures(model: Any, data: Any) -> dict[str, float]:
    """``test_*`` scores of ``model`` on ``data``'s test split (``test_error`` with
    accuracy); none without a test split."""
    if not len(data.y_test):
        return {}
    scores = model.evaluate(data.x_test, data.y_test, batch_size=512, verbose=0, return_dict=True)
    out = {f"test_{k}": float(v) for k, v in scores.items()}
    if "test_accuracy" in out:
        out["test_error"] = 1.0 - out["test_accuracy"]
    return out


def train_best(build: Callable[[], Any], data: Any, *, learning_rates: Sequence[float], **options: Any) -> tuple[Any, dict[str, Any]]:
    """Train a fresh ``build()`` at each of ``learning_rates`` (:func:`train_model`: early
    stopping on validation loss, ``options``) and keep the one of lowest validation error
    (validation loss without accuracy); only it is scored on the test split. Returns the
    model and its figures with ``learning_rate``, ``baseline_lr_grid`` (each run's
    validation figures, epochs and seconds) and ``train_seconds`` (the whole grid's; the
    chosen run's is ``chosen_train_seconds``)."""
    import keras

    if not learning_rates:
        raise ValueError("learning_rates: at least one")
    runs = []
    for lr in learning_rates:
        keras.utils.clear_session(free_memory=True)
        model = build()
        info = train_model(model, data, learning_rate=float(lr), test=False, **options)
        runs.append((info.get("val_error", info.get("val_loss")), float(lr), model, info))
    _, lr, model, info = min(runs, key=lambda r: r[0])
    info.update(_test_figures(model, data))
    grid = [{"learning_rate": r_lr, "epochs": i["epochs"], "train_seconds": i["train_seconds"],
             **{k: v for k, v in i.items() if k.startswith("val_")}} for _, r_lr, _, i in runs]
    info.update(learning_rate=lr, baseline_lr_grid=grid, chosen_train_seconds=info["train_seconds"],
                train_seconds=sum(g["train_seconds"] for g in grid))
    return model, info


#: The chosen-member rule, fixed before any run (validation figures only).
CHOICE_RULE = ("the fastest final front member (search-time inference per sample) whose validation error is "
               "below the baseline's validation error; if none is, the member of lowest validation error")


def choose(members: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any]) -> dict[str, Any] | None:
    """The specialized model a study reports (:data:`CHOICE_RULE`): among the final
    front members whose *validation* error is below the baseline's validation error, the
    fastest (inference time measured in the search, on validation inputs); if none is,
    the member with the lowest validation error. Test figures play no part."""
    ok = [m for m in members if m.get("status") == "ok" and "test_error" in m]
    if not ok:
        return None

    def val_error(m: Mapping[str, Any]) -> float:
        return float(m["metrics"]["val_error"])

    def speed(m: Mapping[str, Any]) -> float:
        return float(m["metrics"].get("exec_time", m.get("test_exec_time", 0.0)))

    better = [m for m in ok if val_error(m) < float(baseline["val_error"])]
    return dict(min(better, key=lambda m: (speed(m), val_error(m))) if better else min(ok, key=val_error))


def ratios(chosen: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """The three figures of a specialized model against its baseline."""
    return {
        "speedup": baseline["exec_time"] / chosen["test_exec_time"],
        "size_ratio": baseline["params"] / chosen["params"],
        "relative_error_reduction": (baseline["test_error"] - chosen["test_error"]) / baseline["test_error"],
        "specialized_test_error": chosen["test_error"],
        "baseline_test_error": baseline["test_error"],
    }




def plot_candidates(run_dir: Path, baseline: Mapping[str, Any], chosen: Mapping[str, Any] | None, title: str) -> Any:
    """Two panels: the validation error (search budget) vs inference time of every
    successful candidate of a specialization run, with its Pareto front; and the test
    error vs inference time of the front's final models, the chosen one and the baseline."""

    with RunStore(run_dir / "run.db", readonly=True) as store:
        rows = [r for _, r in store.evaluations() if r.ok and r.full and "exec_time" in r.metrics]
    members = [m for m in read_front(run_dir).get("members", []) if m.get("status") == "ok" and "test_error" in m]
    fig = new_figure(figsize=(11, 4.4))
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    if rows:
        pts = np.array([[r.metrics["exec_time"], r.metrics["val_error"]] for r in rows], dtype=float)
        ax.scatter(pts[:, 0] * 1e6, pts[:, 1], s=14, color="0.6", label=f"candidates ({len(rows)})")
        front = pts[nondominated(pts)]
        front = front[np.argsort(front[:, 0])]
        ax.plot(front[:, 0] * 1e6, front[:, 1], "o-", color="tab:blue", label="Pareto front")
    ax.set_title("search: every candidate (search budget)", fontsize=10)
    ax.set_ylabel("validation error")
    if members:
        pts = np.array([[m["test_exec_time"], m["test_error"]] for m in members], dtype=float)
        bx.scatter(pts[:, 0] * 1e6, pts[:, 1], s=30, color="tab:blue", label="front members' final models")
    bx.scatter([baseline["exec_time"] * 1e6], [baseline["test_error"]], marker="*", s=180, color="tab:red",
               label=f"baseline: full network trained from scratch ({baseline['params']:,} params)", zorder=5)
    if chosen is not None:
        bx.scatter([chosen["test_exec_time"] * 1e6], [chosen["test_error"]], marker="D", s=70,
                   facecolors="none", edgecolors="tab:green", linewidths=2,
                   label=f"chosen ({chosen['params']:,} params)", zorder=6)
    bx.set_title("final models (fitted on the final training examples), test split", fontsize=10)
    bx.set_ylabel("test error")
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_xlabel("inference time per sample (us, log scale)")
        a.grid(True, alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _parser(name: str, budgets: Mapping[str, Any]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=study_prog(name), description=f"evokeras specialization study: {name}")
    p.add_argument("--budget", default="smoke", help=f"one of {', '.join(budgets)} (default: smoke)")
    p.add_argument("--out", type=Path, default=None, help="study directory (default: runs/<study>-<budget>-seed<N>)")
    p.add_argument("--seed", type=int, default=0, help="the study's seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log each generation")
    return p


def run_specialization_study(
    name: str,
    budgets: Mapping[str, Mapping[str, Any]],
    *,
    target: str,
    train_base: Callable[[Mapping[str, Any], int], tuple[Any, dict[str, Any]]],
    train_baseline: Callable[[Mapping[str, Any], int], tuple[Any, dict[str, Any]]],
    argv: Sequence[str] | None = None,
) -> int:
    """Train a base network, specialize it to ``target``, train the baseline, compare.

    Each budget has the keys ``base`` and ``baseline`` (given to ``train_base`` /
    ``train_baseline`` with the seed; each returns a trained model and its figures),
    optionally ``baseline_large`` (given to ``train_baseline``: the larger variant) and
    ``search`` (the search configuration). The study directory holds ``base.keras`` +
    ``base.json``, the search run ``search/`` (a normal run directory), ``baseline.keras``
    + ``baseline.json`` (and ``baseline_large.*``) and ``summary.json`` (the chosen model,
    by :data:`CHOICE_RULE`, the ratios against the baseline and ``wall_seconds``: each
    step's wall-clock seconds and their ``total``); each step is skipped
    when its files exist, so an interrupted study continues where it stopped.
    Exit status 0, or 2 on bad input.
    """
    import keras


    args = _parser(name, budgets).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.budget not in budgets:
        return fail(f"unknown budget {args.budget!r} (known: {', '.join(budgets)})")
    spec = budgets[args.budget]
    out = args.out or Path("runs") / f"{name}-{args.budget}-seed{args.seed}"
    if out.exists() and not out.is_dir():
        return fail(f"--out {out} is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    search_cfg = {**spec["search"], "study": name, "budget_name": args.budget}
    try:
        steps = [("base", train_base), ("baseline", train_baseline)]
        steps += [("baseline_large", train_baseline)] if "baseline_large" in spec else []
        _train_missing_models(out, spec, steps, args.seed)
        keras.utils.clear_session(free_memory=True)
        hof = specialize(out / "base.keras", target, out / "search", config=search_cfg, seed=args.seed,
                         progress=not args.no_progress)
    except SPECIALIZE_ERRORS as exc:
        return specialize_failed(exc)
    summary = _study_summary(out, hof, [label for label, _ in steps], study=name, budget=args.budget,
                             seed=args.seed, target=target)
    write_json_atomic(out / "summary.json", summary)
    baseline, chosen = summary["baseline"], summary["chosen"]
    fig = plot_candidates(out / "search", baseline, chosen, f"{name}: specialized candidates vs baseline")
    with atomic_path(out / "search" / "plots" / "specialize.png") as tmp:
        fig.savefig(tmp, dpi=120)
    if chosen is not None:
        _print_chosen(chosen, summary["ratios"])
    print(f"study directory: {out}", file=sys.stderr)
    return 0


def _train_missing_models(
    out: Path,
    spec: Mapping[str, Any],
    steps: Sequence[tuple[str, Callable[[Mapping[str, Any], int], tuple[Any, dict[str, Any]]]]],
    seed: int,
) -> None:
    """Train, time and save each step's model (``<label>.keras`` + ``<label>.json`` in
    ``out``) whose files are not both there yet; step ``n`` runs with the Keras seed
    ``seed + n``. The baselines' ``exec_time`` is their inference time on the test
    inputs, measured as the search's evaluation budget measures the candidates'."""
    import keras

    for n, (label, fn) in enumerate(steps):
        if not (out / f"{label}.keras").is_file() or not (out / f"{label}.json").is_file():
            t0 = time.perf_counter()
            keras.utils.clear_session(free_memory=True)
            keras.utils.set_random_seed(seed + n)
            model, info = fn(spec[label], seed)
            data = info.pop("_data")
            if label != "base":
                budget = SearchConfig.from_dict(spec["search"]).budget()
                info["exec_time"] = time_inference(model, data.x_test, budget.time_batch, budget.time_repeats)
            with atomic_path(out / f"{label}.keras") as tmp:
                model.save(tmp)
            info["wall_seconds"] = time.perf_counter() - t0  # data, training, timing, saving
            write_json_atomic(out / f"{label}.json", info)
            print(f"{label}: " + ", ".join(f"{k} {v:.4g}" for k, v in info.items() if isinstance(v, float)))


def _study_summary(out: Path, hof: Mapping[str, Any], labels: Sequence[str], *, study: str, budget: str,
                   seed: int, target: str) -> dict[str, Any]:
    """The content of ``summary.json``: the base's and baselines' figures (read back from
    ``out``), the chosen member of the hall of fame ``hof`` with its ratios, the search's
    seconds and evaluations, and the wall-clock seconds of the steps ``labels``, the
    search and the final models."""
    baseline = json.loads((out / "baseline.json").read_text())
    base = json.loads((out / "base.json").read_text())
    chosen = choose(hof["members"], baseline)
    summary: dict[str, Any] = {"study": study, "budget": budget, "seed": seed, "target": target,
                               "base": base, "baseline": baseline, "choice_rule": CHOICE_RULE, "chosen": chosen}
    if (out / "baseline_large.json").is_file():
        summary["baseline_large"] = json.loads((out / "baseline_large.json").read_text())
    if chosen is not None:
        summary["ratios"] = ratios(chosen, baseline)

    with RunStore(out / "search" / "run.db", readonly=True) as store:
        generations = store.generations()
        summary["search_seconds"] = generations[-1]["elapsed"] if generations else None
        summary["evaluations"] = store.count_evaluations()
    # wall-clock seconds per step: base and baselines as they ran, the search's generations,
    # the final models' fitting (from the run store and hall of fame: the same on a rerun)
    wall = {label: json.loads((out / f"{label}.json").read_text()).get("wall_seconds") for label in labels}
    wall.update(search=summary["search_seconds"],
                final_models=sum(float(m.get("final_fit_seconds", 0.0)) for m in hof["members"]))
    summary["wall_seconds"] = dict(wall, total=sum(v for v in wall.values() if v is not None))
    return summary


def _print_chosen(chosen: Mapping[str, Any], r: Mapping[str, Any]) -> None:
    """One line on the chosen model against the baseline (its :func:`ratios` ``r``)."""
    print(f"chosen {chosen['key']}: {r['speedup']:.2f}x faster, {r['size_ratio']:.1f}x smaller, "
          f"test error {r['specialized_test_error']:.4f} vs baseline {r['baseline_test_error']:.4f} "
          f"({100 * r['relative_error_reduction']:+.1f}% relative reduction)")
