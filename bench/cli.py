"""``bench``: the command line. It parses, builds what each command describes, and makes one call per command;
checks, runs, locks and pools live in the harness. Bad input is one line and exit code 2."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading

from bench.core.choices import PRECISIONS
from bench.core.errors import SpecError, StoreError, one_line


def cmd_list(args) -> int:
    from bench import listing

    print(listing.text(args.plugin))
    return 0


def cmd_run(args) -> int:
    from bench.core import backends

    asked = args.backend or backends.asked()  # chosen before Keras loads: a process has one backend
    params = _length(args) | _pairs(args.param, "--param")
    backends.use(backends.choose(asked, args.model, backends.task_length(args.task, params)).name)
    from bench.core import plugins
    from bench.core.spec import RunSpec
    from bench.core.widths import BUDGET
    from bench.sweep import driver

    plugins.load(args.plugin)
    train = _given(args, "steps", "batch_size", "lr", "eval_every", "max_seconds", "precision") | _pairs(args.train, "--train")
    hp = _pairs(args.hp, "--hp") | ({BUDGET: args.param_budget} if args.param_budget is not None else {})
    spec = RunSpec(args.task, args.model, params, hp, train, args.seed, "adhoc", asked)
    return driver.run_one(spec, args.results, args.save_model)


def cmd_sweep(args) -> int:
    from bench.core import plugins
    from bench.sweep import driver, grid
    from bench.tune.stored import with_tuned

    refs = plugins.load(args.plugin)
    plan = grid.load(args.sweep, args.results)
    tuning = None
    if args.dry_run and plan.tune:  # the estimate counts the tuning still to run
        from bench.tune.search import trials_left

        tuning = trials_left(plan, args.results)
    if plan.tuned:
        plan, warnings = with_tuned(plan, args.results)
        for line in warnings:
            print(f"bench sweep: warning: {line}", file=sys.stderr)
    return driver.command(plan, args.results, args.executor, args.workers, args.scheduler, args.timeout,
                          args.retry_failed, args.rerun_stale, args.dry_run, args.save_model, refs, args.resume,
                          tuning)


def cmd_results(args) -> int:
    if args.format == "parquet" and not args.out:
        raise SpecError("--format parquet needs --out FILE")
    _needs(args.results, [args.sweep], args.out, file=True)
    from bench.report import query

    return query.command(args.sweep, args.results, args.format, args.out, args.where, args.sort, args.columns,
                         args.history)


def cmd_report(args) -> int:
    _needs(args.results, [args.sweep], args.out)
    from bench import report
    from bench.report import html

    folder = (html.build if args.html else report.build)(args.sweep, args.results, args.out)
    print(report.summary(folder, args.results, args.sweep) + ("; the page: index.html" if args.html else ""))
    return 0


def cmd_export(args) -> int:
    _needs(args.results, [args.sweep], args.out)
    from bench.report import tensorboard

    folder, runs = tensorboard.export(args.sweep, args.results, args.out)
    print(f"{runs} TensorBoard runs written to {folder}/; view them with: tensorboard --logdir {folder}")
    return 0


def cmd_compare(args) -> int:
    _needs(args.results, [args.a, args.b], args.out)
    from bench.report import compare

    folder, summary = compare.build(args.a, args.b, args.results, args.out)
    print(f"{summary} Report written to {folder}/index.md")
    return 0


def cmd_speed(args) -> int:
    from bench import speed

    mode = "overhead" if args.overhead else "plain" if args.plain else "backends" if args.preset == "backends" else "speed"
    grid = {"models": None if args.models is None else _names(args.models)} | {
        k: _ints(getattr(args, k), f"--{k}") for k in ("units", "batch", "lengths") if getattr(args, k) is not None}
    return speed.command(mode, args.results, **grid, plugins=args.plugin, resume=args.resume, jit=_value(args.jit),
                         **_given(args, "sweep", "timeout", "rerun", "precision", "steps", "rounds", "breakdown",
                                  "input_width", "preset", "generic", "min_steps", "min_seconds", "warmup"),
                         on=_names(args.backends) if args.backends else None)


def cmd_tune(args) -> int:
    from bench.core import plugins
    from bench.tune import search

    refs = plugins.load(args.plugin)
    train = _given(args, "steps", "batch_size", "eval_every", "max_seconds") | _pairs(args.train, "--train")
    return search.command(args.from_sweep, args.results, args.trials, task=args.task,
                          models=_names(args.model or ""), task_params=_length(args) | _pairs(args.param, "--param"),
                          train=train, fixed=_pairs(args.hp, "--hp"), seed=args.seed, sweep=args.sweep,
                          lr=args.lr_range, algorithm=args.algorithm, workers=args.workers, shard=args.shard,
                          plugins=refs, retry_failed=args.retry_failed, resume=args.resume)


def cmd_check(args) -> int:
    from bench.runner import conformance

    return conformance.check_plugin(args.plugin, _names(args.model) if args.model else None)


def _needs(results, sweeps: list[str], out, file: bool = False) -> None:
    """Refuse, before any heavy import, a sweep without records or an ``--out`` that cannot be written."""
    from bench.core.errors import writable_file, writable_folder
    from bench.runner import record

    for sweep in sweeps:
        record.require(results, sweep)
    if out:
        (writable_file if file else writable_folder)(out, "--out")


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
        raise SpecError(f"{flag} expects KEY=VALUE, got {next(i for i in items if '=' not in i)!r}")
    return {key.strip(): _value(text) for key, text in (item.split("=", 1) for item in items or [])}


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SpecError(f"{flag} expects comma-separated positive integers, got {text!r}")
    return values


def _a(*flags, **keywords) -> tuple:
    return flags, keywords


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
    "--workers": dict(type=int, help="runs (tune: trials) at a time (default: one per GPU, else half the CPU cores; "
                                     "tune: 1)"),
    "--retry-failed": dict(action="store_true", help="run failed, killed and timed-out runs (tune: trials) again"),
}
TRAIN = "--length --seed --steps --batch-size --eval-every --max-seconds --param --hp --train --results --plugin"
COMMANDS = {  # name → (function, help, shared OPTIONS, own arguments)
    "list": (cmd_list, "list tasks, models and sweep presets with their parameters", "--plugin", []),
    "run": (cmd_run, "train and score one (task, length, model, seed); write its record",
            f"{TRAIN} --precision --backend --save-model",
            [_a("--task", required=True), _a("--model", required=True), _a("--lr", type=float),
             _a("--param-budget", type=int, metavar="N",
                help="set the model's width so its trainable parameters are within 5 %% of N for this task")]),
    "sweep": (cmd_sweep, "run a sweep preset or YAML file, resuming what is stored",
              "--results --workers --retry-failed --plugin --backend --save-model",
              [_a("sweep", help="preset name (see `bench list`) or path to a YAML file"),
               _a("--executor", choices=["local", "dask"], default="local",
                  help="local: worker processes here; dask: tasks on a Dask cluster"),
               _a("--scheduler", metavar="tcp://HOST:8786",
                  help="address of a running Dask scheduler (default: start a LocalCluster of --workers)"),
               _a("--timeout", type=float, help="seconds per run before it is recorded as timeout"),
               _a("--rerun-stale", action="store_true",
                  help="run again the runs whose record is stale (a default or the model's or task's code changed)"),
               _a("--dry-run", action="store_true", help="print the plan without training")]),
    "results": (cmd_results, "a sweep's records as one table: one row per run", "--results",
                [_a("sweep"), _a("--format", choices=["table", "csv", "parquet"], default="table"),
                 _a("--out", metavar="FILE", help="write here instead of printing (parquet needs it)"),
                 _a("--where", nargs="+", action="extend", default=[], metavar="COND",
                    help="keep rows where COLUMN OP VALUE holds (OP: = != > >= < <=; a,b after = is a set), "
                         "e.g. model=lstm 'dependency>=20' status=ok"),
                 _a("--sort", default="", metavar="COLS", help="sort by these columns (-COL: descending)"),
                 _a("--columns", default="", metavar="COLS",
                    help="columns to show, comma-separated (a dotted column by its last part: score, units, lr)"),
                 _a("--history", action="store_true", help="one row per evaluation (step, val, loss …) instead")]),
    "export": (cmd_export, "a sweep's records for another tool: TensorBoard runs (no retraining)", "--results",
               [_a("sweep"), _a("--to", choices=["tensorboard"], required=True),
                _a("--out", default="tensorboard", help="runs go to OUT/SWEEP/ (tensorboard --logdir OUT/SWEEP)")]),
    "compare": (cmd_compare, "two sweeps side by side: headline tables, score differences vs seed noise",
                "--results", [_a("a", metavar="A"), _a("b", metavar="B"),
                              _a("--out", default="reports", help="the report goes to OUT/compare-A-vs-B/")]),
    "speed": (cmd_speed, "time forward and forward+backward steps per model, width, batch and length",
              "--precision --backend --results --plugin",
              [_a("--models", help="comma-separated (default lstm,gru,transformer; --overhead: lstm)"),
               _a("--units", help="widths (the Transformer's d_model), comma-separated (default 256; --overhead: 64)"),
               _a("--batch", help="batch sizes, comma-separated (default 64)"),
               _a("--lengths", help="sequence lengths, comma-separated (default 64,256,1024,4096; --overhead: 100)"),
               _a("--input-width", type=int, default=64, help="features per step fed to the model"),
               _a("--preset", choices=["deepbench", "backends"],
                  help="deepbench: DeepBench's RNN training configurations (of --models); backends: every model (or "
                       "--models) at 25k parameters on every installed backend (or --backends), lengths 25,100,400, "
                       "then the table `backend: auto` reads is rewritten"),
               _a("--backends", help="time every configuration on each of these backends (comma-separated), each in "
                                     "a fresh process"),
               _a("--min-steps", type=int, default=30, help="timed steps (or --min-seconds, whichever first)"),
               _a("--min-seconds", type=float, default=2.0),
               _a("--warmup", type=int, default=3, help="untimed calls after the first (compile) call"),
               _a("--jit", default="auto", help="jit_compile: true, false or auto"),
               _a("--generic", action=argparse.BooleanOptionalAction, default=None,
                  help="also time LSTM/GRU with use_cudnn=False (default: on where there is a GPU)"),
               _a("--overhead", action="store_true", help="harness step time vs plain model.fit instead"),
               _a("--breakdown", action="store_true",
                  help="also time the step's matmuls alone, to show where the rest of a recurrent step goes"),
               _a("--plain", action="store_true", help="harness training step vs a plain framework loop instead"),
               _a("--steps", type=int, help="--plain, --overhead: steps per timed round (default 100; 150)"),
               _a("--rounds", type=int, help="--plain, --overhead: timed rounds, alternating sides (default 3; 10)"),
               _a("--sweep", help="records go to RESULTS/SWEEP/ (default speed; --plain: plain-loop; --overhead: "
                                  "overhead)"),
               _a("--timeout", type=float, default=600, help="seconds per configuration"),
               _a("--rerun", action="store_true",
                  help="measure again configurations whose record is stale or failed (stored ones are kept)")]),
    "tune": (cmd_tune, "tune models with keras-tuner: the same trials and steps per trial for each",
             f"{TRAIN} --workers --retry-failed",
             [_a("--from", dest="from_sweep", metavar="SWEEP",
                 help="tune every model of a sweep file or preset as its tune: section says (instead of --task ...)"),
              _a("--shard", help=argparse.SUPPRESS), _a("--task"),
              _a("--model", help="a model, or several comma-separated (each its own search)"),
              _a("--trials", type=int, default=10, help="settings tried per model"),
              _a("--lr-range", metavar="LOW,HIGH", help="learning rates searched, log-uniform (default 1e-4,3e-2)"),
              _a("--algorithm", choices=["random", "bayesian", "grid"], default="random",
                 help="grid: learning rates half a decade apart across --lr-range, and every choice of the space"),
              _a("--sweep", default="tune", help="trial records go to RESULTS/SWEEP/, best settings to "
                                                 "RESULTS/SWEEP/tuned/")]),
    "check": (cmd_check, "check a plugin's models as the test suite checks the built-in ones: build for each task "
              "type, train in graph mode on every backend, save and reload", "--plugin",
              [_a("--model", help="check these models (comma-separated) instead of every model the plugin adds")]),
    "report": (cmd_report, "figures and tables of a sweep's records", "--results",
               [_a("sweep"), _a("--out", default="reports"),
                _a("--html", action="store_true",
                   help="also index.html: one self-contained page, tables sortable, headline cells linked to curves")]),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark LSTM against its alternatives.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (fn, help, shared, own) in COMMANDS.items():
        command = sub.add_parser(name, help=help)
        for flags, keywords in own:
            command.add_argument(*flags, **keywords)
        for flag in shared.split():
            command.add_argument(flag, **OPTIONS[flag])
        command.set_defaults(fn=fn)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command; bad input (SpecError, TaskError, ModelError, OSError) is one line and exit 2,
    Ctrl-C or SIGTERM 130 with finished records kept."""
    from bench.core import backends

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: take GPU memory as needed, not 75 %
    if argv is None:  # the real command line (tests call main with argv and read sys.stderr)
        from bench.core import quiet
        quiet.native_stderr_to_log()
    args = parser().parse_args(argv)
    args.resume = "bench " + shlex.join(sys.argv[1:] if argv is None else argv)  # the command that resumes this one
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        if getattr(args, "backend", None):
            backends.use(args.backend)
        elif os.environ.get("KERAS_BACKEND"):  # one Keras cannot load is one line too, not its import's traceback
            backends.use(backends.asked(), "KERAS_BACKEND")
        return args.fn(args)
    except BrokenPipeError:  # output piped into `head`: nothing more to say
        return 0
    except (ValueError, OSError) as e:
        if one_line(e) is None:
            raise
        resume = f"; resume with: {args.resume}" if isinstance(e, StoreError) else ""
        print(f"bench {args.command}: error: {one_line(e)}{resume}", file=sys.stderr)
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


def entry() -> int:
    """The ``bench`` console script."""
    return main()


if __name__ == "__main__":
    sys.exit(entry())
