"""The task registry: names -> task factories (:func:`make_task`, :func:`register_task`).

Besides the registered names, a task may be an importable factory ``"package.module:function"``
(called with the configuration's ``task_options``, returning a :class:`~evokeras.tasks.base.Task`).
Such a factory is imported only by :func:`register_factory`, i.e. when a user names it
(``evokeras.search("pkg.mod:make", ...)``, ``evokeras run`` of the user's configuration,
``--factory pkg.mod:make``); a name read from a run directory never imports anything:
:func:`make_task` refuses an unregistered factory name and says how to trust it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from evokeras.tasks.base import Task

__all__ = ["is_factory_name", "make_task", "register_factory", "register_task", "registered_tasks"]

_REGISTRY: dict[str, Callable[..., Task]] = {}
_FACTORY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def register_task(name: str, factory: Callable[..., Task], *, overwrite: bool = False) -> None:
    """Register ``factory`` (called with keyword arguments) under ``name``."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"task {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def registered_tasks() -> list[str]:
    return sorted(_REGISTRY)


def is_factory_name(name: Any) -> bool:
    """Whether ``name`` has the form ``"package.module:function"``."""
    return isinstance(name, str) and _FACTORY.fullmatch(name) is not None


def register_factory(spec: str) -> None:
    """Import the factory ``"package.module:function"`` and register it under that name
    (nothing happens if it is registered already). Call it only for a factory the user
    named: importing runs the module's code.

    Raises:
        ValueError: ``spec`` is not of that form, cannot be imported or is not callable.
    """
    if spec in _REGISTRY:
        return
    if not is_factory_name(spec):
        raise ValueError(f"task factory {spec!r}: expected 'package.module:function'")
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"task factory {spec!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise ValueError(f"task factory {spec!r}: {type(obj).__name__} is not callable")
    register_task(spec, obj)


def make_task(task: str | Task, **kwargs: Any) -> Task:
    """Return ``task`` if it is a task object, else build the registered task of that name."""
    if isinstance(task, Task):
        if kwargs:
            raise TypeError("make_task: keyword arguments apply only to a task name")
        return task
    if is_factory_name(task) and task not in _REGISTRY:
        raise ValueError(f"task {task!r} is an importable factory, imported only when you name it: pass "
                         f"--factory {task} (command line) or call evokeras.tasks.register_factory({task!r})")
    if not isinstance(task, str) or task not in _REGISTRY:
        raise ValueError(f"unknown task {task!r} (registered: {registered_tasks()})")
    made = _REGISTRY[task](**kwargs)
    if not isinstance(made, Task):
        raise ValueError(f"task {task!r}: its factory returned {type(made).__name__}, not an evokeras Task")
    return made
