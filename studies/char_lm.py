"""Character-level language-model study: evolve skip-step recurrent cells on the King James Bible.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.char_lm`
(``evokeras study char_lm`` or ``python -m evokeras.studies.char_lm`` after ``pip install``).
"""

from evokeras.studies.char_lm import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
