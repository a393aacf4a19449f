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
PACKAGES = ("settings", "handler", "serving", "db", "app", "ui", "deploy", "training", "tools")
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


def test_nothing_in_the_running_product_imports_deploy_training_or_tools():
    graph = edges()
    for package in ALLOWED:
        assert not {"deploy", "training", "tools"} & set(graph[package]), f"{package} imports {dict(graph[package])}"


def test_every_python_package_of_the_repository_is_classified():
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} | {path.stem for path in ROOT.glob("*.py")}
    assert found - {"tests"} == set(PACKAGES)


# TorchServe's auth (the key file, the Bearer header, the retry after a refused key) is built in serving/ only; the
# tools around the product ask serving's clients (SyncInference, SyncManagement, serving.auth.authorization).
AUTH_CLASSES = {"TokenAuth", "KeyFile"}


def _named(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.name.rsplit(".", 1)[-1] if isinstance(node, ast.alias) else None


def builds_torchserve_auth(source: str) -> list[str]:
    """Where a module builds TorchServe auth by hand: serving.auth's TokenAuth or KeyFile named, or an Authorization
    header or a Bearer value written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if _named(node) in AUTH_CLASSES:
            found.append(f"line {getattr(node, 'lineno', '?')}: {_named(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip().lower()
            if text == "authorization" or text.split(" ", 1)[0] == "bearer":
                found.append(f"line {node.lineno}: {node.value!r}")
    return found


def tools_and_product() -> list[Path]:
    """Every module but serving's and the tests themselves: the product's other packages, deploy, training, tools
    (benchmarks, load, the stack), the tests' helpers (the stand-ins) and the acceptance checks (compose-check)."""
    tests = ROOT / "tests"
    tools = [*tests.glob("*.py"), *(tests / "support").glob("*.py"), *(tests / "acceptance").glob("*.py")]
    return [
        *(path for package in PACKAGES if package != "serving" for path in sources(package)),
        *sorted(path for path in tools if not path.name.startswith("test_")),
    ]


def test_the_auth_finder_finds_hand_made_auth():
    assert builds_torchserve_auth("from serving.auth import KeyFile, TokenAuth\nauth = TokenAuth(KeyFile(p), 'x')")
    assert builds_torchserve_auth("import serving.auth\nauth = serving.auth.TokenAuth(None, 'inference')")
    assert builds_torchserve_auth("headers = {'Authorization': f'Bearer {key}'}")
    assert builds_torchserve_auth("request.headers['authorization'] = 'Bearer ' + key")
    assert not builds_torchserve_auth("from serving.auth import authorization\nheaders = authorization(path, 'x')")
    assert not builds_torchserve_auth('"""Authorization: the page asks serving for its keys."""')


def test_only_serving_builds_torchserve_auth():
    found = {str(path.relative_to(ROOT)): builds_torchserve_auth(path.read_text()) for path in tools_and_product()}
    assert len(found) > 50
    assert {"deploy/container.py", "tools/bench.py", "tests/acceptance/compose_check.py"} <= found.keys()
    assert not {path: where for path, where in found.items() if where}, "use serving's clients (serving/auth.py)"
