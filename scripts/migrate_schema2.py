"""Re-key schema-1 run records to schema 2, where a run's id hashes what was asked rather than every default.

    python scripts/migrate_schema2.py SWEEP_FILE_OR_PRESET [--results results]   # training sweeps
    python scripts/migrate_schema2.py --speed SWEEP_NAME [--requested-jit auto]   # bench speed records

Schema 1 hashed the fully resolved spec, so adding any defaulted option changed every id. A training record is
matched to the sweep's spec whose schema-1 id it carries, then rewritten (atomically) under the spec's new id with
its request; nothing else in it changes. A speed record's request is read off its own fields. Records that match
no spec are left as they are and listed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from bench.runner import record


def schema1_id(spec) -> str:
    """The id schema 1 gave ``spec``: a hash of its fully resolved values."""
    r = spec.resolved()
    canonical = {"task": spec.task, "task_params": r.task_params, "model": spec.model,
                 "model_params": r.model_params, "train": asdict(r.train), "seed": spec.seed}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rekey(old: dict, spec, results: Path) -> None:
    new = {**old, "schema": record.SCHEMA, "kind": spec.kind, "run_id": spec.run_id, "request": spec.request()}
    record.write(new, results)
    if spec.run_id != old["run_id"]:
        record.path_for(results, old["sweep"], old["run_id"]).unlink()


def training(sweep_ref: str, results: Path) -> list[str]:
    from bench.sweep import grid

    sweep = grid.load(sweep_ref)
    by_old = {schema1_id(spec): spec for spec in sweep.specs}
    left = []
    for old in record.load(results, sweep.name)[0]:
        spec = by_old.get(old["run_id"])
        if old.get("schema", 1) >= 2:
            continue
        if spec is None:
            left.append(old["run_id"])
            continue
        rekey(old, spec, results)
    return left


def speed(sweep: str, results: Path, requested_jit=None) -> list[str]:
    import models
    from bench.speed.timing import SpeedSpec

    for old in record.load(results, sweep)[0]:
        if old.get("schema", 1) >= 2:
            continue
        entry = models.entry(old["model"])
        asked = {k: v for k, v in (old.get("model_params") or {}).items()
                 if k != entry.width and entry.defaults.get(k) != v}
        fields = {k: old[k] for k in ("model", "units", "batch", "length", "input_width", "min_steps", "min_seconds",
                                      "warmup", "jit_compile", "use_cudnn", "breakdown") if k in old}
        if requested_jit is not None:  # schema 1 stored the effective value over the requested one
            fields["jit_compile"] = requested_jit
        spec = SpeedSpec(**fields, hp=asked, sweep=sweep)
        moved = {k: old.pop(k) for k in ("forward", "train", "roofline_gflops") if k in old}
        old["speed"] = {**(old.get("speed") or {}), **moved}
        old["hp"] = asked
        old["model_params"] = spec.model_params() | {k: v for k, v in (old.get("model_params") or {}).items()}
        rekey(old, spec, results)
    return []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep")
    p.add_argument("--results", default="results", type=Path)
    p.add_argument("--speed", action="store_true", help="SWEEP names a folder of bench speed records")
    p.add_argument("--requested-jit", choices=["auto"], help="speed records measured with --jit auto")
    args = p.parse_args()
    left = speed(args.sweep, args.results, args.requested_jit) if args.speed else training(args.sweep, args.results)
    print(f"{args.sweep}: re-keyed; {len(left)} records matched no spec" + (f": {', '.join(left)}" if left else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
