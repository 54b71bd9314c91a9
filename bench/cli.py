"""``bench``: the command line. It parses, builds what each command describes, and makes one call per command;
checks, runs, locks and pools live in the harness. Bad input is one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from bench.core.choices import JIT, PRECISIONS
from bench.core.errors import SpecError, positive, writable_file, writable_folder

MAX_ERROR_CHARS = 400  # an error is one line a person reads, whatever value it quotes
UsageError = SpecError  # bad input from the user: printed as one line, exit code 2


def cmd_list(args) -> int:
    from bench import listing

    print(listing.text(args.plugin))
    return 0


def cmd_run(args) -> int:
    from bench.core import backends

    asked = args.backend or backends.asked()  # chosen before Keras loads: a process has one backend
    backends.use(backends.choose(asked, args.model, backends.task_length(args.task, _length(args) | _pairs(args.param, "--param"))).name)
    from bench.core import plugins
    from bench.core.check import FLAGS, check
    from bench.core.spec import RunSpec
    from bench.core.widths import BUDGET
    from bench.runner import record
    from bench.runner.run import run

    plugins.load(args.plugin)
    train = _given(args, "steps", "batch_size", "lr", "eval_every", "max_seconds", "precision") | _pairs(args.train, "--train")
    hp = _pairs(args.hp, "--hp") | ({BUDGET: args.param_budget} if args.param_budget is not None else {})
    spec = RunSpec(args.task, args.model, _length(args) | _pairs(args.param, "--param"), hp, train, args.seed, "adhoc",
                   asked)
    check([spec], FLAGS)
    spec.resolved()  # sizes a parameter budget's width: one that no width meets is an error before training
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


def cmd_sweep(args) -> int:
    from bench.core import plugins
    from bench.sweep import driver, executors, grid
    from bench.tune.stored import with_tuned

    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    if args.save_model and args.executor == "dask":
        raise UsageError("--save-model needs --executor local (Dask workers may not share this filesystem)")
    _at_least_one(args.workers, "--workers")
    _timeout(args.timeout)
    refs = plugins.load(args.plugin)
    plan = grid.load(args.sweep, args.results)
    if plan.tuned:
        plan, warnings = with_tuned(plan, args.results)
        for line in warnings:
            print(f"bench sweep: warning: {line}", file=sys.stderr)
    if args.dry_run:
        driver.dry_run(plan, args.results, args.retry_failed, args.rerun_stale)
        return 0
    folder = writable_folder(Path(args.results) / plan.name, "--results")
    options = {"scheduler": args.scheduler} if args.executor == "dask" else {}
    options |= {"save_models": str(folder)} if args.save_model else {}
    lock = driver.lock(args.results, plan.name)
    try:
        counts = driver.run_sweep(plan, args.results, args.executor, args.workers or executors.default_workers(),
                                  args.timeout, args.retry_failed, refs, rerun_stale=args.rerun_stale, **options)
    except KeyboardInterrupt:
        executors.stop_all()
        print(f"bench sweep: stopped; workers ended, {len(list(folder.glob('*.json')))} finished record(s) kept in "
              f"{folder}; resume with: {_command_line()}", file=sys.stderr)
        return 130
    finally:
        lock.close()  # releases the lock (a killed driver's is released by the kernel)
    print("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; records in {folder}")
    return 1 if counts.get("failed") else 0


def cmd_results(args) -> int:
    from bench.runner import record

    record.require(args.results, args.sweep)
    if args.format == "parquet" and not args.out:
        raise UsageError("--format parquet needs --out FILE")
    if args.out:
        writable_file(args.out, "--out")
    from bench.report import query
    from bench.sweep import store

    try:
        table, skipped = query.table(args.sweep, args.results, where=args.where, sort=args.sort,
                                     columns=args.columns, history=args.history)
    except query.QueryError as e:
        raise UsageError(str(e)) from None
    for line in skipped:
        print(f"bench results: skipped {line}", file=sys.stderr)
    shown = table.columns if args.columns else query.default_columns(table, args.history)
    text = store.export(table, args.format, args.out, shown)
    print(text if text is not None else f"{len(table)} runs x {len(table.columns)} columns written to {args.out}",
          file=sys.stdout if text is not None else sys.stderr)
    return 0


def cmd_report(args) -> int:
    from bench.runner import record

    record.require(args.results, args.sweep)
    writable_folder(args.out, "--out")
    from bench import report
    from bench.report import html

    folder = (html.build if args.html else report.build)(args.sweep, args.results, args.out)
    print(report.summary(folder, args.results, args.sweep) + ("; the page: index.html" if args.html else ""))
    return 0


def cmd_export(args) -> int:
    from bench.runner import record

    record.require(args.results, args.sweep)
    writable_folder(args.out, "--out")
    from bench.report import tensorboard

    folder, runs = tensorboard.export(args.sweep, args.results, args.out)
    print(f"{runs} TensorBoard runs written to {folder}/; view them with: tensorboard --logdir {folder}")
    return 0


def cmd_compare(args) -> int:
    from bench.runner import record

    for sweep in (args.a, args.b):
        record.require(args.results, sweep)
    writable_folder(args.out, "--out")
    from bench.report import compare

    folder, summary = compare.build(args.a, args.b, args.results, args.out)
    print(f"{summary} Report written to {folder}/index.md")
    return 0


SPEED_DEFAULTS = {  # per mode of `bench speed`: models, widths, batches, lengths, sweep
    "speed": ("lstm,gru,transformer", "256", "64", "64,256,1024,4096", "speed"),
    "plain": ("lstm,gru,transformer", "256", "64", "64,256,1024,4096", "plain-loop"),
    "overhead": ("lstm", "64", "64", "100", "overhead"),
    "backends": (None, "1", "64", "25,100,400", None),  # every model, sized to 25k parameters (not --units); sweep backend-DEVICE
}


def cmd_speed(args) -> int:
    from bench.core import plugins
    import models
    from bench.core import backends
    from bench.speed import backends as speed_backends
    from bench.speed import breakdown, overhead, plain, timing

    _timeout(args.timeout)
    refs = plugins.load(args.plugin)
    mode = "overhead" if args.overhead else "plain" if args.plain else args.preset or "speed"
    given = [args.models, args.units, args.batch, args.lengths, args.sweep]
    names, units, batch, lengths, sweep = [v if v is not None else d
                                           for v, d in zip(given, SPEED_DEFAULTS.get(mode, SPEED_DEFAULTS["speed"]))]
    if mode == "backends":
        names, sweep = names or ",".join(models.list_models()), sweep or f"backend-{backends.device()}"
    grid = _names(names), _ints(units, "--units"), _ints(batch, "--batch"), _ints(lengths, "--lengths")
    if mode in ("overhead", "plain"):
        kind = overhead if args.overhead else plain
        rounds = _given(args, "steps", "rounds") | ({"precision_name": args.precision} if args.precision and args.plain else {})
        specs = kind.configurations(*grid, sweep, **rounds)
        counts, _ = timing.measure_all(specs, sweep, args.results, args.timeout, args.rerun, refs, kind.line)
        return 1 if counts.get("failed") else 0
    jit = _value(args.jit)
    if jit not in JIT:
        raise UsageError(f"--jit must be true, false or auto, got {args.jit!r}")
    on = [backends.check(b, "--backends") for b in _names(args.backends)] if args.backends else None
    specs = timing.configurations(*grid, args.input_width, args.preset, args.generic, on, min_steps=args.min_steps,
                                  min_seconds=args.min_seconds, warmup=args.warmup, jit_compile=jit, sweep=sweep,
                                  breakdown=args.breakdown, precision=args.precision or "float32")
    counts, records = timing.measure_all(specs, sweep, args.results, args.timeout, args.rerun, refs)
    print(timing.table(records))
    if mode == "backends":
        print(f"backend table written to {speed_backends.write(records)}")
    if args.breakdown:
        print("\nmatmul floor (ms): each matmul of the step timed alone; rest = f+b - floor")
        print(breakdown.table(records))
    return 1 if counts.get("failed") else 0


def cmd_tune(args) -> int:
    from bench import tune
    from bench.core import plugins

    plugins.load(args.plugin)
    train = _given(args, "steps", "batch_size", "eval_every", "max_seconds") | _pairs(args.train, "--train")
    lr_range = tune.lr_range(args.lr_range)
    _at_least_one(args.trials, "--trials")
    if args.from_sweep:
        _at_least_one(args.workers, "--workers")
        command = [sys.executable, "-m", "bench.cli", "tune", "--from", args.from_sweep, "--results", args.results,
                   *(f"--plugin={p}" for p in args.plugin)]
        return tune.from_sweep(args.from_sweep, args.results, args.workers or 1, args.shard, command,
                               _command_line())
    if not (args.task and args.model):
        raise UsageError("bench tune needs --task and --model, or --from SWEEP (a sweep file with a tune: section)")
    studies = tune.studies_of(args.task, _length(args) | _pairs(args.param, "--param"), _names(args.model), train,
                              _pairs(args.hp, "--hp"), args.seed, args.sweep, lr_range, args.algorithm)
    return tune.run_studies(studies, args.trials, args.results, args.algorithm)


def cmd_check(args) -> int:
    from bench.runner import conformance

    return conformance.check_plugin(args.plugin, _names(args.model) if args.model else None)


def _given(args, *names) -> dict:
    """The options among ``names`` given on the command line."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _length(args) -> dict:
    """``--length`` as a task parameter; absent, the task runs at its own default length."""
    return {} if args.length is None else {"length": args.length}


def _value(text: str):
    """A command-line value as YAML reads it: 3 → int, 0.1 → float, true → bool, [1, 2] → list."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _pairs(items: list[str], flag: str) -> dict:
    if any("=" not in item for item in items or []):
        raise UsageError(f"{flag} expects KEY=VALUE, got {next(i for i in items if '=' not in i)!r}")
    return {key.strip(): _value(text) for key, text in (item.split("=", 1) for item in items or [])}


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"{flag} expects comma-separated positive integers, got {text!r}")
    return values


def _timeout(value: float | None) -> None:
    if value is not None:
        positive(value, "--timeout", what="a finite number of seconds")


def _at_least_one(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be >= 1, got {value}")


def _command_line() -> str:
    return "bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


OPTIONS = {  # options several commands take, defined once: flag → add_argument's keywords
    "--results": dict(default="results", help="the results store: records in RESULTS/SWEEP/"),
    "--plugin": dict(action="append", default=[], metavar="PATH_OR_MODULE",
                     help="import a Python file or module first (and in every worker), so its models and tasks exist"),
    "--backend": dict(help="Keras backend of every run: tensorflow, jax, torch or auto, the one measured fastest for "
                           "each model (default: KERAS_BACKEND, else auto)"),
    "--precision": dict(choices=PRECISIONS, help="float32 (default), tf32 or mixed_bfloat16"),
    "--length": dict(type=int, help="dependency-controlling length of the task (default: the task's own)"),
    "--seed": dict(type=int, default=0),
    "--steps": dict(type=int, help="optimizer steps (per trial, for tune)"),
    "--batch-size": dict(type=int),
    "--eval-every": dict(type=int),
    "--max-seconds": dict(type=float, help="wall-clock safety net per run (a hit is recorded timeout)"),
    "--param": dict(action="append", metavar="KEY=VALUE", help="task parameter, e.g. pairs=8"),
    "--hp": dict(action="append", metavar="KEY=VALUE", help="model hyperparameter, e.g. units=128"),
    "--train": dict(action="append", metavar="KEY=VALUE", help="training option, e.g. clipnorm=null"),
    "--save-model": dict(action="store_true", help="also save each trained model as RESULTS/SWEEP/<run_id>.keras"),
    "--workers": dict(type=int, help="runs (tune --from: studies) at a time (default: one per GPU, else half the "
                                     "CPU cores; tune: 1)"),
}


def _command(sub, name: str, fn, help: str, shared: str, *own) -> argparse.ArgumentParser:
    """A subcommand: its ``shared`` OPTIONS (space-separated) and its ``own`` ``(flags, keywords)`` arguments."""
    p = sub.add_parser(name, help=help)
    for flags, keywords in own:
        p.add_argument(*flags, **keywords)
    for flag in shared.split():
        p.add_argument(flag, **OPTIONS[flag])
    p.set_defaults(fn=fn)
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark LSTM against its alternatives.")
    sub = p.add_subparsers(dest="command", required=True)
    a = lambda *flags, **keywords: (flags, keywords)  # noqa: E731
    _command(sub, "list", cmd_list, "list tasks, models and sweep presets with their parameters", "--plugin")
    _command(sub, "run", cmd_run, "train and score one (task, length, model, seed); write its record",
             "--length --seed --steps --batch-size --eval-every --max-seconds --param --hp --train --precision "
             "--results --backend --save-model --plugin", a("--task", required=True), a("--model", required=True),
             a("--lr", type=float), a("--param-budget", type=int, metavar="N", help="set the model's width so its "
               "trainable parameters are within 5 %% of N for this task"))
    _command(sub, "sweep", cmd_sweep, "run a sweep preset or YAML file, resuming what is stored",
             "--results --workers --plugin --backend --save-model",
             a("sweep", help="preset name (see `bench list`) or path to a YAML file"),
             a("--executor", choices=["local", "dask"], default="local",
               help="local: worker processes here; dask: tasks on a Dask cluster"),
             a("--scheduler", metavar="tcp://HOST:8786",
               help="address of a running Dask scheduler (default: start a LocalCluster of --workers)"),
             a("--timeout", type=float, help="seconds per run before it is recorded as timeout"),
             a("--retry-failed", action="store_true", help="run failed and timed-out runs again"),
             a("--rerun-stale", action="store_true", help="run again the runs whose record is stale (a default or "
               "the model's or task's code changed)"),
             a("--dry-run", action="store_true", help="print the plan without training"))
    _command(sub, "results", cmd_results, "a sweep's records as one table: one row per run", "--results",
             a("sweep"), a("--format", choices=["table", "csv", "parquet"], default="table"),
             a("--out", metavar="FILE", help="write here instead of printing (parquet needs it)"),
             a("--where", nargs="+", action="extend", default=[], metavar="COND",
               help="keep rows where COLUMN OP VALUE holds (OP: = != > >= < <=; a,b after = is a set), "
                    "e.g. model=lstm 'dependency>=20' status=ok"),
             a("--sort", default="", metavar="COLS", help="sort by these columns (-COL: descending)"),
             a("--columns", default="", metavar="COLS",
               help="columns to show, comma-separated (a dotted column by its last part: score, units, lr)"),
             a("--history", action="store_true", help="one row per evaluation (step, val, loss …) instead"))
    _command(sub, "export", cmd_export, "a sweep's records for another tool: TensorBoard runs (no retraining)",
             "--results", a("sweep"), a("--to", choices=["tensorboard"], required=True),
             a("--out", default="tensorboard", help="runs go to OUT/SWEEP/ (tensorboard --logdir OUT/SWEEP)"))
    _command(sub, "compare", cmd_compare, "two sweeps side by side: headline tables, score differences vs seed noise",
             "--results", a("a", metavar="A"), a("b", metavar="B"),
             a("--out", default="reports", help="the report goes to OUT/compare-A-vs-B/"))
    _command(sub, "speed", cmd_speed, "time forward and forward+backward steps per model, width, batch and length",
             "--precision --backend --results --plugin",
             a("--models", help="comma-separated (default lstm,gru,transformer; --overhead: lstm)"),
             a("--units", help="widths (d_model for the Transformer), comma-separated (default 256; --overhead: 64)"),
             a("--batch", help="batch sizes, comma-separated (default 64)"),
             a("--lengths", help="sequence lengths, comma-separated (default 64,256,1024,4096; --overhead: 100)"),
             a("--input-width", type=int, default=64, help="features per step fed to the model"),
             a("--preset", choices=["deepbench", "backends"],
               help="deepbench: DeepBench's RNN training configurations (those of --models); backends: every model "
                    "(or --models) at 25k parameters on every installed backend (or --backends), lengths 25,100,400, "
                    "then the table `backend: auto` reads is rewritten"),
             a("--backends", help="time every configuration on each of these backends (comma-separated), each in a "
                                  "fresh process"),
             a("--min-steps", type=int, default=30, help="timed steps (or --min-seconds, whichever first)"),
             a("--min-seconds", type=float, default=2.0),
             a("--warmup", type=int, default=3, help="untimed calls after the first (compile) call"),
             a("--jit", default="auto", help="jit_compile: true, false or auto"),
             a("--generic", action=argparse.BooleanOptionalAction, default=None,
               help="also time LSTM/GRU with use_cudnn=False (default: on where there is a GPU)"),
             a("--overhead", action="store_true", help="harness step time vs plain model.fit instead"),
             a("--breakdown", action="store_true",
               help="also time the step's matmuls alone, to show where the rest of a recurrent step goes"),
             a("--plain", action="store_true", help="harness training step vs a plain framework loop instead"),
             a("--steps", type=int, help="--plain, --overhead: steps per timed round (default 100; 150)"),
             a("--rounds", type=int, help="--plain, --overhead: timed rounds, alternating sides (default 3; 10)"),
             a("--sweep", help="records go to RESULTS/SWEEP/ (default speed; --plain: plain-loop; --overhead: "
               "overhead)"),
             a("--timeout", type=float, default=600, help="seconds per configuration"),
             a("--rerun", action="store_true",
               help="measure again configurations whose record is stale or failed (stored ones are kept)"))
    _command(sub, "tune", cmd_tune, "tune models with keras-tuner: the same trials and steps per trial for each",
             "--length --seed --steps --batch-size --eval-every --max-seconds --param --hp --train --results "
             "--workers --plugin",
             a("--from", dest="from_sweep", metavar="SWEEP", help="tune every model of a sweep file or preset as "
               "its tune: section says (instead of --task ...)"),
             a("--shard", help=argparse.SUPPRESS), a("--task"),
             a("--model", help="a model, or several comma-separated (each its own search)"),
             a("--trials", type=int, default=10, help="settings tried per model"),
             a("--lr-range", metavar="LOW,HIGH", help="learning rate range, searched log-uniform (default 1e-4,3e-2)"),
             a("--algorithm", choices=["random", "bayesian", "grid"], default="random",
               help="grid: learning rates half a decade apart across --lr-range, and every choice of the space"),
             a("--sweep", default="tune", help="trial records go to RESULTS/SWEEP/, best settings to "
               "RESULTS/SWEEP/tuned/, keras-tuner state to RESULTS/SWEEP/keras-tuner/"))
    _command(sub, "check", cmd_check, "check a plugin's models as the test suite checks the built-in ones: build "
             "for each task type, train in graph mode on every backend, save and reload", "--plugin",
             a("--model", help="check these models (comma-separated) instead of every model the plugin adds"))
    _command(sub, "report", cmd_report, "figures and tables of a sweep's records", "--results",
             a("sweep"), a("--out", default="reports"),
             a("--html", action="store_true",
               help="also index.html: one self-contained page, tables sortable, headline cells linked to curves"))
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command; bad input (SpecError, TaskError, ModelError, OSError) is one line and exit 2,
    Ctrl-C or SIGTERM 130 with finished records kept."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: take GPU memory as needed, not 75 %
    if argv is None:  # the real command line (tests call main with argv and read sys.stderr)
        from bench.core import quiet
        quiet.native_stderr_to_log()
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        if getattr(args, "backend", None):
            from bench.core import backends
            backends.use(args.backend)
        return args.fn(args)
    except BrokenPipeError:  # output piped into `head`: nothing more to say
        return 0
    except (ValueError, OSError) as e:
        if not isinstance(e, (*_input_errors(), OSError)):
            raise
        text = " ".join(str(e).split()) if not isinstance(e, OSError) or not e.strerror else _os_error(e)
        print(f"bench {args.command}: error: {text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + '...'}",
              file=sys.stderr)
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
    from bench.core.text import short
    return f"{short(e.filename) + ': ' if e.filename else ''}{e.strerror}"


def _input_errors() -> tuple[type, ...]:
    """The errors that mean bad input: only those of modules already imported, so that catching them imports
    nothing (a command that trains nothing never loads Keras for it)."""
    loaded = [getattr(sys.modules[m], n) for m, n in (("models.registry", "ModelError"), ("tasks.base", "TaskError"))
              if m in sys.modules]
    return (SpecError, *loaded)


def entry() -> int:
    """The ``bench`` console script."""
    return main()


if __name__ == "__main__":
    sys.exit(entry())
