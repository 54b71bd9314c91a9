"""Run records: one self-describing JSON file per run, written atomically, read back tolerantly."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import socket
import stat
import subprocess
import tempfile
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bench.core.errors import SpecError, StoreError, sweep_name
from bench.core.text import short

SCHEMA = 2  # 2: run_id hashes the request; records carry kind, request and source fingerprints
STATUSES = ("ok", "diverged", "oom", "timeout", "failed")
STALE_TMP_S = 3600  # a temp file this old is stale even if a process with its pid exists


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new(fields: dict, status: str = "ok", error: str | None = None, **measured) -> dict:
    """The one constructor of a run record: the spec's ``fields`` (``Resolved.fields()``), how it ended, and what
    was measured. Every record, whatever its kind or however it ended, is built here."""
    return {"schema": SCHEMA, **fields, "status": status, "error": error, **measured}


PROVISIONAL = "BENCH_PROVISIONAL_RECORD"  # where a worker's run leaves its record once scored (set by the executor)
AFTER = "after"  # measured fields may hold ``[(name, phase(record))]``: what runs once the score is earned


def capture(fields: dict, measure) -> dict:
    """The record of ``measure()``, which returns the measured fields (and may set ``status``/``error``, e.g.
    diverged); an exception becomes a ``failed`` (or ``oom``) record with its last line and traceback.

    What runs after the score is earned (``measured["after"]``: saving the model, the extrapolation lengths) cannot
    cost it: the record is left at ``$BENCH_PROVISIONAL_RECORD`` first (a worker killed or timed out from here on
    still returns it), and a phase that fails is ``post_error`` ("save_model: PermissionError: …"), the status
    kept."""
    started, clock = now(), time.perf_counter()
    after = ()
    try:
        measured = measure()
        after = measured.pop(AFTER, ())
        rec = new(fields, **{"status": "ok", **measured})
    except Exception as e:  # a failed run is data: its record says why
        rec = new(fields, "oom" if is_oom(e) else "failed", describe(e), traceback=traceback.format_exc(limit=8))
    finish = lambda: rec.update(finished_at=now(), wall_s=round(time.perf_counter() - clock, 3))  # noqa: E731
    rec.update(env=environment(), started_at=started)
    if after:
        finish()
        _leave_provisional(rec)
    failed = []
    for name, phase in after:
        try:
            phase(rec)
        except Exception as e:  # noqa: BLE001 - the score stands; what failed after it is said
            failed.append(f"{name}: {describe(e)}")
    if failed:
        rec["post_error"] = "; ".join(failed)
    finish()
    return rec


def _leave_provisional(rec: dict) -> None:
    """Write the scored record where the executor looks for it if this worker ends before its final record."""
    path = os.environ.get(PROVISIONAL)
    if path:
        tmp = f"{path}.tmp"
        Path(tmp).write_text(hand_off(rec))
        os.replace(tmp, path)


def salvaged(path: Path | str, why: str) -> dict | None:
    """The provisional record a worker left at ``path`` before it ended without its final one, with ``why`` as its
    ``post_error`` (its score and status stand); None if it left none."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return {**rec, "post_error": f"after it was scored: {why}"} if isinstance(rec, dict) else None


def is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, MemoryError) or "resourceexhausted" in text or "out of memory" in text


_CALL_CONTEXT = re.compile(r"Exception encountered when calling (.+?)\.\n(.*?)\nArguments received by", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_ERROR_CHARS = 300


def describe(error: BaseException) -> str:
    """One line for a record's ``error``: the exception's type and its message (lines joined), with Keras' call
    context ("Exception encountered when calling LSTM.call() … Arguments received by …") reduced to the message it
    wraps, and an explicit cause (``raise … from``) after it. The record's ``traceback`` keeps the frames."""
    text, where = _ANSI.sub("", str(error)), ""
    wrapped = _CALL_CONTEXT.search(text)
    if wrapped:
        where, text = f" in {wrapped[1]}", wrapped[2]
    message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    line = f"{type(error).__name__}{where}: {message}".strip()[:MAX_ERROR_CHARS]
    cause = error.__cause__
    return f"{line} (caused by {describe(cause)})" if cause is not None and cause is not error else line


def path_for(results: Path | str, sweep: str, run_id: str) -> Path:
    """Where a record lives: ``<results>/<sweep>/<run_id>.json``, the sweep's name one path component."""
    return Path(results) / sweep_name(sweep) / f"{run_id}.json"


def write(record: dict, results: Path | str) -> Path:
    """Write ``record`` to ``<results>/<sweep>/<run_id>.json`` atomically (a reader never sees half a file), readable
    as the umask allows (as any file the user creates); a store that cannot take it (a full disk, a folder made
    read-only) is a StoreError saying how many records the folder keeps."""
    path = path_for(results, record["sweep"], record["run_id"])
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{record['run_id']}.{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            json.dump(_finite(record), f, indent=1, sort_keys=True, allow_nan=False, default=_plain)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise StoreError(f"cannot write a record in {short(path.parent)}: {e.strerror or e}; "
                         f"{_kept(path.parent)} finished record(s) kept there") from None
    finally:
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink(missing_ok=True)
    return path


def _kept(folder: Path) -> int:
    try:
        return sum(1 for _ in folder.glob("*.json"))
    except OSError:
        return 0


def _umask() -> int:
    """This process's umask, read without changing it (Linux: /proc), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _finite(value):
    """``value`` with NaN and infinities as None: strict JSON (a diverged run's history holds NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def clean_stale(results: Path | str, sweep: str) -> list[Path]:
    """Remove temp files left by a killed driver (its pid is gone, or the file is old); return them."""
    folder = Path(results) / sweep
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        parts = tmp.name.split(".")  # "", run_id, pid, random, "tmp"
        pid = int(parts[2]) if len(parts) == 5 and parts[2].isdigit() else None
        try:
            if pid is None or not _alive(pid) or time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _plain(value):
    """JSON for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def hand_off(record: dict) -> str:
    """JSON of a record on its way from a worker to the driver: numpy values as lists, anything else that JSON
    cannot hold as its ``str``, so an odd value never costs the record (the driver's ``write`` is strict)."""
    return json.dumps(record, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


MAPPINGS = ("request", "task_params", "model_params", "train", "metrics", "speed", "memory", "env", "tune")  # or null


def read_json(path: Path | str):
    """The JSON value of a regular file; a ValueError naming the file otherwise. A FIFO, socket or device named
    ``*.json`` is refused without being read (opening a FIFO would wait for a writer forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"{path}: not a regular file (a FIFO, socket or device), not read")
            with os.fdopen(fd, "rb", closefd=False) as f:
                text = f.read()
        finally:
            os.close(fd)
        return json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None


def read(path: Path | str) -> dict:
    """One record; raises ValueError naming the file if it is not a run record (a field that holds a mapping in
    every record, ``metrics`` …, holding something else included: every reader may take it as one)."""
    record = read_json(path)
    if not isinstance(record, dict) or not {"schema", "run_id", "status"} <= set(record):
        raise ValueError(f"{path}: not a run record (no schema/run_id/status)")
    odd = next((k for k in MAPPINGS if record.get(k) is not None and not isinstance(record[k], dict)), None)
    if odd:
        raise ValueError(f"{path}: not a run record ({odd} is {type(record[odd]).__name__}, not a mapping)")
    return record


def require(results: Path | str, sweep: str) -> None:
    """Refuse, before any heavy import, a sweep with no records: say which command makes them."""
    folder = Path(results) / sweep
    if not (folder.is_dir() and any(folder.glob("*.json"))):
        raise SpecError(f"no run records in {short(folder)}; make them with: bench sweep {shlex.quote(sweep)}"
                        + (f" --results {shlex.quote(str(results))}" if str(results) != "results" else ""))


def load(results: Path | str, sweep: str) -> tuple[list[dict], list[str]]:
    """All records of a sweep, and one line for each file that was skipped and why."""
    records, skipped = [], []
    for path in sorted((Path(results) / sweep).glob("*.json")):
        try:
            records.append(read(path))
        except ValueError as e:
            skipped.append(str(e))
    return records, skipped


def foreign(records: list[dict], sweep: str, kinds: tuple[str, ...] | None = None) -> tuple[list[dict], list[str]]:
    """The records of a sweep folder that a report of ``kinds`` (None: any) reads, and one line for each group it
    does not, or that names another sweep (kept: the same run is the same run, whichever sweep ran it first)."""
    kept, left = [], []
    for r in records:
        (kept if kinds is None or r.get("kind", "train") in kinds else left).append(r)
    lines = []
    for kind, n in sorted(Counter(str(r.get("kind", "train")) for r in left).items()):
        lines.append(f"{n} record(s) of kind {kind!r} left out: this report reads {', '.join(kinds)} records")
    for other, n in sorted(Counter(str(r.get("sweep")) for r in kept if r.get("sweep") != sweep).items()):
        lines.append(f"{n} record(s) say sweep {other!r}, not {sweep!r} (copied here?): reported with the rest")
    return kept, lines


def environment() -> dict:
    """Backend, precision, device (and what shared it), versions and source commit: what the numbers were
    measured on. The backend is Keras' (``KERAS_BACKEND``, or ``bench --backend``)."""
    import keras

    from bench.runner import precision
    from bench.runner.measure import gpu_present

    backend = keras.backend.backend()
    versions = {name: _version(name) for name in ("keras", "tensorflow", "jax", "torch", "numpy")}
    gpu = gpu_present()
    return {
        "backend": backend,
        "precision": precision.current(),
        "device": _device_name(backend) if gpu else f"cpu: {_cpu_name()}",
        "gpu": gpu,
        **({"gpu_sharing": gpu_sharing()} if gpu else {}),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {k: v for k, v in versions.items() if v},
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


def gpu_sharing() -> dict:
    """What shared this process's GPU: the sweep's workers per GPU (set by the executor), and the compute
    processes ``nvidia-smi`` sees on the visible GPU now (this one included)."""
    out = {"visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "workers_per_gpu": _int(os.environ.get("BENCH_WORKERS_PER_GPU")),
           "xla_preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")}
    gpu = (out["visible_devices"] or "0").split(",")[0]
    try:
        query = subprocess.run(["nvidia-smi", "-i", gpu, "--query-compute-apps=pid,used_memory",
                                "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        rows = [line.split(",") for line in query.stdout.splitlines() if line.strip()]
        out["compute_processes"] = len(rows)
        out["compute_memory_mib"] = [_int(r[1].strip()) for r in rows if len(r) > 1]
    except (OSError, subprocess.SubprocessError):
        out["compute_processes"] = None
    return out


def _int(text) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_name(backend: str) -> str:
    if backend == "torch":
        import torch
        return f"gpu: {torch.cuda.get_device_name(0)}"
    if backend == "jax":
        import jax
        return f"gpu: {jax.devices()[0].device_kind}"
    import tensorflow as tf
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return f"gpu: {details.get('device_name', 'unknown')}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
