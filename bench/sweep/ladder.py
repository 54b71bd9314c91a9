"""Difficulty ladders: climb each task's lengths per model instead of running every length.

The headline question is the longest dependency a model solves, so a sweep with ``ladder: true`` treats each
task's list of lengths as rungs, climbed separately for every (task, other task parameters, model,
hyperparameters, training) group: a rung runs all its seeds; the next rung runs only once they are stored;
a group stops after ``STOP_AFTER`` consecutive rungs that a majority of seeds failed to solve (the second guards
against a fluke), as MAD's difficulty ladders do. Lengths above the stop are never tried.
"""

from __future__ import annotations

import json
from collections import defaultdict

STOP_AFTER = 2  # consecutive failed rungs that end a climb


def group_key(spec) -> str:
    """What a ladder climbs along: everything but the task's length and the seed."""
    params = {k: v for k, v in spec.task_params.items() if k != "length"}
    return json.dumps([spec.task, params, spec.model, spec.model_params, spec.train], sort_keys=True, default=str)


def rungs(rows) -> dict[str, list[tuple[int, list]]]:
    """Per group, its rungs in climbing order: ``(length, [planned rows of that length, one per seed])``."""
    groups: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[group_key(row.spec)][row.spec.task_params.get("length", 0)].append(row)
    return {key: sorted(by_length.items()) for key, by_length in groups.items()}


def failed(rung_rows, records: dict) -> bool:
    """Whether a majority of the rung's seeds did not solve the task."""
    solved = sum(bool(((records.get(r.spec.run_id) or {}).get("metrics") or {}).get("solved")) for r in rung_rows)
    return solved * 2 <= len(rung_rows)


def climb(rows, records: dict, retry_failed: bool = False, rerun_stale: bool = False,
          done: frozenset = frozenset()) -> tuple[list, list]:
    """The specs to run next (each group's lowest rung with runs to do, if its climb goes on) and the rows above
    every group's stop (never to be tried). Runs in ``done`` (already run by this invocation) count as stored."""
    todo, skipped = [], []
    for ladder in rungs(rows).values():
        misses = 0
        for i, (_, rung_rows) in enumerate(ladder):
            if misses >= STOP_AFTER:
                skipped += [r for _, later in ladder[i:] for r in later]
                break
            pending = [r.spec for r in rung_rows if r.spec.run_id not in done and r.runs(retry_failed, rerun_stale)]
            if pending:
                todo += pending
                break
            misses = misses + 1 if failed(rung_rows, records) else 0
    return sorted(todo, key=lambda spec: spec.seed), skipped
