"""CartPole benchmark: evokeras vs NEAT-Python, episodes and seconds to a solved policy.

Side by side in one run on the same machine, for each seed:

* **evokeras** -- the ``default`` budget of ``studies/cartpole.py`` (a real
  :class:`~evokeras.engine.search.Search` in a temporary run directory): policy networks whose
  architecture and weights evolve, fitness the mean return of 5 episodes, stopping once a
  front member is verified solved.
* **NEAT-Python** -- its usual feed-forward single-pole configuration
  (``benchmarks/neat_cartpole.cfg``: the ``config-feedforward`` of NEAT-Python's
  ``examples/single-pole-balancing``, population 250, one sigmoid output read as
  "push right" when > 0.5), fitness the mean return of 5 episodes of the same
  gymnasium ``CartPole-v1``, run one genome at a time as NEAT-Python's examples do.

"Solved" is the same for both: gymnasium's criterion, mean return >= 475 over 100
consecutive episodes on seeds the search never used (:meth:`CartPole.verify`). evokeras
checks the Pareto-front members whose search fitness reaches 475, at the end of each
generation (so a solving generation is counted whole); NEAT-Python checks every genome
whose fitness reaches 475 as soon as it is evaluated (its search stops mid-generation).
Counted to the first solved policy: episodes run (search + verification episodes) and
wall seconds (the search loop; imports and start-up excluded on both sides). Also reported: the solved policy's
inference time per observation, as each runs in its rollouts (evokeras: the NumPy
forward pass of the decoded network; NEAT: ``FeedForwardNetwork.activate``) and, for
evokeras, the Keras model's ``predict_on_batch`` time per sample at batch 256.

Target: evokeras solves in fewer episodes and less wall time than NEAT-Python (the
medians over seeds).

Usage::

    python benchmarks/cartpole.py                   # seeds 0-4 -> benchmarks/results/cartpole.json
    python benchmarks/cartpole.py --seeds 0 --results-dir /tmp/cp   # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

NEAT_CONFIG = Path(__file__).resolve().parent / "neat_cartpole.cfg"
EPISODES = 5  # per candidate, both sides


def _per_call_seconds(fn: Any, repeats: int = 2000) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats



def run_evokeras(seed: int, max_generations: int) -> dict[str, Any]:
    from evokeras.engine.config import SearchConfig
    from evokeras.engine.search import Search
    from evokeras.genomes.network import Genome

    overrides = {"study": "cartpole-bench", "budget_name": "default", "seed": seed,
                 "strategy": {"generations": max_generations, "wall_seconds": None}}
    config = SearchConfig.from_dict(overrides, base=SearchConfig.from_dict(_common.study_budgets("cartpole")["default"]))
    with tempfile.TemporaryDirectory() as tmp, Search(config, Path(tmp) / "run") as search:
        t0 = time.perf_counter()
        result = search._run()
        seconds = time.perf_counter() - t0
        episodes = sum(int(r.metrics.get("episodes", 0)) for _, r in search.store.evaluations())
        verified = search.store.get_meta("verified") or {}
        episodes += sum(int(v["episodes"]) for v in verified.values())
        solved_key = search.store.get_meta("solved")
        out: dict[str, Any] = {"seed": seed, "solved": solved_key is not None, "episodes": episodes,
                               "seconds": seconds, "generations": result.generations_done,
                               "evaluations": result.evaluations, "verifications": len(verified)}
        if solved_key is not None:
            genome = Genome.from_dict(search.store.get_evaluation(solved_key).genome)
            task = search.task
            policy = task.policy(genome)
            obs = np.zeros((1, 4), np.float32)
            model = task.keras_policy(genome)
            batch = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
            out.update(
                verified_mean_return=verified[solved_key]["mean_return"],
                params=int(task.space.analyze(genome).params),
                hidden_layers=len(genome.layers),
                inference_us=1e6 * _per_call_seconds(lambda: policy(obs)),
                keras_us_per_sample=1e6 * _per_call_seconds(lambda: model.predict_on_batch(batch), 50) / 256,
            )
    return out


class _Solved(Exception):
    def __init__(self, genome: Any) -> None:
        self.genome = genome


def run_neat(seed: int, max_generations: int) -> dict[str, Any]:
    import random

    import neat

    from evokeras.tasks.cartpole import TEST_SEED_BASE, VERIFY_SEED_BASE, CartPole, rollout

    task = CartPole()
    random.seed(seed)
    config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                         neat.DefaultStagnation, str(NEAT_CONFIG))
    population = neat.Population(config)
    counts = {"episodes": 0, "verifications": 0, "generations": 0, "evaluations": 0}
    rng = np.random.default_rng(seed)

    def policy_of(net: Any) -> Any:
        def policy(obs: np.ndarray) -> np.ndarray:
            push = np.array([net.activate(o)[0] > 0.5 for o in obs], dtype=bool)
            return np.stack([~push, push], axis=1).astype(np.float32)  # arg-max picks the action
        return policy

    def eval_genomes(genomes: list[tuple[int, Any]], cfg: Any) -> None:
        counts["generations"] += 1
        for _, genome in genomes:
            net = neat.nn.FeedForwardNetwork.create(genome, cfg)
            returns, _ = rollout(policy_of(net), EPISODES, int(rng.integers(0, VERIFY_SEED_BASE)))
            counts["episodes"] += EPISODES
            counts["evaluations"] += 1
            genome.fitness = float(returns.mean())
            if genome.fitness >= task.threshold:
                vseed = int(rng.integers(VERIFY_SEED_BASE, TEST_SEED_BASE))
                check, _ = rollout(policy_of(net), task.verify_episodes, vseed)
                counts["episodes"] += task.verify_episodes
                counts["verifications"] += 1
                if check.mean() >= task.threshold:
                    raise _Solved(genome)

    t0 = time.perf_counter()
    winner = None
    try:
        population.run(eval_genomes, max_generations)
    except _Solved as solved:
        winner = solved.genome
    except neat.CompleteExtinctionException:
        pass
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"seed": seed, "solved": winner is not None, "seconds": seconds, **counts}
    if winner is not None:
        net = neat.nn.FeedForwardNetwork.create(winner, config)
        obs = [0.0, 0.0, 0.0, 0.0]
        enabled = [c for c in winner.connections.values() if c.enabled]
        out.update(connections=len(enabled), nodes=len(winner.nodes),
                   params=len(enabled) + len(winner.nodes),
                   inference_us=1e6 * _per_call_seconds(lambda: net.activate(obs)))
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    solved = [r for r in runs if r["solved"]]

    def med(key: str) -> float | None:
        return statistics.median(r[key] for r in solved) if solved else None

    return {
        "median_episodes_to_solve": med("episodes"),
        "median_seconds_to_solve": med("seconds"),
        "median_inference_us": med("inference_us"),
        "solved_seeds": [r["seed"] for r in solved],
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--max-generations", type=int, default=200, help="give up after this many generations (both)")
    p.add_argument("--results-dir", type=Path, default=None, help="where cartpole.json goes (default benchmarks/results)")
    args = p.parse_args(argv)
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    import keras  # noqa: F401  (import cost outside both timings)
    import neat  # noqa: F401

    evo, neat_runs = [], []
    for seed in args.seeds:
        evo.append(run_evokeras(seed, args.max_generations))
        print(f"seed {seed} evokeras: {evo[-1]}", flush=True)
        neat_runs.append(run_neat(seed, args.max_generations))
        print(f"seed {seed} neat:     {neat_runs[-1]}", flush=True)
    e, n = _summary(evo), _summary(neat_runs)
    met = None
    if e["median_episodes_to_solve"] is not None and n["median_episodes_to_solve"] is not None:
        met = (e["median_episodes_to_solve"] < n["median_episodes_to_solve"]
               and e["median_seconds_to_solve"] < n["median_seconds_to_solve"])
    result = {"evokeras": e, "neat": n, "seeds": args.seeds, "episodes_per_candidate": EPISODES,
              "target": {"fewer_episodes_and_less_time": met}, "machine": _common.machine_info()}
    path = _common.write_result("cartpole", result)
    for name, s in (("evokeras", e), ("neat", n)):
        print(f"{name}: solved seeds {s['solved_seeds']}, median episodes {s['median_episodes_to_solve']}, "
              f"median seconds {s['median_seconds_to_solve']}, inference {s['median_inference_us']} us")
    print(f"target met: {met}\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
