"""The two Dockerfiles, checked without a Docker engine: the pins are pyproject.toml's, what each entry point imports is
copied in and installed, every COPY source exists, the images build the archives config.properties loads."""

from __future__ import annotations

import fnmatch
import importlib.metadata as metadata

import pytest
from packaging.requirements import Requirement

from serving.endpoints import read_properties
from tests.deploy.files import (
    DOCKERFILES,
    ENTRY_POINTS,
    OTHER_ENV,
    ROOT,
    dockerfile,
    import_closure,
    normalise,
    pyproject_requirements,
    settings_env_names,
)
from training.archive import archive_name


def final_stage(image: str):
    return dockerfile(DOCKERFILES[image])[-1]


@pytest.mark.parametrize("image", DOCKERFILES)
def test_pins_are_those_of_pyproject(image):
    project = pyproject_requirements()
    for stage in dockerfile(DOCKERFILES[image]):
        for name, requirement in stage.requirements().items():
            assert name in project, f"{image}: {name} is not a dependency in pyproject.toml"
            assert requirement.specifier == project[name].specifier, f"{image}: {name} {requirement.specifier}"
            assert requirement.extras == project[name].extras, f"{image}: {name} extras"


def test_torchserve_image_runs_torchserve_0_12_0_on_python_3_11():
    stages = dockerfile(DOCKERFILES["torchserve"])
    assert str(stages[-1].requirements()["torchserve"].specifier) == "==0.12.0"
    assert str(stages[0].requirements()["torch-model-archiver"].specifier) == "==0.12.0"
    assert str(stages[-1].requirements()["torch"].specifier) == "==2.13.0"
    assert all(stage.base == "${PYTHON_IMAGE}" for stage in stages)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILES["torchserve"].read_text()
    assert any("openjdk-17-jre-headless" in run for run in stages[-1].args("RUN"))


def _installed_closure(requirements: dict[str, Requirement]) -> set[str]:
    """The distributions pip installs for these requirements (from the metadata of the ones installed here)."""
    seen, todo = set(), [(normalise(r.name), set(r.extras)) for r in requirements.values()]
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            environments = [{"extra": extra} for extra in extras | {""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((normalise(requirement.name), set(requirement.extras)))
    return seen


@pytest.mark.parametrize("image", DOCKERFILES)
def test_what_the_entry_point_imports_is_installed(image):
    _, modules = import_closure(ENTRY_POINTS[image])
    installed = _installed_closure(final_stage(image).requirements())
    distributions = metadata.packages_distributions()
    for module in modules:
        providers = {normalise(name) for name in distributions.get(module, [module])}
        assert providers & installed, f"{image}: `import {module}` needs {providers}, not installed by its Dockerfile"


def _dockerignored(relative: str) -> bool:
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    prefixes = [relative] + ["/".join(relative.split("/")[:depth]) for depth in range(1, relative.count("/") + 1)]
    return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


@pytest.mark.parametrize("image", DOCKERFILES)
def test_what_the_entry_point_imports_is_copied_in(image):
    files, _ = import_closure(ENTRY_POINTS[image])
    sources = [
        source.rstrip("/") for sources, _, stage in final_stage(image).copies() if stage is None for source in sources
    ]
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        assert any(relative == s or relative.startswith(s + "/") for s in sources), f"{image}: {relative} not copied"
        assert not _dockerignored(relative), f"{relative} is excluded by .dockerignore"


@pytest.mark.parametrize("image", DOCKERFILES)
def test_copy_sources_exist_and_are_not_ignored(image):
    for stage in dockerfile(DOCKERFILES[image]):
        for sources, _, from_stage in stage.copies():
            if from_stage is None:
                for source in sources:
                    assert list(ROOT.glob(source.rstrip("/"))), f"{image}: COPY {source}: no such file"
                    assert not _dockerignored(source.rstrip("/")), f"{image}: COPY {source} is in .dockerignore"


@pytest.mark.parametrize("image", DOCKERFILES)
def test_environment_names_are_settings_fields(image):
    names = set(final_stage(image).env())
    assert names <= settings_env_names() | OTHER_ENV, names - settings_env_names() - OTHER_ENV


def test_images_run_as_the_same_user():
    """TorchServe writes key_file.json readable by its owner only; the page reads it through the shared volume."""
    users = {image: [run for run in final_stage(image).args("RUN") if "useradd" in run] for image in DOCKERFILES}
    assert all("--uid 10001" in runs[0] for runs in users.values()), users
    assert all(final_stage(image).args("USER") == ["app"] for image in DOCKERFILES)


def test_the_image_builds_every_archive_config_properties_loads():
    properties = read_properties((ROOT / "config.properties").read_text())
    weights = sorted(ROOT.glob("model_store/v*/weights.pt"))
    built = {archive_name(path.parent.name.removeprefix("v")) for path in weights}
    loaded = {name for name in properties["load_models"].split(",") if name}
    assert loaded <= built, f"config.properties loads {loaded - built}, but no model_store/v*/weights.pt builds it"
    stage = dockerfile(DOCKERFILES["torchserve"])[0]
    assert any("model_store/v*/weights.pt" in run and "training.archive" in run for run in stage.args("RUN"))
    assert (["/archives/"], "/srv/model_store/", "archives") in final_stage("torchserve").copies()


def test_what_the_handler_imports_is_installed_in_the_torchserve_image():
    """The .mar carries the handler's code; TorchServe's worker runs it with the image's packages."""
    _, modules = import_closure("handler.mnist_handler")
    installed = _installed_closure(final_stage("torchserve").requirements())
    distributions = metadata.packages_distributions()
    assert {"torch", "ts", "PIL", "numpy"} <= modules
    for module in modules:
        providers = {normalise(name) for name in distributions.get(module, [module])}
        assert providers & installed, f"the handler's `import {module}` needs {providers}"
