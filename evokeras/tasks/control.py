"""Control of any gymnasium environment: evolve policy networks -- architecture and weights together.

The individual is a policy network, observation -> action outputs; its weights are not
trained: they live in the genome (:mod:`evokeras.variation.weights`) and evolve with the
architecture -- a child inherits its parent's weights wherever the layer shapes allow,
architecture mutations keep what they can, and a Gaussian weight mutation perturbs them.

Any environment id of gymnasium's registry works whose observation space is a ``Box``
(flattened to a vector: the network's input size) and whose action space is

* ``Discrete(n)``: the network has ``n`` outputs, the action is their arg-max;
* ``Box`` (continuous): one output per action component, squashed into the bounds:
  ``action = low + (tanh(output) + 1) / 2 * (high - low)`` (``tanh(output)`` itself
  where a bound is infinite).

The policy reads observations standardised by the mean and standard deviation of 10
random-action episodes (``normalize``, :func:`observation_scale`; a fixed ``Normalization``
layer in the Keras model), so that a component 100 times smaller than another (MountainCar's
velocity) still moves a random policy. The search strategy made for these tasks is
``"es"`` (:mod:`evokeras.engine.strategies.es`): OpenAI-ES on the weights
(:meth:`GymControl.weight_vector`), with novelty (the ``behaviour`` metric) when returns are
flat.

Fitness is the mean return of ``Budget.episodes`` real episodes, run at once in a
vectorised environment (``gymnasium.make_vec``: the environment's own vector entry point
where it has one, as CartPole, else ``SyncVectorEnv``); the policy's forward pass is one
NumPy call for all episodes per step. The NumPy forward pass computes what the decoded
Keras model computes; the Keras model is what is saved and timed.

"Solved": mean return >= ``threshold`` over 100 consecutive episodes (:func:`check_policy`:
25 at a time, a hopeless policy turned down early), the threshold being
the user's or the environment's ``spec.reward_threshold`` (none: the search never stops
early). Seeds: a candidate's episodes are seeded from the run seed and its key, in
``[0, 2**30)``; :meth:`GymControl.verify` runs 100 episodes from ``[2**30, 3 * 2**29)``,
a range the search never uses; the final test of each front member
(:meth:`GymControl.final_model`) is another 100 episodes from ``[3 * 2**29, 2**31)``.

Objectives: ``return`` (maximised), ``params``/``flops``/``exec_time`` (minimised).

Trust: an environment id is looked up in gymnasium's registry only; the ``module:Env-v0``
form, which makes gymnasium import ``module``, is refused (a run directory records the id,
and nothing read from a run directory may run code). Import the module that registers such
an environment yourself, then name its plain id.

Example:
    >>> from evokeras.tasks.control import GymControl
    >>> task = GymControl("MountainCar-v0")
    >>> task.input_shape, task.n_outputs, task.threshold
    ((2,), 3, -110.0)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evokeras._io import atomic_path
from evokeras._meta import optional_dependency
from evokeras.genomes.network import Genome
from evokeras.genomes.space import SearchSpace, SpaceError
from evokeras.nets.decode import decode
from evokeras.tasks.base import NetworkTask
from evokeras.training.context import FinalContext, ScoreContext
from evokeras.training.records import derive_seed
from evokeras.variation import weights as W
from evokeras.variation.network import crossover, mutate, random_genome

__all__ = ["TEST_SEED_BASE", "VERIFY_SEED_BASE", "ActionMap", "GymControl", "check_policy", "episodes_of",
           "observation_scale", "rollout"]

#: Seeds of search episodes are below this; verification seeds are at or above it.
VERIFY_SEED_BASE = 2**30
#: Seeds of the final test episodes are at or above this (and below 2**31).
TEST_SEED_BASE = 3 * 2**29
#: The seed of the random-action episodes that scale observations (in no other range).
PROBE_SEED = 2**31


@dataclasses.dataclass(frozen=True, eq=False)
class ActionMap:
    """From the policy network's outputs ``[n, k]`` to ``n`` actions of an action space.

    Attributes:
        discrete: arg-max over ``k`` actions (``Discrete(k)``), else a ``Box`` of shape
            ``shape`` squashed into ``[low, high]`` (module docstring).
    """

    discrete: bool
    shape: tuple[int, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        if self.discrete:
            return np.argmax(outputs, axis=-1).astype(np.int64)
        assert self.low is not None and self.high is not None
        squashed = np.tanh(outputs.astype(np.float64))
        bounded = np.isfinite(self.low) & np.isfinite(self.high)
        scaled = np.where(bounded, self.low + (squashed + 1.0) / 2.0 * (self.high - self.low), squashed)
        return scaled.astype(np.float32).reshape((len(outputs), *self.shape))


def _env_spec(env_id: str) -> Any:
    """gymnasium's spec of ``env_id`` (registry lookup only); :class:`ValueError` otherwise."""
    with optional_dependency():
        import gymnasium as gym

    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id: expected a gymnasium environment id, got {env_id!r}")
    if ":" in env_id:
        raise ValueError(f"env_id {env_id!r}: the 'module:Env' form would import a module; import it "
                         "yourself (it registers the environment) and name the plain id")
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"env_id {env_id!r}: not in gymnasium's registry ({exc})") from exc


def action_map(space: Any, env_id: str) -> ActionMap:
    """The :class:`ActionMap` of a ``Discrete`` or 1-D ``Box`` action space."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError(f"env_id {env_id!r}: Discrete action spaces must start at 0, got start={space.start}")
        return ActionMap(True, (), None, None)
    if isinstance(space, spaces.Box):
        return ActionMap(False, tuple(space.shape), np.asarray(space.low, np.float64).ravel(),
                         np.asarray(space.high, np.float64).ravel())
    raise ValueError(f"env_id {env_id!r}: action space {space} is neither Discrete nor Box")


def rollout(policy: Any, episodes: int, seed: int, *, env_id: str = "CartPole-v1",
            act: ActionMap | None = None) -> tuple[np.ndarray, int]:
    """Run ``episodes`` episodes of ``env_id`` at once; ``policy(obs[n, d]) -> outputs[n, k]``,
    ``act`` maps the outputs to actions (default: arg-max).

    Returns the return of each episode and the number of environment steps taken.
    """
    returns, steps, _ = episodes_of(policy, episodes, seed, env_id=env_id, act=act)
    return returns, steps


def episodes_of(policy: Any, episodes: int, seed: int, *, env_id: str = "CartPole-v1",
                act: ActionMap | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`rollout`, also returning each episode's last observation ``[n, d]``."""
    with optional_dependency():
        import gymnasium as gym

    act = act or ActionMap(True)
    env = gym.make_vec(env_id, num_envs=int(episodes), vectorization_mode=None)
    try:
        obs, _ = env.reset(seed=int(seed))
        obs = np.asarray(obs, dtype=np.float32).reshape(episodes, -1)
        done = np.zeros(episodes, dtype=bool)
        returns = np.zeros(episodes, dtype=np.float64)
        last = obs.copy()
        steps = 0
        while not done.all():
            actions = act(policy(obs))
            obs, reward, terminated, truncated, _ = env.step(actions)
            obs = np.asarray(obs, dtype=np.float32).reshape(episodes, -1)
            returns += np.where(done, 0.0, np.asarray(reward, dtype=np.float64))
            steps += int((~done).sum())
            last[~done] = obs[~done]
            done |= np.asarray(terminated) | np.asarray(truncated)
    finally:
        env.close()
    return returns, steps, last


def check_policy(policy: Any, seed: int, *, env_id: str, act: ActionMap, threshold: float | None,
                 episodes: int = 100, chunk: int = 25, early: bool = True) -> dict[str, Any]:
    """gymnasium's criterion: whether the mean return of ``episodes`` consecutive episodes
    (seeds ``seed``, ``seed + 1``, ...) reaches ``threshold``.

    The episodes run ``chunk`` at a time; with ``early``, a policy whose mean so far is
    more than two standard errors below the threshold is turned down there (not solved,
    ``episodes`` says how many ran), so a lucky search return costs a quarter of a check.
    A policy whose true mean is exactly the threshold is turned down at one look with a
    chance of about 2% (normal approximation; more for skewed returns), about 5% over the
    three looks; one above it, less. A policy is only ever declared solved on all
    ``episodes``."""
    returns: list[float] = []
    steps = 0
    while len(returns) < episodes:
        n = min(chunk, episodes - len(returns))
        got, used = rollout(policy, n, seed + len(returns), env_id=env_id, act=act)
        returns += got.tolist()
        steps += used
        done = np.asarray(returns)
        if early and threshold is not None and len(returns) < episodes:
            margin = 2.0 * done.std(ddof=1) / math.sqrt(len(done)) if len(done) > 1 else 0.0
            if done.mean() + margin < threshold:
                break
    mean = float(np.mean(returns))
    return {"mean_return": mean, "solved": threshold is not None and len(returns) == episodes and mean >= threshold,
            "episodes": len(returns), "steps": steps, "seed": int(seed)}


def _checked_scale(scale: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``scale`` as ``(mean, std)`` arrays of ``dim`` finite numbers (positive standard
    deviations); :class:`ValueError` naming ``scale`` otherwise."""
    try:
        mean, std = (np.asarray(part, dtype=np.float64) for part in scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale: expected [mean, std], two lists of {dim} numbers, got {scale!r}") from None
    if mean.shape != (dim,) or std.shape != (dim,) or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(f"scale: expected [mean, std], two lists of {dim} finite numbers, got {scale!r}")
    if np.any(std <= 0):
        raise ValueError("scale: standard deviations must be > 0")
    return mean, std


def observation_scale(env_id: str, episodes: int = 10, seed: int = PROBE_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation of each observation component over ``episodes``
    episodes of uniformly random actions (seeded; standard deviations below 1e-3 count as 1)."""
    with optional_dependency():
        import gymnasium as gym

    env = gym.make(env_id)
    seen = []
    try:
        env.action_space.seed(int(seed))
        for i in range(int(episodes)):
            obs, _ = env.reset(seed=int(seed) + i)
            done = False
            while not done:
                seen.append(np.asarray(obs, dtype=np.float64).ravel())
                obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
                done = terminated or truncated
    finally:
        env.close()
    data = np.stack(seen)
    std = data.std(axis=0)
    return data.mean(axis=0), np.where(std < 1e-3, 1.0, std)


class GymControl(NetworkTask):
    """Control the gymnasium environment ``env_id`` with an evolved policy network.

    Args:
        env_id: a registered gymnasium id (``"Acrobot-v1"``, ``"MountainCar-v0"``, ...)
            with a ``Box`` observation space and a ``Discrete`` or ``Box`` action space.
        threshold: the mean return over 100 episodes that counts as solved (default: the
            environment's ``spec.reward_threshold``; none: never solved, no early stop).
        space: a search space to use instead of the default (dense and activation genes
            with NumPy-evaluable activations, 0-4 layers).
        sigma: standard deviation of the Gaussian weight mutation.
        arch_rate: probability that a mutation also changes the architecture.
        normalize: the policy reads observations standardised by the mean and standard
            deviation of 10 episodes of random actions (:func:`observation_scale`; a fixed
            ``Normalization`` layer in front of the Keras model). Observations whose scales
            differ by orders of magnitude (MountainCar's velocity is 100 times smaller than its
            position) otherwise leave a random policy blind to the small ones.
        scale: ``[mean, std]`` of the observations to use instead of measuring them (a run
            directory records the measured ones, so a resumed run reads observations as it
            did even where gymnasium's random episodes changed).
    """

    name = ""  # the environment id unless a subclass names itself
    family = "vector"
    measures = ("return", "params", "flops", "exec_time")
    error_measure = None  # returns, not errors: no max_val_error constraint
    objective_directions = {"return": 1.0}
    default_objectives = {"return": 1.0, "params": -1.0}
    verify_episodes = 100

    def __init__(self, env_id: str = "CartPole-v1", *, threshold: float | None = None,
                 space: SearchSpace | None = None, sigma: float = 0.2, arch_rate: float = 0.3,
                 normalize: bool = True, scale: Sequence[Sequence[float]] | None = None) -> None:
        with optional_dependency():
            import gymnasium as gym
        from gymnasium import spaces

        spec = _env_spec(env_id)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                      or not math.isfinite(threshold)):
            raise ValueError(f"threshold: expected a finite number or None, got {threshold!r}")
        for key, value in (("sigma", sigma), ("arch_rate", arch_rate)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key}: expected a number >= 0, got {value!r}")
        env = gym.make(env_id)
        try:
            obs_space, act_space = env.observation_space, env.action_space
        finally:
            env.close()
        if not isinstance(obs_space, spaces.Box):
            raise ValueError(f"env_id {env_id!r}: observation space {obs_space} is not a Box")
        self.env_id = env_id
        self.name = type(self).name or env_id
        self.act = action_map(act_space, env_id)
        self.input_shape = (int(np.prod(obs_space.shape)),)
        self.n_outputs = int(act_space.n) if self.act.discrete else int(np.prod(act_space.shape))
        self.user_threshold = None if threshold is None else float(threshold)
        default = spec.reward_threshold
        self.threshold = self.user_threshold if threshold is not None else (None if default is None else float(default))
        if space is None:
            space = SearchSpace(
                layer_kinds={"dense": 3.0, "activation": 0.5},
                units=(2, 4, 8, 16, 32),
                activations=("relu", "tanh", "elu", "sigmoid", "swish", "linear"),
                reductions=("flatten",),
                min_layers=0,
                max_layers=4,
                init_layers=(0, 1),
                max_params=5_000,
            )
        super().__init__(space=space)
        self.sigma = float(sigma)
        self.arch_rate = float(arch_rate)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize: expected true or false, got {normalize!r}")
        self.normalize = normalize
        self.obs_mean, self.obs_std = (_checked_scale(scale, self.input_shape[0]) if scale is not None
                                       else observation_scale(env_id)) if normalize else (None, None)

    def recipe(self, out_dir: Path) -> dict[str, Any] | None:
        """``{"task": "gym", "task_options": {env_id, threshold, sigma, arch_rate, normalize,
        scale}}``; ``None`` for a subclass (another task: the configuration's name rebuilds it)."""
        if type(self) is not GymControl:
            return None
        return {"task": "gym", "task_options": {"env_id": self.env_id, "threshold": self.user_threshold,
                                                "sigma": self.sigma, "arch_rate": self.arch_rate,
                                                "normalize": self.normalize,
                                                "scale": None if self.obs_std is None else
                                                [self.obs_mean.tolist(), self.obs_std.tolist()]}}

    def _bind(self, space: SearchSpace) -> SearchSpace:
        """Only genes with a NumPy forward pass (the weights evolve outside Keras)."""
        bad = sorted(k for k, w in space.layer_kinds.items() if w > 0 and k not in W.FORWARD_KINDS)
        if bad:
            raise SpaceError(f"search space option 'layer_kinds': {bad[0]!r} has no evolved-weights form "
                             f"(control tasks allow {sorted(W.FORWARD_KINDS)})")
        bad = sorted(set(space.activations) - set(W.ACTIVATIONS))
        if bad:
            raise SpaceError(f"search space option 'activations': {bad[0]!r} has no NumPy form "
                             f"(control tasks allow {sorted(W.ACTIVATIONS)})")
        return super()._bind(space)

    # -- model -----------------------------------------------------------------------
    def stem(self, inputs: Any) -> Any:
        """The observation scaling (``normalize``), else the identity."""
        if self.obs_mean is None:
            return inputs
        import keras

        return keras.layers.Normalization(mean=self.obs_mean, variance=np.square(self.obs_std), name="scale")(inputs)

    def head(self, x: Any) -> Any:
        import keras

        return keras.layers.Dense(self.n_outputs, name="head")(x)

    # -- variation (weights travel with the architecture) ------------------------------
    def random_genome(self, rng: np.random.Generator, space: SearchSpace) -> Genome:

        return W.init_weights(random_genome(rng, space), rng, *self._dims)

    def mutate(self, genome: Genome, rng: np.random.Generator, space: SearchSpace, **kwargs: Any) -> Genome:
        """Architecture mutation with probability ``arch_rate`` (weights inherited), then
        a Gaussian perturbation of a random fraction of the weights."""

        child = genome
        if rng.random() < self.arch_rate:
            child = W.inherit(mutate(genome, rng, space, **kwargs), genome, rng, *self._dims)
        fraction = float(rng.choice((0.1, 0.5, 1.0)))
        return W.perturb(child, rng, *self._dims, sigma=self.sigma, fraction=fraction)

    def crossover(self, a: Genome, b: Genome, rng: np.random.Generator, space: SearchSpace) -> tuple[Genome, Genome]:
        """Same architecture: swap whole layers' weights at random. Otherwise a cut-point
        crossover of the architectures, each child inheriting the weights of the parent
        that gave its head."""

        if a.layers == b.layers:
            wa, wb = dict(a.weights), dict(b.weights)
            ca, cb = {}, {}
            for name in sorted(wa):
                first, second = (wb, wa) if rng.random() < 0.5 else (wa, wb)
                ca[name], cb[name] = first[name], second.get(name, first[name])
            return a.replace(weights=ca), a.replace(weights=cb)
        ca, cb = crossover(a, b, rng, space)
        return W.inherit(ca, a, rng, *self._dims), W.inherit(cb, b, rng, *self._dims)

    @property
    def _dims(self) -> tuple[int, int]:
        return int(self.input_shape[0]), int(self.n_outputs)

    def weight_vector(self, genome: Genome) -> np.ndarray:
        """The genome's evolved weights as one vector (what strategy ``"es"`` perturbs)."""
        return W.flat_weights(genome, *self._dims)

    def with_weight_vector(self, genome: Genome, vector: np.ndarray) -> Genome:
        """``genome`` carrying ``vector`` (:meth:`weight_vector`'s layout) as its weights."""
        return W.with_flat_weights(genome, vector, *self._dims)

    # -- evaluation ------------------------------------------------------------------
    def policy(self, genome: Genome) -> Any:
        """The NumPy policy ``obs[n, d] -> outputs[n, k]`` of ``genome``."""
        params = W.params_of(genome, *self._dims)
        if self.obs_mean is None:
            return lambda obs: W.forward(genome, obs, *self._dims, params=params)
        mean, std = self.obs_mean.astype(np.float32), self.obs_std.astype(np.float32)
        return lambda obs: W.forward(genome, (obs - mean) / std, *self._dims, params=params)

    def rollout(self, genome: Genome, episodes: int, seed: int) -> tuple[np.ndarray, int]:
        """:func:`rollout` of ``genome``'s policy on this task's environment."""
        return rollout(self.policy(genome), episodes, seed, env_id=self.env_id, act=self.act)

    def behaviour(self, last: np.ndarray) -> list[float]:
        """What novelty compares: the mean last observation of the episodes (scaled as
        the policy reads it)."""
        if self.obs_mean is not None:
            last = (last - self.obs_mean) / self.obs_std
        return [round(float(v), 6) for v in np.asarray(last, dtype=np.float64).mean(axis=0)]

    def scaled_budget(self, budget: Any, fraction: float) -> Any:
        """A lower fidelity is fewer episodes."""
        return dataclasses.replace(budget, episodes=max(1, int(round(budget.episodes * fraction))))

    def builds_keras_models(self, objectives: Sequence[str]) -> bool:
        """Rollouts run the NumPy forward pass: only timing (``exec_time``) builds a model."""
        return "exec_time" in objectives

    def episode_seed(self, seed: int, key: str) -> int:

        return derive_seed(seed, key) % VERIFY_SEED_BASE

    def score(self, genome: Genome, ctx: ScoreContext) -> dict[str, Any]:
        """Mean return over ``ctx.budget.episodes`` episodes (seeded by ``ctx.seed_key`` where
        set, else by the genome's key); size, FLOPs, the
        :meth:`behaviour`, the rollout's seconds per environment step (``step_us``,
        microseconds: the environments made, reset and stepped, the policy's forward
        pass), and (when an objective) the Keras model's inference time."""
        analysis = self.space.analyze(genome)
        metrics: dict[str, Any] = {"params": int(analysis.params), "flops": int(analysis.flops)}
        ctx.note(**metrics)
        start = time.perf_counter()
        with ctx.timed("fit"):
            returns, steps, last = episodes_of(self.policy(genome), ctx.budget.episodes,
                                               self.episode_seed(ctx.run_seed, ctx.seed_key or genome.key),
                                               env_id=self.env_id, act=self.act)
        metrics.update(
            {"return": float(returns.mean()), "return_min": float(returns.min()),
             "episodes": int(len(returns)), "steps": steps,
             "step_us": 1e6 * (time.perf_counter() - start) / max(1, steps), "behaviour": self.behaviour(last)}
        )
        if "exec_time" in ctx.objectives:
            with ctx.timed("timing"):
                metrics["exec_time"] = ctx.time_inference(self.keras_policy(genome), self._probe())
        return metrics

    def keras_policy(self, genome: Genome) -> Any:
        """The decoded Keras policy network carrying the genome's weights."""

        model = decode(genome, self, compile=False)
        W.set_model_weights(model, genome, *self._dims)
        return model

    def _probe(self) -> np.ndarray:
        return np.random.default_rng(0).normal(0.0, 0.5, size=(256, self.input_shape[0])).astype(np.float32)

    def is_candidate(self, metrics: dict[str, Any]) -> bool:
        """Whether a search result is worth verifying (its search return reaches the threshold)."""
        return self.threshold is not None and float(metrics.get("return", -np.inf)) >= self.threshold

    def verify(self, genome: Genome, seed: int) -> dict[str, Any]:
        """gymnasium's criterion on unseen seeds: mean return over 100 consecutive episodes
        (:func:`check_policy`: a hopeless candidate is turned down after 25, 50 or 75)."""

        vseed = VERIFY_SEED_BASE + derive_seed(seed, "verify:" + genome.key) % (TEST_SEED_BASE - VERIFY_SEED_BASE)
        return self._hundred(genome, vseed)

    def test(self, genome: Genome, seed: int) -> dict[str, Any]:
        """The final test: 100 more episodes from a seed range neither search nor
        verification uses."""

        return self._hundred(genome, TEST_SEED_BASE + derive_seed(seed, "test:" + genome.key) % (2**31 - TEST_SEED_BASE),
                             early=False)

    def _hundred(self, genome: Genome, vseed: int, *, early: bool = True) -> dict[str, Any]:
        return check_policy(self.policy(genome), vseed, env_id=self.env_id, act=self.act, threshold=self.threshold,
                            episodes=self.verify_episodes, early=early)

    def final_model(self, genome: Genome, final: FinalContext, path: Any) -> dict[str, Any]:
        """Test the member on 100 episodes of the test seed range and save its Keras model."""
        check = self.test(genome, final.run_seed)
        model = self.keras_policy(genome)
        exec_time = final.time_inference(model, self._probe())
        with atomic_path(path) as tmp:
            model.save(tmp)
        return {"status": "ok", "test_return": check["mean_return"], "test_solved": check["solved"],
                "test_exec_time": exec_time}

    # -- figures ---------------------------------------------------------------------
    def save_plots(self, out_dir: Any, hall_of_fame: dict[str, Any]) -> list[Any]:
        """``policy.gif``: the best front member (highest test return, then fewest
        parameters) in its environment, rendered by gymnasium (``rgb_array``); nothing
        for environments that cannot render."""
        members = [m for m in hall_of_fame.get("members", []) if m.get("status") == "ok"]
        if not members:
            return []
        best = max(members, key=lambda m: (m.get("test_return", -math.inf), -m.get("metrics", {}).get("params", 0)))
        path = Path(out_dir) / "policy.gif"
        self.animate(Genome.from_dict(best["genome"]), path)
        return [path]

    def animate(self, genome: Genome, path: Any, *, seed: int = TEST_SEED_BASE, max_steps: int = 500,
                every: int = 2, width: int = 300) -> int:
        """Write a GIF of one episode of ``genome``'s policy; returns the steps it lasted."""
        with optional_dependency():
            import gymnasium as gym
        from PIL import Image

        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering, no display
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        policy = self.policy(genome)
        env = gym.make(self.env_id, render_mode="rgb_array")
        frames, steps = [], 0
        try:
            obs, _ = env.reset(seed=int(seed))
            done = False
            while not done and steps < max_steps:
                if steps % every == 0:
                    image = Image.fromarray(env.render())
                    frames.append(image.resize((width, width * image.height // image.width)))
                action = self.act(policy(np.asarray(obs, dtype=np.float32).reshape(1, -1)))[0]
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
                steps += 1
        finally:
            env.close()
        with atomic_path(path) as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                           duration=int(1000 * every / 50), loop=0, optimize=True)
        return steps
