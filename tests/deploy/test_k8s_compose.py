"""The cluster runs what docker-compose.yml runs (and `make compose-check` runs for real): the same images, the same
environment but for the differences listed here, each on purpose, and the same ports."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from deploy import container
from settings import Settings
from tests.deploy.files import DOCKERFILES, ROOT, dockerfile, settings_env_names, settings_for
from tests.deploy.test_compose import COMPOSE_FILE, ENV_EXAMPLE, SECRETS, env_file, interpolate
from tests.deploy.test_k8s import K8S, by_kind, container_env, only_container, render

# Secrets come from .env or a Secret: stand-ins long enough for APP_ENV=production
STAND_IN_SECRETS = {"STORAGE_SECRET": "s" * 24, "ADMIN_PASSWORD": "a" * 24}

# Names whose value in the cluster differs from compose's, and why. Everything else must be equal in effect.
DIFFERENCES = {
    "ui": {
        "TS_HOST": "the TorchServe Service's name, not the compose service's",
        "TS_KEY_FILE": "a placeholder key file from a ConfigMap: token authorization is off in the cluster",
        "DATABASE_URL": "a managed PostgreSQL, from the Secret",
        "MODEL_STORE": "compose mounts model_store/ (offline metrics on /models); the cluster's pods have none",
    },
    "torchserve": {"TS_PROPERTIES": "token authorization off, no registering over the API (torchserve.yaml)"},
}
# TorchServe settings that TS_PROPERTIES changes in the cluster (see DIFFERENCES)
CLUSTER_PROPERTIES = {"disable_token_authorization", "enable_model_api"}


@pytest.fixture(scope="module")
def compose() -> dict:
    env = env_file(ENV_EXAMPLE) | {name: f"test-{name.lower()}" for name in SECRETS}
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env)["services"]


@pytest.fixture(scope="module")
def cluster() -> dict:
    return by_kind(render(K8S))


def image_env(service: str) -> dict[str, str]:
    return dockerfile(DOCKERFILES[service])[-1].env()


def compose_env(compose: dict, service: str) -> dict[str, str]:
    """What a container of `service` sees under compose: its image's ENV, then the compose file's environment."""
    return image_env(service) | {key: str(value) for key, value in compose[service]["environment"].items()}


def cluster_env(cluster: dict, service: str) -> dict[str, str]:
    """The same for the cluster's pod, secrets left out (they are references there)."""
    item = only_container(cluster[("Deployment", f"digits-{service}")])
    return image_env(service) | {k: v for k, v in container_env(item, cluster).items() if not v.startswith("<secret")}


@pytest.mark.parametrize("service", DOCKERFILES)
def test_the_cluster_runs_the_images_compose_builds(compose, cluster, service):
    build = compose[service]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILES[service]
    image = only_container(cluster[("Deployment", f"digits-{service}")])["image"]
    assert image.rsplit("/", 1)[-1] == compose[service]["image"]  # a registry in front of the name is fine


@pytest.mark.parametrize("service", DOCKERFILES)
def test_the_environment_is_compose_s_but_for_the_listed_differences(compose, cluster, service):
    ours, theirs = compose_env(compose, service), cluster_env(cluster, service)
    differences = DIFFERENCES[service]
    for name in differences:
        assert ours.get(name) != theirs.get(name), f"{name} is the same in both now: drop it from DIFFERENCES"
    fields = {name.upper(): name for name in Settings.model_fields}
    ours_settings, theirs_settings = settings_for(ours | STAND_IN_SECRETS), settings_for(theirs | STAND_IN_SECRETS)
    # TorchServe's ports: compared as the addresses each side computes (unset: config.properties's)
    assert _ports(ours_settings) == _ports(theirs_settings), service
    compared = (set(ours) | set(theirs)) - set(differences) - {"DATABASE_URL", "STORAGE_SECRET", "ADMIN_PASSWORD"}
    for name in compared - {"TS_INFERENCE_PORT", "TS_MANAGEMENT_PORT", "TS_METRICS_PORT"}:
        if name in fields:  # compared in effect: a name one side leaves to its default is the same if the values are
            field = fields[name]
            assert getattr(ours_settings, field) == getattr(theirs_settings, field), f"{service}: {name}"
        else:
            assert ours.get(name) == theirs.get(name), f"{service}: {name} {ours.get(name)!r} != {theirs.get(name)!r}"
    assert set(ours) | set(theirs) <= settings_env_names() | {"TORCH_NUM_THREADS", *image_env(service)}


def test_torchserve_serves_with_the_same_configuration(compose, cluster):
    """The effective config.properties (batching, workers, models loaded, sizes) but for what TS_PROPERTIES changes."""
    ours = container.torchserve(settings_for(compose_env(compose, "torchserve"))).properties
    theirs = container.torchserve(settings_for(cluster_env(cluster, "torchserve"))).properties
    assert {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)} == CLUSTER_PROPERTIES


def _ports(settings: Settings) -> dict[str, int]:
    """TorchServe's ports as a process with these settings computes them (as deploy.run and the page do)."""
    endpoints = container.torchserve(settings).endpoints
    return {name: urlsplit(getattr(endpoints, name)).port for name in ("inference", "management", "metrics")}


def _container_ports(cluster: dict, service: str) -> dict[str, int]:
    item = only_container(cluster[("Deployment", f"digits-{service}")])
    return {port["name"]: port["containerPort"] for port in item["ports"]}


def test_the_page_listens_on_the_port_compose_publishes(compose, cluster):
    (mapping,) = compose["ui"]["ports"]
    _, _, target = mapping.rsplit(":", 2)
    assert _container_ports(cluster, "ui") == {"http": int(target)}
    assert settings_for(cluster_env(cluster, "ui") | STAND_IN_SECRETS).ui_port == int(target)
    assert f"EXPOSE {target}" in DOCKERFILES["ui"].read_text()


def test_torchserve_listens_on_the_ports_compose_gives_it(compose, cluster):
    ours = _ports(settings_for(compose_env(compose, "torchserve") | STAND_IN_SECRETS))
    assert _container_ports(cluster, "torchserve") == ours
    exposed = next(args for key, args in dockerfile(DOCKERFILES["torchserve"])[-1].instructions if key == "EXPOSE")
    assert {int(port) for port in exposed.split()} == set(ours.values())
    service = cluster[("Service", "digits-torchserve")]
    assert {p["port"] for p in service["spec"]["ports"]} == set(ours.values())
    annotations = cluster[("Deployment", "digits-torchserve")]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ours["metrics"]
