"""Specialization study: an LSTM language model becomes a genre classifier.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.specialize_lstm`
(``evokeras study specialize_lstm`` or ``python -m evokeras.studies.specialize_lstm`` after ``pip install``).
"""

from evokeras.studies.specialize_lstm import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
