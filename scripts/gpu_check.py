"""The GPU check (scripts/gpu-check.sh): on each backend present, every model on a short run of each task type
(with the cuDNN observation), the harness against a plain loop, DeepBench LSTM 1024/128/25 forward per precision,
each recurrent layer with and without cuDNN, and a small sweep at 1, 2 and 4 workers per GPU (runs per hour).

Every stage is a `bench` command in its own process with a time limit, so a failing or slow stage costs only
itself; stages run in order of importance within one overall budget. After every stage the Markdown summary is
rewritten (OUT/gpu-check.md), so whatever ran comes back even if the machine is taken away.

    python scripts/gpu_check.py [--smoke] [--budget SECONDS] [--out DIR] [--results DIR]

``--smoke`` shrinks every shape and budget so the whole check runs on a CPU in minutes (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
V100_DEEPBENCH_FORWARD_MS = 3.25  # DeepBench's published V100 LSTM 1024/128/25 forward (issue 11's target)
WORKER_COUNTS = (1, 2, 4)

FULL = {"length": 16, "steps": 30, "eval_every": 15, "batch": 32, "units": 64, "speed_units": 256,
        "speed_batch": 64, "speed_length": 256, "db_units": 1024, "db_batch": 128, "db_length": 25,
        "plain_units": 64, "plain_length": 100, "plain_steps": 100, "conc_steps": 400, "conc_length": 100,
        "min_steps": 10, "models_workers": 6}
SMOKE = {"length": 4, "steps": 4, "eval_every": 2, "batch": 4, "units": 8, "speed_units": 8, "speed_batch": 4,
         "speed_length": 8, "db_units": 16, "db_batch": 4, "db_length": 5, "plain_units": 8, "plain_length": 8,
         "plain_steps": 5, "conc_steps": 4, "conc_length": 4, "min_steps": 2, "models_workers": 2}


class Check:
    def __init__(self, args):
        self.args, self.p = args, SMOKE if args.smoke else FULL
        self.results, self.out = Path(args.results), Path(args.out)
        self.deadline = time.monotonic() + args.budget
        self.stages: list[dict] = []
        self.lock = threading.Lock()  # parallel stages finish in threads
        self.log = self.out / "gpu-check.log"
        self.backends = [b for b in ("torch", "jax", "tensorflow") if importlib.util.find_spec(b)]
        if args.backends:
            self.backends = [b for b in args.backends.split(",") if b in self.backends]

    # ------------------------------------------------------------ running stages

    def bench(self, name: str, backend: str | None, argv: list[str], limit: float, env: dict | None = None) -> bool:
        """Run ``bench ARGV`` (or a python command) within ``limit`` seconds and what is left of the budget."""
        cmd = [sys.executable, "-m", "bench.cli", *argv] if argv and not argv[0].startswith("-") else \
            [sys.executable, *argv]
        left = self.deadline - time.monotonic()
        limit = min(limit, left - 5)
        stage = {"stage": name, "backend": backend or "-", "limit_s": round(limit), "rc": None, "wall_s": 0.0}
        self.stages.append(stage)
        if limit < 10:
            stage["rc"] = "skipped (budget spent)"
            self.write_summary()
            return False
        environ = {**os.environ, **(env or {}), **({"KERAS_BACKEND": backend} if backend else {})}
        start = time.monotonic()
        with open(self.log, "a") as log:
            log.write(f"\n===== {name} [{backend}] $ {' '.join(cmd)}\n")
            log.flush()
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=ROOT,
                                      timeout=limit)
                stage["rc"] = proc.returncode
            except subprocess.TimeoutExpired:
                stage["rc"] = f"timeout after {limit:.0f} s"
        stage["wall_s"] = round(time.monotonic() - start, 1)
        print(f"[gpu-check] {name} [{backend}]: rc {stage['rc']} in {stage['wall_s']} s", flush=True)
        self.write_summary()
        return stage["rc"] == 0

    def sweep_file(self, name: str, data: dict) -> Path:
        import yaml

        path = self.results / "_sweeps" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"name": name, **data}, sort_keys=False))
        return path

    # ------------------------------------------------------------ the stages

    def roofline(self, backend):
        self.bench("roofline", backend, ["-c", "from bench.runner.measure import roofline_gflops as r; "
                                               "print('roofline GFLOP/s', round(r(seconds=1.0), 1))"], 60)

    def models(self):
        """Every model on every task type, per backend; the backends' sweeps run side by side."""
        p = self.p
        train = {"steps": p["steps"], "eval_every": p["eval_every"], "batch_size": p["batch"], "val_size": 64,
                 "test_size": 128}
        import models as registry
        models = {name: {registry.entry(name).width: p["units"]} for name in registry.list_models()}
        tasks = {"copy": {"length": [p["length"]]}, "adding": {"length": [p["length"]]},
                 "recall": {"length": [p["length"]], "pairs": 2}}
        procs = []
        for backend in self.backends:
            name = f"gpu-check-models-{backend}"
            path = self.sweep_file(name, {"seeds": [0], "train": train, "tasks": tasks, "models": models})
            procs.append((backend, ["sweep", str(path), "--results", str(self.results), "--backend", backend,
                                    "--workers", str(p["models_workers"]), "--timeout", "150"]))
        self.parallel("models", procs, 240)

    def parallel(self, name, procs, limit):
        """Several ``bench`` commands at once (one stage row each), within one limit."""
        threads = [threading.Thread(target=self.bench, args=(name, backend, argv, limit)) for backend, argv in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def plain(self, backend):
        p = self.p
        self.bench("plain-loop", backend, ["speed", "--plain", "--models", "lstm", "--units",
                                           str(p["plain_units"]), "--lengths", str(p["plain_length"]), "--batch", "64",
                                           "--steps", str(p["plain_steps"]), "--rounds", "3",
                                           "--results", str(self.results), "--sweep", f"gpu-check-plain-{backend}"], 90)

    def deepbench(self, backend, precisions):
        p = self.p
        for precision in precisions:
            self.bench(f"deepbench {precision}", backend,
                       ["speed", "--backend", backend, "--models", "lstm", "--units", str(p["db_units"]),
                        "--batch", str(p["db_batch"]), "--lengths", str(p["db_length"]), "--input-width",
                        str(p["db_units"]), "--precision", precision, "--no-generic", "--min-steps", "20",
                        "--min-seconds", "1", "--warmup", "3", "--results", str(self.results),
                        "--sweep", f"gpu-check-deepbench-{backend}", "--timeout", "60"], 75)

    def cudnn_speed(self, backend, models, generic=True):
        p = self.p
        self.bench(f"cudnn-vs-generic {models}", backend,
                   ["speed", "--backend", backend, "--models", models, "--units", str(p["speed_units"]), "--batch",
                    str(p["speed_batch"]), "--lengths", str(p["speed_length"]),
                    "--generic" if generic else "--no-generic", "--min-steps", str(p["min_steps"]),
                    "--min-seconds", "1", "--warmup", "2", "--results", str(self.results),
                    "--sweep", f"gpu-check-speed-{backend}", "--timeout", "60"], 150)

    def concurrency(self, backend):
        """The same small sweep (2 runs per worker) at 1, 2 and 4 workers per GPU: runs per hour."""
        p = self.p
        for workers in WORKER_COUNTS:
            name = f"gpu-check-workers-{backend}-{workers}"
            shutil.rmtree(self.results / name, ignore_errors=True)
            path = self.sweep_file(name, {
                "seeds": list(range(2 * workers)),
                "train": {"steps": p["conc_steps"], "eval_every": p["conc_steps"], "val_size": 64, "test_size": 128,
                          "early_stop": False},
                "tasks": {"adding": {"length": [p["conc_length"]]}}, "models": {"lstm": {"units": 64}}})
            start = time.monotonic()
            ok = self.bench(f"workers={workers}", backend, ["sweep", str(path), "--results", str(self.results),
                                                            "--backend", backend, "--workers", str(workers),
                                                            "--timeout", "120"], 120)
            (self.results / name).mkdir(parents=True, exist_ok=True)  # a skipped stage made no folder
            (self.results / name / "_wall.json").write_text(json.dumps(
                {"workers": workers, "wall_s": time.monotonic() - start, "ok": ok}))

    # ------------------------------------------------------------ summary

    def records(self, sweep: str) -> list[dict]:
        folder = self.results / sweep
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                rec = json.loads(path.read_text())
            except ValueError:
                continue
            if isinstance(rec, dict) and "run_id" in rec:
                out.append(rec)
        return out

    def write_summary(self):
        """The Markdown summary and a tarball of every record so far (both rewritten after each stage)."""
        with self.lock:
            self._write_summary()

    def _write_summary(self):
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu-check.md").write_text(summary(self))
        with tarfile.open(self.out / "gpu-check-records.tar.gz", "w:gz") as tar:
            tar.add(self.results, arcname="gpu-check")


def _ms(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def _mib(rec):
    peak = (rec.get("memory") or {}).get("peak_bytes")
    return "—" if peak is None else f"{peak / 2**20:.0f}"


def _cudnn(rec):
    c = rec.get("cudnn")
    if not c:
        return "—"
    used = c.get("used")
    text = {True: "used", False: "not used", None: "not observed"}[used]
    if c.get("fallback"):
        text = "**FALLBACK** (eligible, not used)"
    ops = ", ".join(c.get("ops") or [])
    return text + (f" ({ops})" if ops else "") + ("" if c.get("eligible") else " · ineligible")


def summary(check: Check) -> str:
    lines = [f"# GPU check ({'CPU smoke run: figures mean nothing' if check.args.smoke else 'GPU run'})", ""]
    env = next((r.get("env") for b in check.backends for r in check.records(f"gpu-check-models-{b}")
                if r.get("env")), None)
    if env:
        lines += [f"Device: {env.get('device')}; versions: "
                  + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
                  + f"; python {env.get('python')}.", ""]
    lines += ["## Stages", "", "| stage | backend | rc | wall s | limit s |", "|---|---|---|---|---|"]
    lines += [f"| {s['stage']} | {s['backend']} | {s['rc']} | {s['wall_s']} | {s['limit_s']} |" for s in check.stages]

    lines += ["", f"## Every model on each task type (short runs; {check.p['models_workers']} workers per backend, "
              "both backends at once, sharing the GPU)", "",
              "| backend | model | task | status | step ms | peak MiB | cuDNN |", "|---|---|---|---|---|---|---|"]
    for backend in check.backends:
        for r in sorted(check.records(f"gpu-check-models-{backend}"), key=lambda r: (r["model"], r["task"])):
            lines.append(f"| {backend} | {r['model']} | {r['task']} | {r['status']}"
                         f"{': ' + str(r.get('error'))[:80] if r.get('error') else ''} | "
                         f"{_ms((r.get('speed') or {}).get('step_ms_median'))} | {_mib(r)} | {_cudnn(r)} |")

    lines += ["", "## Harness vs plain framework loop (LSTM, adding; target ratio ≤ 1.3)", "",
              "| backend | shape | plain ms/step | harness ms/step | ratio | cuDNN |", "|---|---|---|---|---|---|"]
    for backend in check.backends:
        for r in check.records(f"gpu-check-plain-{backend}"):
            if r["status"] != "ok":
                lines.append(f"| {backend} | | | | {r['status']}: {str(r.get('error'))[:80]} | |")
                continue
            lines.append(f"| {backend} | H={r['units']} N={r['batch']} T={r['length']} | {_ms(r['plain_ms_median'])} | "
                         f"{_ms(r['harness_ms_median'])} | {r['ratio']:.2f} | {_cudnn(r)} |")

    lines += ["", f"## DeepBench LSTM (input = hidden), V100 published forward {V100_DEEPBENCH_FORWARD_MS} ms", "",
              "| backend | H/N/T | precision | fwd ms | f+b ms | fwd vs V100 | peak MiB | cuDNN |",
              "|---|---|---|---|---|---|---|---|"]
    for backend in check.backends:
        for r in check.records(f"gpu-check-deepbench-{backend}"):
            fwd = ((r.get("speed") or {}).get("forward") or {}).get("median_ms")
            lines.append(f"| {backend} | {r['units']}/{r['batch']}/{r['length']} | {r.get('precision', 'float32')} | "
                         f"{_ms(fwd)} | {_ms(((r.get('speed') or {}).get('train') or {}).get('median_ms'))} | "
                         f"{_ms(fwd and fwd / V100_DEEPBENCH_FORWARD_MS)}× | {_mib(r)} | {_cudnn(r)} |"
                         + (f" {r['status']}: {r.get('error')}" if r["status"] != "ok" else ""))

    lines += ["", "## Each recurrent layer with and without cuDNN (bench speed)", "",
              "| backend | model | H/N/T | kernel | fwd ms | f+b ms | peak MiB | cuDNN |", "|---|---|---|---|---|---|---|---|"]
    for backend in check.backends:
        for r in sorted(check.records(f"gpu-check-speed-{backend}"), key=lambda r: (r["model"], str(r["use_cudnn"]))):
            kernel = "generic (use_cudnn=False)" if r.get("use_cudnn") is False else "auto"
            lines.append(f"| {backend} | {r['model']} | {r['units']}/{r['batch']}/{r['length']} | {kernel} | "
                         f"{_ms(((r.get('speed') or {}).get('forward') or {}).get('median_ms'))} | "
                         f"{_ms(((r.get('speed') or {}).get('train') or {}).get('median_ms'))} | "
                         f"{_mib(r)} | {_cudnn(r)} |" + (f" {r['status']}: {r.get('error')}" if r["status"] != "ok" else ""))

    lines += ["", "## Runs per hour by workers per GPU (LSTM(64) adding, same runs at each count)", "",
              "| backend | workers | runs ok | wall s | runs/hour | median step ms | peak MiB (max) | GPU processes seen |",
              "|---|---|---|---|---|---|---|---|"]
    best = {}
    for backend in check.backends:
        for workers in WORKER_COUNTS:
            name = f"gpu-check-workers-{backend}-{workers}"
            wall_path = check.results / name / "_wall.json"
            if not wall_path.is_file():
                continue
            wall = json.loads(wall_path.read_text())["wall_s"]
            recs = check.records(name)
            ok = [r for r in recs if r["status"] == "ok"]
            per_hour = len(ok) / wall * 3600 if wall else 0
            steps = [r["speed"]["step_ms_median"] for r in ok if (r.get("speed") or {}).get("step_ms_median")]
            peaks = [(r.get("memory") or {}).get("peak_bytes") or 0 for r in ok]
            seen = [((r.get("env") or {}).get("gpu_sharing") or {}).get("compute_processes") for r in ok]
            lines.append(f"| {backend} | {workers} | {len(ok)}/{len(recs)} | {wall:.0f} | {per_hour:.0f} | "
                         f"{_ms(float(np.median(steps)) if steps else None)} | "
                         f"{max(peaks) / 2**20 if peaks else 0:.0f} | {max([s for s in seen if s] or [0])} |")
            if ok and per_hour > best.get(backend, (0, 0))[1]:
                best[backend] = (workers, per_hour)

    lines += ["", "## Recommendation (from the numbers above)", ""]
    harness = _harness_ms(check)
    if harness:
        fastest = min(harness, key=harness.get)
        lines.append(f"- Fastest backend for the harness's LSTM training step: **{fastest}** "
                     + ", ".join(f"{b} {ms:.2f} ms/step" for b, ms in sorted(harness.items(), key=lambda kv: kv[1])))
    for backend, (workers, per_hour) in best.items():
        lines.append(f"- {backend}: most runs per hour at **{workers} workers per GPU** ({per_hour:.0f}/h)")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny shapes and budgets: a CPU check of the check")
    p.add_argument("--budget", type=float, default=390, help="seconds for all stages together")
    p.add_argument("--out", default=os.environ.get("OUT") or "results/gpu-check-out")
    p.add_argument("--results", default="results/gpu-check")
    p.add_argument("--backends", help="comma-separated subset of the backends present")
    args = p.parse_args(argv)
    check = Check(args)
    if not check.backends:
        print("[gpu-check] no Keras backend installed (tensorflow, jax or torch)", file=sys.stderr)
        return 2
    os.environ.setdefault("KERAS_BACKEND", check.backends[0])  # this driver reads the model registry
    check.out.mkdir(parents=True, exist_ok=True)
    check.results.mkdir(parents=True, exist_ok=True)
    print(f"[gpu-check] backends present: {', '.join(check.backends)}; budget {args.budget:.0f} s", flush=True)
    for backend in check.backends:
        check.roofline(backend)  # cached per host and backend: the runs below then do not race to measure it
    check.models()
    for backend in check.backends:
        check.plain(backend)
    for backend in check.backends:
        check.deepbench(backend, ["float32"])
    for backend in check.backends:
        check.cudnn_speed(backend, "lstm,gru")
    fastest = _fastest(check) or check.backends[0]
    check.concurrency(fastest)
    for backend in check.backends:
        check.deepbench(backend, ["tf32", "mixed_bfloat16"])
    for backend in check.backends:
        check.cudnn_speed(backend, "rnn,bilstm,stacked_lstm", generic=False)
    for backend in check.backends:
        if backend != fastest:
            check.concurrency(backend)
    check.write_summary()
    print((check.out / "gpu-check.md").read_text())
    return 0


def _harness_ms(check) -> dict:
    return {b: r["harness_ms_median"] for b in check.backends for r in check.records(f"gpu-check-plain-{b}")
            if r["status"] == "ok"}


def _fastest(check) -> str | None:
    harness = _harness_ms(check)
    return min(harness, key=harness.get) if harness else None


if __name__ == "__main__":
    sys.exit(main())
