"""``bench``: the command line. Thin: it parses, validates, and calls the harness."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: take GPU memory as needed, not 75 %

from bench.runner.precision import PRECISIONS  # noqa: E402 (imports no backend)

BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}  # Keras backend → module it needs

MAX_ERROR_CHARS = 400  # an error is one line a person reads, whatever value it quotes


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
    from bench import listing

    print(listing.text(args.plugin))
    return 0


def cmd_run(args) -> int:
    import models
    from bench import plugins
    from bench.runner import record
    from bench.runner import validate
    from bench.runner.run import run
    from bench.runner.spec import BUDGET, RunSpec, TrainConfig

    plugins.load(args.plugin)
    train = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                                "eval_every": args.eval_every, "max_seconds": args.max_seconds,
                                "precision": args.precision}.items()
             if v is not None}
    train.update(_pairs(args.train, "--train"))
    unknown = sorted(set(train) - set(TrainConfig.keys()))
    if unknown:
        raise UsageError(f"unknown training option {validate.quote(unknown[0])}; valid: {', '.join(TrainConfig.keys())}")
    config = TrainConfig(**train)
    task_params, hp = {**_length(args), **_pairs(args.param, "--param")}, _pairs(args.hp, "--hp")
    if args.param_budget is not None:
        hp[BUDGET] = args.param_budget  # the width that gives this many parameters, sized at resolved()
    task = validate.task_point(args.task, task_params, "--param", {"length": "--length"})
    validate.fits(task.signature, config, "--train")
    validate.model_point(args.model, hp, "--hp", task.signature, "--param-budget")  # the same checks as a sweep's
    models.registry.check_tbptt(args.model, config.tbptt)
    spec = RunSpec(args.task, args.model, task_params, hp, train, args.seed, "adhoc")
    spec.resolved()  # an impossible value is an error before anything trains
    folder = writable_folder(Path(args.results) / spec.sweep, "--results")
    rec = run(spec, save_model=folder / f"{spec.run_id}.keras" if args.save_model else None)
    path = record.write(rec, args.results)
    metrics = rec.get("metrics") or {}
    summary = {k: metrics.get(k) for k in ("metric", "value", "baseline", "score", "solved", "steps_to_solve")}
    model_file = str(folder / rec["model_file"]) if rec.get("model_file") else None
    print(json.dumps({"status": rec["status"], "error": rec["error"], **summary,
                      "step_ms": (rec.get("speed") or {}).get("step_ms_median"), "record": str(path),
                      **({"model_file": model_file} if args.save_model else {})}))
    return 0 if rec["status"] != "failed" else 1


def _length(args) -> dict:
    """``--length`` as a task parameter; absent, the task runs at its own default length."""
    return {} if args.length is None else {"length": args.length}


def _short(path: Path | str, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else text[: limit // 2] + "..." + text[-limit // 2:]


def writable_folder(path: Path | str, flag: str) -> Path:
    """``path`` as a folder we can write in (created if missing), else a UsageError: checked before training."""
    path = Path(path)
    try:
        existing = next((p for p in [path, *path.parents] if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise UsageError(f"{flag} {_short(path)}: {_short(existing)} is a file, not a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UsageError(f"{flag} {_short(path)}: cannot write there ({e.strerror or e})") from None
    return path


def writable_file(path: Path | str, flag: str) -> Path:
    """``path`` as a file we can write (its folder must exist or be creatable), else a UsageError."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {_short(path)}: is a folder; give a file name")
    writable_folder(path.parent, flag)
    return path


def _timeout(value: float | None, flag: str = "--timeout") -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise UsageError(f"{flag} must be a finite number of seconds > 0, got {value!r}")


def cmd_sweep(args) -> int:
    from bench import plugins
    from bench.sweep import executors
    from bench.sweep import grid as sweeps

    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.save_model and args.executor == "dask":
        raise UsageError("--save-model needs --executor local (Dask workers may not share this filesystem)")
    _timeout(args.timeout)
    refs = plugins.load(args.plugin)
    plan = sweeps.load(args.sweep, args.results)
    if plan.tuned:
        plan, warnings = sweeps.with_tuned(plan, args.results)
        for line in warnings:
            print(f"bench sweep: warning: {line}", file=sys.stderr)
    _fits(plan)
    if args.dry_run:
        return _dry_run(plan, args)
    folder = writable_folder(Path(args.results) / plan.name, "--results")
    lock = lock_sweep(args.results, plan.name)
    workers = args.workers or len(executors.gpu_ids()) * executors.WORKERS_PER_GPU or max(1, (os.cpu_count() or 2) // 2)
    options = {"scheduler": args.scheduler} if args.executor == "dask" else {}
    if args.save_model:
        options["save_models"] = str(folder)
    try:
        counts = sweeps.run_sweep(plan, args.results, args.executor, workers, args.timeout, args.retry_failed,
                                  refs, rerun_stale=args.rerun_stale, **options)
    except KeyboardInterrupt:
        executors.stop_all()
        kept = len(list(folder.glob("*.json")))
        print(f"bench sweep: stopped; workers ended, {kept} finished record(s) kept in {folder}; resume with: "
              f"{_command_line()}", file=sys.stderr)
        return 130
    finally:
        lock.close()  # releases the lock (a killed driver's is released by the kernel)
    print("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; records in {folder}")
    return 1 if counts.get("failed") else 0


def _fits(plan) -> None:
    """Each distinct (task, batch sizes) of the plan must fit in memory."""
    import tasks
    from bench.runner import validate

    seen = set()
    for spec in plan.specs:
        train = spec.config
        key = (spec.task, json.dumps(spec.task_params, sort_keys=True), train.batch_size, train.val_size,
               train.test_size)
        if key not in seen:
            seen.add(key)
            validate.fits(tasks.create(spec.task, **spec.task_params).signature, train, f"{spec.model}.train")



def lock_sweep(results: Path | str, name: str):
    """Hold ``<results>/.<name>.lock`` until the returned file is closed; a second driver on the same sweep folder
    is refused."""
    import fcntl

    path = Path(results) / f".{name}.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise UsageError(f"{Path(results) / name} is in use by another bench sweep (pid {holder}); wait for it to "
                         f"finish or stop it, then run this again") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _command_line() -> str:
    return "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _dry_run(plan, args) -> int:
    from bench.sweep import grid as sweeps

    rows = sweeps.plan(plan, args.results)
    todo = sweeps.pending(rows, args.retry_failed, args.rerun_stale)
    stale = sum(bool(row.stale) for row in rows)
    print(f"sweep {plan.name}: {len(rows)} runs, {len(rows) - len(todo)} stored, {len(todo)} to run"
          + (f", {stale} stale" if stale else "")
          + f" (dry run: nothing trains; results in {os.path.join(args.results, plan.name)})")
    above, first = set(), todo
    if plan.ladder:
        from bench.runner import record
        from bench.sweep import ladder

        records = {r["run_id"]: r for r in record.load(args.results, plan.name)[0]}
        first, stopped = ladder.climb(rows, records, args.retry_failed, args.rerun_stale)
        above = {row.spec.run_id for row in stopped}
        print(f"ladder: each task's lengths are climbed per model, {len(todo)} runs at most; next round {len(first)}"
              f"; {len(above)} above a climb's stop (not tried)")
    sweeps.check_sizes(first)  # what would run first: a budget no width meets is an error now
    for row in rows:
        again = row.runs(args.retry_failed, args.rerun_stale)
        state = "to run" if row.status is None else f"rerun ({row.status})" if again else f"stored ({row.status})"
        state = "not tried (ladder)" if row.spec.run_id in above else state
        state += ", stale" if row.stale else ""
        print(f"  {state:25s} {row.spec.run_id}  {row.spec.label()}")
        for reason in row.stale:
            print(f"  {'':25s}   stale: {reason}")
    return 0


def require_records(results: str, sweep: str) -> None:
    """Refuse, before any heavy import, a sweep with no records: say which command makes them."""
    folder = Path(results) / sweep
    if not (folder.is_dir() and any(folder.glob("*.json"))):
        raise UsageError(f"no run records in {_short(folder)}; make them with: bench sweep {shlex.quote(sweep)}"
                         + (f" --results {shlex.quote(results)}" if results != "results" else ""))


def cmd_results(args) -> int:
    require_records(args.results, args.sweep)
    from bench.report import query
    from bench.sweep import store

    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    if args.out:
        writable_file(args.out, "--out")
    try:
        table, skipped = query.table(args.sweep, args.results, where=args.where, sort=args.sort,
                                     columns=args.columns, history=args.history)
    except query.QueryError as e:
        raise UsageError(str(e)) from None
    for line in skipped:
        print(f"bench results: skipped {line}", file=sys.stderr)
    shown = table.columns if args.columns else query.default_columns(table, args.history)
    text = store.export(table, args.format, args.out, shown)
    if text is not None:
        print(text)
    else:
        print(f"{len(table)} runs x {len(table.columns)} columns written to {args.out}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    require_records(args.results, args.sweep)
    from bench.report import tensorboard

    writable_folder(args.out, "--out")
    folder, runs = tensorboard.export(args.sweep, args.results, args.out)
    print(f"{runs} TensorBoard runs written to {folder}/; view them with: tensorboard --logdir {folder}")
    return 0


def cmd_compare(args) -> int:
    for sweep in (args.a, args.b):
        require_records(args.results, sweep)
    from bench.report import compare

    writable_folder(args.out, "--out")
    folder, summary = compare.build(args.a, args.b, args.results, args.out)
    print(f"{summary} Report written to {folder}/index.md")
    return 0


def cmd_report(args) -> int:
    require_records(args.results, args.sweep)
    from collections import Counter

    from bench import report
    from bench.report import html
    from bench.runner import record

    writable_folder(args.out, "--out")
    folder = (html.build if args.html else report.build)(args.sweep, args.results, args.out)
    statuses = Counter(str(r.get("status")) for r in record.load(args.results, args.sweep)[0])
    figures = len(list(folder.glob("*.png")))
    written = "index.md and index.html" if args.html else "index.md"
    print(f"report written to {folder}/ ({written}): {sum(statuses.values())} records ("
          + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + f"), {figures} figures")
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
    from bench.runner import record
    from bench.speed import timing as speed
    from bench.sweep import executors
    from bench.sweep import grid as sweeps

    _timeout(args.timeout)
    refs = plugins.load(args.plugin)
    if args.overhead:
        from bench.speed import overhead
        return overhead.main([])
    if args.plain:
        from bench.speed import plain
        return plain.main(["--models", args.models, "--units", args.units, "--batch", args.batch, "--lengths",
                           args.lengths, "--precision", args.precision or "float32", "--results", args.results,
                           "--sweep", args.sweep if args.sweep != "speed" else "plain-loop"])
    options = {"min_steps": args.min_steps, "min_seconds": args.min_seconds, "warmup": args.warmup,
               "jit_compile": _value(args.jit), "sweep": args.sweep, "breakdown": args.breakdown,
               "precision": args.precision or "float32"}
    if options["jit_compile"] not in (True, False, "auto"):
        raise UsageError(f"--jit must be true, false or auto, got {args.jit!r}")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in names:
        models.entry(name)  # ModelError names the valid ones
    if args.preset == "deepbench":
        specs = [c for c in speed.deepbench(**options) if c.model in names]
    else:
        specs = speed.grid(names, _ints(args.units, "--units"), _ints(args.batch, "--batch"),
                           _ints(args.lengths, "--lengths"), input_width=args.input_width, **options)
    if args.generic or (args.generic is None and executors.gpu_ids()):
        specs = speed.with_generic(specs)
    plan = sweeps.Sweep(args.sweep, "bench speed", specs)
    counts = sweeps.run_sweep(plan, args.results, workers=1, timeout=args.timeout, rerun_stale=args.rerun,
                              retry_failed=args.rerun, plugins=refs, show=lambda r: speed.table([r]).splitlines()[-1].strip())
    stored = {r["run_id"]: r for r in record.load(args.results, args.sweep)[0]}
    records = [stored[s.run_id] for s in specs if s.run_id in stored]
    print(speed.table(records))
    if args.breakdown:
        from bench.speed import breakdown
        print("\nmatmul floor (ms): each matmul of the step timed alone; rest = f+b - floor")
        print(breakdown.table(records))
    return 1 if counts.get("failed") else 0


def cmd_tune(args) -> int:
    from bench import plugins
    from bench import tune
    from bench.runner.spec import TrainConfig

    plugins.load(args.plugin)
    train = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "eval_every": args.eval_every,
                                "max_seconds": args.max_seconds}.items() if v is not None}
    train.update(_pairs(args.train, "--train"))
    unknown = sorted(set(train) - set(TrainConfig.keys())) or (["lr"] if "lr" in train else [])
    if unknown:
        raise UsageError(f"training option {unknown[0]!r} cannot be set here (lr is searched; --lr-range sets its "
                         f"range); valid: {', '.join(k for k in TrainConfig.keys() if k != 'lr')}")
    try:
        low, high = (float(v) for v in args.lr_range.split(",")) if args.lr_range else tune.LR_RANGE
    except ValueError:
        raise UsageError(f"--lr-range expects LOW,HIGH, got {args.lr_range!r}") from None
    if not 0 < low < high:
        raise UsageError(f"--lr-range needs 0 < LOW < HIGH, got {args.lr_range!r}")
    if args.trials < 1:
        raise UsageError(f"--trials must be >= 1, got {args.trials}")
    if args.from_sweep:
        return _tune_sweep(args)
    if not (args.task and args.model):
        raise UsageError("bench tune needs --task and --model, or --from SWEEP (a sweep file with a tune: section)")
    task_params = {**_length(args), **_pairs(args.param, "--param")}
    names = [m.strip() for m in args.model.split(",") if m.strip()]
    studies = [tune.Study(args.task, task_params, name, TrainConfig(**train), _pairs(args.hp, "--hp"), args.seed,
                          args.sweep, (low, high), grid=args.algorithm == "grid") for name in names]
    return _tune_studies(studies, args.trials, args.results, args.algorithm)


def _tune_studies(studies, trials: int, results: str, algorithm: str) -> int:
    from bench import tune

    for study in studies:  # every bad value is reported before any trial trains
        tune.validate(study)
    for study in studies:
        best = tune.tune(study, trials, results, algorithm)
        if best is not None:
            print(json.dumps({k: best[k] for k in ("study", "model", "val_score", "trials", "model_params", "train")}),
                  flush=True)
    return 0


def _tune_sweep(args) -> int:
    """``bench tune --from SWEEP``: every study of the sweep's ``tune:`` section, ``--workers`` processes at a time
    (each a ``--shard`` of the studies)."""
    from bench import tune
    from bench.sweep import grid as sweeps

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    plan = sweeps.load(args.from_sweep, args.results)
    if not plan.tune:
        raise UsageError(f"sweep {plan.name!r} has no tune: section (trials, steps, lengths ...) to tune from")
    options = plan.tune
    studies = tune.studies(plan, options)
    if args.shard:
        index, count = (int(v) for v in args.shard.split("/"))
        return _tune_studies(studies[index::count], options["trials"], args.results, options.get("algorithm", "random"))
    for study in studies:
        tune.validate(study)
    workers = min(args.workers or 1, len(studies))
    print(f"bench tune: {len(studies)} studies of sweep {plan.name} ({options['trials']} trials of "
          f"{options['steps']} steps each), {workers} worker{'s' * (workers != 1)}; results in "
          f"{Path(args.results) / (plan.name + '-tune')}", flush=True)
    if workers == 1:
        return _tune_studies(studies, options["trials"], args.results, options.get("algorithm", "random"))
    command = [sys.executable, "-m", "bench.cli", "tune", "--from", args.from_sweep, "--results", args.results,
               *(f"--plugin={p}" for p in args.plugin)]
    children = [subprocess.Popen([*command, "--shard", f"{i}/{workers}"]) for i in range(workers)]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        print(f"bench tune: stopped; finished trials are kept; resume with: {_command_line()}", file=sys.stderr)
        return 130
    return max(codes)


def cmd_check(args) -> int:
    """``bench check``: the conformance check of the built-in models, on every installed backend, for a plugin's
    models (or ``--model``): one line per check, exit 2 at the first failure, with its cause."""
    import models
    from bench import plugins
    from bench.runner import conformance

    builtin = set(models.list_models())
    plugins.load(args.plugin)
    names = ([m.strip() for m in args.model.split(",") if m.strip()] if args.model
             else sorted(set(models.list_models()) - builtin))
    if not names:
        raise UsageError("bench check needs --plugin FILE (its models are checked) or --model NAME")
    for name in names:
        models.entry(name)  # an unknown name is one line, before any check
    backends = conformance.installed_backends()
    for backend in backends:
        for result in conformance.on_backend(backend, names, plugins.resolve(args.plugin)):
            if "error" in result:
                print(f"FAIL {backend:10s} {result['model'] or ''}: {result['error']}", flush=True)
                return 2
            if "line" in result:
                print(f"ok   {backend:10s} {result['model']}: {result['line']}", flush=True)
    print(f"{len(names)} model(s) pass every check on {', '.join(backends)}")
    return 0


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
    r.add_argument("--length", type=int, help="dependency-controlling length of the task (default: the task's own)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--steps", type=int)
    r.add_argument("--batch-size", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--eval-every", type=int)
    r.add_argument("--max-seconds", type=float)
    r.add_argument("--param", action="append", metavar="KEY=VALUE", help="task parameter, e.g. pairs=8")
    r.add_argument("--hp", action="append", metavar="KEY=VALUE", help="model hyperparameter, e.g. units=128")
    r.add_argument("--train", action="append", metavar="KEY=VALUE", help="training option, e.g. clipnorm=null")
    r.add_argument("--precision", choices=PRECISIONS, help="float32 (default), tf32 or mixed_bfloat16")
    r.add_argument("--param-budget", type=int, metavar="N",
                   help="set the model's width so its trainable parameters are within 5 %% of N for this task")
    r.add_argument("--results", default="results")
    _backend_option(r)
    r.add_argument("--save-model", action="store_true",
                   help="also save the trained model as RESULTS/adhoc/<run_id>.keras (load it with keras.saving)")
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
    s.add_argument("--rerun-stale", action="store_true",
                   help="run again the runs whose record is stale (a default or the model's or task's code changed)")
    s.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                   help="import a Python file or module (here and in every worker) so its models register")
    s.add_argument("--dry-run", action="store_true", help="print the plan without training")
    _backend_option(s)
    s.add_argument("--save-model", action="store_true",
                   help="also save each trained model as RESULTS/SWEEP/<run_id>.keras, next to its record")
    s.set_defaults(fn=cmd_sweep)

    res = sub.add_parser("results", help="a sweep's records as one table: one row per run")
    res.add_argument("sweep")
    res.add_argument("--results", default="results")
    res.add_argument("--format", choices=["table", "csv", "parquet"], default="table")
    res.add_argument("--out", metavar="FILE", help="write here instead of printing (parquet needs it)")
    res.add_argument("--where", nargs="+", action="extend", default=[], metavar="COND",
                     help="keep rows where COLUMN OP VALUE holds (OP: = != > >= < <=; a,b after = is a set), "
                          "e.g. model=lstm 'dependency>=20' status=ok")
    res.add_argument("--sort", default="", metavar="COLS", help="sort by these columns (-COL: descending)")
    res.add_argument("--columns", default="", metavar="COLS",
                     help="columns to show, comma-separated (a dotted column by its last part: score, units, lr)")
    res.add_argument("--history", action="store_true", help="one row per evaluation (step, val, loss …) instead")
    res.set_defaults(fn=cmd_results)

    ex = sub.add_parser("export", help="a sweep's records for another tool: TensorBoard runs (no retraining)")
    ex.add_argument("sweep")
    ex.add_argument("--to", choices=["tensorboard"], required=True)
    ex.add_argument("--results", default="results")
    ex.add_argument("--out", default="tensorboard", help="runs go to OUT/SWEEP/ (tensorboard --logdir OUT/SWEEP)")
    ex.set_defaults(fn=cmd_export)

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
    sp.add_argument("--generic", action=argparse.BooleanOptionalAction, default=None,
                    help="also time LSTM/GRU with use_cudnn=False (default: on where there is a GPU)")
    sp.add_argument("--overhead", action="store_true", help="harness step time vs plain model.fit instead")
    sp.add_argument("--breakdown", action="store_true",
                    help="also time the step's matmuls alone, to show where the rest of a recurrent step goes")
    sp.add_argument("--plain", action="store_true",
                    help="harness training step vs a plain framework loop of the same model instead")
    sp.add_argument("--precision", choices=PRECISIONS, help="float32 (default), tf32 or mixed_bfloat16")
    _backend_option(sp)
    sp.add_argument("--sweep", default="speed", help="records go to RESULTS/SWEEP/")
    sp.add_argument("--results", default="results")
    sp.add_argument("--timeout", type=float, default=600, help="seconds per configuration")
    sp.add_argument("--rerun", action="store_true",
                    help="measure again configurations whose record is stale or failed (stored ones are kept)")
    sp.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                    help="import a Python file or module (here and in every worker) so its models register")
    sp.set_defaults(fn=cmd_speed)

    t = sub.add_parser("tune", help="tune models with keras-tuner: the same trials and steps per trial for each")
    t.add_argument("--from", dest="from_sweep", metavar="SWEEP",
                   help="tune every model of a sweep file or preset as its tune: section says (instead of --task ...)")
    t.add_argument("--workers", type=int, help="with --from: studies tuned side by side (default 1)")
    t.add_argument("--shard", help=argparse.SUPPRESS)
    t.add_argument("--task")
    t.add_argument("--model", help="a model, or several comma-separated (each its own search)")
    t.add_argument("--length", type=int, help="dependency-controlling length of the task (default: the task's own)")
    t.add_argument("--trials", type=int, default=10, help="settings tried per model")
    t.add_argument("--steps", type=int, help="optimizer steps per trial")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--eval-every", type=int)
    t.add_argument("--max-seconds", type=float, help="wall-clock safety net per trial (a hit is recorded timeout)")
    t.add_argument("--lr-range", metavar="LOW,HIGH", help="learning rate range, searched log-uniform "
                   "(default 1e-4,3e-2)")
    t.add_argument("--algorithm", choices=["random", "bayesian", "grid"], default="random",
                   help="grid: learning rates half a decade apart across --lr-range, and every choice of the space")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--param", action="append", metavar="KEY=VALUE", help="task parameter, e.g. pairs=8")
    t.add_argument("--hp", action="append", metavar="KEY=VALUE", help="model hyperparameter held fixed (not searched)")
    t.add_argument("--train", action="append", metavar="KEY=VALUE", help="training option, e.g. clipnorm=null")
    t.add_argument("--sweep", default="tune", help="trial records go to RESULTS/SWEEP/, best settings to "
                                                  "RESULTS/SWEEP/tuned/, keras-tuner state to RESULTS/SWEEP/keras-tuner/")
    t.add_argument("--results", default="results")
    t.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                   help="import a Python file or module first, so the models and tasks it registers exist")
    t.set_defaults(fn=cmd_tune)

    c = sub.add_parser("check", help="check a plugin's models as the test suite checks the built-in ones: build "
                                     "for each task type, train in graph mode on every backend, save and reload")
    c.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE", help="the models' file or module")
    c.add_argument("--model", help="check these models (comma-separated) instead of every model the plugin adds")
    c.set_defaults(fn=cmd_check)

    rep = sub.add_parser("report", help="figures and tables of a sweep's records")
    rep.add_argument("sweep")
    rep.add_argument("--results", default="results")
    rep.add_argument("--out", default="reports")
    rep.add_argument("--html", action="store_true",
                     help="also index.html: one self-contained page, tables sortable, headline cells linked to curves")
    rep.set_defaults(fn=cmd_report)

    cmp = sub.add_parser("compare", help="two sweeps side by side: headline tables, score differences vs seed noise")
    cmp.add_argument("a", metavar="A")
    cmp.add_argument("b", metavar="B")
    cmp.add_argument("--results", default="results")
    cmp.add_argument("--out", default="reports", help="the report goes to OUT/compare-A-vs-B/")
    cmp.set_defaults(fn=cmd_compare)
    return p


def _backend_option(p) -> None:
    p.add_argument("--backend", choices=sorted(BACKENDS),
                   help="Keras backend for this command and its workers (default: KERAS_BACKEND, else tensorflow)")


def use_backend(name: str | None) -> None:
    """Make ``name`` Keras' backend here and in every worker started from here: set before Keras is imported."""
    if name is None:
        return
    import importlib.util

    if importlib.util.find_spec(BACKENDS[name]) is None:
        raise UsageError(f"--backend {name}: {BACKENDS[name]} is not installed")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != name:
        raise UsageError(f"--backend {name}: Keras is already loaded with backend "
                         f"{sys.modules['keras'].backend.backend()!r} in this process; set KERAS_BACKEND={name}")
    os.environ["KERAS_BACKEND"] = name


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the real command line (tests call main with argv and read sys.stderr)
        from bench import quiet
        quiet.native_stderr_to_log()
    args = parser().parse_args(argv)
    try:
        use_backend(getattr(args, "backend", None))
    except UsageError as e:
        print(f"bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        return args.fn(args)
    except BrokenPipeError:  # output piped into `head`: nothing more to say
        return 0
    except Exception as e:
        if not isinstance(e, (*_input_errors(), OSError)):
            raise
        text = " ".join(str(e).split()) if not isinstance(e, OSError) or not e.strerror else _os_error(e)
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 3] + "..."
        print(f"bench {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bench {args.command}: interrupted; finished records are kept", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    """SIGTERM stops like Ctrl-C: no further runs start, workers end, finished records stay."""
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def _os_error(e: OSError) -> str:
    where = f"{_short(e.filename)}: " if e.filename else ""
    return f"{where}{e.strerror}"


def _input_errors() -> tuple[type, ...]:
    """The errors that mean bad input (a one-line message, exit 2): only those of modules already imported,
    so that catching them imports nothing (a command that trains nothing never loads Keras for it)."""
    errors = [UsageError, FileNotFoundError]
    for module, name in (("bench.runner.spec", "SpecError"), ("models.registry", "ModelError"),
                         ("tasks.base", "TaskError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def entry() -> int:
    """The ``bench`` console script."""
    return main()


if __name__ == "__main__":
    sys.exit(entry())
