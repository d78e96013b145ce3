"""Scaling benchmark: evaluations per minute of the smoke MNIST search, serial vs workers.

The same fixed list of genomes (drawn with ``--seed`` from the smoke budget's search
space, ``studies/mnist.py``) is evaluated by the real :class:`~evokeras.training.evaluator.Evaluator`
at the smoke budget, side by side in one run:

* ``serial`` -- in this process (the backend's default threads: all cores);
* ``process2`` -- :class:`~evokeras.engine.parallel.ProcessBackend` with 2 workers;
* ``dask2`` -- :class:`~evokeras.engine.parallel.DaskBackend`, an embedded LocalCluster of 2
  workers;

with threads per worker = cores // 2, so that workers x threads = cores. Each backend
first evaluates one warm-up genome per worker (not timed: process start, Keras import,
data loading; reported as ``startup_s``), then the list is timed.

``dask_overhead_ms``: Dask's added cost per task, from submission to result minus the
evaluation's own measured time (``EvalResult.times["total"]``), the median over real
evaluations submitted one at a time (so that no task waits for a free worker). The
round trip of a no-op task is reported too (``details.dask2.noop_roundtrip_ms``).

``gpu``: ``null`` without a GPU; else the same list on the GPUs with a process backend
of 2 workers per GPU (``evals_per_min``) next to the CPU figure of ``process2``
(``cpu_evals_per_min``).

Targets (this 2-core machine): ``process2`` and ``dask2`` >= 1.7x ``serial``;
``dask_overhead_ms`` <= 50. Measure on a quiet machine (``machine.load_avg_1m``).

``--part steady_state`` (key ``steady_state``): whole searches, not a list of genomes --
the asynchronous steady-state strategy (``strategy.name = "steady_state"``; ``--part
nsga2``, key ``nsga2``: the generational NSGA-II, for comparison) on the MNIST
``default`` budget's image space (reference architectures and the image priors; each
candidate trained on the fast path, one epoch on 3,000 images), serial, with 2 process
workers and with 2 Dask workers, ``--runs`` times each (seeds ``seed``, ``seed + 1``,
...), interleaved; evaluations per minute of each search (the backend warmed up first,
as above), and their medians. Targets: process2 >= 1.9x serial, dask2 >= 1.8x.

Usage::

    python benchmarks/scaling.py                 # 16 genomes -> benchmarks/results/scaling.json
    python benchmarks/scaling.py --quick --results-dir /tmp/scaling   # a few genomes, a check
    python benchmarks/scaling.py --part steady_state --runs 3       # whole steady-state searches
    python benchmarks/scaling.py --part nsga2 --runs 3              # the same with NSGA-II
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))


def smoke_setup(n_genomes: int, seed: int) -> tuple[Any, list[Any], list[Any]]:
    """The smoke budget's evaluator, ``n_genomes`` genomes to time, and 2 warm-up genomes."""
    from mnist import BUDGETS

    from evokeras.engine.config import SearchConfig
    from evokeras.engine.toolbox import make_toolbox
    from evokeras.training.evaluator import Evaluator

    config = SearchConfig.from_dict({**BUDGETS["smoke"], "seed": seed})
    task = config.build_task()
    evaluator = Evaluator(task, config.budget(), config.objectives, seed=seed)
    tb = make_toolbox(task, objectives=config.objectives, seed=seed)
    genomes = [ind.as_genome() for ind in tb.population(n_genomes)]
    warm_tb = make_toolbox(task, objectives=config.objectives, seed=seed + 10_000)
    warm = [ind.as_genome() for ind in warm_tb.population(2)]
    return evaluator, genomes, warm


def measure(name: str, backend: Any, evaluator: Any, genomes: list[Any], warm: list[Any]) -> dict[str, Any]:
    """Warm ``backend`` up on ``warm``, then time ``genomes``."""
    t0 = time.perf_counter()
    list(backend(evaluator, warm))
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = list(backend(evaluator, genomes))
    wall = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    out = {
        "evals_per_min": 60.0 * len(results) / wall,
        "wall_s": wall,
        "startup_s": startup,
        "evaluations": len(results),
        "statuses": statuses,
        "eval_seconds_sum": sum(r.times.get("total", 0.0) for r in results),
        "val_error": {r.key: r.metrics.get("val_error") for r in results},
    }
    print(f"{name:>9}: {out['evals_per_min']:6.1f} evals/min  ({len(results)} in {wall:.1f} s; "
          f"start-up {startup:.1f} s; {statuses})", flush=True)
    return out


def search_config(strategy: str, seed: int, quick: bool) -> Any:
    """The search the ``steady_state`` and ``nsga2`` parts time: the MNIST ``default``
    budget's space and priors, a shorter evaluation (one epoch on 3,000 images)."""
    from mnist import BUDGETS

    from evokeras.engine.config import SearchConfig

    base = SearchConfig.from_dict(BUDGETS["default"])
    n = 2 if quick else 8
    return SearchConfig.from_dict({
        "seed": seed,
        "strategy": {"name": strategy, "population": n, "offspring": n, "generations": 1 if quick else 3,
                     "wall_seconds": None},
        "evaluation": {"epochs": 1, "train_samples": 3000, "val_samples": 1000, "seconds": 30, "time_repeats": 3},
        "final": {"members": 1},
    }, base=base)


def timed_search(name: str, backend: Any, strategy: str, seed: int, quick: bool) -> dict[str, Any]:
    """One whole search on ``backend`` (warmed up first): evaluations per minute."""
    import tempfile

    from evokeras.engine.search import Search

    config = search_config(strategy, seed, quick)
    task = config.build_task()
    with tempfile.TemporaryDirectory() as tmp:
        with Search(config, Path(tmp) / "run", task=task, map_fn=backend) as search:
            warm = [ind.as_genome() for ind in search.toolbox.population(2)]
            t0 = time.perf_counter()
            list(backend(search.evaluate, warm))
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = search._run()
            wall = time.perf_counter() - t0
            rows = [r for _, r in search.store.evaluations()]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    out = {"evals_per_min": 60.0 * len(rows) / wall, "wall_s": wall, "startup_s": startup, "evaluations": len(rows),
           "statuses": statuses, "eval_seconds_sum": sum(r.times.get("total", 0.0) for r in rows),
           "front": len(result.front), "seed": seed}
    print(f"{name:>9} seed {seed}: {out['evals_per_min']:6.1f} evals/min ({len(rows)} in {wall:.1f} s; {statuses})",
          flush=True)
    return out


def search_part(strategy: str, seed: int, runs: int, quick: bool) -> dict[str, Any]:
    """``runs`` searches per backend, interleaved (serial, process2, dask2, serial, ...); medians."""
    from evokeras.engine.parallel import (
        DaskBackend,
        ProcessBackend,
        SerialBackend,
        cpu_count,
        hard_timeout,
    )

    cores = cpu_count()
    workers, threads = 2, max(1, cores // 2)
    limit = hard_timeout(search_config(strategy, seed, quick).budget().timeout)
    per: dict[str, list[dict[str, Any]]] = {"serial": [], "process2": [], "dask2": []}
    for i in range(runs):
        with SerialBackend() as backend:
            per["serial"].append(timed_search("serial", backend, strategy, seed + i, quick))
        with ProcessBackend(workers, threads_per_worker=threads, gpus=0, timeout=limit, recycle_after=None) as backend:
            per["process2"].append(timed_search("process2", backend, strategy, seed + i, quick))
        with DaskBackend(workers=workers, threads_per_worker=threads, timeout=limit) as backend:
            per["dask2"].append(timed_search("dask2", backend, strategy, seed + i, quick))
    med = {name: statistics.median(r["evals_per_min"] for r in rs) for name, rs in per.items()}
    return {
        "runs": runs,
        "serial_evals_per_min": med["serial"],
        "process2_evals_per_min": med["process2"],
        "dask2_evals_per_min": med["dask2"],
        "speedup": {"process2": med["process2"] / med["serial"], "dask2": med["dask2"] / med["serial"]},
        "targets": {"process2_min": 1.9, "dask2_min": 1.8, "process2_met": med["process2"] / med["serial"] >= 1.9,
                    "dask2_met": med["dask2"] / med["serial"] >= 1.8},
        "budget": f"MNIST default space, {strategy} strategy, 1 epoch on 3,000 images per candidate",
        "cores": cores, "workers": workers, "threads_per_worker": threads,
        "details": per,
    }


def dask_overhead(backend: Any, evaluator: Any, genomes: list[Any], noop_n: int) -> dict[str, Any]:
    """Per-task cost of Dask: submission to result minus the evaluation's own time,
    one task at a time (real evaluations), and the round trip of a no-op task."""
    samples = []
    for g in genomes:
        t0 = time.perf_counter()
        (result,) = list(backend(evaluator, [g]))
        samples.append(1000.0 * (time.perf_counter() - t0 - result.times.get("total", 0.0)))
    noop = backend.roundtrip_ms(noop_n)
    return {
        "overhead_ms_samples": samples,
        "overhead_ms_median": statistics.median(samples),
        "noop_roundtrip_ms": statistics.median(noop),
    }


def gpu_device() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.startswith("GPU ")]
    return "; ".join(lines) or None


def _max_diff(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    diffs = [abs(a[k] - b[k]) for k in a if k in b and a[k] is not None and b[k] is not None]
    return max(diffs) if diffs else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-genomes", type=int, default=None, help="genomes timed per backend (default 16; --quick: 4)")
    p.add_argument("--quick", action="store_true", help="a few genomes and samples: checks that the script works")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overhead-samples", type=int, default=None, help="sequential Dask evaluations (default 6; --quick: 2)")
    p.add_argument("--results-dir", type=Path, default=None, help="where scaling.json goes (default benchmarks/results)")
    p.add_argument("--part", choices=("backends", "steady_state", "nsga2"), default="backends",
                   help="backends: the genome list on each backend; steady_state, nsga2: whole searches of that "
                        "strategy (a part run keeps the file's other parts)")
    p.add_argument("--runs", type=int, default=3, help="steady_state: searches per backend (default 3)")
    args = p.parse_args(argv)
    n = args.n_genomes or (4 if args.quick else 16)
    k = args.overhead_samples or (2 if args.quick else 6)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    if args.part != "backends":
        before = _common.machine_info()
        part = search_part(args.part, args.seed, args.runs, args.quick)
        part["machine"] = {**_common.machine_info(), "load_avg_1m_before": before["load_avg_1m"]}
        path = _common.write_result("scaling", {**_common.read_result("scaling"), args.part: part})
        print(f"{args.part}, medians of {args.runs}: process2 {part['speedup']['process2']:.2f}x, "
              f"dask2 {part['speedup']['dask2']:.2f}x serial; wrote {path}")
        return 0

    from evokeras.engine.parallel import (
        DaskBackend,
        ProcessBackend,
        SerialBackend,
        cpu_count,
        detect_gpus,
        hard_timeout,
    )

    cores = cpu_count()
    workers, threads = 2, max(1, cores // 2)
    machine_before = _common.machine_info()
    evaluator, genomes, warm = smoke_setup(n, args.seed)
    overhead_genomes = smoke_setup(k, args.seed + 1)[1]
    limit = hard_timeout(evaluator.budget.timeout)
    print(f"{n} genomes, smoke budget, {cores} cores: {workers} workers x {threads} threads; "
          f"load {machine_before['load_avg_1m']}", flush=True)

    details: dict[str, Any] = {"n_genomes": n, "seed": args.seed, "quick": args.quick, "cores": cores,
                               "workers": workers, "threads_per_worker": threads}
    with SerialBackend() as backend:
        details["serial"] = measure("serial", backend, evaluator, genomes, warm[:1])
    with ProcessBackend(workers, threads_per_worker=threads, gpus=0, timeout=limit) as backend:
        details["process2"] = measure("process2", backend, evaluator, genomes, warm)
    with DaskBackend(workers=workers, threads_per_worker=threads, timeout=limit) as backend:
        details["dask2"] = measure("dask2", backend, evaluator, genomes, warm)
        details["dask2"].update(dask_overhead(backend, evaluator, overhead_genomes, 10 if args.quick else 50))

    gpu = None
    n_gpus = detect_gpus()
    if n_gpus:
        with ProcessBackend(gpus=n_gpus, workers_per_gpu=2, timeout=limit) as backend:
            details["gpu"] = measure("gpu", backend, evaluator, genomes, warm * n_gpus)
            details["gpu"]["workers"] = backend.workers
        gpu = {"device": gpu_device(), "evals_per_min": details["gpu"]["evals_per_min"],
               "cpu_evals_per_min": details["process2"]["evals_per_min"]}

    serial = details["serial"]["evals_per_min"]
    details["speedup"] = {name: details[name]["evals_per_min"] / serial for name in ("process2", "dask2")}
    details["max_val_error_diff_vs_serial"] = {
        name: _max_diff(details["serial"]["val_error"], details[name]["val_error"]) for name in ("process2", "dask2")
    }
    result = {
        "serial_evals_per_min": serial,
        "process2_evals_per_min": details["process2"]["evals_per_min"],
        "dask2_evals_per_min": details["dask2"]["evals_per_min"],
        "dask_overhead_ms": details["dask2"]["overhead_ms_median"],
        "gpu": gpu,
        "machine": {**_common.machine_info(), "load_avg_1m_before": machine_before["load_avg_1m"]},
        "targets": {
            "speedup_min": 1.7,
            "process2_met": details["speedup"]["process2"] >= 1.7,
            "dask2_met": details["speedup"]["dask2"] >= 1.7,
            "dask_overhead_ms_max": 50.0,
            "dask_overhead_met": details["dask2"]["overhead_ms_median"] <= 50.0,
        },
        "details": details,
    }
    previous = _common.read_result("scaling")
    result.update({part: previous[part] for part in ("steady_state", "nsga2") if part in previous})
    path = _common.write_result("scaling", result)
    print(f"speed-up vs serial: process2 {details['speedup']['process2']:.2f}x, dask2 {details['speedup']['dask2']:.2f}x; "
          f"dask overhead {result['dask_overhead_ms']:.1f} ms/task (no-op round trip "
          f"{details['dask2']['noop_roundtrip_ms']:.1f} ms); gpu: {gpu}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
