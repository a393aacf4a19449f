"""The dependency direction, checked on the source: pages (ui) -> the application layer (app) -> the services (serving:
TorchServe, db: PostgreSQL; neither imports the other) -> settings and records (the records every layer shares:
the model's answer, the stored prediction, the errors the pages show); handler imports nothing of ours. On top of the
running product sit deploy (supervision), training and tools (benchmarks, load); nothing in the product imports them,
and nothing but the tests imports the tests. Every import counts, also the lazy ones inside functions; and a name
handed on from another package (a re-export) counts as an import of that package."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("settings", "records", "handler", "serving", "db", "app", "ui", "deploy", "training", "tools")
PRODUCT = ("settings", "records", "handler", "serving", "db", "app", "ui")  # what runs; the rest is around it
# What each package may import (besides itself). "tests" is in none: the tests import the code, never the reverse.
ALLOWED = {
    "settings": set(),
    # the shared records (the model's answer, the stored prediction, the errors the pages show): under every layer
    "records": set(),
    "handler": set(),  # goes into the .mar alone
    "serving": {"settings", "records"},
    "db": {"settings", "records"},
    "app": {"settings", "records", "serving", "db"},
    "ui": {"settings", "records", "app"},
    # supervision: starts PostgreSQL, TorchServe and the page, and talks to them through the services' clients
    "deploy": {"settings", "records", "serving", "db"},
    # the model (handler), the learning loop's stores and gate (db, app), a private TorchServe to measure (deploy)
    "training": {"settings", "records", "handler", "serving", "db", "app", "deploy"},
    # the product driven from outside or its parts timed alone, with training's data sets
    "tools": {"settings", "records", "handler", "serving", "db", "app", "deploy", "training"},
}
OURS = (*PACKAGES, "tests")


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
    return found & set(OURS)


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
def test_each_package_imports_only_the_layers_it_may(package):
    wrong = {target: files for target, files in edges()[package].items() if target not in ALLOWED[package]}
    assert not wrong, "imports against the layer order"


def test_nothing_in_the_running_product_imports_deploy_training_or_tools():
    graph = edges()
    for package in PRODUCT:
        assert not {"deploy", "training", "tools"} & set(graph[package]), f"{package} imports {dict(graph[package])}"


def test_every_python_package_of_the_repository_is_classified():
    found = {path.parent.name for path in ROOT.glob("*/__init__.py")} | {path.stem for path in ROOT.glob("*.py")}
    assert found - {"tests"} == set(PACKAGES) == set(ALLOWED)


# A re-export hides an import: ui taking db's rows from a module of app depends on db all the same, while the import
# graph shows ui -> app only. So a module may not hand on a name it took from another of our packages (listed in its
# __all__, imported as itself, or imported and never used: there only for its importers), and no module may take a
# name through a module of another package that only took it from elsewhere (attribute access included).


def foreign_names(tree: ast.Module, package: str) -> dict[str, str]:
    """The names a module of `package` binds to another of our packages' names (imported, or aliased `X = Y` at the
    top level), each with where it comes from."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            found |= {
                a.asname or a.name: f"{node.module}.{a.name}" for a in node.names if top in OURS and top != package
            }
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in found:
            found |= {target.id: found[node.value.id] for target in node.targets if isinstance(target, ast.Name)}
    return found


def _all(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and isinstance(
            getattr(node, "value", None), ast.List | ast.Tuple
        ):
            names |= {e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return names


def _used(tree: ast.Module) -> set[str]:
    """The names the module reads, in code and in string annotations (an alias `X = Y` reads Y only to hand on X)."""
    aliases = {
        id(node.value) for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
    }
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store) and id(node) not in aliases:
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                names |= {n.id for n in ast.walk(ast.parse(node.value, mode="eval")) if isinstance(n, ast.Name)}
            except SyntaxError:
                continue
    return names


def handed_on(source: str, *, package: str) -> set[str]:
    """The names a module of `package` hands on from another of our packages: in __all__, imported as themselves
    (`from db.pool import X as X`), or imported (or aliased) and never used."""
    tree = ast.parse(source)
    exported, used = _all(tree), _used(tree)
    bound_as_itself = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }
    return {name for name in foreign_names(tree, package) if name in exported | bound_as_itself or name not in used}


def module_of(path: str) -> str:
    """The dotted name of the module at path: app/vocabulary.py is app.vocabulary, ui/api/__init__.py is ui.api."""
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules_named(tree: ast.Module, modules: Mapping[str, str]) -> dict[str, str]:
    """The names a module binds to our modules: `import app.vocabulary as v`, `from app import vocabulary`, `import
    app`."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {
                (a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names
            }
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            bound |= {
                a.asname or a.name: f"{node.module}.{a.name}"
                for a in node.names
                if f"{node.module}.{a.name}" in modules
            }
    return bound


def _taken(tree: ast.Module, modules: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(module, name) for each name this module takes from one of our modules: `from m import name`, or `m.name`."""
    bound = _modules_named(tree, modules)

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute) and (base := dotted(node.value)):
            return f"{base}.{node.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
            yield from ((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Attribute) and (base := dotted(node.value)) in modules:
            yield base, node.attr


def taken_through(files: Mapping[str, tuple[str, str]]) -> set[tuple[str, str, str]]:
    """Over files (path -> (package, source)): (importer, module, name) for each name a file takes through a module of
    another package that took it from elsewhere."""
    trees = {path: ast.parse(source) for path, (_, source) in files.items()}
    modules = {module_of(path): path for path in files}
    foreign = {path: foreign_names(trees[path], files[path][0]) for path in files}
    return {
        (importer, modules[module], name)
        for importer, tree in trees.items()
        for module, name in _taken(tree, modules)
        if files[modules[module]][0] != files[importer][0] and name in foreign[modules[module]]
    }


def our_files() -> dict[str, tuple[str, str]]:
    """path -> (package, source) for every module of ours but the tests."""
    return {
        str(path.relative_to(ROOT)): (package, path.read_text()) for package in PACKAGES for path in sources(package)
    }


def re_exports(files: Mapping[str, tuple[str, str]]) -> set[tuple[str, str]]:
    """(module, name) for each name a module hands on from another of our packages."""
    return {(path, name) for path, (package, source) in files.items() for name in handed_on(source, package=package)}


# Modules made up for the finders' own tests: app/vocabulary.py hands db's StoreUnavailable on, app/context.py uses it.
VOCABULARY = ("app", "from db.pool import StoreUnavailable\n\n__all__ = ['StoreUnavailable']\n")
CONTEXT = ("app", "from db.pool import StoreUnavailable\n\nclass App:\n    errors = (StoreUnavailable,)\n")
PAGE = (
    "from app.vocabulary import StoreUnavailable\n"
    "from app.context import App\n"
    "import app.context\n"
    "print(App, StoreUnavailable, app.context.StoreUnavailable)\n"
)


def test_the_re_export_finder_finds_re_exports():
    assert re_exports({"app/vocabulary.py": VOCABULARY, "app/context.py": CONTEXT}) == {
        ("app/vocabulary.py", "StoreUnavailable")
    }
    assert handed_on("from db.pool import StoreUnavailable as StoreUnavailable", package="app")
    assert handed_on("from db.pool import StoreUnavailable  # for the pages", package="app")
    assert handed_on("from db.pool import StoreUnavailable\nUnavailable = StoreUnavailable", package="app")
    assert handed_on("def f():\n    from serving.inference import Prediction", package="app") == {"Prediction"}
    assert not handed_on("from db.pool import StoreUnavailable\ndef f() -> 'StoreUnavailable': ...", package="app")
    assert not handed_on("from app.ports import Records\n__all__ = ['Records']", package="app")  # its own package's
    assert not handed_on("from typing import Any", package="app")  # not ours (ruff finds the unused import)
    # the shared records are no exception: app handing records' names on would hide ui -> records all the same
    assert handed_on("from records.errors import StoreUnavailable\n__all__ = ['StoreUnavailable']", package="app")


def test_the_pass_through_finder_finds_names_taken_through_another_package():
    found = taken_through({"app/vocabulary.py": VOCABULARY, "app/context.py": CONTEXT, "ui/page.py": ("ui", PAGE)})
    assert found == {
        ("ui/page.py", "app/vocabulary.py", "StoreUnavailable"),  # from app.vocabulary import StoreUnavailable
        ("ui/page.py", "app/context.py", "StoreUnavailable"),  # app.context.StoreUnavailable: context only uses it
    }
    assert not taken_through({"app/vocabulary.py": VOCABULARY, "app/use_case.py": ("app", PAGE)})  # app may import db


def test_no_module_hands_on_another_package_s_names():
    """No exceptions: a name shared by several layers lives in records/, under all of them."""
    found = re_exports(our_files())
    assert not found, "import the name where it is defined (records/ for what several layers share)"


def test_no_module_takes_a_name_through_another_package():
    found = taken_through(our_files())
    assert not found, "import the name from the package that defines it"


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
