"""Sweep files: a small YAML grid of tasks × models × seeds, expanded into RunSpecs and checked (``bench.core.check``);
``bench.sweep.driver`` runs and resumes them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

import models
import tasks
from bench.core.check import check, grid_size
from bench.core.errors import SWEEP_NAME, SpecError, sweep_name
from bench.core.spec import RunSpec, TrainConfig
from bench.core.text import quote
from bench.core.widths import BUDGET, remember_widths
from bench.runner import record
from bench.sweep import PRESETS, presets

KEYS = ("name", "description", "seeds", "train", "tasks", "models", "overrides", "hp", "ladder", "param_budget",
        "tune", "also")
BLOCK_KEYS = ("tasks", "models", "param_budget", "train", "overrides", "seeds")  # what an ``also:`` grid may set


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    specs: list[RunSpec]
    tuned: bool = False  # ``hp: tuned``: each model's settings from ``bench tune`` (``bench.tune.stored.with_tuned``)
    ladder: bool = False  # ``ladder: true``: climb each task's lengths per model (see ``bench.sweep.ladder``)
    tune: dict | None = None  # ``tune:``: how ``bench tune --from`` tunes this sweep's models (``_tune_section``)


def locate(name_or_path: str) -> Path:
    """A preset's name or a file's path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (PRESETS / f"{name_or_path}.yaml").is_file():
        return PRESETS / f"{name_or_path}.yaml"
    raise SpecError(f"no sweep file or preset {quote(name_or_path)}; presets: {', '.join(presets())}")


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {quote(key)}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(name_or_path: str, results: Path | str | None = None) -> Sweep:
    """Read and validate a sweep; any problem is one SpecError line naming the file and the key. With ``results``,
    the widths its stored records were sized to are reused (``spec.remember_widths``) instead of sized again."""
    path = locate(name_or_path)
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(f"{path}: not valid YAML ({where}{getattr(e, 'problem', None) or e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read ({e})") from None
    if results is not None and isinstance(data, dict) and isinstance(data.get("name", path.stem), str):
        folder = Path(results) / data.get("name", path.stem)
        if SWEEP_NAME.match(folder.name) and folder.is_dir():
            remember_widths(record.load(results, folder.name)[0])
    try:
        return expand(data, default_name=path.stem)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{path}: {e}") from None


def expand(data: dict, default_name: str = "sweep") -> Sweep:
    """The grid as a list of resolved RunSpecs, in file order; errors name the key (``tasks.copy.length``)."""
    if not isinstance(data, dict):
        raise SpecError(f"a sweep must be a mapping with keys {', '.join(KEYS)}; got {type(data).__name__}")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise SpecError(f"unknown key {quote(unknown[0])}; valid: {', '.join(KEYS)}")
    if "name" in data:
        name = sweep_name(data["name"], "name")
    elif SWEEP_NAME.match(default_name):
        name = default_name
    else:  # the file's name names the sweep: say so, not ``name:``, which the file does not set
        raise SpecError(f"file: its name {quote(default_name)} names the sweep (it sets no name:), so it must be "
                        f"letters, digits, '_', '.' or '-'; rename the file or set name:")
    if not isinstance(data.get("description", ""), str):
        raise SpecError(f"description: expected text, got {quote(data['description'])}")
    seeds = _as_list(data.get("seeds", [0]), "seeds")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SpecError(f"seeds: each seed must be an integer >= 0, got {quote(seed)}")
    train = _mapping(data.get("train"), "train")
    overrides = _mapping(data.get("overrides"), "overrides")
    task_grid = _mapping(data.get("tasks"), "tasks", required=True, valid=tasks.list_tasks())
    model_grid = _mapping(data.get("models"), "models", required=True, valid=models.list_models())
    configs = {model: _train_grid(train, "train") for model in model_grid}
    for model, override in overrides.items():
        if model not in model_grid:
            raise SpecError(f"overrides.{model}: not a model of this sweep; models: {', '.join(model_grid)}")
        configs[model] = _train_grid({**train, **_mapping(override, f"overrides.{model}")}, f"overrides.{model}")
    grid_size(task_grid, model_grid, seeds, max(len(c) for c in configs.values()))
    task_points = {t: _grid(params, f"tasks.{t}") for t, params in task_grid.items()}
    budget = {BUDGET: data["param_budget"]} if data.get("param_budget") is not None else {}
    model_points = {m: [{**budget, **p} for p in _grid(params, f"models.{m}")] for m, params in model_grid.items()}
    specs = [RunSpec(task, model, task_point, model_point, config, seed, name)
             for task, points in task_points.items() for task_point, model in itertools.product(points, model_grid)
             for model_point, config, seed in itertools.product(model_points[model], configs[model], seeds)]
    check(specs)  # widths are sized for the runs that run (``driver.check_sizes``)
    unique = {}
    for spec in specs:
        unique.setdefault(spec.run_id, spec)  # the same point listed twice is one run
    for spec in _also(data, default_name):
        unique.setdefault(spec.run_id, spec)
    if data.get("hp", "defaults") not in ("defaults", "tuned"):
        raise SpecError(f"hp: expected defaults or tuned, got {data['hp']!r}")
    if not isinstance(data.get("ladder", False), bool):
        raise SpecError(f"ladder: expected true or false, got {data['ladder']!r}")
    return Sweep(name, str(data.get("description", "")), list(unique.values()), data.get("hp") == "tuned",
                 data.get("ladder", False), _tune_section(data.get("tune"), _everywhere(data, "tasks"), data))


def _also(data: dict, default_name: str) -> list[RunSpec]:
    """The specs of the ``also:`` grids: each a mapping of ``BLOCK_KEYS`` expanded like the file itself, with the
    file's other keys (its ``train`` merged under the block's), so one sweep holds a second budget or longer
    ladders for some models (a model's rungs in two grids, with the same settings, are one climb)."""
    blocks = data.get("also")
    if blocks is None:
        return []
    if not isinstance(blocks, list) or not blocks:
        raise SpecError(f"also: expected a non-empty list of grids (mappings of {', '.join(BLOCK_KEYS)}), "
                        f"got {quote(blocks)}")
    base = {k: v for k, v in data.items() if k not in ("also", "tune", "description")}
    specs = []
    for i, block in enumerate(blocks):
        block = _mapping(block, f"also[{i}]", required=True)
        unknown = [k for k in block if k not in BLOCK_KEYS]
        if unknown:
            raise SpecError(f"also[{i}].{unknown[0]}: unknown key; valid: {', '.join(BLOCK_KEYS)}")
        for key in ("tasks", "models"):
            if key not in block:
                raise SpecError(f"also[{i}].{key}: required")
        merged = {**base, **block, "train": {**_mapping(data.get("train"), "train"),
                                             **_mapping(block.get("train"), f"also[{i}].train")}}
        try:
            specs += expand(merged, default_name).specs
        except SpecError as e:
            raise SpecError(f"also[{i}]: {e}") from None
    return specs


def _everywhere(data: dict, key: str) -> dict:
    """The ``key`` (``tasks`` or ``models``) of the file's grid and of its ``also:`` grids."""
    blocks = data.get("also") if isinstance(data.get("also"), list) else []
    return {**{t: p for b in blocks if isinstance(b, dict) for t, p in (b.get(key) or {}).items()}, **data[key]}


ALGORITHMS = ("random", "bayesian", "grid")  # how ``bench tune`` searches
LR_RANGE = (1e-4, 3e-2)  # log-uniform; 1e-3 vs 3e-3 decides LSTM adding (README: defaults)
TUNE_KEYS = {"trials": int, "steps": int, "eval_every": int, "lengths": dict, "algorithm": str, "lr_range": list,
             "lrs": list, "extend": bool, "search": list, "seed": int, "tasks": list, "models": list, "borrow": dict}


def _tune_section(section, task_grid: dict, data: dict) -> dict | None:
    """The ``tune:`` section, checked: ``trials`` and ``steps`` per study, optionally ``lengths`` (the length each
    task is tuned at, for all its lengths), ``algorithm``, ``lr_range`` or ``lrs`` (the grid's learning rates, given
    as points: then ``trials`` is their count and the algorithm a grid), ``extend`` (with ``lrs``: a study whose
    best is at an edge of them tries one more rate half a decade beyond it), ``search`` (the hyperparameters
    searched besides lr), ``eval_every``, ``seed``, ``tasks`` and ``models`` (those tuned; the others train with the defaults),
    ``borrow`` (``{task: tuned task}``: tasks not tuned themselves that take the tuning of a tuned task of the sweep,
    model by model)."""
    if section is None:
        return None
    section = _mapping(section, "tune", required=True)
    for key, value in section.items():
        kind = TUNE_KEYS.get(key)
        if kind is None:
            raise SpecError(f"tune.{key}: unknown key; valid: {', '.join(TUNE_KEYS)}")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool) \
                or (kind is int and value < 1 and key != "seed"):
            raise SpecError(f"tune.{key}: expected {'an integer >= 1' if kind is int else kind.__name__}, "
                            f"got {quote(value)}")
    if "lrs" in section:
        section = _lr_points(section)
    elif "extend" in section:
        raise SpecError("tune.extend: needs tune.lrs (the grid's learning rates, whose edges it extends)")
    for key in ("trials", "steps"):
        if key not in section:
            raise SpecError(f"tune.{key}: required (the same for every model: that is what makes tuning fair)")
    for key, names in (("tasks", task_grid), ("models", _everywhere(data, "models"))):
        for name in section.get(key) or ():
            if name not in names:
                raise SpecError(f"tune.{key}: {quote(name)} is not one of this sweep's {key}: {', '.join(names)}")
    _check_borrow(section, task_grid)
    for task, length in (section.get("lengths") or {}).items():
        if task not in task_grid:
            raise SpecError(f"tune.lengths.{task}: not a task of this sweep; tasks: {', '.join(task_grid)}")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise SpecError(f"tune.lengths.{task}: expected an integer >= 1, got {quote(length)}")
    if section.get("algorithm", "random") not in ALGORITHMS:
        raise SpecError(f"tune.algorithm: expected {', '.join(ALGORITHMS)}, got {quote(section['algorithm'])}")
    check_lr_range(section.get("lr_range", LR_RANGE), "tune.lr_range")
    return section


def _check_borrow(section: dict, task_grid: dict) -> None:
    """``tune.borrow``: each key a task of the sweep that is not tuned itself, each value one that is."""
    borrow = section.get("borrow") or {}
    tuned = [t for t in task_grid if t not in borrow and (section.get("tasks") is None or t in section["tasks"])]
    for task, source in borrow.items():
        if task not in task_grid:
            raise SpecError(f"tune.borrow.{task}: not a task of this sweep; tasks: {', '.join(task_grid)}")
        if task in (section.get("tasks") or ()):
            raise SpecError(f"tune.borrow.{task}: also in tune.tasks; a task is tuned or borrows, not both")
        if source not in tuned:
            raise SpecError(f"tune.borrow.{task}: {quote(source)} is not a tuned task of this sweep; tuned: "
                            f"{', '.join(tuned) or 'none'}")


def _lr_points(section: dict) -> dict:
    """A section with ``lrs``: increasing finite numbers > 0, two at least; ``trials`` their count, a grid."""
    points = section["lrs"]
    if not (len(points) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                      and v > 0 for v in points)
            and all(a < b for a, b in zip(points, points[1:]))):
        raise SpecError(f"tune.lrs: expected two or more increasing numbers > 0, got {quote(points)}")
    for key in ("lr_range", "algorithm"):
        if key in section and (key == "lr_range" or section[key] != "grid"):
            raise SpecError(f"tune.{key}: not with tune.lrs (the learning rates are its points, tried as a grid)")
    if section.get("trials", len(points)) != len(points):
        raise SpecError(f"tune.trials: {section['trials']} with {len(points)} tune.lrs; leave it out (one trial a "
                        f"point)")
    return {**section, "lrs": [float(v) for v in points], "trials": len(points), "algorithm": "grid"}


def check_lr_range(values, where: str) -> tuple[float, float]:
    """A learning-rate range ``[low, high]``: two finite numbers, 0 < low < high (``tune.lr_range``, ``--lr-range``)."""
    if not (isinstance(values, (list, tuple)) and len(values) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            and 0 < values[0] < values[1]):
        raise SpecError(f"{where}: expected [low, high], finite numbers with 0 < low < high, got {quote(values)}")
    return float(values[0]), float(values[1])


def _train_grid(values: dict, where: str) -> list[dict]:
    """Every combination of the training options listed (``clipnorm: [1.0, null]``); an option whose value is
    itself a list (``test_lengths``) is gridded by a list of lists."""
    listed = {k for k, v in values.items() if isinstance(v, list)
              and (k not in LIST_OPTIONS or (v and all(isinstance(e, list) for e in v)))}
    keys = sorted(listed)
    points = [dict(values, **dict(zip(keys, point))) for point in itertools.product(*(values[k] for k in keys))]
    if not points:
        raise SpecError(f"{where}.{next(k for k in keys if not values[k])}: empty list; give one value or a list")
    return [_train_options(point, where) for point in points]


LIST_OPTIONS = ("test_lengths",)  # training options whose value is a list


def _train_options(values: dict, where: str) -> dict:
    """The training options as asked (``values``), once TrainConfig has accepted them."""
    TrainConfig.of(values, where)
    return dict(values)


def _mapping(value, where: str, required: bool = False, valid: list[str] | None = None) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or (required and not value):
        hint = f" of {', '.join(valid)}" if valid else ""
        raise SpecError(f"{where}: expected a non-empty mapping{hint}, got {quote(value)}")
    return value


def _as_list(value, where: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpecError(f"{where}: empty list; give one value or a list of values")
    return values


def _grid(params, where: str) -> list[dict]:
    """Every combination of the listed values: {a: [1, 2], b: 3} → [{a: 1, b: 3}, {a: 2, b: 3}]."""
    params = _mapping(params, where)
    keys = list(params)
    choices = [_as_list(params[k], f"{where}.{k}") for k in keys]
    return [dict(zip(keys, point)) for point in itertools.product(*choices)]
