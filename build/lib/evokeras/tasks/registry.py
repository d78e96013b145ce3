"""The task registry: names -> task factories (:func:`make_task`, :func:`register_task`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evokeras.tasks.base import Task

__all__ = ["make_task", "register_task", "registered_tasks"]

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
