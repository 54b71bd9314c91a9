"""Which models and tasks a report compares, from what each registry entry declares (no report names a model or a
task): the reference (``register(..., reference=True)``), the ungated recurrent models (one gate: the vanilla RNN),
the models of a family, and the tasks that are real datasets (no dependency to climb, no "solved")."""

from __future__ import annotations

from typing import Iterable


def entry(model: str):
    """The model's registry entry, or None for a model not registered in this process (a plugin not loaded)."""
    import models

    return models.entry(model) if model in models.list_models() else None


def reference(names: Iterable[str]) -> str | None:
    """The reference model among ``names``, or None."""
    return next((n for n in sorted(set(names)) if getattr(entry(n), "reference", False)), None)


def ungated(names: Iterable[str]) -> list[str]:
    """The recurrent models among ``names`` with a single gated matmul per step: vanilla RNNs."""
    return [n for n in sorted(set(names)) if (e := entry(n)) and e.family == "recurrent" and e.gates == 1]


def of_family(names: Iterable[str], family: str) -> list[str]:
    return [n for n in sorted(set(names)) if (e := entry(n)) and e.family == family]


def other_gated(names: Iterable[str]) -> list[str]:
    """Recurrent models with a fused cuDNN kernel and another gate count than the reference's (the GRU)."""
    ref = entry(reference(names) or "")
    return [n for n in sorted(set(names)) if (e := entry(n)) and e.family == "recurrent" and e.cudnn is True
            and e.gates not in (None, 1, getattr(ref, "gates", None))]


def real_data(task: str) -> bool:
    """Whether ``task`` is a real dataset (a ``tasks.base.Dataset``); False for a task not registered here."""
    from tasks.base import Dataset
    from tasks.registry import list_tasks, task_class

    return task in list_tasks() and issubclass(task_class(task), Dataset)
