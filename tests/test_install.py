"""The default install, as a newcomer makes it (no dev or data extra: no jax, no torch): the real ``bench`` console
script lists, helps and trains a real dataset at the task's own length. The install takes a minute or two."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    venv = tmp_path_factory.mktemp("default-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
                         capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert pip.returncode == 0, pip.stderr[-2000:]
    missing = subprocess.run([str(venv / "bin" / "python"), "-c", "import jax"], capture_output=True)
    assert missing.returncode != 0  # the dev extra's backends are not there
    return venv / "bin" / "bench"


def _bench(bench, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH", "VIRTUAL_ENV")}
    started = time.perf_counter()
    done = subprocess.run([str(bench), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    return done, time.perf_counter() - started


def test_bench_list_and_help_are_fast_and_need_no_framework(bench, tmp_path):
    done, seconds = _bench(bench, "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "  lstm " in done.stdout and "  japanese_vowels " in done.stdout and "sweep presets: " in done.stdout
    assert seconds < 2, f"bench list took {seconds:.1f} s"
    done, seconds = _bench(bench, "--help", cwd=tmp_path)
    assert done.returncode == 0 and "usage: bench" in done.stdout and seconds < 2


def test_bench_run_trains_a_real_dataset_at_its_own_length(bench, tmp_path):
    done, _ = _bench(bench, "run", "--task", "japanese_vowels", "--model", "gru", "--hp", "units=8", "--steps", "4",
                     "--eval-every", "2", "--train", "gradient_flow=false", "--results", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok" and summary["metric"] == "accuracy"
