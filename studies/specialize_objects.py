"""Specialization study: a position network becomes a small, fast object classifier.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.specialize_objects`
(``evokeras study specialize_objects`` or ``python -m evokeras.studies.specialize_objects`` after ``pip install``).
"""

from evokeras.studies.specialize_objects import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
