"""The README's two commands on a system Python that refuses pip installs (PEP 668), simulated: a copy of this
interpreter whose stdlib folder holds an EXTERNALLY-MANAGED file. The scripts must then install into a
virtualenv they create once and reuse (or into the active one), never into the system Python."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def system_python(tmp_path_factory) -> Path:
    """A copy of the base interpreter with its stdlib (and pip), marked externally managed."""
    prefix = tmp_path_factory.mktemp("system-python")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo", "__pycache__", "site-packages")
    shutil.copytree(stdlib, prefix / "lib" / stdlib.name, ignore=skip)
    site = Path(sysconfig.get_paths(vars={"base": sys.base_prefix})["purelib"])
    for pip in site.glob("pip"):
        shutil.copytree(pip, prefix / "lib" / stdlib.name / "site-packages" / "pip", ignore=skip)
    (prefix / "lib" / stdlib.name / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=this Python is managed by the system (simulated PEP 668)\n")
    (prefix / "bin").mkdir()
    shutil.copy2(getattr(sys, "_base_executable", sys.executable), prefix / "bin" / "python3")
    return prefix / "bin" / "python3"


def _bash(script: str, python: Path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "BENCH_VENV", "PYTHONHOME")}
    base["PATH"] = f"{python.parent}:{base['PATH']}"
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source scripts/python.sh; {script}"], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=300)


def test_the_simulated_system_python_refuses_pip_install(system_python):
    out = subprocess.run([str(system_python), "-m", "pip", "install", "--dry-run", "lstm-bench-nothing"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "externally-managed-environment" in out.stdout + out.stderr


def test_scripts_create_a_virtualenv_once_and_reuse_it(system_python, tmp_path):
    venv = tmp_path / "venv"
    first = _bash("bench_python", system_python, BENCH_VENV=str(venv))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"{venv}/bin/python" and "creating a virtualenv" in first.stderr
    made = (venv / "bin" / "python").lstat().st_mtime_ns
    again = _bash("bench_python", system_python, BENCH_VENV=str(venv))
    assert again.stdout.strip() == f"{venv}/bin/python" and again.stderr == ""
    assert (venv / "bin" / "python").lstat().st_mtime_ns == made
    inside = subprocess.run([first.stdout.strip(), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
                            capture_output=True, text=True)
    assert inside.stdout.strip() == "True"  # pip installs go into the virtualenv, which PEP 668 allows


def test_scripts_honour_an_active_virtualenv(system_python, tmp_path):
    active = Path(sys.prefix)
    out = _bash("bench_python", system_python, VIRTUAL_ENV=str(active), BENCH_VENV=str(tmp_path / "unused"))
    assert out.stdout.strip() == f"{active}/bin/python" and not (tmp_path / "unused").exists()


def test_both_scripts_use_it():
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        text = (ROOT / script).read_text()
        assert "source scripts/python.sh" in text and 'PY="$(bench_python)"' in text and "python3 -m pip" not in text
