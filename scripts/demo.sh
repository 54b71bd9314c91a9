#!/usr/bin/env bash
# Install lstm-bench (into ./.venv, or the active virtualenv), run the smoke sweep (resuming whatever is
# stored) and build its report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
PY="$(bench_python)"
bench_install "$PY"
"$PY" -m bench.cli sweep smoke --workers 2
"$PY" -m bench.cli report smoke | tail -n 1
