"""Entry point of a fresh worker process: ``python -m bench.worker SPEC_JSON OUT_PATH``.

Runs one spec and writes its record to OUT_PATH; the driver, not the worker, stores it.
"""

import json
import sys


def main(argv=None) -> int:
    spec_json, out_path = argv or sys.argv[1:]
    from bench.runner import run
    from bench.spec import RunSpec

    record = run(RunSpec.from_dict(json.loads(spec_json)))
    with open(out_path, "w") as f:
        json.dump(record, f, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
