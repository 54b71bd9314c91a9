"""The sweep driver: what the store holds for each spec of a sweep (``plan``), what runs (``pending``, a ladder's
next rungs), running it through an executor and writing each record as it arrives (``run_sweep``), the dry-run
listing, and the lock that keeps a second driver off a sweep's folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.core import identity
from bench.core.errors import SpecError
from bench.core.spec import RunSpec
from bench.runner import record
from bench.sweep import executors, ladder
from bench.sweep.grid import Sweep
from bench.sweep.progress import Progress

RETRY = ("failed", "timeout", "killed")  # statuses that --retry-failed runs again


@dataclass(frozen=True)
class Planned:
    """A spec of the sweep with what the store holds for it: its record's status (None: never run) and, if that
    record no longer describes what the spec would run today, why (``stale``)."""

    spec: RunSpec
    status: str | None
    stale: tuple[str, ...] = ()

    def runs(self, retry_failed: bool = False, rerun_stale: bool = False) -> bool:
        """Whether this run runs (again)."""
        return (self.status is None or (retry_failed and self.status in RETRY)
                or (rerun_stale and bool(self.stale)))


def plan(sweep: Sweep, results: Path | str) -> list[Planned]:
    """Each spec with the status of its stored record and the reasons that record is stale, if any."""
    stored = {r["run_id"]: r for r in record.load(results, sweep.name)[0]}
    out = []
    for spec in sweep.specs:
        rec = stored.get(spec.run_id)
        out.append(Planned(spec, rec and rec["status"], tuple(identity.stale(spec, rec)) if rec else ()))
    return out


def pending(rows: list[Planned], retry_failed: bool = False, rerun_stale: bool = False) -> list[RunSpec]:
    """The specs of a plan that run: no stored record (the same run_id is the same run), with ``retry_failed``
    also failed/timeout, with ``rerun_stale`` also those whose record is stale.

    Seed by seed: every point of the grid gets its first seed before any gets its second, so a sweep cut
    short still covers the whole grid.
    """
    return sorted((p.spec for p in rows if p.runs(retry_failed, rerun_stale)), key=lambda spec: spec.seed)


def run_sweep(sweep: Sweep, results: Path | str, executor: str = "local", workers: int = 1,
              timeout: float | None = None, retry_failed: bool = False, plugins=(), log=print,
              rerun_stale: bool = False, show=None, **options) -> dict[str, int]:
    """Run what is missing, writing each record as it arrives; return the count of each status.

    A ladder sweep runs in rounds, each the next rung of every climb still going (``bench.sweep.ladder``).
    ``show(record)`` is the text after each finished run's label (default: its score, or its error)."""
    record.clean_stale(results, sweep.name)
    rows = plan(sweep, results)
    todo = pending(rows, retry_failed, rerun_stale)
    stale = sum(bool(p.stale) for p in rows)
    note = f", {stale} stale ({'rerun' if rerun_stale else 'kept; --rerun-stale reruns them, --dry-run says why'})" \
        if stale else ""
    most = "at most " if sweep.ladder else ""
    log(f"sweep {sweep.name}: {len(sweep.specs)} runs, {len(sweep.specs) - len(todo)} stored, {most}{len(todo)} to run"
        f"{note} ({executor} executor, {workers} worker{'s' * (workers != 1)})")
    counts = dict.fromkeys(record.STATUSES, 0)
    labels = {spec.run_id: spec.label() for spec in sweep.specs}
    progress = Progress(len(todo))
    done: set[str] = set()
    if sweep.ladder:
        todo = _next_rungs(sweep, results, done, retry_failed, rerun_stale)
    try:
        while todo:
            check_sizes(todo)
            for rec in executors.EXECUTORS[executor](todo, workers=workers, timeout=timeout, plugins=plugins,
                                                     on_start=lambda s: progress.started(s.run_id, s.label()),
                                                     **options):
                record.write(rec, results)
                done.add(rec["run_id"])
                counts[rec["status"]] = counts.get(rec["status"], 0) + 1
                progress.finished(rec["run_id"], f"{rec['status']:8s} {labels[rec['run_id']]}: "
                                                 f"{(show or _score)(rec)}")
            todo = _next_rungs(sweep, results, done, retry_failed, rerun_stale) if sweep.ladder else []
    finally:
        progress.close()
    return counts


def check_sizes(specs: list) -> None:
    """Size the width of every budgeted training run about to run, so that a budget no width meets is one error
    before they train (a ladder's rungs above where its climbs stop are never sized)."""
    for spec in specs:
        if isinstance(spec, RunSpec):
            spec.resolved()


def _next_rungs(sweep: Sweep, results, done: set[str], retry_failed: bool, rerun_stale: bool) -> list[RunSpec]:
    """The next round of a ladder sweep: each climb's next rung, less what this invocation already ran."""
    records = {r["run_id"]: r for r in record.load(results, sweep.name)[0]}
    return ladder.climb(plan(sweep, results), records, retry_failed, rerun_stale, frozenset(done))[0]


def _score(rec: dict) -> str:
    score = (rec.get("metrics") or {}).get("score")
    return f"score {score:.3f}" if score is not None else rec.get("error") or ""


def dry_run(sweep: Sweep, results: Path | str, retry_failed: bool = False, rerun_stale: bool = False,
            out=print) -> None:
    """``bench sweep --dry-run``: the plan, one line per run (stored, to run, rerun, above a ladder's stop; why a
    record is stale), nothing trained; a budget no width meets among what would run first is an error now."""
    rows = plan(sweep, results)
    todo = pending(rows, retry_failed, rerun_stale)
    stale = sum(bool(row.stale) for row in rows)
    out(f"sweep {sweep.name}: {len(rows)} runs, {len(rows) - len(todo)} stored, {len(todo)} to run"
        + (f", {stale} stale" if stale else "")
        + f" (dry run: nothing trains; results in {os.path.join(results, sweep.name)})")
    above, first = set(), todo
    if sweep.ladder:
        records = {r["run_id"]: r for r in record.load(results, sweep.name)[0]}
        first, stopped = ladder.climb(rows, records, retry_failed, rerun_stale)
        above = {row.spec.run_id for row in stopped}
        out(f"ladder: each task's lengths are climbed per model, {len(todo)} runs at most; next round {len(first)}"
            f"; {len(above)} above a climb's stop (not tried)")
    check_sizes(first)
    for row in rows:
        again = row.runs(retry_failed, rerun_stale)
        state = "to run" if row.status is None else f"rerun ({row.status})" if again else f"stored ({row.status})"
        state = "not tried (ladder)" if row.spec.run_id in above else state
        state += ", stale" if row.stale else ""
        out(f"  {state:25s} {row.spec.run_id}  {row.spec.label()}")
        for reason in row.stale:
            out(f"  {'':25s}   stale: {reason}")


def lock(results: Path | str, name: str):
    """Hold ``<results>/.<name>.lock`` until the returned file is closed; a second driver on the same sweep folder
    is refused (a killed driver's lock is released by the kernel)."""
    import fcntl

    path = Path(results) / f".{name}.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise SpecError(f"{Path(results) / name} is in use by another bench sweep (pid {holder}); wait for it to "
                        f"finish or stop it, then run this again") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
