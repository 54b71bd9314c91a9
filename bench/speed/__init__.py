"""``bench speed``: forward and forward+backward timings per model, width, batch and length; where a step goes.

Three modes, each a kind of run (``timing``: ``speed``; ``plain``: ``plain_loop``; ``overhead``), measured by the
sweep driver one configuration at a time, as the one driver of its records' folder; ``command`` is the command."""

from __future__ import annotations

from pathlib import Path

MODES = {  # per mode of ``bench speed``: its default models, widths, batches, lengths, and records' folder
    "speed": (["lstm", "gru", "transformer"], [256], [64], [64, 256, 1024, 4096], "speed"),
    "plain": (["lstm", "gru", "transformer"], [256], [64], [64, 256, 1024, 4096], "plain-loop"),
    "overhead": (["lstm"], [64], [64], [100], "overhead"),
    "backends": (None, [1], [64], [25, 100, 400], None),  # every model at 25k parameters (bench.speed.backends)
}


def command(mode: str, results: str | Path, *, models: list[str] | None = None, units: list[int] | None = None,
            batch: list[int] | None = None, lengths: list[int] | None = None, sweep: str | None = None,
            timeout: float | None = 600, rerun: bool = False, plugins=(), resume: str | None = None,
            on: list[str] | None = None, **options) -> int:
    """``bench speed`` in ``mode`` (``MODES``): each configuration of models × widths × batches × lengths (the
    mode's defaults where not given), checked, then each not stored yet measured and printed; 1 if one failed.
    ``options``: ``precision``; ``steps``, ``rounds`` (plain, overhead); ``input_width``, ``preset``, ``generic``,
    ``min_steps``, ``min_seconds``, ``warmup``, ``jit``, ``breakdown`` (speed). ``on``: the backends each
    configuration is timed on (default: as asked); mode ``backends`` then rewrites ``backend: auto``'s table."""
    import models as registry
    from bench.core import backends
    from bench.core import plugins as loader
    from bench.core.check import check
    from bench.speed import timing
    from bench.sweep import driver

    driver.check_options(None, timeout)
    refs = loader.load(plugins)
    given = [models, units, batch, lengths, sweep]
    *grid, sweep = [v if v is not None else default for v, default in zip(given, MODES[mode])]
    if mode == "backends":
        grid[0], sweep = grid[0] or registry.list_models(), sweep or f"backend-{backends.device()}"
    on = [backends.check(b, "--backends") for b in on] if on else None
    specs, show = (_comparisons if mode in ("plain", "overhead") else _timings)(mode, grid, sweep, on=on, **options)
    check(specs)

    def measure() -> int:
        counts, records = timing.measure_all(specs, sweep, results, timeout, rerun, refs, show)
        if mode in ("speed", "backends"):
            _print_timings(records, options.get("breakdown"))
        if mode == "backends":
            from bench.speed import backends as table
            print(f"backend table written to {table.refresh(results, sweep)}")
        return 1 if counts.get("failed") else 0

    return driver.exclusive(results, sweep, measure, "bench speed", resume)


def _comparisons(mode: str, grid: list, sweep: str, precision=None, steps=None, rounds=None, on=None, **_) -> tuple:
    """``--plain`` or ``--overhead``: the harness's step against a plain loop or ``model.fit``; its line."""
    from bench.core.errors import SpecError
    from bench.speed import overhead, plain

    if on:
        raise SpecError(f"--backends times step timings on several backends; --{mode} compares on one: --backend")
    kind = plain if mode == "plain" else overhead
    given = {k: v for k, v in (("steps", steps), ("rounds", rounds)) if v is not None}
    given |= {"precision_name": precision} if precision and mode == "plain" else {}
    return kind.configurations(*grid, sweep, **given), kind.line


def _timings(mode: str, grid: list, sweep: str, precision=None, jit="auto", breakdown=False, input_width=64,
             preset=None, generic=None, min_steps=30, min_seconds=2.0, warmup=3, on=None, **_) -> tuple:
    """The step timings of each configuration (and, with ``breakdown``, of each matmul of its step)."""
    from bench.core.choices import JIT
    from bench.core.errors import SpecError
    from bench.speed import timing

    if jit not in JIT:
        raise SpecError(f"--jit must be true, false or auto, got {jit!r}")
    options = dict(min_steps=min_steps, min_seconds=min_seconds, warmup=warmup, jit_compile=jit, sweep=sweep,
                   breakdown=breakdown, precision=precision or "float32")
    if preset == "backends":
        from bench.speed import backends
        return backends.plan(grid[0], grid[3], grid[2][0], on, **options), None
    return timing.configurations(*grid, input_width, preset, generic, on, **options), None


def _print_timings(records: list[dict], breakdown: bool) -> None:
    from bench.speed import breakdown as floor, timing

    print(timing.table(records))
    if breakdown:
        print("\nmatmul floor (ms): each matmul of the step timed alone; rest = f+b - floor")
        print(floor.table(records))
