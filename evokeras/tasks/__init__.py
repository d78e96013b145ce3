"""Tasks: :class:`Task` (the contract the engine needs), :class:`NetworkTask` and
:class:`SupervisedTask` (the helpers most tasks build on), the built-in tasks, and the
registry: ``make_task("mnist")`` returns a ready task object.

Register your own with :func:`register_task`::

    >>> from evokeras.tasks import make_task
    >>> make_task("mnist").input_shape
    (28, 28, 1)
"""

from __future__ import annotations

from evokeras.tasks.arrays import ArrayClassification, ArrayRegression
from evokeras.tasks.base import Classification, NetworkTask, SupervisedTask, Task
from evokeras.tasks.cartpole import CartPole
from evokeras.tasks.control import GymControl
from evokeras.tasks.image import ImageClassification
from evokeras.tasks.language import LanguageModel, TextLanguageModel
from evokeras.tasks.objects import ObjectRecognition
from evokeras.tasks.registry import (
    is_factory_name,
    make_task,
    register_factory,
    register_task,
    registered_tasks,
)
from evokeras.tasks.specialize import Specialization
from evokeras.tasks.textclass import TextClassification

__all__ = [
    "ArrayClassification",
    "ArrayRegression",
    "CartPole",
    "Classification",
    "GymControl",
    "ImageClassification",
    "LanguageModel",
    "NetworkTask",
    "ObjectRecognition",
    "Specialization",
    "SupervisedTask",
    "Task",
    "TextClassification",
    "TextLanguageModel",
    "is_factory_name",
    "make_task",
    "register_factory",
    "register_task",
    "registered_tasks",
]

register_task("mnist", lambda **kw: ImageClassification("mnist", **kw))
register_task("fashion_mnist", lambda **kw: ImageClassification("fashion_mnist", **kw))
register_task("cartpole", CartPole)
register_task("gym", GymControl)
register_task("bible_chars", lambda **kw: LanguageModel("bible_chars", **kw))
register_task("brown_words", lambda **kw: LanguageModel("brown_words", **kw))
register_task("objects", ObjectRecognition)
register_task("brown_genre", TextClassification)
register_task("specialize", Specialization)
register_task("arrays", ArrayClassification)
register_task("arrays_regression", ArrayRegression)
register_task("text", TextLanguageModel)
