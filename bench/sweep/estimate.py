"""What a sweep costs before it runs, in worker-hours (``bench sweep --dry-run``): each run's steps at its model's
training step as the backend table measured it (``bench.core.backends``: the backend ``auto`` picks, at the run's
sequence length), plus what a run spends beside its steps, both calibrated on the 456 runs of ``reference-v2``.

Pessimistic per run: every run costs its full step cap, as an unsolved run does (a solved one stops early). A
ladder's cost lies between two bounds: ``floor``, each climb failing its next rungs (the rule then stops it after
``ladder.STOP_AFTER``), and ``ceiling``, every rung of every climb run to its cap.
"""

from __future__ import annotations

import math
from collections import defaultdict

from bench.core import backends
from bench.core.spec import TrainConfig
from bench.core.widths import BUDGET
from bench.sweep import ladder

OVERHEAD_S = 10.0  # seconds a run spends beside its steps (build, first step, validations, scoring); reference-v2's
# 456 runs fit wall = 10 s + 1.17 x steps x their median step
STEP_FACTOR = 1.3  # a run's step over the table's median: 1.17 (that fit) x 1.1 (their median step over the table's)


def step_ms(spec) -> float | None:
    """The training step of ``spec`` in ms on the backend ``auto`` would pick (or the one it asks for), at its
    sequence length (log-log between the two nearest measured lengths), scaled by its parameter budget over the
    table's; None for a model the table lacks."""
    rows = [r for r in backends.table(backends.device())["rows"] if r["model"] == spec.model]
    length = backends.spec_length(spec)
    if not rows or not length:
        return None
    name = backends.choose(spec.backend, spec.model, length).name
    points = sorted((r["length"], r["train_ms"][name], r["params"]) for r in rows if r["train_ms"].get(name))
    if not points:
        return None
    if len(points) == 1:
        ms, params = points[0][1], points[0][2]
    else:
        i = max(1, min(len(points) - 1, sum(p[0] < length for p in points)))
        (l0, m0, params), (l1, m1, _) = points[i - 1], points[i]
        ms = math.exp(math.log(m0) + (math.log(m1) - math.log(m0)) * math.log(length / l0) / math.log(l1 / l0))
    budget = spec.model_params.get(BUDGET)
    return ms * (budget / params if budget else 1.0)


def run_seconds(spec, steps: int | None = None) -> float | None:
    """A run of ``spec`` taking ``steps`` optimizer steps (default: its cap)."""
    ms = step_ms(spec)
    if ms is None:
        return None
    steps = TrainConfig.of(spec.train).steps if steps is None else steps
    return OVERHEAD_S + STEP_FACTOR * ms / 1000 * steps


def sweep_seconds(rows, records: dict, is_ladder: bool) -> dict[str, dict]:
    """Per task, the seconds of what is left to run: ``{task: {"floor", "ceiling", "runs", "unknown"}}`` (for a
    sweep without a ladder the two are equal: every run to its cap); ``unknown``: runs of a model the table lacks."""
    out: dict[str, dict] = defaultdict(lambda: {"floor": 0.0, "ceiling": 0.0, "runs": 0, "unknown": 0})
    climbs = ladder.rungs(rows).values() if is_ladder else [[(0, [row])] for row in rows]
    for climb in climbs:
        misses = stored_misses = 0  # failed rungs in a row: supposing every run to come fails; as stored
        for _, rung in climb:
            if stored_misses >= ladder.STOP_AFTER:
                break  # the climb has stopped: the rungs above are never tried
            todo = [r for r in rung if r.runs()]
            stored_misses = 0 if todo or not ladder.failed(rung, records) else stored_misses + 1
            cost = [run_seconds(r.spec) for r in todo]
            task = out[rung[0].spec.task]
            task["runs"] += len(todo)
            task["unknown"] += sum(c is None for c in cost)
            seconds = sum(c for c in cost if c is not None)
            task["ceiling"] += seconds
            if misses < ladder.STOP_AFTER:
                task["floor"] += seconds
            misses = misses + 1 if (todo or ladder.failed(rung, records)) else 0
    return dict(out)


def tuning_seconds(points: list) -> dict[str, dict]:
    """Per task, the seconds of tuning trials ``points`` (``(spec, trials)``: one study's trial at its cap, and how
    many it may run, extension included) not stored yet."""
    out: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "trials": 0, "unknown": 0})
    for spec, trials in points:
        cost = run_seconds(spec)
        task = out[spec.task]
        task["trials"] += trials
        task["unknown"] += trials if cost is None else 0
        task["seconds"] += (cost or 0.0) * trials
    return dict(out)


def lines(sweep_cost: dict, tune_cost: dict | None = None, workers: int = 2) -> list[str]:
    """The estimate as text: worker-hours per task and in all, and the wall-clock hours on ``workers``."""
    h = lambda s: f"{s / 3600:.1f}"
    out = [f"estimate (worker-hours; every run to its step cap, step times of {backends.table_path(backends.device()).name}"
           f" x {STEP_FACTOR} + {OVERHEAD_S:g} s a run):"]
    total = [0.0, 0.0]
    for task, c in (tune_cost or {}).items():
        out.append(f"  tune  {task:16s} {c['trials']:5d} trials  {h(c['seconds']):>6s}"
                   + (f"  ({c['unknown']} of a model the table lacks: not counted)" if c["unknown"] else ""))
        total = [total[0] + c["seconds"], total[1] + c["seconds"]]
    for task, c in sweep_cost.items():
        span = h(c["floor"]) if c["floor"] == c["ceiling"] else f"{h(c['floor'])}–{h(c['ceiling'])}"
        out.append(f"  sweep {task:16s} {c['runs']:5d} runs    {span:>6s}"
                   + (f"  ({c['unknown']} of a model the table lacks: not counted)" if c["unknown"] else ""))
        total = [total[0] + c["floor"], total[1] + c["ceiling"]]
    span = h(total[0]) if total[0] == total[1] else f"{h(total[0])}–{h(total[1])}"
    out.append(f"  total {span} worker-hours (ladders: each climb failing its next rungs – every rung run), "
               f"{total[0] / 3600 / workers:.1f}{'' if total[0] == total[1] else f'–{total[1] / 3600 / workers:.1f}'}"
               f" h on {workers} workers")
    return out
