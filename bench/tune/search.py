"""``bench tune``: run studies' trials as a sweep runs its runs, and store each study's best.

A trial is an ordinary training run (a ``RunSpec``, kind ``train``) whose record carries a ``tune`` field; the
sweep driver runs the trials of every study through the sweep executors (a fresh worker process per trial, pinned
to a GPU, ended when the driver stops or dies) and writes each record as it arrives (``bench.sweep.driver``). It
does so in rounds: each round runs every trial known and not stored yet (``bench.tune.trials.known``: all of a
grid or random search, the next of a Bayesian one), ``workers`` at a time across studies. One driver per results
folder (the sweep's lock); Ctrl-C or SIGTERM stops it within seconds with the finished trials kept and the command
to resume printed. A distributed search (``KERASTUNER_*``) goes through ``bench.tune.distributed`` instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.core.errors import SpecError
from bench.runner import record
from bench.sweep import driver, grid
from bench.tune import distributed
from bench.tune.study import Study, lr_range, studies, studies_of, validate
from bench.tune.trials import Trial, known, store_best, summary


def search(every: list[Study], count: int, results: str | Path, algorithm: str, workers: int = 1, plugins=(),
           retry_failed: bool = False) -> int:
    """Run the first ``count`` trials of every study (all in one results folder) that are not stored yet (with
    ``retry_failed`` also those that failed, once), then store and print each study's best; 1 if a trial run here
    failed, naming it."""
    folder, ran = every[0].sweep, set()
    while True:
        stored = {r["run_id"]: r for r in record.load(results, folder)[0]}
        found = [t for study in every for t in known(study, count, algorithm, stored)]
        todo = {t.spec.run_id: t for t in found if t.record is None or (
            retry_failed and t.record["status"] in driver.RETRY and t.spec.run_id not in ran)}
        if not todo:
            break
        print(f"bench tune: {len(found)} trials known, {len(found) - len(todo)} stored, {len(todo)} to run "
              f"({workers} worker{'s' * (workers != 1)})", flush=True)
        driver.run_sweep(grid.Sweep(folder, "bench tune", [t.spec for t in todo.values()]), results, workers=workers,
                         retry_failed=retry_failed, plugins=plugins, log=lambda line: None,
                         show=lambda rec: _line(todo[rec["run_id"]], rec),
                         annotate=lambda rec: {"tune": todo[rec["run_id"]].tune_field(rec)})
        ran |= set(todo)
    for study in every:
        best = store_best(study, [t for t in found if t.study is study], results)
        if best is not None:
            print(summary(best), flush=True)
    failed = [t for t in found if t.spec.run_id in ran and t.score is None]
    for t in failed:
        print(f"bench tune: trial {t.index} of {t.study.name} {t.record['status']}: {t.record.get('error')}",
              flush=True)
    return 1 if failed else 0


def trials_left(plan, results: str | Path) -> list[tuple]:
    """For ``bench sweep --dry-run``'s estimate: each study of ``plan``'s ``tune:`` section as its first trial's
    run and how many trials it may still run (its trials, and its extension where it extends: one at most), less
    those stored."""
    import keras_tuner

    from bench.tune.study import RegistryHyperModel

    stored = Counter(r["tune"].get("study") for r in record.load(results, f"{plan.name}-tune")[0]
                     if isinstance(r.get("tune"), dict))
    return [(RegistryHyperModel(study).spec(keras_tuner.HyperParameters()),
             max(0, plan.tune["trials"] + study.extend - stored[study.name])) for study in studies(plan, plan.tune)]


def _line(trial: Trial, rec: dict) -> str:
    score = rec["tune"]["val_score"]
    return f"{trial.study.name} trial {trial.index}: val score {'-' if score is None else f'{score:.3f}'}"


def command(from_sweep: str | None, results: str | Path, trials: int, *, task: str | None = None,
            models: list[str] = (), task_params: dict | None = None, train: dict | None = None,
            fixed: dict | None = None, seed: int = 0, sweep: str = "tune", lr: str | None = None,
            algorithm: str = "random", workers: int | None = None, shard: str | None = None, plugins=(),
            retry_failed: bool = False, resume: str | None = None) -> int:
    """``bench tune``: the studies of a sweep's ``tune:`` section (``from_sweep``; ``shard`` I/N: only every N-th
    from the I-th) or of ``task`` × ``models``, every bad value refused before any trial trains, then searched."""
    driver.check_options(workers, None)
    if from_sweep:
        every, trials, algorithm, about = _from_sweep(from_sweep, results)
    elif task and models:
        every = studies_of(task, task_params or {}, list(models), train or {}, fixed or {}, seed, sweep,
                           lr_range(lr), algorithm)
    else:
        raise SpecError("bench tune needs --task and --model, or --from SWEEP (a sweep file with a tune: section)")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise SpecError(f"--trials must be an integer >= 1, got {trials!r}")
    index, count = _shard(shard)
    every = every[index::count]
    if not every:
        print(f"bench tune: no study in share {shard}", flush=True)
        return 0
    for study in every:
        validate(study)
    if from_sweep:
        print(f"bench tune: {len(every)} studies of {about}; results in {Path(results) / every[0].sweep}", flush=True)
    if distributed.active():  # chief and workers share the folder: no lock
        if any(study.extend for study in every):
            raise SpecError("tune.extend: a distributed search does not extend its grid; run bench tune without "
                            "KERASTUNER_* (it runs the extension trials)")
        return distributed.search(every, trials, results, algorithm, plugins)
    return driver.exclusive(results, every[0].sweep, lambda: search(every, trials, results, algorithm, workers or 1,
                                                                    plugins, retry_failed), "bench tune", resume)


def _from_sweep(ref: str, results: str | Path) -> tuple[list[Study], int, str, str]:
    """The studies of a sweep's ``tune:`` section, its trials per study and algorithm, and a line about them."""
    plan = grid.load(ref, results)
    options = plan.tune
    if not options:
        raise SpecError(f"sweep {plan.name!r} has no tune: section (trials, steps, lengths ...) to tune from")
    algorithm = options.get("algorithm", "random")
    return studies(plan, options), options["trials"], algorithm, \
        f"sweep {plan.name} ({options['trials']} {algorithm} trials of {options['steps']} steps each)"


def _shard(text: str | None) -> tuple[int, int]:
    """``--shard I/N`` (every N-th study from the I-th: one share of the studies per machine) as (I, N)."""
    if text is None:
        return 0, 1
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise SpecError(f"--shard expects I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)
