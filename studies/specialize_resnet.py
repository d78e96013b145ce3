"""Specialization study: a ResNet trained on Fashion-MNIST becomes an MNIST digit classifier.

A thin wrapper: the study ships in the package as :mod:`evokeras.studies.specialize_resnet`
(``evokeras study specialize_resnet`` or ``python -m evokeras.studies.specialize_resnet`` after ``pip install``).
"""

from evokeras.studies.specialize_resnet import BUDGETS, main  # noqa: F401 - BUDGETS is read by benchmarks

if __name__ == "__main__":
    raise SystemExit(main())
