#!/usr/bin/env bash
# The GPU check: one command, under 8 minutes on one H100, on every Keras backend present: every model on a short
# run of each task type with the cuDNN observation, the harness vs a plain loop, DeepBench LSTM 1024/128/25 per
# precision, each recurrent layer with and without cuDNN, and a small sweep at 1, 2 and 4 workers per GPU.
# Records: results/gpu-check/; summary: $OUT/gpu-check.md (OUT defaults to results/gpu-check-out).
#   bash scripts/gpu-check.sh              on the GPU machine (wheels the image lacks are installed from .whl/)
#   bash scripts/gpu-check.sh --smoke      tiny shapes: a few minutes on a CPU, to check the check
# Extra arguments go to scripts/gpu_check.py (--budget SECONDS, --backends torch,jax, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-results/gpu-check-out}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then  # the GPU image lacks Keras and some of its dependencies
  timeout 120 python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  python3 --version
  timeout 20 nvidia-smi || echo "no nvidia-smi"
  timeout 60 python3 - <<'PY'
from importlib import metadata, util
for name in ("keras", "jax", "jaxlib", "torch", "tensorflow", "numpy", "optree", "pyyaml", "pandas"):
    try:
        print(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name} -")
PY
} 2>&1 | tee "$OUT/env.txt"
timeout "${GPU_CHECK_TIMEOUT:-450}" python3 scripts/gpu_check.py --out "$OUT" "$@"
echo "gpu-check exit code $?; summary in $OUT/gpu-check.md"
