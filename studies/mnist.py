"""MNIST study: evolve convolutional networks that are accurate and fast.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.mnist`
(``evokeras study mnist`` or ``python -m evokeras.studies.mnist`` after ``pip install``).
"""

from evokeras.studies.mnist import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
