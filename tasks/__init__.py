"""Synthetic tasks whose dependency length we control.

>>> import tasks
>>> task = tasks.create("adding", length=50)
>>> x, y = task.generate("val", 128, seed=0)
"""

from tasks.base import IGNORE, Features, Final, PerStep, Signature, Task, TaskError, Tokens
from tasks.registry import create, defaults, list_tasks, register, source
from tasks import adding, copy, recall  # noqa: F401  (registers the built-in tasks)

__all__ = [
    "IGNORE", "Features", "Final", "PerStep", "Signature", "Task", "TaskError", "Tokens",
    "create", "defaults", "list_tasks", "register", "source",
]
