"""``bench list``: the tasks, models and sweep presets, with their parameters and defaults.

Tasks and presets are read from their registries, which load no framework. Models are defined with Keras, whose
import alone takes seconds, so the built-in ones are listed from ``models/catalog.json``, which holds their lines
and a fingerprint of the model files they came from; while the files match it, listing needs no Keras. A listing
with plugins, or after a model file changed, imports the registry instead. ``python -m bench.listing`` rewrites
the catalogue from the registry (a test checks the committed one is current).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path

MODELS = Path(importlib.util.find_spec("models").origin).parent  # found without importing it (that loads Keras)
CATALOGUE = MODELS / "catalog.json"


def text(plugins: list[str] = ()) -> str:
    """The listing ``bench list`` prints."""
    import tasks
    from bench.sweep import presets

    out = ["tasks:"]
    for name in tasks.list_tasks():
        params = ", ".join(f"{k}={v!r}" for k, v in tasks.defaults(name).items())
        doc = (inspect.getdoc(tasks.registry.task_class(name)) or "").splitlines()[0]
        out += [f"  {name:14s} {params}", f"  {'':14s} {doc}"]
    out.append("models:")
    for name, line in sorted(model_lines(plugins).items()):
        out += [f"  {name:14s} {line['params']}  [{', '.join(line['tags'])}]", f"  {'':14s} {line['doc']}"]
    out.append("sweep presets: " + ", ".join(presets()))
    return "\n".join(out)


def model_lines(plugins: list[str] = ()) -> dict[str, dict]:
    """Each model's listing line: its hyperparameters with defaults, tags (family, cuDNN, plugin file) and doc."""
    stored = None if plugins else read_catalogue()
    if stored is not None:
        return stored
    from bench.core import plugins as loader

    loader.load(plugins)
    return registry_lines()


def registry_lines(with_plugins: bool = True) -> dict[str, dict]:
    """The lines of the models registered in this process (``with_plugins=False``: the built-in ones only)."""
    import models

    lines = {}
    for name in models.list_models():
        entry = models.entry(name)
        cudnn = entry.cudnn
        tags = [entry.family] + (["cuDNN"] if cudnn is True else [
            "cuDNN if " + (cudnn.__doc__ or "eligible").strip().rstrip(".")] if callable(cudnn) else [])
        if entry.source and Path(entry.source).resolve().parent != MODELS.resolve():
            if not with_plugins:
                continue
            tags.append(f"plugin: {os.path.relpath(entry.source)}")
        lines[name] = {"params": ", ".join(f"{k}={v!r}" for k, v in entry.defaults.items()), "tags": tags,
                       "doc": entry.doc}
    return lines


def fingerprint() -> str:
    """A hash of every built-in model file: the catalogue describes the models these files define."""
    digest = hashlib.sha256()
    for path in sorted(MODELS.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_catalogue() -> dict[str, dict] | None:
    """The built-in models' lines, or None when the catalogue is missing, unreadable or not of today's files."""
    try:
        stored = json.loads(CATALOGUE.read_text())
        return stored["models"] if stored.get("fingerprint") == fingerprint() else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_catalogue() -> Path:
    CATALOGUE.write_text(json.dumps({"fingerprint": fingerprint(), "models": registry_lines(False)}, indent=1,
                                    sort_keys=True, ensure_ascii=False) + "\n")
    return CATALOGUE


if __name__ == "__main__":
    print(f"wrote {write_catalogue()}", file=sys.stderr)
