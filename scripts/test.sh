#!/usr/bin/env bash
# Install lstm-bench with its test extra (into ./.venv, or the active virtualenv) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
PY="$(bench_python)"
bench_install "$PY" "[dev,data]"
"$PY" -m pytest -q "$@"
