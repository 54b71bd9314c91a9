"""User plugins: a Python file or module imported before a run, so the models and tasks it registers exist.

``bench sweep my.yaml --plugin my_models.py`` imports ``my_models.py`` in the driver (to validate the sweep)
and in every worker process (to run it); a module name (``--plugin mypkg.models``) works the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from bench.core.errors import SpecError


class PluginExit(Exception):
    """Plugin code called ``os._exit`` (turned into this exception while plugin code runs: see ``guarded``)."""


_os_exit = os._exit


@contextlib.contextmanager
def guarded():
    """Run plugin code (an import, a model build) so that ``os._exit(n)`` raises PluginExit instead of ending
    the process silently; ``sys.exit`` already raises SystemExit, which callers catch."""
    def refuse(code=0):
        raise PluginExit(f"called os._exit({code})")

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = _os_exit


def resolve(refs) -> list[str]:
    """Each plugin as a worker can import it: a file as its absolute path, a module as its name."""
    return [str(Path(ref).resolve()) if _is_file(ref) else ref for ref in refs or ()]


def load(refs) -> list[str]:
    """Import every plugin once (importing again is a no-op); return their resolved names."""
    resolved = resolve(refs)
    with guarded():
        for ref in resolved:
            _import(ref)
    return resolved


def _is_file(ref: str) -> bool:
    return ref.endswith(".py") or "/" in ref or Path(ref).is_file()


def _import(ref: str) -> None:
    try:
        if not _is_file(ref):
            importlib.import_module(ref)
            return
        path = Path(ref)
        if not path.is_file():
            raise SpecError(f"--plugin {ref}: no such file")
        name = f"bench_plugin_{path.stem}_{hashlib.sha1(ref.encode()).hexdigest()[:8]}"
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    except SpecError:
        raise
    except SystemExit as e:
        raise SpecError(f"--plugin {ref}: import called sys.exit({str(e.code)[:100]})") from None
    except PluginExit as e:
        raise SpecError(f"--plugin {ref}: import {e}") from None
    except Exception as e:
        lines = [line for line in str(e).splitlines() if line.strip()] or [""]
        raise SpecError(f"--plugin {ref}: import failed ({type(e).__name__}: {lines[-1][:200]})") from None
