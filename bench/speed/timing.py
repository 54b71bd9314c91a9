"""``bench speed``: a DeepBench-style microbenchmark of forward and forward+backward steps, no training to
convergence. Each configuration is a run of kind ``speed`` (``SpeedSpec``), run like any other by the sweep
executors in a fresh process and resumed from the store; its record holds the compile time, median and
p10/p90 step times, peak memory, FLOPs and achieved GFLOP/s.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

import numpy as np

from bench.core import backends, kinds
from bench.core.identity import sources
from bench.core.spec import asked


@dataclass(frozen=True)
class SpeedSpec(kinds.Measurement):
    """One point of a speed benchmark: a registered model at a width, batch, length and input width.

    A run of kind ``speed``: it goes through the same executors, worker, record constructor and store as a
    training run, and resumes the same way. Its identity hashes the fields set away from their defaults (plus
    model, width, batch and length), so a field added later with a default leaves stored records matching.
    """

    model: str
    units: int  # the model's width hyperparameter (its registry entry names it: units, d_model …)
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
    breakdown: bool = False  # also time the step's matmuls alone (bench.speed.breakdown; gated recurrent models)
    precision: str = "float32"  # bench.runner.precision: float32, tf32 or mixed_bfloat16
    backend: str = field(default_factory=backends.asked)  # a Keras backend, or auto (bench.core.backends)
    kind: ClassVar[str] = "speed"

    def request(self) -> dict:
        given = {**asked(self), **{k: getattr(self, k) for k in ("model", "units", "batch", "length")}}
        return {**{f.name: given[f.name] for f in fields(self) if f.name in given and f.name not in ("sweep", "backend")},
                **backends.identity(self.backend)}


    def model_params(self) -> dict:
        import models
        return {models.entry(self.model).width: self.units, **self.hp}

    def label(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.request().items() if k not in ("model", "units", "batch", "length"))
        return f"speed {self.model} H={self.units} N={self.batch} T={self.length}{extra}"

    def fields(self) -> dict:
        """The record's description of the configuration (every field, resolved)."""
        import models
        try:
            entry = models.entry(self.model)
            params, source, info = self.model_params(), sources(self.model), entry.describe()
        except ValueError:
            params, source, info = None, {}, None
        return {"kind": self.kind, "run_id": self.run_id, "request": self.request(), **asdict(self),
                "backend": {"asked": self.backend}, "model_params": params, "source": source, "model_info": info}

    AT_LEAST: ClassVar[dict] = {"units": 1, "batch": 1, "length": 1, "input_width": 1, "min_steps": 1, "warmup": 0,
                                "min_seconds": 0.0}

    def checks(self):
        """``bench.core.check``'s checks of this kind: the model is registered (ModelError names the valid ones),
        sizes and counts are in range."""
        import models
        yield ("model", self.model), lambda: models.entry(self.model)
        yield from self.bounds()


def gates(spec: SpeedSpec) -> int | None:
    import models
    return models.entry(spec.model).gates


def one_gated_layer(spec: SpeedSpec, forward_flops: float | None) -> bool:
    """Whether the model is one gated recurrent layer (its FLOPs are one layer's), whose matmuls ``breakdown``
    can time alone."""
    from models.heads import readout_flops
    from models.registry import recurrent_flops

    g = gates(spec)
    if not g or not forward_flops:
        return False
    one, width = recurrent_flops(spec.batch, spec.length, spec.input_width, spec.units, 1, g)
    return forward_flops == one + readout_flops(signature(spec), spec.batch, width)


def signature(spec: SpeedSpec):
    from tasks.base import Features, Final, Signature

    return Signature(spec.length, spec.length, Features(spec.input_width), Final(None))


def deepbench_flops(spec: SpeedSpec) -> float | None:
    """DeepBench's forward count: recurrent matmuls only, 2·gates·T·N·H² (LSTM 8, GRU 6, RNN 2)."""
    g = gates(spec)
    return None if g is None else 2.0 * g * spec.length * spec.batch * spec.units**2


# ---------------------------------------------------------------- one configuration, in this process


def measure_one(spec: SpeedSpec, save_model: str | None = None) -> dict:
    """Build, then time forward and forward+backward calls of one configuration; an OOM becomes a status
    (``save_model`` does not apply: nothing is trained)."""
    from bench.runner import record

    return record.capture(spec.fields(), lambda: _time_model(spec))


kinds.register("speed", SpeedSpec, measure_one)


def _time_model(spec: SpeedSpec) -> dict:
    import keras

    import models
    from bench.runner import measure, precision
    from bench.runner.train import resolve_jit, set_seed
    from bench.speed import breakdown

    set_seed(0)
    precision.apply(spec.precision)
    sig = signature(spec)
    memory = measure.MemoryProbe().start()
    model = models.create(spec.model, sig, **spec.model_params())
    for layer in measure.all_layers(model):
        if hasattr(layer, "use_cudnn"):
            layer.use_cudnn = spec.use_cudnn
    jit = resolve_jit(spec.jit_compile, spec.model, spec.model_params(), sig)
    model.compile(keras.optimizers.SGD(1e-6), "mse", jit_compile=jit)
    jit = model.jit_compile
    rng = np.random.default_rng(0)
    x = rng.standard_normal((spec.batch, spec.length, spec.input_width), dtype=np.float32)
    y = rng.standard_normal((spec.batch, 1), dtype=np.float32)
    forward = _time_calls(lambda: float(keras.ops.convert_to_numpy(model.predict_on_batch(x)).sum()), spec)
    train = _time_calls(lambda: float(keras.ops.convert_to_numpy(model.train_on_batch(x, y))), spec)
    fwd = models.forward_flops(spec.model, sig, spec.batch, **spec.model_params())
    db = deepbench_flops(spec)
    roofline = measure.roofline_gflops()
    peak = memory.result()  # before the breakdown's own tensors
    explained = {}
    if spec.breakdown and one_gated_layer(spec, fwd):
        explained["matmul_floor"] = breakdown.explain(spec, gates(spec), train["median_ms"], jit)
    return {
        "backend": backends.ran(spec, keras.backend.backend()), "jit_compile": jit, "params": int(model.count_params()),
        "speed": {"forward": forward, "train": train, "roofline_gflops": round(roofline, 1)},
        "memory": peak, "cudnn": _cudnn(spec, measure, model, x), "threads": measure.threads(),
        "flops": {"forward": fwd, "train": 3 * fwd, "deepbench_forward": db, "deepbench_train": db and 3 * db},
        "gflops": {
            "forward": _gflops(fwd, forward), "train": _gflops(3 * fwd, train),
            "deepbench_forward": _gflops(db, forward), "deepbench_train": _gflops(db and 3 * db, train),
        },
        **explained,
    }


def _cudnn(spec: SpeedSpec, measure, model, x) -> dict:
    """The run's cuDNN status (observed on a GPU); a configuration that turned cuDNN off says so."""
    status = measure.cudnn_status(spec.model, spec.model_params(), model, x[:8])
    if spec.use_cudnn is False and status["eligible"]:
        status.update(eligible=False, why_not="use_cudnn=False (the generic kernel, for comparison)")
        status.pop("fallback", None)
    return status


def _time_calls(call, spec: SpeedSpec) -> dict:
    """First call apart (compile); ``warmup`` untimed calls; then timed calls, each synchronised by its caller."""
    start = time.perf_counter()
    call()
    compile_ms = (time.perf_counter() - start) * 1000
    for _ in range(spec.warmup):
        call()
    times, began = [], time.perf_counter()
    while len(times) < spec.min_steps and not (time.perf_counter() - began >= spec.min_seconds
                                                 and len(times) >= min(5, spec.min_steps)):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return {"compile_ms": round(compile_ms, 2), "median_ms": round(float(median), 4),
            "p10_ms": round(float(p10), 4), "p90_ms": round(float(p90), 4), "steps": len(times)}


def ran_on(r: dict) -> str:
    """The backend a speed record ran on."""
    backend = r.get("backend") if isinstance(r.get("backend"), dict) else {}
    return str(backend.get("ran") or (r.get("env") or {}).get("backend") or "-")


def _gflops(flops, timing) -> float | None:
    return round(flops / (timing["median_ms"] / 1000) / 1e9, 3) if flops else None


# ---------------------------------------------------------------- plans and tables


def configurations(names: list[str], units: list[int], batches: list[int], lengths: list[int], input_width: int = 64,
                   preset: str | None = None, generic: bool | None = None, on: list[str] | None = None,
                   **options) -> list:
    """What ``bench speed`` times: the grid of ``names`` × widths × batches × lengths (``preset="deepbench"``:
    DeepBench's configurations of these models), each on every backend of ``on`` (default: as asked), back to
    back; with ``generic`` (default: where there is a GPU) each cuDNN-capable configuration again with the
    generic kernel."""
    specs = [c for c in deepbench(**options) if c.model in names] if preset == "deepbench" else \
        grid(names, units, batches, lengths, input_width=input_width, **options)
    specs = with_generic(specs) if generic or (generic is None and backends.gpu_ids()) else specs
    return [replace(s, backend=b) for s in specs for b in on] if on else specs


def measure_all(specs: list, sweep: str, results: str, timeout: float | None, rerun: bool, plugins=(), show=None):
    """Measure every configuration (of any speed kind; checked: ``bench.core.check``) not stored yet (``rerun``:
    also the stale and failed), one fresh process at a time; return the status counts and the records of ``specs``,
    in order. ``show(record)`` is the text after each finished run (default: its row of ``table``)."""
    from bench.core.errors import SpecError
    from bench.runner import record
    from bench.sweep import driver, grid as sweeps

    if not specs:
        raise SpecError("nothing to measure: --models names no model")
    counts = driver.run_sweep(sweeps.Sweep(sweep, "bench speed", specs), results, workers=1, timeout=timeout,
                              rerun_stale=rerun, retry_failed=rerun, plugins=plugins,
                              show=show or (lambda r: table([r]).splitlines()[-1].strip()))
    stored = {r["run_id"]: r for r in record.load(results, sweep)[0]}
    return counts, [stored[s.run_id] for s in specs if s.run_id in stored]


def grid(models: list[str], units: list[int], batches: list[int], lengths: list[int], **options) -> list:
    return [SpeedSpec(m, u, b, t, **options) for m in models for u in units for b in batches for t in lengths]


def deepbench(**options) -> list:
    """DeepBench's RNN training configurations (input size = hidden size): LSTM at T=25, GRU at long T."""
    lstm = [(h, n, 25) for h in (512, 1024, 2048) for n in (16, 32, 64, 128)]
    gru = [(1536, 32, 187), (2048, 32, 375), (2560, 32, 1500), (2816, 32, 750)]
    specs = [SpeedSpec("lstm", h, n, t, input_width=h, **options) for h, n, t in lstm]
    return specs + [SpeedSpec("gru", h, n, t, input_width=h, **options) for h, n, t in gru]


def with_generic(specs: list) -> list:
    """Each configuration of a model that can take cuDNN twice: as is, and with ``use_cudnn=False``."""
    import models
    return specs + [replace(s, use_cudnn=False) for s in specs if models.entry(s.model).cudnn is not False]


def table(records: list[dict]) -> str:
    """One line per record: times, memory, GFLOP/s under both FLOP conventions, and status."""
    head = (f"{'model':12s} {'backend':10s} {'H':>5s} {'N':>4s} {'T':>5s} {'cudnn':>5s} {'xla':>5s} {'fwd ms':>9s} {'p10-p90':>15s} "
            f"{'f+b ms':>9s} {'p10-p90':>15s} {'comp s':>6s} {'peak MiB':>8s} {'GF/s full':>9s} "
            f"{'GF/s DB':>8s} {'roof':>6s}  status")
    lines = [head]
    for r in records:
        speed = r.get("speed") or {}
        f, t = speed.get("forward") or {}, speed.get("train") or {}
        g, mem = r.get("gflops") or {}, (r.get("memory") or {}).get("peak_bytes")
        spread = lambda d: f"{d['p10_ms']:.2f}-{d['p90_ms']:.2f}" if d else "-"  # noqa: E731
        num = lambda v, fmt: format(v, fmt) if v is not None else format("-", ">" + fmt.split(".")[0])  # noqa: E731
        lines.append(
            f"{r['model']:12s} {ran_on(r):10s} {r['units']:5d} {r['batch']:4d} {r['length']:5d} {str(r['use_cudnn']):>5s} {str(r.get('jit_compile', '-')):>5s} "
            f"{num(f.get('median_ms'), '9.2f')} {spread(f):>15s} {num(t.get('median_ms'), '9.2f')} "
            f"{spread(t):>15s} {num(t.get('compile_ms') and t['compile_ms'] / 1000, '6.1f')} "
            f"{num(mem and mem / 2**20, '8.1f')} {num(g.get('train'), '9.1f')} {num(g.get('deepbench_train'), '8.1f')} "
            f"{num(speed.get('roofline_gflops'), '6.0f')}  {r['status']}{': ' + r['error'] if r.get('error') else ''}")
    return "\n".join(lines)
