"""Imports run one way: models/tasks ← core ← runner ← sweep ← {speed, tune} ← report ← cli, and in no circle.

Every ``import`` of the package's modules is read with ``ast`` (inside functions too: a late import is still a
dependency), nothing is imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"models": 0, "tasks": 0, "bench.core": 1, "bench.runner": 2, "bench.sweep": 3, "bench.speed": 4,
          "bench.tune": 4, "bench.report": 5, "bench.listing": 6, "bench.cli": 6, "bench": 6}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules) -> set[str]:
    """The package modules ``path`` imports: ``from bench.sweep import grid`` is bench.sweep.grid, ``from
    bench.core.spec import RunSpec`` is bench.core.spec."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return {name for name in found if name in modules}


def layer(module: str) -> int:
    """The layer of a module: that of its longest prefix in LAYERS."""
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def graph() -> dict[str, set[str]]:
    files = [p for folder in ("bench", "models", "tasks") for p in (ROOT / folder).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    return {name: imports(path, modules) - {name} for name, path in modules.items()}


def test_every_layer_is_known():
    assert all(layer(module) is not None for module in graph())


@pytest.mark.parametrize("module, imported", sorted((m, i) for m, deps in graph().items() for i in deps))
def test_no_import_runs_up_the_layers(module, imported):
    if imported == module.rsplit(".", 1)[0] or module == "bench":
        return  # a module may use its own package's face; the package's face is the API, at the top
    assert layer(imported) <= layer(module), f"{module} (layer {layer(module)}) imports {imported} " \
                                             f"(layer {layer(imported)})"


def test_no_circle():
    edges, seen, path = graph(), {}, []

    def visit(node):
        seen[node] = "open"
        path.append(node)
        for nxt in sorted(edges[node]):
            if seen.get(nxt) == "open":
                pytest.fail("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in seen:
                visit(nxt)
        seen[node] = "done"
        path.pop()

    for node in sorted(edges):
        if node not in seen:
            visit(node)


def test_the_bottom_layer_imports_only_models_tasks_and_the_standard_library():
    import sys

    for path in (ROOT / "bench" / "core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("bench.core") or top in ("models", "tasks"), \
                    f"{path.name} imports {name}"
