"""Entry point of a fresh worker process: ``python -m bench.sweep.worker KIND_MODULE SPEC_JSON OUT_PATH [PLUGIN ...]``.

Imports the module that registers the spec's kind (``bench.core.kinds``) and the plugins, runs one spec and writes
its record to OUT_PATH; the driver, not the worker, stores it.
A worker whose parent dies (a driver killed with SIGKILL) exits instead of training on as an orphan.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

exit_now = os._exit  # plugin code runs with os._exit disabled (bench.core.plugins.guarded); this watch may still exit


def exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """Exit as soon as the process that started this worker (its pid in BENCH_PARENT_PID) is gone."""
    def watch():
        while os.getppid() == parent:
            time.sleep(every_s)
        exit_now(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv=None) -> int:
    module, spec_json, out_path, *plugin_refs = argv or sys.argv[1:]
    exit_with_parent(int(os.environ.get("BENCH_PARENT_PID", os.getppid())))
    from bench.core import quiet

    quiet.native_stderr_to_log()  # framework noise to the log; our traceback, if any, to the driver
    from bench.core import kinds, plugins
    from bench.core.errors import SpecError
    from bench.runner import record

    spec = kinds.from_dict(json.loads(spec_json), module)
    try:
        plugins.load(plugin_refs)
    except SpecError as e:  # the plugin failed to import here (it imported in the driver): a failed record
        from bench.sweep.executors import unfinished
        result = unfinished(spec, "failed", str(e))
    else:
        result = kinds.run(spec, os.environ.get("BENCH_SAVE_MODEL") or None)
    Path(out_path).write_text(record.hand_off(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
