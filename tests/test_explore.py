"""Exploring results: queries, the TensorBoard export, the HTML report in a real browser, comparisons, learning
curves and the example notebook, on the committed records (real runs; nothing trains here)."""

import io
import os
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.report import compare, figures, html, query, tables, tensorboard
from bench.runner import record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
CHROMIUM = Path("/usr/bin/chromium")


def raw(sweep: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RESULTS / sweep).glob("*.json"))]


def subset(tmp_path: Path, sweep: str, keep) -> Path:
    """A results folder holding the committed records of ``sweep`` that ``keep`` accepts."""
    for r in raw(sweep):
        if keep(r):
            record.write(r, tmp_path / "results")
    return tmp_path / "results"


def _csv(capsys) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def test_results_filters_sorts_and_picks_columns(capsys):
    argv = ["results", "reference-v2", "--results", str(RESULTS), "--format", "csv"]
    assert cli.main([*argv, "--where", "model=lstm", "task=adding", "dependency>=50", "status=ok"]) == 0
    rows = _csv(capsys)
    expected = [r for r in raw("reference-v2") if r["model"] == "lstm" and r["task"] == "adding"
                and r["dependency"] >= 50 and r["status"] == "ok"]
    assert len(rows) == len(expected) > 0 and set(rows.run_id) == {r["run_id"] for r in expected}
    keys = list(zip(rows.dependency, rows.seed))
    assert keys == sorted(keys)  # the stable order: task, model, dependency, seed

    assert cli.main([*argv, "--where", "task=copy", "dependency=15", "--sort=-score",
                     "--columns", "variant,units,lr,score"]) == 0
    rows = _csv(capsys)
    assert list(rows.columns) == ["variant", "model_params.units", "train.lr", "metrics.score"]
    assert len(rows) == 48 and rows["metrics.score"].is_monotonic_decreasing
    assert cli.main([*argv, "--where", "model=lstm,gru", "solved=true"]) == 0
    assert set(_csv(capsys).variant) == {"lstm", "gru"}


def test_results_history_is_one_row_per_evaluation(capsys):
    assert cli.main(["results", "reference-v2", "--results", str(RESULTS), "--format", "csv", "--history",
                     "--where", "task=adding", "model=gru", "dependency=200"]) == 0
    rows = _csv(capsys)
    runs = [r for r in raw("reference-v2") if (r["task"], r["model"], r["dependency"]) == ("adding", "gru", 200)]
    assert len(rows) == sum(len(r["history"]) for r in runs) > len(runs)
    first = min(runs, key=lambda r: r["seed"])
    mine = rows[rows.run_id == first["run_id"]]
    assert list(mine.step) == [e["step"] for e in first["history"]]
    assert np.allclose(mine.val, [e["val"] for e in first["history"]])


@pytest.mark.parametrize("argv, words", [
    (["--where", "modle=lstm"], ["no such column", "did you mean model", "metrics.score", "train.NAME"]),
    (["--where", "dependency~3"], ["expected COLUMN OP VALUE"]),
    (["--where", "dependency>=abc"], ["dependency is a number"]),
    (["--sort", "nosuch"], ["--sort 'nosuch': no such column"]),
    (["--columns", "task,nosuch"], ["--columns 'nosuch'"]),
])
def test_a_bad_query_is_one_line_and_exit_2(capsys, argv, words):
    assert cli.main(["results", "reference-v2", "--results", str(RESULTS), *argv]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err


def test_tensorboard_export_reads_back_with_tensorboards_loader(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    results = subset(tmp_path, "reference-v2", lambda r: (r["task"], r["model"], r["dependency"]) == ("adding", "lstm", 100))
    runs = raw("reference-v2")
    for _ in range(2):  # exporting again replaces each run's events, it does not add to them
        assert cli.main(["export", "reference-v2", "--to", "tensorboard", "--results", str(results),
                         "--out", str(tmp_path / "tb")]) == 0
    assert "3 TensorBoard runs" in capsys.readouterr().out
    folders = sorted((tmp_path / "tb" / "reference-v2" / "adding" / "lstm" / "100").iterdir())
    assert len(folders) == 3 and all(len(list(f.glob("events.out.tfevents.*"))) == 1 for f in folders)
    for folder in folders:
        r = next(r for r in runs if folder.name.endswith(r["run_id"]))
        events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        events.Reload()
        val = events.Scalars("val/metric")
        assert [e.step for e in val] == [e["step"] for e in r["history"]]
        assert np.allclose([e.value for e in val], [e["val"] for e in r["history"]], rtol=1e-6)
        assert [e.step for e in events.Scalars("train/grad_norm")] == [e["step"] for e in r["history"]]
        final = events.Scalars("final/score")
        assert [e.step for e in final] == [r["steps"]] and math.isclose(final[0].value, r["metrics"]["score"],
                                                                         rel_tol=1e-6)
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        assert hp["model"].string_value == "lstm" and hp["seed"].number_value == r["seed"]
        assert math.isclose(hp["train.lr"].number_value, r["train"]["lr"])
        assert hp["model_params.units"].number_value == r["model_params"]["units"]
    config = EventAccumulator(str(tmp_path / "tb" / "reference-v2"))
    config.Reload()
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        config.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert {"train.lr", "model", "dependency"} <= {h.name for h in experiment.hparam_infos}
    assert "final/score" in {m.name.tag for m in experiment.metric_infos}


def test_compare_two_sweeps_on_their_shared_points(tmp_path, capsys):
    def keep(r):
        return r["task"] == "adding" and r["dependency"] in (25, 50) and r["model"] in ("lstm", "stacked_lstm")
    subset(tmp_path, "paper", keep)
    results = subset(tmp_path, "reference-v2", keep)
    assert cli.main(["compare", "paper", "reference-v2", "--results", str(results), "--out", str(tmp_path / "rep")]) == 0
    assert "4 points in common; 1 differ beyond seed noise (1 higher in `reference-v2`" in capsys.readouterr().out
    index = (tmp_path / "rep" / "compare-paper-vs-reference-v2" / "index.md").read_text()
    assert "## Longest dependency solved: `paper`" in index and "## Longest dependency solved: `reference-v2`" in index
    mean = {s: np.mean([r["metrics"]["score"] for r in raw(s) if keep(r) and r["model"] == "stacked_lstm"
                        and r["dependency"] == 50]) for s in ("paper", "reference-v2")}
    line = next(line for line in index.splitlines() if "| adding |           50 | stacked_lstm" in line)
    assert f"{mean['reference-v2'] - mean['paper']:+.3f} [" in line and line.rstrip(" |").endswith("yes")


def test_welch_interval_separates_noise_from_a_difference():
    low, high = compare.welch([0.95, 0.97, 0.96], [0.02, 0.05, 0.03])
    assert 0 < low < 0.93 < high
    low, high = compare.welch([0.5, 0.7, 0.6], [0.55, 0.65, 0.6])
    assert low < 0 < high
    assert all(math.isnan(v) for v in compare.welch([0.9], [0.1, 0.2]))


def test_learning_curves_pick_the_dependency_that_separates_models():
    best = pd.DataFrame({"task": ["t"] * 6 + ["u"], "status": ["ok"] * 7, "variant": list("ababab") + ["a"],
                         "dependency": [10, 10, 20, 20, 40, 40, 5], "score": [1.0, 0.9, 1.0, 0.1, 0.1, 0.0, 0.5]})
    assert figures.separating(best).values.tolist() == [["t", 20], ["u", 5]]
    rising = pd.DataFrame({"step": [100, 200, 300, 400, 500], "val_score": [0.0, 0.1, 0.2, 0.3, 0.5]})
    assert tables.climbing(rising, 500) and not tables.climbing(rising, 1000)  # stopped early: solved, not out of steps
    assert not tables.climbing(rising.assign(val_score=0.3), 500)


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *extra, page.as_uri()], capture_output=True, text=True, timeout=120)


def _console(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium; .ci/run does)")
def test_html_report_renders_in_a_real_browser(tmp_path):
    folder = tmp_path / "zoo-smoke"
    shutil.copytree(ROOT / "reports" / "zoo-smoke", folder)  # the committed report, its index.md and figures
    page = html.write(folder, record.load(RESULTS, "zoo-smoke")[0], "zoo-smoke")
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and 'src="data:image/png;base64,' in text
    assert text.count("<h2") >= (folder / "index.md").read_text().count("\n## ")  # every section, and the curves
    headline = text.split("Longest dependency solved</h2>")[1].split("</table>")[0]
    links = [part.split('"')[0] for part in headline.split('href="#')[1:]]
    assert len(links) == 2 * 10 and all(f'id="{target}"' in text for target in links)  # every model × task cell

    dom = _chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0 and not _console(dom), _console(dom)
    assert 'data-ready="yes"' in dom.stdout and dom.stdout.count('data-sortable="yes"') == text.count("<table")
    shot = _chromium(tmp_path, page, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1200,2000")
    assert shot.returncode == 0 and not _console(shot)
    pixels = matplotlib.image.imread(tmp_path / "shot.png")
    assert pixels.shape[:2] == (2000, 1200) and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 200

    broken = tmp_path / "broken.html"  # the console check can fail: a page with an error is caught
    broken.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert any("Uncaught ReferenceError" in line for line in _console(_chromium(tmp_path, broken, "--dump-dom")))


def test_the_example_notebook_runs():
    notebook = json.loads((ROOT / "examples" / "explore_results.ipynb").read_text())
    code = "\n\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "examples", capture_output=True, text=True,
                         timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "finished runs" in run.stdout and "step" in run.stdout
