"""The report from synthetic but valid run records: every figure and table, reproducible, tolerant of gaps."""

import json
import re

import pytest

from bench import cli, report
from bench.runner import record
from bench.report import dataframe as frames
from bench.report import tables

TASKS = {"adding": (1 / 6, False, "mse"), "copy": (1 / 8, True, "recall_accuracy")}
ENV = {"backend": "tensorflow", "device": "cpu: test", "versions": {"keras": "3.15.1"}, "python": "3.11.7"}


@pytest.fixture(scope="module", autouse=True)
def _templates():
    """One record per (task, model) written by the real runner (tiny budgets): every synthetic record below is
    one of these with its numbers set, so the report reads the fields where the runner puts them."""
    from bench.runner.run import run
    from bench.core.spec import RunSpec

    tiny = {"steps": 12, "eval_every": 4, "val_size": 8, "test_size": 8}
    hp = {"rnn": {"units": 4}, "lstm": {"units": 4}, "transformer": {"d_model": 8, "heads": 2, "layers": 1}}
    for task in TASKS:
        for model in ("rnn", "lstm", "transformer"):
            rec = run(RunSpec(task, model, {"length": 4}, hp[model], tiny, 0, "synth"))
            assert rec["status"] == "ok", rec.get("error")
            TEMPLATES[task, model] = rec


TEMPLATES: dict = {}


def make(task, model, length, seed, *, score, lr=3e-3, status="ok", measured=True, units=64, **extra):
    """A real runner's record of (task, model) with its numbers set; ``measured=False`` drops the optional
    measurement fields."""
    baseline, higher, metric = TASKS[task]
    perfect = 1.0 if higher else 0.0
    value = baseline + score * (perfect - baseline)
    solved = score >= 0.95
    steps = 400 if solved else 1000
    r = json.loads(json.dumps(TEMPLATES[task, model]))
    r.update({
        "run_id": f"{task}-{model}-{length}-{seed}-{lr}-{units}", "task_params": {**r["task_params"], "length": length},
        "dependency": length, "length": length, "model_params": {**r["model_params"], "units": units},
        "train": {**r["train"], "steps": 1000, "lr": lr}, "seed": seed,
        "request": {**r["request"], "task_params": {**r["request"]["task_params"], "length": length},
                    "model_params": {**r["request"]["model_params"], "units": units},
                    "train": {**r["request"]["train"], "steps": 1000, "lr": lr}, "seed": seed},
        "status": status, "error": None if status == "ok" else f"{status} happened",
        "env": {**r["env"], **ENV}, "params": 1000 * units, "steps": steps, "train_seconds": steps * length / 1000,
        "history": [{"step": s, "seconds": s / 100, "loss": 1.0, "val": baseline + score * (perfect - baseline) * s / steps}
                    for s in range(100, steps + 1, 100)],
    })
    r["speed"].update(step_ms_median=length * (2.0 if model == "transformer" else 1.0), tokens_per_s=64000 / length)
    r["metrics"].update(value=value, score=score, solved=solved, val=value, steps_to_solve=steps if solved else None,
                        seconds_to_solve=steps / 100 if solved else None)
    if status != "ok":
        r.pop("metrics")
    if measured:
        decay = 0.5 if model == "rnn" else 0.99
        r["speed"].update(roofline_gflops=300.0, achieved_gflops=None)
        r.update({"memory": {"peak_bytes": 2**20 * length, "kind": "rss"}, "flops_per_step": 1e6 * length,
                  "state_size": 2 * units, "grad_norm": {"median": 1.5},
                  "gradient_flow": {"init": {"distance": [1, 4, 16], "norm": [1.0, decay**4, decay**16]},
                                    "final": {"1": 1.0, "4": decay**2, "16": decay**8}}})
    else:
        for key in ("memory", "flops_per_step", "state_size", "gradient_flow"):
            r.pop(key, None)
        for key in ("roofline_gflops", "achieved_gflops"):
            r["speed"].pop(key, None)
    r.update(extra)
    return r


def sweep_records():
    """Two tasks × three models × three lengths × two seeds × two learning rates, with gaps and failures."""
    out = []
    for task in TASKS:
        for model, reach in (("rnn", 20), ("lstm", 80), ("transformer", 80)):
            for length in (10, 20, 80):
                for seed in (0, 1):
                    for lr in (1e-3, 3e-3):
                        good = length <= reach and lr == 3e-3
                        out.append(make(task, model, length, seed, lr=lr, score=0.99 if good else 0.2 + 0.01 * seed,
                                        measured=model != "transformer" or length < 80))
    out += [make("adding", "lstm", 160, 0, score=0, status="oom"), make("adding", "rnn", 160, 0, score=0, status="diverged"),
            make("copy", "lstm", 160, 0, score=0, status="failed", measured=False)]
    return out


def write_sweep(tmp_path, records):
    for r in records:
        record.write(r, tmp_path / "results")
    (tmp_path / "results" / "synth" / "junk.json").write_text("{not json")
    return tmp_path / "results"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    results = write_sweep(tmp, sweep_records())
    folder = report.build("synth", results, tmp / "reports")
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    report.build("synth", results, tmp / "reports")
    return folder, first


def test_every_figure_is_written_and_shown(built):
    folder, _ = built
    index = (folder / "index.md").read_text()
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert len(pngs) >= 9
    for png in pngs:
        assert f"]({png})" in index and (folder / png).stat().st_size > 1000
        assert (folder / png.replace(".png", ".svg")).is_file()
    assert "junk.json" in index and "cpu: test" in index and "3.15.1" in index
    assert "Budget per run: 1,000 optimizer steps of batch " in index and "; 2 seed(s)." in index
    assert "Cost: the runs took " in index and "worker-hours" in index  # the records' wall times summed


def test_regeneration_is_byte_identical(built):
    folder, first = built
    again = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert again.keys() == first.keys()
    changed = [name for name in first if first[name] != again[name]]
    assert not changed, changed


def test_a_figure_drawn_outside_the_report_style_saves_the_same_bytes(tmp_path):
    """Every figure's SVG ids come from a fixed salt, whichever style context (if any) drew it."""
    import matplotlib.pyplot as plt

    from bench.report import figures

    svgs = []
    for attempt in ("a", "b"):
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 0, 1], marker="o")
        (tmp_path / attempt).mkdir()
        figures.save(fig, tmp_path / attempt, "plot")
        svgs.append((tmp_path / attempt / "plot.svg").read_bytes())
    assert svgs[0] == svgs[1]


def test_findings_and_headline_come_from_the_numbers(built):
    folder, _ = built
    index = (folder / "index.md").read_text()
    findings = index.split("## Findings")[1].split("## ")[0]
    assert "**adding**: lstm and transformer solve dependency 80" in findings
    assert "next: rnn at 20 (4.0× shorter)" in findings
    assert "longest dependency solved: lstm 80, rnn 20" in findings
    assert "transformer training step time relative to lstm: 2.00×" in findings
    assert "Protocol: Best lr per (task, length, model) chosen on validation" in index
    headline = index.split("## Longest dependency solved")[1].split("## ")[0]
    assert re.search(r"\| adding\s+\| 10, 20, 80, 160\s+\|\s+80 \|\s+20 \|\s+80 \|", headline), headline


def test_real_datasets_get_their_metric_not_a_ladder():
    """A real dataset has no dependency to climb and no "solved": the report gives its test metric per model."""
    from bench.report.findings import findings
    from bench.runner.run import run
    from bench.core.spec import RunSpec

    tiny = {"steps": 4, "eval_every": 2, "val_size": 8, "test_size": 8}
    template = run(RunSpec("japanese_vowels", "lstm", {}, {"units": 4}, tiny, 0, "synth"))
    assert template["status"] == "ok", template.get("error")
    real = []
    for model, accuracy in (("lstm", 0.95), ("rnn", 0.9)):
        for seed in (0, 1):
            r = json.loads(json.dumps(template))
            r.update(model=model, seed=seed, run_id=f"jv-{model}-{seed}")
            r["metrics"].update(value=accuracy, solved=False)
            real.append(r)
    df = frames.frame(real)
    assert "japanese_vowels" not in tables.longest_solved(df).index
    table = tables.real_data_table(df)
    assert table.loc[("japanese_vowels", "accuracy"), "lstm"] == "0.950 ± 0.000"
    assert table.loc[("japanese_vowels", "accuracy"), "rnn"] == "0.900 ± 0.000"
    lines = findings(df, frames.gradient_frame(df))
    assert any(line.startswith("**japanese_vowels** (real data, accuracy; majority class ")
               and line.endswith("model means from 0.900 (rnn) to 0.950 (lstm); lstm 0.950, rnn 0.900.")
               for line in lines), lines
    assert not any("japanese_vowels" in line and "solved" in line for line in lines), lines


def test_best_learning_rate_is_chosen_on_validation():
    df = frames.frame(sweep_records())
    assert frames.tuned_keys(df) == ["train.lr"]
    best = frames.best_hyperparameters(df)
    ok = best[(best.status == "ok") & (best.model == "lstm") & (best.dependency == 20)]
    assert set(ok["train.lr"]) == {3e-3} and len(ok) == 4  # two tasks × two seeds


def test_statuses_and_errors_are_visible(built):
    folder, _ = built
    index = (folder / "index.md").read_text()
    status = index.split("## 10. Run status")[1].split("## ")[0]
    assert re.search(r"\| lstm\s+\|\s+24 \|\s+0 \|\s+1 \|\s+0 \|\s+1 \|\s+26 \|", status), status
    assert "oom happened" in index and "diverged happened" in index
    assert "(no model family with variants in this sweep)" in index


def test_gridded_model_hyperparameters_make_variants_and_ablations():
    df = frames.frame(sweep_records() + [make("copy", "lstm", 80, 0, score=0.9, units=128)])
    assert {"lstm(units=64)", "lstm(units=128)", "rnn"} <= set(df.variant)
    ablation = tables.ablation_tables(df)
    assert list(ablation) == ["lstm"]
    assert list(ablation["lstm"].columns) == ["lstm(units=128)", "lstm(units=64)"]


def test_records_without_measurements_do_not_crash(tmp_path):
    bare = [make("adding", m, 10, 0, score=0.5, measured=False) for m in ("rnn", "lstm")]
    for r in bare:
        for key in ("speed", "history"):
            r.pop(key)
    folder = report.build("synth", write_sweep(tmp_path, bare), tmp_path / "reports")
    index = (folder / "index.md").read_text()
    assert index.count("(no data)") >= 4 and "## 6. Gradient flow" in index


def test_accessors_read_every_curve_shape():
    assert frames.curve({"distance": [4, 1], "norm": [0.1, 1.0]}) == [(1.0, 1.0), (4.0, 0.1)]
    assert frames.curve({"1": 1.0, "2": None}) == [(1.0, 1.0)]
    assert frames.curve([[1, 2.0], [3, 4.0]]) == [(1.0, 2.0), (3.0, 4.0)]
    assert frames.curve([0.5, 0.25]) == [(0.0, 0.5), (1.0, 0.25)]
    assert frames.curve("garbage") == []
    assert frames.grad_norm({"history": [{"grad_norm": 1.0}, {"grad_norm": 3.0}]}) == 2.0
    assert frames.achieved_gflops({"flops_per_step": 2e9, "speed": {"step_ms_median": 1000.0}}) == 2.0
    assert frames.roofline_gflops({"speed": {"roofline_gflops": 217.0}}) == 217.0
    assert tables.mean_ci([1.0, 1.0, 1.0]) == (1.0, 0.0)


def test_cli_report_of_missing_sweep_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "nothing", "--results", str(tmp_path)]) == 2
    assert "no run records" in capsys.readouterr().err



def test_paper_preset_covers_tasks_lengths_models_and_seeds():
    from bench.sweep import grid as sweep

    plan = sweep.load("paper")
    grid = {(s.task, s.task_params["length"]) for s in plan.specs}
    assert {t for t, _ in grid} == {"adding", "copy", "recall"} and len(grid) >= 15
    assert {s.model for s in plan.specs} == {"rnn", "lstm", "gru", "bilstm", "stacked_lstm", "transformer"}
    assert {s.seed for s in plan.specs} >= {0, 1, 2} and all(s.config.max_seconds for s in plan.specs)


def speed_record(model, length, *, peak_mib, step_ms, status="ok", units=64, batch=8):
    """A ``bench speed`` record from the real worker (a tiny configuration), with its numbers set."""
    from bench.speed.timing import SpeedSpec, measure_one

    width = {"lstm": 64, "transformer": 64, "mingru": 64}[model]
    r = measure_one(SpeedSpec(model, width, 2, 8, min_steps=1, min_seconds=0, warmup=0, sweep="sp"))
    assert r["status"] == "ok", r.get("error")
    r.update(run_id=f"{model}-{length}", units=units, batch=batch, length=length, status=status,
             error=None if status == "ok" else "out of memory", env={**r["env"], **ENV})
    if status == "ok":
        r["speed"].update(forward={"median_ms": step_ms / 3, "p10_ms": step_ms / 3, "p90_ms": step_ms / 3,
                                   "compile_ms": 900.0},
                          train={"median_ms": step_ms, "p10_ms": step_ms * 0.9, "p90_ms": step_ms * 1.1,
                                 "compile_ms": 2000.0}, roofline_gflops=200.0)
        r.update(memory={"peak_bytes": peak_mib * 2**20}, gflops={"train": 50.0, "deepbench_train": 40.0})
    else:
        for key in ("speed", "memory", "gflops", "flops"):
            r.pop(key, None)
    return r


def test_speed_report_says_where_each_model_crosses_the_reference_lstm(tmp_path, capsys):
    records = [speed_record("lstm", 64, peak_mib=100, step_ms=10), speed_record("lstm", 256, peak_mib=120, step_ms=40),
               speed_record("lstm", 1024, peak_mib=140, step_ms=160),
               speed_record("transformer", 64, peak_mib=80, step_ms=12),
               speed_record("transformer", 256, peak_mib=130, step_ms=60),
               speed_record("transformer", 1024, peak_mib=900, step_ms=500),
               speed_record("transformer", 4096, peak_mib=0, step_ms=0, status="oom"),
               speed_record("mingru", 64, peak_mib=150, step_ms=20), speed_record("mingru", 1024, peak_mib=200, step_ms=80)]
    for r in records:
        record.write(r, tmp_path / "results")
    assert cli.main(["report", "sp", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"report written to {tmp_path / 'reports' / 'sp' / 'index.md'}: 9 records (ok 8, oom 1), 3 figures"
    folder = tmp_path / "reports" / "sp"
    index = (folder / "index.md").read_text()
    assert "transformer's peak memory rises above lstm's between T=64 and T=256 (T=64…1024: 0.8× → 6.4×)" in index
    assert "mingru's training step time falls below lstm's between T=64 and T=1024 (T=64…1024: 2× → 0.5×)" in index
    assert "training step time is above lstm's at every tested length" in index
    assert "transformer ran out of memory at T=4096" in index
    assert {"speed.png", "speed.svg", "gflops.png", "memory.png"} <= {p.name for p in folder.iterdir()}
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    report.build("sp", tmp_path / "results", tmp_path / "reports")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_the_gflops_figure_reads_the_roofline_the_runner_records():
    df = frames.frame([TEMPLATES["adding", "lstm"]])
    assert df.roofline_gflops.iloc[0] == TEMPLATES["adding", "lstm"]["speed"]["roofline_gflops"] > 0
    assert df.achieved_gflops.iloc[0] == TEMPLATES["adding", "lstm"]["speed"]["achieved_gflops"] > 0


def test_steps_to_solve_draws_unsolved_runs_at_their_step_cap(built):
    """The headline's companion: median steps to solve, a run that did not solve counted at ``train.steps``."""
    from bench.report import figures

    folder, _ = built
    index = (folder / "index.md").read_text()
    section = index.split("## Steps to solve against dependency")[1].split("## ")[0]
    assert "![Steps to solve against dependency](steps_to_solve.png)" in section
    assert re.search(r"\| adding\s+\|\s+80 \| 400 · 2/2\s+\| > 1,000 · 0/2\s+\| 400 · 2/2\s+\|", section), section
    # rnn diverged at 160 (trained, not solved: at the cap); lstm ran out of memory there (did not train: no point)
    assert re.search(r"\| adding\s+\|\s+160 \| —\s+\| > 1,000 · 0/1\s+\| —\s+\|", section), section
    half = frames.frame([make("adding", "lstm", 10, 0, score=0.99), make("adding", "lstm", 10, 1, score=0.1)])
    point = figures.solve_points(half).iloc[0]  # one of two seeds solved: solved in half, as the headline counts
    assert (point.steps, point.cap, point.solved, point.seeds, point.at_cap) == (400, 1000, 1, 2, False)
    worse = frames.frame([make("adding", "lstm", 10, s, score=0.99 if s == 0 else 0.1) for s in range(3)])
    assert figures.solve_points(worse).iloc[0][["steps", "at_cap"]].tolist() == [1000, True]
    real = frames.frame([{**make("adding", "lstm", 10, 0, score=0.99), "task": "japanese_vowels"}])
    assert figures.solve_points(tables.ladder_runs(real)).empty  # no ladder, no figure


LITERATURE = [  # fields as literature.yaml's; numbers made up for the test
    {"task": "adding", "setting": {"length": 80, "markers": "anywhere"}, "model": "lstm", "paper_model": "LSTM",
     "metric": "MSE", "our_metric": "mse", "value": 0.05, "params": 100000, "batch": 32, "steps": "7,000 iterations",
     "optimizer": "Adam lr 0.002", "source": "Paper, Table 1", "checked": "test", "notes": ["full data"]},
    {"task": "copy", "setting": {"length": 20}, "model": "transformer", "paper_model": "attention",
     "metric": "loss", "our_metric": "cross_entropy", "value": None, "claim": "solves it", "params": None,
     "batch": 64, "steps": "?", "optimizer": "?", "source": "Other", "checked": "not verified", "notes": []},
    {"task": "copy", "setting": {"length": 20}, "model": None, "paper_model": "H3", "metric": "accuracy",
     "our_metric": None, "value": 0.5, "params": None, "batch": None, "steps": "?", "optimizer": "?",
     "source": "Zoo", "checked": "figure", "notes": []},
    {"task": "smnist", "setting": {}, "model": "lstm", "paper_model": "LSTM", "metric": "accuracy",
     "our_metric": "accuracy", "value": 0.9, "params": None, "batch": None, "steps": "?", "optimizer": "?",
     "source": "Absent", "checked": "test", "notes": []},
]


def test_literature_rows_set_each_anchor_beside_our_same_or_nearest_setting():
    from bench.report import literature

    records = sweep_records()
    best = frames.best_hyperparameters(frames.frame(records))
    rows = literature.rows(best, records, LITERATURE)
    assert [(r["task"], r["our model"]) for r in rows] == [("adding", "lstm"), ("copy", "transformer"),
                                                           ("copy", "(none here)")]  # smnist: not in the sweep
    adding, copy, none = rows
    assert adding["our setting"] == "nearest: length 80, markers halves"  # 160 ran out of memory: not finished
    assert adding["ours"] == f"{(1 - 0.99) / 6:.3g} (2 seeds, 2 solved)" and adding["paper"] == "0.05"
    diffs = adding["differences"]
    assert "markers: anywhere vs ours halves" in diffs and "length: 80 vs ours 80" not in diffs
    assert "parameters: paper ≈100,000, ours 64,000" in diffs and "batch: paper 32, ours 64" in diffs
    assert any(d.startswith("steps: paper 7,000 iterations; ours at most 1,000 (median 400 run") for d in diffs)
    assert "optimizer: paper Adam lr 0.002; ours Adam, lr 0.003, clipnorm 1" in diffs and diffs[-1] == "full data"
    assert copy["our setting"].startswith("same: length 20") and copy["paper"] == "solves it"
    assert copy["ours"].endswith("(2 seeds, 2 solved)")  # the records' metrics.cross_entropy, the paper's measure
    assert "metric: the same measure (cross_entropy), not our headline recall_accuracy" in copy["differences"]
    assert none["ours"] == "—" and none["differences"] == []
    lines = literature.section(best, records, LITERATURE)
    assert lines[0] == "## Versus the literature" and any(line.startswith("- 1 (adding, lstm): markers") for line in lines)
    assert literature.section(best[best.task == "copy"].iloc[:0], records, LITERATURE) == []


def test_the_published_numbers_file_names_every_field_and_only_registered_models():
    import models
    import tasks
    from bench.report import literature

    entries = literature.anchors()
    assert len(entries) >= 20 and all(isinstance(e["notes"], list) for e in entries)
    assert {e["model"] for e in entries} - {None} <= set(models.list_models())
    assert {e["task"] for e in entries} <= set(tasks.list_tasks())
    assert all(e["value"] is not None or "claim" in e for e in entries)
    assert all(e["value"] is not None or e["model"] is None or "not verified" in e["claim"]
               or "read off" in e["claim"] for e in entries)


def trial(study, lr, val, steps_to_solve=None):
    """A tuning trial's record: the adding template with a ``tune`` field."""
    r = make("adding", "lstm", 10, 0, score=val, lr=lr)
    r["run_id"] = f"{study}-{lr}"
    r["tune"] = {"study": study, "trial": str(int(lr * 1e4)), "val_score": val}
    r["metrics"]["steps_to_solve"] = steps_to_solve
    return r


def test_the_tuning_section_counts_the_searches_a_grid_edge_won():
    from bench.report import tune as report_tune
    from bench.tune import table as trial_table

    records = [trial("a", 1e-3, 0.2), trial("a", 3.2e-3, 0.5), trial("a", 0.010000000000000002, 0.9),
               trial("b", 1e-3, 0.8), trial("b", 3.2e-3, 0.3), trial("b", 1e-2, 0.1),
               trial("c", 1e-3, 0.2), trial("c", 3.2e-3, 0.9), trial("c", 1e-2, 0.2), trial("d", 1e-3, 0.4)]
    df = trial_table.frame(records)
    line = report_tune.edge_line(df)
    assert line.startswith("The best learning rate was at an edge of the grid in 2 of 4 searches (the lowest "
                           "in 1, the highest in 1)") and "extended" not in line
    assert sorted(report_tune.chosen(df)["lr at an edge"]) == ["", "", "high", "low"]
    beyond = trial("a", 3.2e-2, 0.95)
    beyond["tune"]["extends"] = "high"
    line = report_tune.edge_line(trial_table.frame([*records, beyond]))
    assert "in 2 of 4 searches" in line and "1 were extended half a decade past it, after which the new edge won in 1" \
        in line
