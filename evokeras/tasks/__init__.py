"""Task registry: ``make_task("mnist")`` returns a ready task object.

Register your own with :func:`register_task`::

    >>> from evokeras.tasks import make_task
    >>> make_task("mnist").input_shape
    (28, 28, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Task
from .cartpole import CartPole
from .image import ImageClassification
from .language import LanguageModel
from .objects import ObjectRecognition
from .textclass import TextClassification

__all__ = [
    "CartPole",
    "ImageClassification",
    "LanguageModel",
    "ObjectRecognition",
    "Task",
    "TextClassification",
    "make_task",
    "register_task",
    "registered_tasks",
]

_REGISTRY: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task], *, overwrite: bool = False) -> None:
    """Register ``factory`` (called with keyword arguments) under ``name``."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"task {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def registered_tasks() -> list[str]:
    return sorted(_REGISTRY)


def make_task(task: str | Task, **kwargs: Any) -> Task:
    """Return ``task`` if it is a task object, else build the registered task of that name."""
    if isinstance(task, Task):
        if kwargs:
            raise TypeError("make_task: keyword arguments apply only to a task name")
        return task
    if not isinstance(task, str) or task not in _REGISTRY:
        raise ValueError(f"unknown task {task!r} (registered: {registered_tasks()})")
    return _REGISTRY[task](**kwargs)


register_task("mnist", lambda **kw: ImageClassification("mnist", **kw))
register_task("fashion_mnist", lambda **kw: ImageClassification("fashion_mnist", **kw))
register_task("cartpole", CartPole)
register_task("bible_chars", lambda **kw: LanguageModel("bible_chars", **kw))
register_task("brown_words", lambda **kw: LanguageModel("brown_words", **kw))
register_task("objects", ObjectRecognition)
register_task("brown_genre", TextClassification)


def _specialization(**kwargs: Any) -> Task:
    from .specialize import Specialization

    return Specialization(**kwargs)


register_task("specialize", _specialization)
