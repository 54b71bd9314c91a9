"""Which Keras backend a run trains on.

A spec asks for a backend by name or for ``auto``, the default: the backend measured fastest for its model on this
kind of device at the nearest measured sequence length, among the backends installed here. The measurements ship
with the package as a table per device (``backends-cpu.json`` beside this file), written by ``bench speed --preset
backends``; a model the table lacks trains on TensorFlow. Results must not depend on the choice (a test trains the
same seeds on two backends), so ``auto`` and TensorFlow, the default before ``auto``, share a run's identity;
a record says which backend ran and why (``env.backend``, ``backend``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import SpecError

NAMES = ("tensorflow", "jax", "torch")  # Keras' backends, each the name of the module it needs
AUTO = "auto"
DEFAULT = "tensorflow"  # where the table says nothing, and the identity ``auto`` shares
TABLES = Path(__file__).parent  # backends-<device>.json


@dataclass(frozen=True)
class Choice:
    name: str  # the backend that runs
    why: str  # one line: asked for it, or what the table measured


def asked() -> str:
    """The backend a run asks for when its spec does not say: ``KERAS_BACKEND`` if set, else ``auto``."""
    return check(os.environ["KERAS_BACKEND"], "KERAS_BACKEND") if os.environ.get("KERAS_BACKEND") else AUTO


def check(name, where: str = "backend") -> str:
    if name != AUTO and name not in NAMES:
        raise SpecError(f"{where}: unknown backend {name!r}; valid: {AUTO}, {', '.join(NAMES)}")
    return name


def read(data: dict, request: dict) -> str:
    """The backend a spec's data asked for: a worker's ``backend``, a record's ``backend.asked``, else the request's
    (which names it only where it is neither ``auto`` nor TensorFlow), else ``auto``."""
    given = data.get("backend")
    given = given.get("asked") if isinstance(given, dict) else given
    return given if isinstance(given, str) else request.get("backend", AUTO)


def identity(name: str) -> dict:
    """The backend's part of a run's identity: none for ``auto`` and TensorFlow, else ``{"backend": name}``."""
    return {} if name in (AUTO, DEFAULT) else {"backend": name}


@functools.cache
def installed() -> tuple[str, ...]:
    return tuple(n for n in NAMES if importlib.util.find_spec(n) is not None)


def choose(name: str, model: str, length: int | None) -> Choice:
    """The backend a run of ``model`` at sequence ``length`` trains on when it asks for ``name``."""
    if name != AUTO:
        return Choice(name, "asked for")
    rows = [r for r in table(device())["rows"] if r["model"] == model]
    if not rows or length is None:
        return Choice(_fallback(), f"auto: no measurement of {model!r} on this device's table; the default")
    row = min(rows, key=lambda r: (abs(math.log(r["length"] / length)), r["length"]))
    timed = {b: ms for b, ms in row["train_ms"].items() if b in installed() and ms}
    if not timed:
        return Choice(_fallback(), f"auto: no backend measured for {model!r} is installed; the default")
    best = min(timed, key=timed.get)
    where = f"at T={row['length']}, N={row['batch']}, {row['params']} parameters, measured on {device()}"
    if len(timed) == 1:
        return Choice(best, f"auto: {best}, the only measured backend installed here ({timed[best]:.3g} ms per "
                            f"training step {where})")
    other = DEFAULT if DEFAULT in timed and best != DEFAULT else max(timed, key=timed.get)
    ratio = timed[other] / timed[best]
    return Choice(best, f"auto: {best} {timed[best]:.3g} ms vs {other} {timed[other]:.3g} ms per training step "
                        f"({ratio:.2f}x) {where}")


def _fallback() -> str:
    return DEFAULT if DEFAULT in installed() else (installed() or (DEFAULT,))[0]


def of(spec) -> Choice | None:
    """The backend ``spec`` (of any kind) runs on: its ``backend`` field at its length; None for a kind without
    one (it measures the backend of the process that runs it)."""
    if not hasattr(spec, "backend"):
        return None
    return choose(spec.backend, spec.model, spec_length(spec))


def use(name: str, where: str = "--backend") -> None:
    """Make ``name`` Keras' backend in this process and the workers it starts: before Keras is imported."""
    import sys

    check(name, where)
    if name == AUTO:  # each run's own choice: the environment's backend no longer speaks for them
        os.environ.pop("KERAS_BACKEND", None)
        return
    if name not in installed():
        raise SpecError(f"{where} {name}: {name} is not installed")
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != name:
        raise SpecError(f"{where} {name}: Keras is already loaded with backend {loaded.backend.backend()!r} in "
                        f"this process; set KERAS_BACKEND={name}")
    os.environ["KERAS_BACKEND"] = name


def ran(spec, running: str) -> dict:
    """The record's account of the backend: asked, ran (``running``, Keras' in this process) and why. A spec that
    asked for another backend than the process runs is an error: its identity would name the wrong one."""
    choice = of(spec)
    if choice.name == running:
        why = choice.why
    elif spec.backend == AUTO:
        why = f"auto: Keras was already loaded with {running} in this process (the table's choice: {choice.why})"
    else:
        raise SpecError(f"the run asks for backend {spec.backend!r} but Keras runs {running!r} in this process; "
                        f"run it with KERAS_BACKEND={spec.backend} or through bench sweep")
    return {"asked": spec.backend, "ran": running, "why": why}


def spec_length(spec) -> int | None:
    """A spec's sequence length: its own ``length`` field, or its task's (the task's default where not asked)."""
    if isinstance(getattr(spec, "length", None), int):
        return spec.length
    return task_length(spec.task, spec.task_params)


def task_length(task: str, params: dict) -> int | None:
    """The sequence length of ``task`` at ``params``; None where they do not make a task (checked elsewhere)."""
    import tasks

    try:
        return tasks.create(task, **params).signature.length
    except (ValueError, TypeError):
        return None


@functools.cache
def table(device_kind: str) -> dict:
    """The shipped measurements for ``device_kind``: ``{"rows": [{model, length, batch, params, train_ms:
    {backend: ms}}], ...}``; none (empty rows) where no table ships."""
    try:
        return json.loads(table_path(device_kind).read_text())
    except (OSError, ValueError):
        return {"rows": []}


def table_path(device_kind: str) -> Path:
    return TABLES / f"backends-{device_kind}.json"


def device() -> str:
    return "gpu" if gpu_ids() else "cpu"


def gpu_ids() -> list[str]:
    """GPUs to pin workers to: those CUDA_VISIBLE_DEVICES lists that ``nvidia-smi -L`` finds (by index or UUID),
    else all it finds. Listed GPUs it does not find are left out, with one warning: a worker "pinned" to one would
    run on the CPU."""
    count, uuids = _nvidia_smi_gpus()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    wanted = [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    found = [g for g in wanted if (g.isdigit() and int(g) < count)
             or (g.startswith(("GPU-", "MIG-")) and any(u.startswith(g) for u in uuids))]
    missing = [g for g in wanted if g not in found]
    if missing and (listed, count) not in _warned:
        _warned.add((listed, count))
        print(f"bench: warning: CUDA_VISIBLE_DEVICES={listed} names GPU(s) {', '.join(missing)} that nvidia-smi does "
              f"not find ({count} GPU(s) here); no worker is pinned to them", file=sys.stderr, flush=True)
    return found


_warned: set = set()  # the CUDA_VISIBLE_DEVICES warnings already given


@functools.cache
def _nvidia_smi_gpus() -> tuple[int, tuple[str, ...]]:
    """How many GPUs ``nvidia-smi -L`` lists, and the UUIDs it shows (GPUs' and MIG devices'); none where it is
    missing or fails."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0, ()
    lines = out.splitlines()
    uuids = tuple(line.rsplit("UUID: ", 1)[1].rstrip(")").strip() for line in lines if "UUID: " in line)
    return sum(line.startswith("GPU ") for line in lines), uuids
