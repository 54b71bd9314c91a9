"""What an optimizer step of the reference plan costs, wall time included, two ways side by side in one command.

The slice: v2's reference models (16) x adding 50, copy 10 (dependency 20) and recall 10 with 2 pairs (dependency
14); seed 0; at most 1,500 steps (stopping once solved), lr 3e-3, 25,000 parameters, batch 64. Measured twice,
one after the other, with the same workers: the defaults before ``backend: auto`` and warm workers (TensorFlow, a
fresh process per run: ``BENCH_RUNS_PER_WORKER=1``) and today's (``auto``, warm workers). The cost of a side is its
command's wall time over the optimizer steps its runs took; records go to RESULTS/step-cost-<side>/, the summary
to reports/step-cost-cpu/. Run on a quiet machine, from fresh folders (a side with stored records is refused):

    python scripts/step_cost.py [--workers 2] [--results results]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {"rnn": {}, "lstm": {}, "gru": {}, "bilstm": {}, "stacked_lstm": {}, "deep_lstm": {}, "lstm_cell": {},
          "peephole": {}, "cifg": {}, "ln_lstm": {}, "slstm": {"heads": 2}, "mlstm": {"heads": 2}, "mingru": {},
          "minlstm": {}, "tcn": {}, "transformer": {"heads": 2}}
SIDES = {  # name: (what it is, environment changes)
    "tensorflow-fresh": ("TensorFlow, a fresh process per run (the defaults before)",
                         {"KERAS_BACKEND": "tensorflow", "BENCH_RUNS_PER_WORKER": "1"}),
    "auto-warm": ("backend auto, warm workers (today's defaults)", {"KERAS_BACKEND": None, "BENCH_RUNS_PER_WORKER": None}),
}


def sweep_file(name: str, folder: Path) -> Path:
    plan = {"name": f"step-cost-{name}", "seeds": [0], "param_budget": 25000,
            "train": {"steps": 1500, "lr": 0.003, "batch_size": 64, "eval_every": 100, "val_size": 256,
                      "test_size": 1024, "max_seconds": 900},
            "tasks": {"adding": {"length": 50}, "copy": {"length": 10}, "recall": {"length": 10, "pairs": 2}},
            "models": MODELS}
    path = folder / f"step-cost-{name}.yaml"
    path.write_text(json.dumps(plan))  # JSON is YAML
    return path


def measure(name: str, changes: dict, workers: int, results: Path, folder: Path) -> float:
    """Run one side's sweep; its wall seconds."""
    if any((results / f"step-cost-{name}").glob("*.json")):
        sys.exit(f"step_cost.py: {results}/step-cost-{name}/ has records; remove it to measure again")
    env = {k: v for k, v in os.environ.items() if k not in changes} | {k: v for k, v in changes.items() if v}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.cli", "sweep", str(sweep_file(name, folder)), "--workers",
                    str(workers), "--results", str(results)], env=env, check=True)
    return time.perf_counter() - start


def summary(walls: dict, workers: int, results: Path) -> str:
    records = {name: [json.loads(p.read_text()) for p in sorted((results / f"step-cost-{name}").glob("*.json"))]
               for name in SIDES}
    steps = {name: sum(r.get("steps") or 0 for r in rs) for name, rs in records.items()}
    cost = {name: 1000 * walls[name] / steps[name] for name in SIDES}
    first, second = SIDES
    lines = [f"# What an optimizer step of the reference plan costs ({workers} workers)", "",
             "Produced by `python scripts/step_cost.py`: " + __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| side | runs | ok | optimizer steps | wall s | wall ms per step |", "|---|---|---|---|---|---|"]
    for name, (what, _) in SIDES.items():
        ok = sum(r["status"] == "ok" for r in records[name])
        lines.append(f"| {what} | {len(records[name])} | {ok} | {steps[name]:,} | {walls[name]:.0f} | "
                     f"{cost[name]:.2f} |")
    lines += ["", f"Ratio: {cost[second] / cost[first]:.3f} of the cost per step "
                  f"({cost[first] / cost[second]:.2f}x cheaper).", "",
              "Per model (worker seconds per optimizer step, summed over its three runs; backend auto ran):", "",
              f"| model | {first} ms | {second} ms | ratio | ran |", "|---|---|---|---|---|"]
    for model in MODELS:
        per = {}
        for name in SIDES:
            rs = [r for r in records[name] if r["model"] == model]
            seconds = sum((r.get("time_split") or {}).get("worker_s") or r.get("wall_s") or 0 for r in rs)
            per[name] = (1000 * seconds / max(1, sum(r.get("steps") or 0 for r in rs)), rs)
        ran = sorted({(r.get("backend") or {}).get("ran", "?") for r in per[second][1]})
        lines.append(f"| {model} | {per[first][0]:.1f} | {per[second][0]:.1f} | "
                     f"{per[second][0] / per[first][0]:.2f} | {', '.join(ran)} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        walls = {name: measure(name, changes, args.workers, args.results, Path(tmp))
                 for name, (_, changes) in SIDES.items()}
    out = Path("reports/step-cost-cpu")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"workers": args.workers, "wall_s": walls}, indent=1) + "\n")
    text = summary(walls, args.workers, args.results)
    (out / "index.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
