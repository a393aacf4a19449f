"""The dependency direction, checked on the source: pages (ui) -> the application layer (app) -> the services (serving:
TorchServe, db: PostgreSQL; neither imports the other) -> settings; handler imports nothing of ours;
deploy and training sit on top, and nothing in the running product (settings, serving, db, app, ui, handler)
imports them. Every import counts, also the lazy ones inside functions."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("settings", "handler", "serving", "db", "app", "ui", "deploy", "training")
# What each package of the running product may import (besides itself).
ALLOWED = {
    "settings": set(),
    "handler": set(),
    "serving": {"settings"},
    "db": {"settings"},
    "app": {"settings", "serving", "db"},
    "ui": {"settings", "app"},
}


def sources(package: str) -> list[Path]:
    single = ROOT / f"{package}.py"
    return [single] if single.exists() else sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    """The top-level local packages a file imports anywhere in it (relative imports stay in the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def edges() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in PACKAGES:
        for path in sources(package):
            for target in imported_packages(path) - {package}:
                graph[package][target].append(str(path.relative_to(ROOT)))
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_package_level_import_cycle():
    graph = {package: set(targets) for package, targets in edges().items()}
    assert cycle(graph) is None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_the_running_product_imports_only_the_layers_below_it(package):
    wrong = {target: files for target, files in edges()[package].items() if target not in ALLOWED[package]}
    assert not wrong, "imports against the layer order"


def test_nothing_in_the_running_product_imports_deploy_or_training():
    graph = edges()
    for package in ALLOWED:
        assert not {"deploy", "training"} & set(graph[package]), f"{package} imports {dict(graph[package])}"


def test_every_python_package_of_the_repository_is_classified():
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} | {path.stem for path in ROOT.glob("*.py")}
    assert found - {"tests"} == set(PACKAGES)
