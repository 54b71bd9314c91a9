"""The task registry: ``@register`` a Task class, then ``create`` it by name."""

from __future__ import annotations

import inspect

from tasks.base import Task, TaskError

_TASKS: dict[str, type[Task]] = {}


def register(name: str):
    """Class decorator that makes a Task available as ``tasks.create(name, ...)``."""

    def add(cls: type[Task]) -> type[Task]:
        if name in _TASKS:
            raise ValueError(f"task {name!r} is already registered")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return add


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def task_class(name: str) -> type[Task]:
    if name not in _TASKS:
        raise TaskError(f"unknown task {name!r}; valid: {', '.join(list_tasks())}")
    return _TASKS[name]


def source(name: str) -> str | None:
    """The file that defines task ``name`` (its fingerprint marks the task's records stale when it changes)."""
    return inspect.getsourcefile(task_class(name))


def defaults(name: str) -> dict:
    """The task's parameters and their defaults (``inspect.Parameter.empty`` when required)."""
    params = inspect.signature(task_class(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def create(name: str, **params) -> Task:
    """Build task ``name``; unknown parameters end in a TaskError naming the valid ones."""
    valid = defaults(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TaskError(f"task {name!r} has no parameter {unknown[0]!r}; valid: {', '.join(valid)}")
    return task_class(name)(**params)
