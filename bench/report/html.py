"""index.md → one self-contained index.html: the same sections, figures inline, tables sortable, and each cell of
the headline section linked to that (task, model, dependency)'s learning curves, drawn per seed as inline SVG.

Markdown is rendered by markdown-it-py, the page by a jinja2 template (``templates/report.html.j2``); it needs no
network and no other file (the SVG links beside each figure point at the report folder's files).
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bench import report
from bench.report import dataframe
from bench.runner import record

HEADLINE = "Longest dependency solved"  # the section whose table cells link to learning curves
WIDTH, HEIGHT, PAD = 240, 130, 18  # one learning-curve panel, in SVG units
LOW, HIGH = -0.5, 1.05  # validation scores drawn, clipped to this range
DASHES = ["", "5 3", "2 2", "6 2 2 2"]  # seed 0, 1, 2, 3 …


def build(sweep: str, results: Path | str = "results", out: Path | str = "reports") -> Path:
    """``report.build`` and then index.html beside index.md; return the folder."""
    folder = report.build(sweep, results, out)
    write(folder, record.load(results, sweep)[0], sweep)
    return folder


def write(folder: Path, records: list[dict], sweep: str) -> Path:
    """``folder``/index.html from ``folder``/index.md and the records' learning curves."""
    curves = panels(records)
    markdown = MarkdownIt("commonmark").enable("table")
    tokens = markdown.parse((folder / "index.md").read_text())
    _inline_images(tokens, folder)
    targets: dict[tuple, dict] = {}
    for group in curves:
        for panel in group["panels"]:
            targets.setdefault((group["task"], panel["variant"]), {})[panel["dependency"]] = panel["id"]
    _link_headline(tokens, targets)
    body = markdown.renderer.render(tokens, markdown.options, {})
    env = Environment(loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(sweep=sweep, body=body, curves=curves, width=WIDTH,
                                                     height=HEIGHT, pad=PAD, low=LOW, high=HIGH)
    path = folder / "index.html"
    path.write_text(page)
    return path


def panels(records: list[dict]) -> list[dict]:
    """Per task: a panel per (variant, dependency) with a polyline per seed, in SVG coordinates."""
    if all(r.get("kind") == "speed" for r in records):
        return []
    best = dataframe.best_hyperparameters(dataframe.frame(records))
    hist = dataframe.history_frame(best).dropna(subset=["step", "val_score"])
    solved = best.groupby(["task", "variant", "dependency"]).solved.agg(["sum", "count"])
    groups = []
    for task, curves in hist.groupby("task", sort=True):
        budget = curves.step.max()
        items = []
        for (variant, dependency), point in curves.groupby(["variant", "dependency"], sort=True):
            done = solved.loc[(task, variant, dependency)]
            items.append({"id": anchor(task, variant, dependency), "variant": variant,
                          "dependency": _whole(dependency), "solved": f"{int(done['sum'])}/{int(done['count'])}",
                          "seeds": [{"seed": _whole(seed), "dash": DASHES[i % len(DASHES)],
                                     "points": _points(c.sort_values("step"), budget)}
                                    for i, (seed, c) in enumerate(point.groupby("seed", sort=True))]})
        groups.append({"task": task, "budget": _whole(budget), "panels": items})
    return groups


def anchor(task: str, variant: str, dependency) -> str:
    """The page id of one (task, variant, dependency)'s learning curves."""
    return "curves-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{task}-{variant}-{_whole(dependency)}").strip("-")


def _points(curve: pd.DataFrame, budget: float) -> str:
    """``x,y x,y …`` of a curve: step 0…budget across the panel, score LOW…HIGH from bottom to top."""
    xs = PAD + curve.step / max(budget, 1) * (WIDTH - 2 * PAD)
    ys = PAD + (HIGH - curve.val_score.clip(LOW, HIGH)) / (HIGH - LOW) * (HEIGHT - 2 * PAD)
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def _inline_images(tokens: list[Token], folder: Path) -> None:
    """Every image the Markdown shows (a file of the report folder) as a data: URI, so the page stands alone."""
    for token in tokens:
        for child in token.children or []:
            if child.type == "image" and (folder / child.attrs["src"]).is_file():
                data = base64.b64encode((folder / child.attrs["src"]).read_bytes()).decode()
                child.attrs["src"] = f"data:image/png;base64,{data}"


def _link_headline(tokens: list[Token], targets: dict) -> None:
    """In the headline section's tables, link each model's cell to its learning curves (``targets``: (task,
    variant) → {dependency: id}, shortest first): at the dependency the cell names, else the shortest."""
    section, header, row = False, [], []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[i + 1].content.strip() == HEADLINE
        elif token.type == "table_close":
            header = []
        elif not section or token.type != "inline":
            continue
        elif tokens[i - 1].type == "th_open":
            header.append(token.content.strip())
        elif tokens[i - 1].type == "td_open":
            row = [] if tokens[i - 2].type == "tr_open" else row
            row.append(token)
            column = header[len(row) - 1] if len(row) <= len(header) else None
            ids = targets.get((row[0].content.strip(), column))
            if ids:
                target = ids.get(token.content.strip(), next(iter(ids.values())))
                token.children = [Token("link_open", "a", 1, attrs={"href": f"#{target}"}),
                                  *token.children, Token("link_close", "a", -1)]


def _whole(value) -> str:
    return str(int(value)) if isinstance(value, (int, float)) and math.isfinite(value) else "?"
