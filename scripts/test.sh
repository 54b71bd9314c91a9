#!/usr/bin/env bash
# Install lstm-bench with its test extra and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[dev,data]"
python3 -m pytest -q "$@"
