"""Sweep files: a small YAML grid of tasks × models × seeds, expanded into RunSpecs."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.spec import RunSpec, SpecError, TrainConfig

PRESETS = Path(__file__).parent / "presets"
KEYS = {"name", "description", "seeds", "train", "tasks", "models", "overrides"}


@dataclass(frozen=True)
class Sweep:
    name: str
    description: str
    specs: list[RunSpec]


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def locate(name_or_path: str) -> Path:
    """A preset's name or a file's path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (PRESETS / f"{name_or_path}.yaml").is_file():
        return PRESETS / f"{name_or_path}.yaml"
    raise SpecError(f"no sweep file or preset {name_or_path!r}; presets: {', '.join(presets())}")


def load(name_or_path: str) -> Sweep:
    """Read and validate a sweep; any problem is one SpecError line naming the file and the key."""
    path = locate(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        return expand(data, default_name=path.stem)
    except (ValueError, TypeError) as e:
        raise SpecError(f"{path}: {e}") from None


def expand(data: dict, default_name: str = "sweep") -> Sweep:
    """The grid as a list of resolved RunSpecs, in file order."""
    if not isinstance(data, dict):
        raise SpecError("a sweep must be a mapping with keys: " + ", ".join(sorted(KEYS)))
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r}; valid: {', '.join(sorted(KEYS))}")
    name = str(data.get("name", default_name))
    seeds = _as_list(data.get("seeds", [0]), "seeds")
    train = _mapping(data.get("train", {}), "train")
    overrides = _mapping(data.get("overrides", {}), "overrides")
    task_grid = _mapping(data.get("tasks"), "tasks", required=True)
    model_grid = _mapping(data.get("models"), "models", required=True)
    for model, override in overrides.items():
        if model not in model_grid:
            raise SpecError(f"overrides.{model}: not a model of this sweep; models: {', '.join(model_grid)}")
        _train_config({**train, **_mapping(override, f"overrides.{model}")}, f"overrides.{model}")
    specs = []
    for task, task_params in task_grid.items():
        for task_point in _grid(task_params, f"tasks.{task}"):
            for model, model_params in model_grid.items():
                config = _train_config({**train, **overrides.get(model, {})}, f"overrides.{model}" if model in overrides else "train")
                for model_point in _grid(model_params, f"models.{model}"):
                    for seed in seeds:
                        specs.append(RunSpec(task, model, task_point, model_point, config, seed, name).resolved())
    return Sweep(name, str(data.get("description", "")), specs)


def _train_config(values: dict, where: str) -> TrainConfig:
    unknown = sorted(set(values) - set(TrainConfig.keys()))
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(TrainConfig.keys())}")
    return TrainConfig(**values)


def _mapping(value, where: str, required: bool = False) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or (required and not value):
        raise SpecError(f"{where}: expected a non-empty mapping, got {value!r}")
    return {k: ({} if v is None else v) for k, v in value.items()}


def _as_list(value, where: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpecError(f"{where}: empty list")
    return values


def _grid(params: dict, where: str) -> list[dict]:
    """Every combination of the listed values: {a: [1, 2], b: 3} → [{a: 1, b: 3}, {a: 2, b: 3}]."""
    params = _mapping(params, where)
    keys = list(params)
    choices = [_as_list(params[k], f"{where}.{k}") for k in keys]
    return [dict(zip(keys, point)) for point in itertools.product(*choices)]


def pending(sweep: Sweep, results: Path | str) -> list[RunSpec]:
    """Specs of the sweep that have no stored record yet (the same run_id is the same run)."""
    from bench import record

    done = record.stored_ids(results, sweep.name)
    return [spec for spec in sweep.specs if spec.run_id not in done]


def run_sweep(sweep: Sweep, results: Path | str, workers: int = 1, timeout: float | None = None,
              log=print) -> dict[str, int]:
    """Run what is missing, writing each record as it arrives; return the count of each status."""
    from bench import executors, record

    todo = pending(sweep, results)
    log(f"sweep {sweep.name}: {len(sweep.specs)} runs, {len(sweep.specs) - len(todo)} stored, {len(todo)} to run")
    counts = dict.fromkeys(record.STATUSES, 0)
    start = time.perf_counter()
    for i, rec in enumerate(executors.local(todo, workers=workers, timeout=timeout), 1):
        record.write(rec, results)
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        score = rec.get("metrics", {}).get("score")
        shown = f"score {score:.3f}" if score is not None else rec.get("error") or ""
        log(f"[{i}/{len(todo)} {time.perf_counter() - start:6.0f}s] {rec['status']:8s} {rec['task']}"
            f"(length={rec['task_params']['length']}) {rec['model']} seed {rec['seed']}: {shown}")
    return counts
