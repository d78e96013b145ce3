"""Loaders for real image and text datasets shipped inside installed packages.

Nothing is downloaded, neither at import time nor at run time: every dataset
comes from a package that has to be installed beforehand. One module per data set:

* :mod:`~evokeras.data.images`: MNIST and Fashion-MNIST (:func:`mnist_splits`,
  :func:`fashion_mnist_splits`, :func:`load_mnist_arrays`, ...);
* :mod:`~evokeras.data.objects`: cluttered scenes built from them (:func:`object_scenes`);
* :mod:`~evokeras.data.bible`: the King James Bible, character level (:func:`bible_chars`);
* :mod:`~evokeras.data.brown`: the Brown corpus, word level (:func:`brown_words`);
* :mod:`~evokeras.data.brown_genre`: genre classification on Brown (:func:`brown_genre`);
* :mod:`~evokeras.data.files`: your own arrays and text (:func:`array_split`,
  :func:`text_split`, :func:`load_npz`, :func:`read_text`, :class:`DataChangedError`);
* :mod:`~evokeras.data.base`: :class:`Split`, :class:`TextSplit`,
  :class:`DatasetNotFoundError` and the helpers the loaders share.

Every public name is re-exported here (``from evokeras.data import mnist_splits``).
Module-level settings such as ``FASHION_MNIST_DIR`` are read from the module that
defines them, so patch ``evokeras.data.images.FASHION_MNIST_DIR``, not the copy here.
"""

from __future__ import annotations

from .base import DatasetNotFoundError, Split, TextSplit
from .bible import BibleVerse, bible_chars, bible_verses
from .brown import (
    BROWN_ENV_VAR,
    EOS,
    UNK,
    BrownDocument,
    brown_categories,
    brown_documents,
    brown_words,
    find_brown,
)
from .brown_genre import brown_genre, brown_genre_names
from .files import (
    DataChangedError,
    array_split,
    file_sha256,
    load_npz,
    read_text,
    save_npz,
    text_split,
)
from .images import (
    DEFAULT_VAL_SIZE,
    FASHION_MNIST_DIR,
    fashion_mnist_splits,
    load_fashion_mnist_arrays,
    load_mnist_arrays,
    mnist_splits,
    random_shift,
)
from .objects import object_scenes

__all__ = [
    "BROWN_ENV_VAR",
    "DEFAULT_VAL_SIZE",
    "EOS",
    "FASHION_MNIST_DIR",
    "UNK",
    "BibleVerse",
    "BrownDocument",
    "DataChangedError",
    "DatasetNotFoundError",
    "Split",
    "TextSplit",
    "array_split",
    "bible_chars",
    "bible_verses",
    "brown_categories",
    "brown_documents",
    "brown_genre",
    "brown_genre_names",
    "brown_words",
    "fashion_mnist_splits",
    "file_sha256",
    "find_brown",
    "load_fashion_mnist_arrays",
    "load_mnist_arrays",
    "load_npz",
    "mnist_splits",
    "object_scenes",
    "random_shift",
    "read_text",
    "save_npz",
    "text_split",
]
