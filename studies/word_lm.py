"""Word-level language-model study: evolve skip-step recurrent cells on the Brown corpus.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.word_lm`
(``evokeras study word_lm`` or ``python -m evokeras.studies.word_lm`` after ``pip install``).
"""

from evokeras.studies.word_lm import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
