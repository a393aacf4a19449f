"""`make compose-check` (tests/acceptance/compose_check.py), the cheap parts: the override changes only what must
differ here, the images it builds are docker-compose.yml's, the operator command it runs in the page's container is in
that image. The check itself needs root and podman and takes minutes: it is run by `make compose-check`, not by these
tests."""

from __future__ import annotations

import os

import yaml

from tests.acceptance import compose_check
from tests.deploy.files import DOCKERFILES, ROOT, dockerfile, import_closure


def test_the_override_changes_only_the_postgres_image():
    override = yaml.safe_load(compose_check.OVERRIDE.read_text())
    compose = yaml.safe_load(compose_check.COMPOSE_FILE.read_text())
    assert override == {"services": {"postgres": {"image": override["services"]["postgres"]["image"]}}}
    assert override["services"]["postgres"]["image"] != compose["services"]["postgres"]["image"]


def test_the_images_built_are_compose_s_and_the_stand_in():
    images = compose_check.compose_images()
    assert images["torchserve"] == ("digits-torchserve:latest", DOCKERFILES["torchserve"])
    assert images["ui"] == ("digits-ui:latest", DOCKERFILES["ui"])
    assert images["postgres"][1] == compose_check.POSTGRES_DOCKERFILE


def test_every_image_takes_the_local_base_image_as_a_build_argument():
    for path in [*DOCKERFILES.values(), compose_check.POSTGRES_DOCKERFILE]:
        stages = dockerfile(path)
        assert all(stage.base in ("${PYTHON_IMAGE}", "${BASE_IMAGE}") for stage in stages), path


def test_the_stand_in_entry_point_is_copied_and_executable():
    (stage,) = dockerfile(compose_check.POSTGRES_DOCKERFILE)
    ((sources, _, _),) = stage.copies()
    assert os.access(ROOT / sources[0], os.X_OK)


def test_the_operator_command_is_in_the_page_s_image():
    module = compose_check.SET_DEFAULT[compose_check.SET_DEFAULT.index("-m") + 1]
    files, _ = import_closure(module)
    copied = [source.rstrip("/") for sources, _, _ in dockerfile(DOCKERFILES["ui"])[-1].copies() for source in sources]
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        assert any(relative == c or relative.startswith(c + "/") for c in copied), f"{relative} not in the ui image"


def test_the_summary_line_names_the_checks_and_figures():
    figures = {"build": 100.4, "start": 20.2, "recovery": 9.6, "restart": 12.0}
    line = compose_check.summary(figures, ["a", "b"], None, total=300)
    assert "\n" not in line and line.startswith("compose-check FAIL: 2/7 checks passed (a, b)")
    assert "base image cached, build 100 s, start 20 s" in line and "total 300 s" in line
