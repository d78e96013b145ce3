"""Control benchmark: evokeras against CMA-ES, NEAT-Python and linear random search, seconds
and episodes to a verified solve at equal wall time.

For each environment, method and seed, one run in its own process pinned to one core
(``taskset``; two runs side by side on a 2-core machine), each given the environment's
wall time (``ENVS``):

* **evokeras** -- what a user gets: ``evokeras.search(evokeras.from_gym(ENV), out,
  time_budget=WALL)`` (the time budget's control configuration: strategy ``"es"``, weight
  ES around NSGA-II, observations scaled; its search loop gets 85% of ``WALL``, the
  margin a time budget keeps for the final models); the search stops once a candidate
  is verified solved (checked as it arrives when it returns more than every candidate
  verified before, and at each generation's end for the front).
* **CMA-ES** (``cma``, Hansen's pycma) on the flat weight vector of a fixed MLP (one
  hidden layer of 16 ``tanh`` units), ``x0 = 0``, ``sigma0 = 0.5``, pycma's default
  population, fitness the mean return of 5 episodes.
* **NEAT-Python** -- ``benchmarks/neat_cartpole.cfg`` with the environment's inputs and
  outputs (``Discrete(2)``: one output, > 0.5 is action 1, as NEAT-Python's examples;
  ``Discrete(k)``: arg-max of ``k``; ``Box``: sigmoid outputs mapped onto the bounds),
  population 250, 5 episodes per genome.
* **linear random search** -- linear policies ``W x + b`` with standard normal entries,
  5 episodes each.

Every method reads the same scaled observations (:func:`evokeras.tasks.control.observation_scale`:
the mean and standard deviation of 10 random-action episodes), acts through the same
:class:`~evokeras.tasks.control.ActionMap` (arg-max; ``tanh`` into a ``Box``'s bounds),
and is "solved" by the same check (:func:`~evokeras.tasks.control.check_policy`): a
candidate whose search return reaches the threshold runs 100 episodes on seeds the search
never uses, 25 at a time, turned down early when hopeless; their mean must reach it too. Counted
to the first verified solve: seconds (the method's loop, from its start: the search loop
for evokeras; the set-up every method shares, the observation scale's 10 random
episodes, is outside every clock and recorded as ``setup_seconds`` for evokeras) and
episodes (search + verification). Each run
then tests its solved policy on 100 more unseen episodes (``test_return``).

Target (issue 33): on every environment evokeras's median seconds to a verified solve are
below each anchor's; where an anchor never solves in the wall time, evokeras solves;
LunarLander-v3 within 15 minutes.

Usage::

    python benchmarks/control.py                       # all -> benchmarks/results/control.json
    python benchmarks/control.py --envs CartPole-v1 --seeds 0 --results-dir /tmp/c
    python benchmarks/control.py --one LunarLander-v3 cma_es 0 --out job.json   # one run (used by the above)

Runs are cached in ``--work`` (default ``runs/control``): an interrupted benchmark reruns
only what is missing.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

#: environment -> (threshold, wall seconds per run)
ENVS: dict[str, tuple[float, float]] = {
    "CartPole-v1": (475.0, 300.0),
    "Acrobot-v1": (-100.0, 300.0),
    "MountainCarContinuous-v0": (90.0, 300.0),
    "LunarLander-v3": (200.0, 900.0),
}
METHODS = ("evokeras", "cma_es", "neat", "linear_rs")
EPISODES = 5  # per candidate, every method
HIDDEN = 16  # CMA-ES's fixed MLP
NEAT_CONFIG = Path(__file__).resolve().parent / "neat_cartpole.cfg"


class Env:
    """One environment as every anchor sees it: scaled observations, the action map, the
    seeds and the solve check shared with evokeras."""

    def __init__(self, env_id: str, threshold: float, seed: int) -> None:
        from evokeras.tasks.control import GymControl

        self.task = GymControl(env_id, threshold=threshold)
        self.env_id, self.threshold = env_id, threshold
        self.mean, self.std = self.task.obs_mean.astype(np.float32), self.task.obs_std.astype(np.float32)
        self.rng = np.random.default_rng(seed)
        self.episodes = 0
        self.verifications = 0

    def scaled(self, policy: Any) -> Any:
        return lambda obs: policy((obs - self.mean) / self.std)

    def evaluate(self, policy: Any) -> float:
        """The mean return of ``EPISODES`` search episodes (seeds below the verification range)."""
        from evokeras.tasks.control import VERIFY_SEED_BASE, rollout

        returns, _ = rollout(self.scaled(policy), EPISODES, int(self.rng.integers(0, VERIFY_SEED_BASE - EPISODES)),
                             env_id=self.env_id, act=self.task.act)
        self.episodes += EPISODES
        return float(returns.mean())

    def hundred(self, policy: Any, low: int, high: int, early: bool) -> dict[str, Any]:
        from evokeras.tasks.control import check_policy

        return check_policy(self.scaled(policy), int(self.rng.integers(low, high - 100)), env_id=self.env_id,
                            act=self.task.act, threshold=self.threshold, early=early)

    def verified(self, policy: Any, value: float) -> bool:
        """Whether a candidate whose search return is ``value`` is verified solved (the
        same check as evokeras's, :func:`~evokeras.tasks.control.check_policy`)."""
        from evokeras.tasks.control import TEST_SEED_BASE, VERIFY_SEED_BASE

        if value < self.threshold:
            return False
        self.verifications += 1
        check = self.hundred(policy, VERIFY_SEED_BASE, TEST_SEED_BASE, early=True)
        self.episodes += check["episodes"]
        return bool(check["solved"])

    def test(self, policy: Any) -> float:
        from evokeras.tasks.control import TEST_SEED_BASE

        return float(self.hundred(policy, TEST_SEED_BASE, 2**31, early=False)["mean_return"])


def _mlp(sizes: list[int]) -> tuple[int, Any]:
    """(number of weights, vector -> policy) of a tanh MLP with layer ``sizes``."""
    shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    n = sum(a * b + b for a, b in shapes)

    def policy_of(x: np.ndarray) -> Any:
        layers, pos = [], 0
        for a, b in shapes:
            w = x[pos : pos + a * b].reshape(a, b).astype(np.float32)
            pos += a * b
            layers.append((w, x[pos : pos + b].astype(np.float32)))
            pos += b

        def policy(obs: np.ndarray) -> np.ndarray:
            h = obs
            for i, (w, bias) in enumerate(layers):
                h = h @ w + bias
                if i < len(layers) - 1:
                    h = np.tanh(h)
            return h
        return policy
    return n, policy_of


def _loop(env: Env, wall: float, candidates: Any) -> dict[str, Any]:
    """Evaluate ``candidates`` (an iterator of ``(policy, tell)``) until one is verified
    solved or ``wall`` seconds pass."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"solved": False}
    evaluations = 0
    for policy, tell in candidates:
        value = env.evaluate(policy)
        evaluations += 1
        if env.verified(policy, value):
            out.update(solved=True, seconds=time.perf_counter() - t0, episodes=env.episodes,
                       test_return=env.test(policy))
            break
        tell(value)
        if time.perf_counter() - t0 > wall:
            break
    out.update(evaluations=evaluations, verifications=env.verifications,
               total_seconds=time.perf_counter() - t0, total_episodes=env.episodes)
    return out


def run_cma_es(env: Env, wall: float, seed: int) -> dict[str, Any]:
    import cma

    n, policy_of = _mlp([env.task.input_shape[0], HIDDEN, env.task.n_outputs])
    es = cma.CMAEvolutionStrategy(np.zeros(n), 0.5, {"seed": seed + 1, "verbose": -9})

    def candidates() -> Any:
        while True:
            xs, values = es.ask(), []
            for x in xs:
                yield policy_of(x), values.append
            es.tell(xs, [-v for v in values])

    return _loop(env, wall, candidates())


def run_linear_rs(env: Env, wall: float, seed: int) -> dict[str, Any]:
    n, policy_of = _mlp([env.task.input_shape[0], env.task.n_outputs])

    def candidates() -> Any:
        while True:
            yield policy_of(env.rng.standard_normal(n)), lambda value: None

    return _loop(env, wall, candidates())


def _neat_config(env: Env, path: Path) -> Any:
    import neat

    parser = configparser.ConfigParser()
    parser.read(NEAT_CONFIG)
    k = env.task.n_outputs
    binary = env.task.act.discrete and k == 2
    parser["DefaultGenome"]["num_inputs"] = str(env.task.input_shape[0])
    parser["DefaultGenome"]["num_outputs"] = str(1 if binary else k)
    with path.open("w") as f:
        parser.write(f)
    return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                       neat.DefaultStagnation, str(path))


def run_neat(env: Env, wall: float, seed: int) -> dict[str, Any]:
    import random

    import neat

    random.seed(seed)
    task = env.task
    with tempfile.TemporaryDirectory() as tmp:
        config = _neat_config(env, Path(tmp) / "neat.cfg")
    binary = task.act.discrete and task.n_outputs == 2

    def policy_of(net: Any) -> Any:
        def policy(obs: np.ndarray) -> np.ndarray:
            out = np.array([net.activate(o) for o in obs], dtype=np.float32)
            if binary:
                return np.concatenate([0.5 - out, out - 0.5], axis=1)  # arg-max: action 1 when > 0.5
            if task.act.discrete:
                return out
            return np.arctanh(np.clip(2.0 * out - 1.0, -0.999999, 0.999999))  # the ActionMap's tanh undone: bounds
        return policy

    class Stop(Exception):
        pass

    t0 = time.perf_counter()
    out: dict[str, Any] = {"solved": False}
    evaluations = 0

    def eval_genomes(genomes: list[tuple[int, Any]], cfg: Any) -> None:
        nonlocal evaluations
        for _, genome in genomes:
            policy = policy_of(neat.nn.FeedForwardNetwork.create(genome, cfg))
            genome.fitness = env.evaluate(policy)
            evaluations += 1
            if env.verified(policy, genome.fitness):
                out.update(solved=True, seconds=time.perf_counter() - t0, episodes=env.episodes,
                           test_return=env.test(policy))
                raise Stop
            if time.perf_counter() - t0 > wall:
                raise Stop

    population = neat.Population(config)
    while time.perf_counter() - t0 <= wall:
        try:
            population.run(eval_genomes, 1000)
        except Stop:
            break
        except neat.CompleteExtinctionException:
            population = neat.Population(config)
    out.update(evaluations=evaluations, verifications=env.verifications,
               total_seconds=time.perf_counter() - t0, total_episodes=env.episodes)
    return out


RUNNERS = {"cma_es": run_cma_es, "neat": run_neat, "linear_rs": run_linear_rs}


def run_evokeras(env_id: str, threshold: float, wall: float, seed: int) -> dict[str, Any]:
    import evokeras
    from evokeras.api import _new_search

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        task = evokeras.from_gym(env_id, threshold=threshold)
        setup = time.perf_counter() - t0
        search = _new_search(task, Path(tmp) / "run", {"seed": seed}, None, wall, progress=False, callbacks=())
        with search:
            t1 = time.perf_counter()
            result = search._run()
            loop = time.perf_counter() - t1
            store = search.store
            verified = store.get_meta("verified") or {}
            records = [r for _, r in store.evaluations()]
            episodes = sum(int(r.metrics.get("episodes", 0)) for r in records) + sum(v["episodes"] for v in verified.values())
            solved_key = store.get_meta("solved")
            out: dict[str, Any] = {"solved": solved_key is not None, "evaluations": len(records),
                                   "verifications": len(verified), "generations": result.generations_done,
                                   "total_seconds": loop, "total_episodes": episodes,
                                   "setup_seconds": setup, "strategy": search.config.strategy.name,
                                   "population": search.config.strategy.population,
                                   "step_us": statistics.median([r.metrics["step_us"] for r in records
                                                                 if "step_us" in r.metrics] or [float("nan")])}
            if solved_key is not None:
                from evokeras.genomes.network import Genome

                genome = Genome.from_dict(store.get_evaluation(solved_key).genome)
                out.update(seconds=loop, episodes=episodes,
                           test_return=task.test(genome, seed)["mean_return"],
                           params=int(task.space.analyze(genome).params), hidden_layers=len(genome.layers),
                           restarts=getattr(search.strategy, "restarts", None))
    return out


def run_one(env_id: str, method: str, seed: int) -> dict[str, Any]:
    threshold, wall = ENVS[env_id]
    if method == "evokeras":
        out = run_evokeras(env_id, threshold, wall, seed)
    else:
        env = Env(env_id, threshold, seed)
        out = RUNNERS[method](env, wall, seed)
    return {"env": env_id, "method": method, "seed": seed, "wall": wall, **out}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    solved = [r for r in runs if r["solved"]]

    def med(key: str) -> float | None:
        # an unsolved seed counts as not solved within the wall: median over all seeds, unsolved = inf
        values = sorted(r.get(key, float("inf")) if r["solved"] else float("inf") for r in runs)
        m = statistics.median(values) if values else None
        return None if m is None or m == float("inf") else m

    return {"seeds": [r["seed"] for r in runs], "solved": len(solved),
            "median_seconds_to_solve": med("seconds"), "median_episodes_to_solve": med("episodes"),
            "median_test_return": statistics.median(r["test_return"] for r in solved) if solved else None,
            "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="runs side by side, each pinned to its own core")
    p.add_argument("--work", type=Path, default=Path("runs/control"), help="where each run's result is cached")
    p.add_argument("--results-dir", type=Path, default=None, help="where control.json goes (default benchmarks/results)")
    p.add_argument("--one", nargs=3, metavar=("ENV", "METHOD", "SEED"), help="run one and write --out")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.one:
        env_id, method, seed = args.one
        result = run_one(env_id, method, int(seed))
        args.out.write_text(json.dumps(result, indent=1))
        return 0
    if args.results_dir is not None:
        _common.RESULTS_DIR = args.results_dir
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = [(e, m, s) for e in args.envs for s in args.seeds for m in args.methods]
    todo = [j for j in jobs if not (args.work / f"{j[0]}-{j[1]}-{j[2]}.json").exists()]
    running: dict[int, tuple[subprocess.Popen, tuple]] = {}
    while todo or running:
        for core in range(args.jobs):
            if core not in running and todo:
                job = todo.pop(0)
                out = args.work / f"{job[0]}-{job[1]}-{job[2]}.json"
                cmd = ["taskset", "-c", str(core), sys.executable, __file__, "--one", job[0], job[1], str(job[2]),
                       "--out", str(out)]
                running[core] = (subprocess.Popen(cmd), job)
                print(f"core {core}: {job}", flush=True)
        time.sleep(1)
        for core, (proc, job) in list(running.items()):
            if proc.poll() is not None:
                del running[core]
                print(f"done {job}: rc {proc.returncode}", flush=True)
                out = args.work / f"{job[0]}-{job[1]}-{job[2]}.json"
                if proc.returncode != 0 and not out.exists():  # a crashed run counts as not solved
                    out.write_text(json.dumps({"env": job[0], "method": job[1], "seed": job[2], "solved": False,
                                               "error": f"exit status {proc.returncode}"}))
    result: dict[str, Any] = {}
    for env_id in args.envs:
        threshold, wall = ENVS[env_id]
        entry: dict[str, Any] = {"threshold": threshold, "wall_seconds": wall}
        for method in args.methods:
            runs = [json.loads(p.read_text()) for s in args.seeds
                    if (p := args.work / f"{env_id}-{method}-{s}.json").exists()]
            entry[method] = _summary(runs)
        result[env_id] = entry
    merged = {**_common.read_result("control"), **result}
    merged["machine"] = _common.machine_info()
    merged["episodes_per_candidate"] = EPISODES
    path = _common.write_result("control", merged)
    for env_id, entry in result.items():
        for method in args.methods:
            s = entry[method]
            print(f"{env_id:26s} {method:10s} solved {s['solved']}/{len(s['seeds'])} "
                  f"median s {s['median_seconds_to_solve']} episodes {s['median_episodes_to_solve']} "
                  f"test {s['median_test_return']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
