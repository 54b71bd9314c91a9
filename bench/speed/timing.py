"""``bench speed``: a DeepBench-style microbenchmark of forward and forward+backward steps, no training to
convergence. Each configuration runs in a fresh process; its record (sweep ``speed`` by default) holds
the compile time, median and p10/p90 step times, peak memory, FLOPs and achieved GFLOP/s.

``python -m bench.speed.timing worker CONFIG_JSON OUT`` runs one configuration (used by ``run_configs``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

SCHEMA = 1
RECURRENT_GATES = {"rnn": 1, "gru": 3, "lstm": 4, "stacked_lstm": 4, "bilstm": 4}


@dataclass(frozen=True)
class SpeedConfig:
    """One point of a speed benchmark: a registered model at a width, batch, length and input width."""

    model: str
    units: int
    batch: int
    length: int
    input_width: int = 64
    min_steps: int = 30  # timed steps after warm-up: stop at min_steps, or at min_seconds with >= 5 steps
    min_seconds: float = 2.0
    warmup: int = 3  # calls after the first (compile) call, not timed
    jit_compile: bool | str = "auto"
    use_cudnn: bool | str = "auto"  # False: the generic kernel, for the cuDNN comparison on a GPU
    sweep: str = "speed"
    hp: dict = field(default_factory=dict)  # more model hyperparameters
    breakdown: bool = False  # also time the step's matmuls alone (bench.speed.breakdown; rnn, lstm, gru)

    @property
    def run_id(self) -> str:
        keys = {k: v for k, v in asdict(self).items() if k != "sweep"}
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]

    def model_params(self) -> dict:
        if self.model == "transformer":
            return {"d_model": self.units, "heads": max(1, self.units // 64), **self.hp}
        return {"units": self.units, **self.hp}


def signature(config: SpeedConfig):
    from tasks.base import Features, Final, Signature

    return Signature(config.length, config.length, Features(config.input_width), Final(None))


def deepbench_flops(config: SpeedConfig) -> float | None:
    """DeepBench's forward count: recurrent matmuls only, 2·gates·T·N·H² (LSTM 8, GRU 6, RNN 2)."""
    gates = RECURRENT_GATES.get(config.model)
    return None if gates is None else 2.0 * gates * config.length * config.batch * config.units**2


# ---------------------------------------------------------------- one configuration, in this process


def measure_one(config: SpeedConfig) -> dict:
    """Build, then time forward and forward+backward calls of one configuration; OOM becomes a status."""
    import keras

    from bench.runner import measure
    from bench.runner import record
    from bench.runner.train import resolve_jit

    rec = {"schema": SCHEMA, "kind": "speed", "run_id": config.run_id, **asdict(config),
           "model_params": config.model_params(), "status": "ok", "error": None, "started_at": record.now()}
    try:
        rec.update(_time_model(config, keras, measure, resolve_jit))
    except Exception as e:  # an OOM is data
        from bench.runner.run import _is_oom, _last_line
        rec["status"] = "oom" if _is_oom(e) else "failed"
        rec["error"] = _last_line(e)
    rec["env"] = record.environment()
    rec["finished_at"] = record.now()
    return rec


def _time_model(config, keras, measure, resolve_jit) -> dict:
    import models
    from bench.speed import breakdown

    keras.utils.set_random_seed(0)
    sig = signature(config)
    memory = measure.MemoryProbe().start()
    model = models.create(config.model, sig, **config.model_params())
    for layer in measure.all_layers(model):
        if hasattr(layer, "use_cudnn"):
            layer.use_cudnn = config.use_cudnn
    model.compile(keras.optimizers.SGD(1e-6), "mse", jit_compile=resolve_jit(config.jit_compile, config.model, config.model_params(), sig))
    jit = model.jit_compile
    rng = np.random.default_rng(0)
    x = rng.standard_normal((config.batch, config.length, config.input_width), dtype=np.float32)
    y = rng.standard_normal((config.batch, 1), dtype=np.float32)
    forward = _time_calls(lambda: float(np.asarray(model.predict_on_batch(x)).sum()), config)
    train = _time_calls(lambda: float(model.train_on_batch(x, y)), config)
    fwd = models.forward_flops(config.model, sig, config.batch, **config.model_params())
    db = deepbench_flops(config)
    roofline = measure.roofline_gflops()
    peak = memory.result()  # before the breakdown's own tensors
    explained = {}
    if config.breakdown and config.model in breakdown.GATES and config.hp.get("layers", 1) == 1:
        explained["matmul_floor"] = breakdown.explain(config, train["median_ms"], jit)
    return {
        "jit_compile": jit, "params": int(model.count_params()), "forward": forward, "train": train,
        "memory": peak, "cudnn": measure.cudnn_status(model), "threads": measure.threads(),
        "flops": {"forward": fwd, "train": 3 * fwd, "deepbench_forward": db, "deepbench_train": db and 3 * db},
        "gflops": {
            "forward": _gflops(fwd, forward), "train": _gflops(3 * fwd, train),
            "deepbench_forward": _gflops(db, forward), "deepbench_train": _gflops(db and 3 * db, train),
        },
        "roofline_gflops": round(roofline, 1), **explained,
    }


def _time_calls(call, config: SpeedConfig) -> dict:
    """First call apart (compile); ``warmup`` untimed calls; then timed calls, each synchronised by its caller."""
    start = time.perf_counter()
    call()
    compile_ms = (time.perf_counter() - start) * 1000
    for _ in range(config.warmup):
        call()
    times, began = [], time.perf_counter()
    while len(times) < config.min_steps and not (time.perf_counter() - began >= config.min_seconds
                                                 and len(times) >= min(5, config.min_steps)):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return {"compile_ms": round(compile_ms, 2), "median_ms": round(float(median), 4),
            "p10_ms": round(float(p10), 4), "p90_ms": round(float(p90), 4), "steps": len(times)}


def _gflops(flops, timing) -> float | None:
    return round(flops / (timing["median_ms"] / 1000) / 1e9, 3) if flops else None


# ---------------------------------------------------------------- many configurations, each in a fresh process


def run_configs(configs, results: str | Path, timeout: float | None = 600, plugins: list[str] = ()):
    """Measure each configuration in a fresh worker process (importing ``plugins`` first); store and yield its record."""
    from bench.runner import record

    for config in configs:
        rec = _in_subprocess(config, timeout, plugins)
        record.write(rec, results)
        yield rec


def _in_subprocess(config: SpeedConfig, timeout: float | None, plugins: list[str] = ()) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [sys.executable, "-m", "bench.speed.timing", "worker", json.dumps(asdict(config)), str(out), *plugins]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
        except subprocess.TimeoutExpired:
            return _unfinished(config, "timeout", f"exceeded {timeout:g} s")
        if proc.returncode == 0 and out.is_file():
            return json.loads(out.read_text())
        status = "oom" if proc.returncode in (-9, 137) else "failed"
        tail = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or [""]
        return _unfinished(config, status, f"worker exited with code {proc.returncode}: {tail[0]}")


def _unfinished(config: SpeedConfig, status: str, error: str) -> dict:
    from bench.runner import record

    return {"schema": SCHEMA, "kind": "speed", "run_id": config.run_id, **asdict(config), "status": status,
            "error": error, "finished_at": record.now()}


# ---------------------------------------------------------------- plans and tables


def grid(models: list[str], units: list[int], batches: list[int], lengths: list[int], **options) -> list:
    return [SpeedConfig(m, u, b, t, **options) for m in models for u in units for b in batches for t in lengths]


def deepbench(**options) -> list:
    """DeepBench's RNN training configurations (input size = hidden size): LSTM at T=25, GRU at long T."""
    lstm = [(h, n, 25) for h in (512, 1024, 2048) for n in (16, 32, 64, 128)]
    gru = [(1536, 32, 187), (2048, 32, 375), (2560, 32, 1500), (2816, 32, 750)]
    configs = [SpeedConfig("lstm", h, n, t, input_width=h, **options) for h, n, t in lstm]
    return configs + [SpeedConfig("gru", h, n, t, input_width=h, **options) for h, n, t in gru]


def with_generic(configs: list) -> list:
    """Each LSTM/GRU configuration twice: the cuDNN-capable layer and the same with ``use_cudnn=False``."""
    return configs + [replace(c, use_cudnn=False) for c in configs if c.model in ("lstm", "gru")]


def table(records: list[dict]) -> str:
    """One line per record: times, memory, GFLOP/s under both FLOP conventions, and status."""
    head = (f"{'model':12s} {'H':>5s} {'N':>4s} {'T':>5s} {'cudnn':>5s} {'xla':>5s} {'fwd ms':>9s} {'p10-p90':>15s} "
            f"{'f+b ms':>9s} {'p10-p90':>15s} {'comp s':>6s} {'peak MiB':>8s} {'GF/s full':>9s} "
            f"{'GF/s DB':>8s} {'roof':>6s}  status")
    lines = [head]
    for r in records:
        f, t = r.get("forward") or {}, r.get("train") or {}
        g, mem = r.get("gflops") or {}, (r.get("memory") or {}).get("peak_bytes")
        spread = lambda d: f"{d['p10_ms']:.2f}-{d['p90_ms']:.2f}" if d else "-"  # noqa: E731
        num = lambda v, fmt: format(v, fmt) if v is not None else format("-", ">" + fmt.split(".")[0])  # noqa: E731
        lines.append(
            f"{r['model']:12s} {r['units']:5d} {r['batch']:4d} {r['length']:5d} {str(r['use_cudnn']):>5s} {str(r.get('jit_compile', '-')):>5s} "
            f"{num(f.get('median_ms'), '9.2f')} {spread(f):>15s} {num(t.get('median_ms'), '9.2f')} "
            f"{spread(t):>15s} {num(t.get('compile_ms') and t['compile_ms'] / 1000, '6.1f')} "
            f"{num(mem and mem / 2**20, '8.1f')} {num(g.get('train'), '9.1f')} {num(g.get('deepbench_train'), '8.1f')} "
            f"{num(r.get('roofline_gflops'), '6.0f')}  {r['status']}{': ' + r['error'] if r.get('error') else ''}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = argv or sys.argv[1:]
    if args[:1] == ["worker"]:
        config = json.loads(args[1])
        from bench import plugins
        from bench.runner import record
        plugins.load(args[3:])
        Path(args[2]).write_text(record.hand_off(measure_one(SpeedConfig(**config))))
        return 0
    if args[:1] == ["overhead"]:
        from bench.speed.overhead import main as overhead
        return overhead(args[1:])
    print("usage: python -m bench.speed.timing worker CONFIG_JSON OUT [PLUGIN...] | overhead [...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
