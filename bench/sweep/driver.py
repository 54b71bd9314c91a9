"""The sweep driver: what the store holds for each spec of a sweep (``plan``), what runs (``pending``, a ladder's
next rungs), running it through an executor and writing each record as it arrives (``run_sweep``), the dry-run
listing, and the one driver per folder (``exclusive``: its lock, and how a stop by Ctrl-C or SIGTERM ends) that
``bench sweep``, ``bench tune`` and ``bench speed`` share."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from bench.core import identity
from bench.core.errors import SpecError, positive, writable_folder
from bench.core.spec import RunSpec
from bench.runner import record
from bench.sweep import estimate, executors, ladder
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
              rerun_stale: bool = False, show=None, annotate=None, **options) -> dict[str, int]:
    """Run what is missing, writing each record as it arrives; return the count of each status.

    A ladder sweep runs in rounds, each the next rung of every climb still going (``bench.sweep.ladder``).
    ``show(record)`` is the text after each finished run's label (default: its score, or its error);
    ``annotate(record)`` gives fields added to each record before it is stored (a tuning trial's ``tune``)."""
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
            running = executors.EXECUTORS[executor](todo, workers=workers, timeout=timeout, plugins=plugins,
                                                    on_start=lambda s: progress.started(s.run_id, s.label()),
                                                    **options)
            with contextlib.closing(running):  # a record the store cannot take ends the workers at once
                for rec in running:
                    rec = {**rec, **annotate(rec)} if annotate else rec
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
            out=print, tuning: list | None = None, workers: int = 2) -> None:
    """``bench sweep --dry-run``: the plan, one line per run (stored, to run, rerun, above a ladder's stop; why a
    record is stale) and what it costs (``estimate``; with ``tuning``, the ``(spec, trials)`` of the studies of
    its ``tune:`` section still to run, those too), nothing trained; a budget no width meets among what would run
    first is an error now."""
    rows = plan(sweep, results)
    todo = pending(rows, retry_failed, rerun_stale)
    stale = sum(bool(row.stale) for row in rows)
    out(f"sweep {sweep.name}: {len(rows)} runs, {len(rows) - len(todo)} stored, {len(todo)} to run"
        + (f", {stale} stale" if stale else "")
        + f" (dry run: nothing trains; results in {os.path.join(results, sweep.name)})")
    above, first = set(), todo
    records = {r["run_id"]: r for r in record.load(results, sweep.name)[0]}
    if sweep.ladder:
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
    again = [replace(row, status=None) if row.runs(retry_failed, rerun_stale) else row for row in rows]
    for line in estimate.lines(estimate.sweep_seconds(again, records, sweep.ladder),
                               estimate.tuning_seconds(tuning) if tuning else None, workers):
        out(line)


def command(sweep: Sweep, results: Path | str, executor: str = "local", workers: int | None = None,
            scheduler: str | None = None, timeout: float | None = None, retry_failed: bool = False,
            rerun_stale: bool = False, dry: bool = False, save_model: bool = False, plugins=(),
            resume: str | None = None, tuning: list | None = None) -> int:
    """``bench sweep``: the dry run (with ``tuning``, the estimate counts those trials too), or the sweep run by the
    one driver of its folder and its summary line; 1 if a run failed."""
    if scheduler and executor != "dask":
        raise SpecError("--scheduler needs --executor dask")
    if save_model and executor == "dask":
        raise SpecError("--save-model needs --executor local (Dask workers may not share this filesystem)")
    check_options(workers, timeout)
    if dry:
        dry_run(sweep, results, retry_failed, rerun_stale, tuning=tuning, workers=workers or 2)
        return 0
    folder = Path(results) / sweep.name
    options = ({"scheduler": scheduler} if executor == "dask" else {}) | \
        ({"save_models": str(folder)} if save_model else {})

    def work() -> int:
        counts = run_sweep(sweep, results, executor, workers or executors.default_workers(), timeout, retry_failed,
                           plugins, rerun_stale=rerun_stale, **options)
        print("summary: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; records in {folder}")
        return 1 if counts.get("failed") else 0

    return exclusive(results, sweep.name, work, "bench sweep", resume)


def run_one(spec: RunSpec, results: Path | str, save_model: bool = False) -> int:
    """``bench run``: ``spec`` checked as a one-point sweep, trained in this process, its record written and its
    summary printed as JSON; 1 if it failed."""
    import json

    from bench.core.check import FLAGS, check
    from bench.runner.run import run

    check([spec], FLAGS)
    spec.resolved()  # sizes a parameter budget's width: one that no width meets is an error before training
    folder = writable_folder(Path(results) / spec.sweep, "--results")
    rec = run(spec, save_model=folder / f"{spec.run_id}.keras" if save_model else None)
    path = record.write(rec, results)
    metrics = rec.get("metrics") or {}
    summary = {k: metrics.get(k) for k in ("metric", "value", "baseline", "score", "solved", "steps_to_solve")}
    model_file = str(folder / rec["model_file"]) if rec.get("model_file") else None
    print(json.dumps({"status": rec["status"], "error": rec["error"], **summary,
                      "step_ms": (rec.get("speed") or {}).get("step_ms_median"), "record": str(path),
                      **({"model_file": model_file} if save_model else {}),
                      **({"post_error": rec["post_error"]} if rec.get("post_error") else {})}))
    return 0 if rec["status"] != "failed" and not rec.get("post_error") else 1


def check_options(workers: int | None, timeout: float | None) -> None:
    """``--workers`` (runs at a time) and ``--timeout`` (seconds per run), where given."""
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SpecError(f"--workers must be >= 1, got {workers}")
    if timeout is not None:
        positive(timeout, "--timeout", what="a finite number of seconds")


def lock(results: Path | str, name: str, command: str = "bench sweep"):
    """Hold ``<results>/.<name>.lock`` until the returned file is closed; a second driver on the same folder is
    refused (a killed driver's lock is released by the kernel)."""
    import fcntl

    path = Path(results) / f".{name}.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        pid, _, holder = handle.read().strip().partition(" ")  # "PID COMMAND"
        handle.close()
        raise SpecError(f"{Path(results) / name} is in use by another {holder or command} (pid {pid or '?'}); wait "
                        f"for it to finish or stop it, then run this again") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {command}")
    handle.flush()
    return handle


def exclusive(results: Path | str, name: str, work: Callable[[], int], command: str = "bench sweep",
              resume: str | None = None) -> int:
    """``work()`` (it returns the exit code) as the one driver of ``<results>/<name>``: a second is refused
    (``lock``). Ctrl-C or SIGTERM ends every worker within seconds, keeps the finished records and prints how to
    resume (``resume``, a command line); the exit code is then 130."""
    folder = writable_folder(Path(results) / name, "--results")
    handle = lock(results, name, command)
    try:
        return work()
    except KeyboardInterrupt:
        executors.stop_all()
        print(f"{command}: stopped; workers ended, {len(list(folder.glob('*.json')))} finished record(s) kept in "
              f"{folder}; resume with: {resume or command}", file=sys.stderr)
        return 130
    finally:
        handle.close()  # releases the lock (a killed driver's is released by the kernel)
