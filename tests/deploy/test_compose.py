"""docker-compose.yml, checked without a Docker engine: the Compose schema, `docker compose config` when the CLI has
compose, and the wiring — three services, only the page published, health checks, the shared key file, the names
the containers read being Settings fields, and the addresses each side computes with the real code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pydantic
import pytest
import yaml

from deploy import container
from serving.endpoints import read_properties
from settings import Settings
from tests.deploy.files import (
    DOCKERFILES,
    OTHER_ENV,
    ROOT,
    dockerfile,
    registers_by_url,
    settings_env_names,
    settings_for,
)

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = ("POSTGRES_PASSWORD", "STORAGE_SECRET", "ADMIN_PASSWORD")
VARIABLE = re.compile(r"\$(?:\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, applied to every string of the file."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match["name"] or match["bare"]
        current = env.get(name)
        if match["op"] in (":-", "-"):
            return current if current or (match["op"] == "-" and current is not None) else match["arg"]
        if match["op"] in (":?", "?") and not current:
            raise KeyError(f"{name}: {match['arg']}")
        return current or ""

    parts = value.split("$$")
    return "$".join(VARIABLE.sub(substitute, part) for part in parts)


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """.env.example with the secrets it leaves empty filled in, as a user's .env would be."""
    values = env_file(ENV_EXAMPLE)
    return values | {name: f"test-{name.lower()}" for name in SECRETS}  # 16+ characters, as APP_ENV=production needs


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw, env) -> dict:
    return interpolate(raw, env)


def image_env(image: str) -> dict[str, str]:
    return dockerfile(DOCKERFILES[image])[-1].env()


def test_matches_the_compose_specification():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config(env, tmp_path):
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine: `docker compose config` not run")
    if subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("the docker CLI here has no compose plugin: `docker compose config` not run")
    env_path = tmp_path / "env"
    env_path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_path), "config", "--quiet"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_three_services_from_the_official_postgres_image_and_our_dockerfiles(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "torchserve", "ui"}
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-\w+)?", services["postgres"]["image"])
    for name in ("torchserve", "ui"):
        build = services[name]["build"]
        assert (ROOT / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILES[name]


def test_only_the_page_is_published(compose, env):
    services = compose["services"]
    assert "ports" not in services["postgres"] and "ports" not in services["torchserve"]
    (mapping,) = services["ui"]["ports"]
    address, published, target = mapping.split(":")
    assert published == target == services["ui"]["environment"]["UI_PORT"] == env["UI_PORT"]
    assert address == env["UI_PUBLISH_ADDRESS"]


def test_health_checks_gate_the_page(compose):
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["torchserve"]["healthcheck"]["test"] == ["CMD", "python", "-m", "deploy.container", "ping"]
    assert services["ui"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "torchserve": {"condition": "service_healthy"},
    }


def test_container_environment_names_are_settings_fields(compose):
    for name in ("torchserve", "ui"):
        names = set(compose["services"][name]["environment"])
        assert names <= settings_env_names() | OTHER_ENV, f"{name}: {names - settings_env_names() - OTHER_ENV}"


def test_torchserve_listens_on_all_interfaces_only_in_its_container(compose):
    environment = image_env("torchserve") | compose["services"]["torchserve"]["environment"]
    server = container.torchserve(settings_for(environment))
    port = environment["TS_INFERENCE_PORT"]
    assert server.endpoints.inference == f"http://0.0.0.0:{port}"
    assert urlsplit(server.endpoints.management).hostname == urlsplit(server.endpoints.metrics).hostname == "0.0.0.0"
    assert server.properties["disable_token_authorization"] == "false"
    local = read_properties((ROOT / "config.properties").read_text())
    assert urlsplit(local["inference_address"]).hostname == "127.0.0.1"


def test_torchserve_registers_archives_of_its_store_by_name_only(compose):
    """The page's container registers new versions by file name (docs/deployment.md), so the model API stays on; no
    URL is fetched and no path copied into the (read-only) store."""
    environment = image_env("torchserve") | compose["services"]["torchserve"]["environment"]
    server = container.torchserve(settings_for(environment))
    assert "allowed_urls" in server.properties
    assert registers_by_url(server.properties) == []
    mounts = compose["services"]["torchserve"]["volumes"]
    assert f"./model_store:{environment['MODEL_STORE']}:ro" in mounts


def test_the_page_reaches_torchserve_and_postgres_by_service_name(compose):
    services = compose["services"]
    ui_env = image_env("ui") | services["ui"]["environment"]
    settings = settings_for(ui_env)
    torchserve_env = services["torchserve"]["environment"]
    server = container.torchserve(settings)  # the addresses the page computes (as deploy.run.torchserve does)
    assert server.endpoints.inference == f"http://torchserve:{torchserve_env['TS_INFERENCE_PORT']}"
    assert server.endpoints.management == f"http://torchserve:{torchserve_env['TS_MANAGEMENT_PORT']}"
    assert settings.ui_host == "0.0.0.0"
    url = urlsplit(settings.database_url)
    postgres = services["postgres"]["environment"]
    assert (url.hostname, url.port or 5432) == ("postgres", 5432)
    assert (url.username, url.password, url.path) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], "/" + postgres["POSTGRES_DB"],
    )  # fmt: skip


def _mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """target -> (source, read only) of a service's short-syntax volumes."""
    result = {}
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        result[target] = (source, mode == ["ro"])
    return result


def test_the_key_file_is_shared_through_a_volume(compose):
    services = compose["services"]
    home = Path(image_env("torchserve")["TS_HOME"])  # TorchServe's working directory: it writes key_file.json there
    key_file = Path(services["ui"]["environment"]["TS_KEY_FILE"])
    torchserve_mounts, ui_mounts = _mounts(services["torchserve"]), _mounts(services["ui"])
    assert key_file == home / "key_file.json"
    volume, read_only = torchserve_mounts[str(home)]
    assert volume in compose["volumes"] and not read_only
    assert ui_mounts[str(home)] == (volume, True)


def test_mounted_files_exist_where_the_containers_read_them(compose):
    services = compose["services"]
    for service in services.values():
        for target, (source, _) in _mounts(service).items():
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{source} (mounted at {target}) is not in the repository"
    torchserve_mounts = _mounts(services["torchserve"])
    workdir = dockerfile(DOCKERFILES["torchserve"])[-1].args("WORKDIR")[-1]
    assert torchserve_mounts[f"{workdir}/config.properties"] == ("./config.properties", True)
    model_store = image_env("torchserve")["MODEL_STORE"]
    assert torchserve_mounts[model_store] == ("./model_store", True)
    assert _mounts(services["ui"])[services["ui"]["environment"]["MODEL_STORE"]] == ("./model_store", True)
    assert _mounts(services["postgres"])["/docker-entrypoint-initdb.d/init.sql"] == ("./db/init.sql", True)


def test_secrets_come_from_env_without_defaults(raw, env):
    text = COMPOSE_FILE.read_text()
    for name in SECRETS:
        uses = [m for m in VARIABLE.finditer(text.replace("$$", "")) if name in (m["name"], m["bare"])]
        assert uses and all(m["op"] == ":?" for m in uses), f"{name} must be required (${{{name}:?...}}) everywhere"
        assert env_file(ENV_EXAMPLE)[name] == "", f".env.example must not carry a value for {name}"
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(raw, {key: value for key, value in env.items() if key != "POSTGRES_PASSWORD"})
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False).returncode
    assert ignored == 0, ".env must be ignored by git"


def test_env_example_is_committed_and_names_every_secret():
    """.env.example is in git, .env never (ignored: the test above; nor in an image's build context), and the example
    names each secret the settings read (DATABASE_URL commented out: compose builds it) and compose's
    POSTGRES_PASSWORD, without values."""
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env.example"], cwd=ROOT, capture_output=True)
    assert tracked.returncode == 0, ".env.example must be committed"
    assert subprocess.run(["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True).returncode
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    secret_fields = {
        name.upper()
        for name in Settings.model_fields
        if re.search("secret|password|token|url", name) and not name.endswith("_file")
    }
    assert secret_fields == {"DATABASE_URL", "STORAGE_SECRET", "ADMIN_PASSWORD"}, "a new secret: name it below"
    named = dict(re.findall(r"^(?:# )?([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    for name in secret_fields | {"POSTGRES_PASSWORD"}:
        assert name in named, f".env.example does not name {name}"
    assert not any(named[name] for name in SECRETS), "secrets are left empty in .env.example"


def test_the_page_runs_in_production_with_the_secrets_of_env(compose, env):
    ui_env = image_env("ui") | compose["services"]["ui"]["environment"]
    assert ui_env["APP_ENV"] == "production"
    settings = settings_for(ui_env)
    assert settings.app_env == "production"
    # what ui/main.py checks before serving: the values of .env, never ones generated in the container's var/
    assert settings.secret("storage_secret") == env["STORAGE_SECRET"]
    assert settings.secret("admin_password") == env["ADMIN_PASSWORD"]
    with pytest.raises(pydantic.ValidationError, match="ADMIN_PASSWORD is too short"):
        settings_for(ui_env | {"ADMIN_PASSWORD": "short"})


def test_env_example_names_every_variable_the_file_uses():
    used = {match["name"] or match["bare"] for match in VARIABLE.finditer(COMPOSE_FILE.read_text().replace("$$", ""))}
    assert used <= set(env_file(ENV_EXAMPLE)), used - set(env_file(ENV_EXAMPLE))
