"""The registry of run kinds. A kind is a spec type and the function that runs one spec of it into a record; each
kind registers both once, in the module that runs it (``train``: ``bench.runner.run``; ``speed``, ``plain_loop``,
``overhead``: ``bench.speed``). Executors, the worker and the store treat every kind
alike: a spec has ``kind``, ``run_id``, ``to_dict``/``from_dict``, ``label()``, ``fields()`` (the record's
description of it) and, where it has checks of its own, ``checks()`` (``bench.core.check``)."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, fields
from typing import Callable, ClassVar

from bench.core import backends
from bench.core.errors import at_least, integer
from bench.core.identity import digest


@dataclass(frozen=True)
class Kind:
    name: str
    spec: type  # its ``from_dict`` reads a spec back from ``to_dict()`` or from a record
    run: Callable[..., dict]  # ``run(spec, save_model=None) -> record`` (never raises for a bad run)

    @property
    def module(self) -> str:
        """The module that registers the kind: a worker process imports it to run a spec of this kind."""
        return self.run.__module__


class Measurement:
    """What a measuring kind's spec (a dataclass with a ``sweep`` field, a ``kind`` and a ``request()``) shares:
    its identity hashes the kind and the request, and it travels as ``to_dict()``, read back by ``from_dict``.
    ``AT_LEAST`` gives each numeric field's least value (an int: the field is an integer; a float: a finite
    number), which ``bounds()`` checks, naming the field as ``bench speed``'s flag does (``--min-steps``)."""

    AT_LEAST: ClassVar[dict] = {}

    def bounds(self):
        """``bench.core.check``'s checks of the numeric fields: ``(key, test)`` pairs."""
        for name, least in self.AT_LEAST.items():
            value, flag = getattr(self, name), f"--{name.replace('_', '-')}"
            test = integer if isinstance(least, int) else at_least
            yield (self.kind, name, repr(value)), functools.partial(test, value, flag, least)

    seed = 0  # a measurement has no seed of its own (the driver orders runs by seed)

    @property
    def run_id(self) -> str:
        return digest({"kind": self.kind, **self.request()})

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.request(), **_backend(self), "sweep": self.sweep}

    @classmethod
    def from_dict(cls, data: dict):
        """A spec from ``to_dict()`` or from a record (its ``request``, else its own fields; ``backends.read``)."""
        asked = data.get("request") or data
        names = {f.name: f for f in fields(cls)}
        sweep = data.get("sweep", names.pop("sweep").default)
        if "backend" in names:
            asked = {**asked, "backend": backends.read(data, asked)}
        return cls(**{k: v for k, v in asked.items() if k in names}, sweep=sweep)


def _backend(spec) -> dict:
    """The backend a spec asked for, for its worker (its identity may leave it out: ``backends.identity``)."""
    return {"backend": spec.backend} if hasattr(spec, "backend") else {}


_KINDS: dict[str, Kind] = {}


def register(name: str, spec: type, run: Callable[..., dict]) -> Kind:
    _KINDS[name] = Kind(name, spec, run)
    return _KINDS[name]


def entry(name: str, module: str | None = None) -> Kind:
    """The kind ``name``, importing ``module`` first if it is not registered yet (a fresh worker process)."""
    if name not in _KINDS and module:
        importlib.import_module(module)
    if name not in _KINDS:
        raise KeyError(f"unknown run kind {name!r}; registered: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def from_dict(data: dict, module: str | None = None):
    """The spec a ``to_dict()`` (or a record) describes, of its kind (records without one are training runs)."""
    return entry(data.get("kind", "train"), module).spec.from_dict(data)


def run(spec, save_model: str | None = None) -> dict:
    """The record of one spec, run by its kind in this process."""
    return entry(spec.kind).run(spec, save_model)
