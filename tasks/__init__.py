"""Synthetic tasks whose dependency length we control, and real datasets that load offline.

>>> import tasks
>>> task = tasks.create("adding", length=50)
>>> x, y = task.generate("val", 128, seed=0)
"""

from tasks.base import IGNORE, Classification, Dataset, Features, Final, PerStep, Signature, Task, TaskError, Tokens
from tasks.registry import create, defaults, list_tasks, register, source
from tasks import adding, copy, recall, selective, mad  # noqa: F401  (registers the built-in tasks)
from tasks import images, ucr, sentiment, forecast  # noqa: F401  (real datasets)

__all__ = [
    "IGNORE", "Classification", "Dataset", "Features", "Final", "PerStep", "Signature", "Task", "TaskError", "Tokens",
    "create", "defaults", "list_tasks", "register", "source",
]
