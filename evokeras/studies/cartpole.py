"""CartPole study: evolve policy networks -- architecture and weights -- for CartPole-v1.

Every candidate is a Keras policy network whose weights evolve with it (no gradient
training); its fitness is the mean return of real episodes of gymnasium's
``CartPole-v1`` (vectorised, one forward pass for all episodes per step). The
objectives are the return (maximised) and the parameter count (minimised). The search
stops as soon as a front member is *solved* by gymnasium's criterion -- mean return
>= 475 over 100 consecutive episodes -- on seeds the search never used (see
:mod:`evokeras.tasks.cartpole`). The final "test" of every front member is that
100-episode check; ``plots/policy.gif`` shows the best one balancing the pole.

Budgets:

* ``smoke`` -- seconds on 2 CPU cores (tests and CI).
* ``default`` -- what the README shows: up to 60 generations of 24 offspring, 5
  episodes each, at most 10 minutes.
* ``full`` -- a larger population and 10 episodes per candidate.

Usage::

    python studies/cartpole.py [--budget smoke|default|full] [--out DIR] [--seed N] [--config FILE.json]
"""

from __future__ import annotations

from collections.abc import Sequence

from evokeras.app.study import run_study

_COMMON = {"task": "cartpole", "objectives": {"return": 1.0, "params": -1.0}}
_STRATEGY = {"cxpb": 0.2, "mutpb": 0.8}

BUDGETS = {
    "smoke": {**_COMMON, "strategy": {**_STRATEGY, "population": 8, "offspring": 8, "generations": 4},
              "evaluation": {"episodes": 3, "timeout": 60}},
    "default": {**_COMMON, "strategy": {**_STRATEGY, "population": 24, "offspring": 24, "generations": 60,
                                        "wall_seconds": 600},
                "evaluation": {"episodes": 5, "timeout": 120}},
    "full": {**_COMMON, "strategy": {**_STRATEGY, "population": 50, "offspring": 50, "generations": 300,
                                     "wall_seconds": 3600},
             "evaluation": {"episodes": 10, "timeout": 300}},
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study with command-line arguments ``argv``; returns the exit status."""
    return run_study("cartpole", BUDGETS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
