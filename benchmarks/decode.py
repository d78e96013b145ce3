"""Framework overhead per candidate: genome creation, variation, validation, decoding.

Measures on the "mnist" task with a fixed seed:

* ``random_genome`` calls per second;
* children per second from variation (one crossover giving two children plus one
  mutation, in a steady-state pool; each child counted);
* ``task.space.check`` calls per second;
* time to decode and compile one model (``evokeras.nets.decode(g, task)``), and the time
  of its first forward call on a (1, 28, 28, 1) zero batch; medians and p90 over
  ``--n-models`` random genomes, ``keras.utils.clear_session()`` before each.

Usage::

    python benchmarks/decode.py [--n-models N] [--seed S] [--n-genomes N]

Writes ``benchmarks/results/decode.json`` (see ``_common.write_result``).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from _common import machine_info, write_result

from evokeras import decode, make_task
from evokeras.variation.network import crossover, mutate, random_genome

TASK = "mnist"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_operators(task: Any, n: int, seed: int) -> dict[str, float]:
    space = task.space
    rng = np.random.default_rng(seed)

    t0 = time.perf_counter()
    genomes = [random_genome(rng, space) for _ in range(n)]
    created = time.perf_counter() - t0

    pool = genomes[:100]
    t_mut = t_cx = 0.0
    n_mut = n_cx = 0
    while n_mut + n_cx < n:
        i, j = (int(k) for k in rng.integers(len(pool), size=2))
        t0 = time.perf_counter()
        ca, cb = crossover(pool[i], pool[j], rng, space)
        t1 = time.perf_counter()
        child = mutate(ca, rng, space)
        t2 = time.perf_counter()
        t_cx += t1 - t0
        t_mut += t2 - t1
        n_cx += 2
        n_mut += 1
        pool[i], pool[j] = child, cb
    children = n_mut + n_cx

    t0 = time.perf_counter()
    for g in genomes:
        space.check(g)
    checked = time.perf_counter() - t0

    return {
        "random_genome_per_s": _rate(n, created),
        "varied_per_s": _rate(children, t_mut + t_cx),
        "mutate_per_s": _rate(n_mut, t_mut),
        "crossover_children_per_s": _rate(n_cx, t_cx),
        "check_per_s": _rate(n, checked),
    }


def bench_decode(task: Any, n_models: int, seed: int) -> dict[str, Any]:
    import keras

    rng = np.random.default_rng([seed, 1])
    genomes = [random_genome(rng, task.space) for _ in range(n_models + 1)]
    x = np.zeros((1, *task.input_shape), dtype="float32")
    decode_s, first_s, params, layers = [], [], [], []
    for k, g in enumerate(genomes):
        keras.utils.clear_session()
        t0 = time.perf_counter()
        model = decode(g, task)  # compile=True
        t1 = time.perf_counter()
        model(x, training=False)
        t2 = time.perf_counter()
        if k == 0:  # warm-up: imports and first-use costs of the backend
            continue
        decode_s.append(t1 - t0)
        first_s.append(t2 - t1)
        params.append(model.count_params())
        layers.append(len(g.layers))
    keras.utils.clear_session()
    return {
        "decode_compile_median_s": float(np.median(decode_s)),
        "decode_compile_p90_s": float(np.percentile(decode_s, 90)),
        "first_call_median_s": float(np.median(first_s)),
        "first_call_p90_s": float(np.percentile(first_s, 90)),
        "model_params_median": float(np.median(params)),
        "model_layers_median": float(np.median(layers)),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-models", type=int, default=30, help="models decoded (default 30)")
    parser.add_argument("--n-genomes", type=int, default=5000,
                        help="loop length of the operator figures (default 5000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    task = make_task(TASK)
    ops = bench_operators(task, args.n_genomes, args.seed)
    dec = bench_decode(task, args.n_models, args.seed)
    machine = machine_info()

    print(f"task={TASK} seed={args.seed} backend={machine['keras_backend']} "
          f"n_genomes={args.n_genomes} n_models={args.n_models}")
    print(f"{'figure':<28}{'value':>14}")
    for key in ("random_genome_per_s", "varied_per_s", "mutate_per_s",
                "crossover_children_per_s", "check_per_s"):
        print(f"{key:<28}{ops[key]:>12,.0f}/s")
    for key in ("decode_compile", "first_call"):
        med, p90 = dec[f"{key}_median_s"], dec[f"{key}_p90_s"]
        print(f"{key + ' median / p90':<28}{med * 1e3:>8.1f} / {p90 * 1e3:.1f} ms")

    result = {
        "benchmark": "decode",
        "task": TASK,
        "seed": args.seed,
        "n_genomes": args.n_genomes,
        "n_models": args.n_models,
        "backend": machine["keras_backend"],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **ops,
        **dec,
        "machine": machine,
    }
    print(f"wrote {write_result('decode', result)}")
    return result


if __name__ == "__main__":
    main()
