"""CartPole study: evolve policy networks -- architecture and weights -- for CartPole-v1.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.cartpole`
(``evokeras study cartpole`` or ``python -m evokeras.studies.cartpole`` after ``pip install``).
"""

from evokeras.studies.cartpole import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
