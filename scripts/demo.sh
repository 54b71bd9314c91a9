#!/usr/bin/env bash
# Install lstm-bench, run the smoke sweep (resuming whatever is stored) and build its report.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .
bench sweep smoke --workers 2
bench report smoke
