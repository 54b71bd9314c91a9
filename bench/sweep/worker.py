"""Entry point of a worker process: ``python -m bench.sweep.worker KIND_MODULE SPEC_JSON OUT_PATH [PLUGIN ...]`` runs
one spec; ``python -m bench.sweep.worker --serve [PLUGIN ...]`` is a warm worker (``executors.Warm``) that runs one
job per line of its stdin and answers ``done`` on its own channel for each, Keras' state cleared between runs.

Imports the module that registers the spec's kind (``bench.core.kinds``) and the plugins, runs a spec and writes
its record to the file it was given; the driver, not the worker, stores it.
A worker whose parent dies (a driver killed with SIGKILL) exits instead of training on as an orphan.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

READY = "done"  # a warm worker's answer for each finished run (``executors.Warm`` waits for it)
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
        result = record.new(spec.fields(), "failed", str(e), finished_at=record.now())
    else:
        result = kinds.run(spec, os.environ.get("BENCH_SAVE_MODEL") or None)
    Path(out_path).write_text(record.hand_off(result))
    return 0


def serve(plugin_refs: list[str]) -> int:
    """The worker's loop: one job per stdin line, one ``done`` per finished run on the answer channel."""
    exit_with_parent(int(os.environ.get("BENCH_PARENT_PID", os.getppid())))
    answers = os.fdopen(os.dup(1), "w")  # the channel; what a run prints goes to the log with stderr
    os.dup2(2, 1)
    from bench.core import quiet

    quiet.native_stderr_to_log()
    from bench.core import kinds, plugins
    from bench.core.errors import SpecError
    from bench.runner import record

    try:
        plugins.load(plugin_refs)
        failure = None
    except SpecError as e:  # the plugin failed to import here (it imported in the driver): failed records
        failure = str(e)
    for line in sys.stdin:
        job = json.loads(line)
        os.environ[record.PROVISIONAL] = job.get("provisional") or ""  # where this run leaves itself once scored
        spec = kinds.from_dict(job["spec"], job["module"])
        if failure is not None:
            result = record.new(spec.fields(), "failed", failure, finished_at=record.now())
        else:
            result = kinds.run(spec, job["save_model"])
            _clear()
        Path(job["out"]).write_text(record.hand_off(result))
        answers.write(READY + "\n")
        answers.flush()
    return 0


def _clear() -> None:
    """Keras' global state back to a fresh process's, as far as Keras can: names, graphs, caches."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[2:]) if sys.argv[1:2] == ["--serve"] else main())
