"""The studies, shipped in the package: ``evokeras study NAME [--budget ...]`` or
``python -m evokeras.studies.NAME``; each module defines ``BUDGETS`` and ``main(argv)``.

The top layer (docs/architecture.md): studies use the application layer like any user;
``evokeras/__main__.py`` offers them to the console script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evokeras.studies import (
    cartpole,
    char_lm,
    mnist,
    specialize_lstm,
    specialize_objects,
    specialize_resnet,
    word_lm,
)

__all__ = ["STUDIES"]

#: Study name -> ``main(argv) -> exit status``.
STUDIES: dict[str, Callable[[Sequence[str] | None], int]] = {
    "mnist": mnist.main,
    "char_lm": char_lm.main,
    "word_lm": word_lm.main,
    "cartpole": cartpole.main,
    "specialize_objects": specialize_objects.main,
    "specialize_resnet": specialize_resnet.main,
    "specialize_lstm": specialize_lstm.main,
}
