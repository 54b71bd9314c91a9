"""``bench``: the command line. Thin: it parses, validates, and calls the harness."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _value(text: str):
    """A command-line value as YAML reads it: 3 → int, 0.1 → float, true → bool, [1, 2] → list."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _pairs(items: list[str], flag: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        out[key.strip()] = _value(text)
    return out


def cmd_list(args) -> int:
    import models
    import tasks
    from bench import plugins
    from bench.sweep.grid import presets

    plugins.load(args.plugin)
    builtin = os.path.dirname(os.path.abspath(models.__file__))

    print("tasks:")
    for name in tasks.list_tasks():
        params = ", ".join(f"{k}={v!r}" for k, v in tasks.defaults(name).items())
        doc = (inspect.getdoc(tasks.registry.task_class(name)) or "").splitlines()[0]
        print(f"  {name:14s} {params}\n  {'':14s} {doc}")
    print("models:")
    for name in models.list_models():
        entry = models.entry(name)
        params = ", ".join(f"{k}={v!r}" for k, v in entry.defaults.items())
        tags = [entry.family] + (["cuDNN"] if entry.cudnn is True else ["cuDNN if " + (entry.cudnn.__doc__ or "eligible").strip().rstrip(".")] if callable(entry.cudnn) else [])
        if entry.source and os.path.dirname(os.path.abspath(entry.source)) != builtin:
            tags.append(f"plugin: {os.path.relpath(entry.source)}")
        print(f"  {name:14s} {params}  [{', '.join(tags)}]\n  {'':14s} {entry.doc}")
    print("sweep presets:", ", ".join(presets()))
    return 0


def _budget_width(task: str, task_params: dict, model: str, model_params: dict, budget: int) -> dict:
    """``model_params`` with the model's width set so that its trainable parameters come within 5 % of ``budget``."""
    import models
    import tasks

    if budget < 1:
        raise UsageError(f"--param-budget must be a positive integer, got {budget}")
    entry = models.entry(model)
    if entry.width in model_params:
        raise UsageError(f"--param-budget sets {entry.width}; do not give --hp {entry.width}=... as well")
    return models.registry.width_for_budget(model, tasks.create(task, **task_params).signature, budget,
                                            **model_params)


def cmd_run(args) -> int:
    import models
    from bench import plugins
    from bench.runner import record
    from bench.runner.run import run
    from bench.runner.spec import RunSpec, TrainConfig

    plugins.load(args.plugin)
    train = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                                "eval_every": args.eval_every, "max_seconds": args.max_seconds}.items()
             if v is not None}
    train.update(_pairs(args.train, "--train"))
    unknown = sorted(set(train) - set(TrainConfig.keys()))
    if unknown:
        raise UsageError(f"unknown training option {unknown[0]!r}; valid: {', '.join(TrainConfig.keys())}")
    task_params = {"length": args.length, **_pairs(args.param, "--param")}
    model_params = _pairs(args.hp, "--hp")
    if args.param_budget is not None:
        model_params = _budget_width(args.task, task_params, args.model, model_params, args.param_budget)
    spec = RunSpec(args.task, args.model, task_params, model_params, TrainConfig(**train),
                   args.seed, "adhoc").resolved()
    models.registry.check_tbptt(spec.model, spec.train.tbptt)
    rec = run(spec)
    if args.param_budget is not None:
        rec["param_budget"] = args.param_budget  # beside the actual count, rec["params"]
    path = record.write(rec, args.results)
    metrics = rec.get("metrics") or {}
    summary = {k: metrics.get(k) for k in ("metric", "value", "baseline", "score", "solved", "steps_to_solve")}
    print(json.dumps({"status": rec["status"], "error": rec["error"], **summary,
                      "step_ms": (rec.get("speed") or {}).get("step_ms_median"), "record": str(path)}))
    return 0 if rec["status"] != "failed" else 1


def cmd_sweep(args) -> int:
    from bench import plugins
    from bench.sweep import executors
    from bench.sweep import grid as sweeps

    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    refs = plugins.load(args.plugin)
    plan = sweeps.load(args.sweep)
    if args.dry_run:
        return _dry_run(plan, args)
    workers = args.workers or len(executors.gpu_ids()) or max(1, (os.cpu_count() or 2) // 2)
    options = {"scheduler": args.scheduler} if args.executor == "dask" else {}
    counts = sweeps.run_sweep(plan, args.results, args.executor, workers, args.timeout, args.retry_failed, refs,
                              **options)
    print("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; records in {os.path.join(args.results, plan.name)}")
    return 1 if counts.get("failed") else 0


def _dry_run(plan, args) -> int:
    from bench.sweep import grid as sweeps

    rows = sweeps.plan(plan, args.results)
    todo = sum(sweeps.runs(status, args.retry_failed) for _, status in rows)
    print(f"sweep {plan.name}: {len(rows)} runs, {len(rows) - todo} stored, {todo} to run "
          f"(dry run: nothing trains; results in {os.path.join(args.results, plan.name)})")
    for spec, status in rows:
        state = "to run" if status is None else f"rerun ({status})" if sweeps.runs(status, args.retry_failed) \
            else f"stored ({status})"
        print(f"  {state:18s} {spec.run_id}  {sweeps.describe(spec)}")
    return 0


def cmd_results(args) -> int:
    from bench.sweep import store

    table, skipped = store.table(args.results, args.sweep)
    for line in skipped:
        print(f"bench results: skipped {line}", file=sys.stderr)
    if table.empty:
        raise UsageError(f"no run records in {os.path.join(args.results, args.sweep)}")
    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    text = store.export(table, args.format, args.out)
    if text is not None:
        print(text)
    else:
        print(f"{len(table)} runs x {len(table.columns)} columns written to {args.out}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from bench import report

    folder = report.build(args.sweep, args.results, args.out)
    print((folder / "index.md").read_text())
    print(f"report written to {folder}/")
    return 0


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} expects comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} expects comma-separated positive integers, got {text!r}")
    return values


def cmd_speed(args) -> int:
    import models
    from bench import plugins
    from bench.speed import timing as speed
    from bench.runner.measure import gpu_present

    refs = plugins.load(args.plugin)

    if args.overhead:
        from bench.speed import overhead
        return overhead.main([])
    options = {"min_steps": args.min_steps, "min_seconds": args.min_seconds, "warmup": args.warmup,
               "jit_compile": _value(args.jit), "sweep": args.sweep, "breakdown": args.breakdown}
    if options["jit_compile"] not in (True, False, "auto"):
        raise UsageError(f"--jit must be true, false or auto, got {args.jit!r}")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        models.entry(name)  # ModelError names the valid ones
    if args.preset == "deepbench":
        configs = [c for c in speed.deepbench(**options) if c.model in names]
    else:
        configs = speed.grid(names, _ints(args.units, "--units"), _ints(args.batch, "--batch"),
                             _ints(args.lengths, "--lengths"), input_width=args.input_width, **options)
    if args.generic or gpu_present():
        configs = speed.with_generic(configs)
    records = []
    for rec in speed.run_configs(configs, args.results, timeout=args.timeout, plugins=refs):
        records.append(rec)
        print(speed.table([rec]).splitlines()[-1], flush=True)
    print(speed.table(records))
    if args.breakdown:
        from bench.speed import breakdown
        print("\nmatmul floor (ms): each matmul of the step timed alone; rest = f+b - floor")
        print(breakdown.table(records))
    return 1 if any(r["status"] == "failed" for r in records) else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark LSTM against its alternatives.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list tasks, models and sweep presets with their parameters")
    ls.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                    help="import a Python file or module first; its models are listed beside the built-in ones")
    ls.set_defaults(fn=cmd_list)

    r = sub.add_parser("run", help="train and score one (task, length, model, seed); write its record")
    r.add_argument("--task", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--length", type=int, default=100, help="dependency-controlling length of the task")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int)
    r.add_argument("--batch-size", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--eval-every", type=int)
    r.add_argument("--max-seconds", type=float)
    r.add_argument("--param", action="append", metavar="KEY=VALUE", help="task parameter, e.g. pairs=8")
    r.add_argument("--hp", action="append", metavar="KEY=VALUE", help="model hyperparameter, e.g. units=128")
    r.add_argument("--train", action="append", metavar="KEY=VALUE", help="training option, e.g. clipnorm=null")
    r.add_argument("--param-budget", type=int, metavar="N",
                   help="set the model's width so its trainable parameters are within 5 %% of N for this task")
    r.add_argument("--results", default="results")
    r.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                   help="import a Python file or module first, so the models and tasks it registers exist")
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("sweep", help="run a sweep preset or YAML file, resuming what is stored")
    s.add_argument("sweep", help="preset name (see `bench list`) or path to a YAML file")
    s.add_argument("--results", default="results")
    s.add_argument("--workers", type=int, default=None,
                   help="runs at a time (default: one per GPU, else half the CPU cores)")
    s.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local: worker processes here; dask: tasks on a Dask cluster")
    s.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="address of a running Dask scheduler (default: start a LocalCluster of --workers)")
    s.add_argument("--timeout", type=float, default=None, help="seconds per run before it is recorded as timeout")
    s.add_argument("--retry-failed", action="store_true", help="run failed and timed-out runs again")
    s.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                   help="import a Python file or module (here and in every worker) so its models register")
    s.add_argument("--dry-run", action="store_true", help="print the plan without training")
    s.set_defaults(fn=cmd_sweep)

    res = sub.add_parser("results", help="a sweep's records as one table: one row per run")
    res.add_argument("sweep")
    res.add_argument("--results", default="results")
    res.add_argument("--format", choices=["table", "csv", "parquet"], default="table")
    res.add_argument("--out", metavar="FILE", help="write here instead of printing (parquet needs it)")
    res.set_defaults(fn=cmd_results)

    sp = sub.add_parser("speed", help="time forward and forward+backward steps per model, width, batch and length")
    sp.add_argument("--models", default="lstm,gru,transformer")
    sp.add_argument("--units", default="256", help="hidden sizes (d_model for the Transformer), comma-separated")
    sp.add_argument("--batch", default="64", help="batch sizes, comma-separated")
    sp.add_argument("--lengths", default="64,256,1024,4096", help="sequence lengths, comma-separated")
    sp.add_argument("--input-width", type=int, default=64, help="features per step fed to the model")
    sp.add_argument("--preset", choices=["deepbench"],
                    help="DeepBench's RNN training configurations (those of --models) instead")
    sp.add_argument("--min-steps", type=int, default=30, help="timed steps (or --min-seconds, whichever first)")
    sp.add_argument("--min-seconds", type=float, default=2.0)
    sp.add_argument("--warmup", type=int, default=3, help="untimed calls after the first (compile) call")
    sp.add_argument("--jit", default="auto", help="jit_compile: true, false or auto")
    sp.add_argument("--generic", action="store_true", help="also time LSTM/GRU with use_cudnn=False (on by GPU)")
    sp.add_argument("--overhead", action="store_true", help="harness step time vs plain model.fit instead")
    sp.add_argument("--breakdown", action="store_true",
                    help="also time the step's matmuls alone, to show where the rest of a recurrent step goes")
    sp.add_argument("--sweep", default="speed", help="records go to RESULTS/SWEEP/")
    sp.add_argument("--results", default="results")
    sp.add_argument("--timeout", type=float, default=600, help="seconds per configuration")
    sp.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                    help="import a Python file or module (here and in every worker) so its models register")
    sp.set_defaults(fn=cmd_speed)

    rep = sub.add_parser("report", help="figures and tables of a sweep's records")
    rep.add_argument("sweep")
    rep.add_argument("--results", default="results")
    rep.add_argument("--out", default="reports")
    rep.set_defaults(fn=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from bench.runner.spec import SpecError
    from models import ModelError
    from tasks import TaskError

    try:
        return args.fn(args)
    except (UsageError, SpecError, TaskError, ModelError, FileNotFoundError) as e:
        print(f"bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bench {args.command}: interrupted; finished records are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
