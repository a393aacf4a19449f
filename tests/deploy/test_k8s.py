"""deploy/k8s, checked without a cluster: rendered as kustomize would (and compared with `kubectl kustomize` when it is
here), validated against the Kubernetes API schemas (kubernetes-validate), the KServe resources by their structure,
and the wiring — replicas, affinity, probes, autoscaling, the Secret, names the pods read being Settings fields."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pydantic
import pytest
import yaml

from deploy import container
from deploy.torchserve import TorchServe, isolated_overrides
from serving.endpoints import read_properties
from tests.deploy.files import (
    DOCKERFILES,
    OTHER_ENV,
    ROOT,
    digit_one_png,
    dockerfile,
    registers_by_url,
    settings_env_names,
    settings_for,
)

K8S = ROOT / "deploy" / "k8s"
KSERVE = K8S / "kserve"
# The oldest Kubernetes the manifests promise to work on, and the newest the validator knows
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterServingRuntime"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}
SECRET = "digits-secrets"


def _pod_specs(doc: dict) -> list[dict]:
    """The objects holding `containers` in a resource: a pod template's spec, or a ServingRuntime's spec."""
    spec = doc.get("spec", {})
    template = spec.get("template", {}).get("spec")
    return [s for s in (template, spec) if isinstance(s, dict) and "containers" in s]


def render(directory: Path) -> list[dict]:
    """What `kustomize build directory` makes of our kustomizations: the resources (files, or folders with their own
    kustomization), the namespace and the image tags. Other kustomize fields fail here, so that using one means
    teaching this function (and the comparison with kubectl below) about it."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kustomization) <= KUSTOMIZATION_FIELDS, set(kustomization) - KUSTOMIZATION_FIELDS
    docs = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs += render(path) if path.is_dir() else [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in docs:
        if "namespace" in kustomization and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = kustomization["namespace"]
        for spec in _pod_specs(doc):
            for item in spec["containers"] + spec.get("initContainers", []):
                for image in kustomization.get("images", []):
                    if item["image"].split(":")[0] == image["name"]:
                        item["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def by_kind(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


@pytest.fixture(scope="module")
def cluster() -> dict[tuple[str, str], dict]:
    return by_kind(render(K8S))


@pytest.fixture(scope="module")
def kserve() -> dict[tuple[str, str], dict]:
    return by_kind(render(KSERVE))


def only_container(deployment: dict) -> dict:
    (item,) = deployment["spec"]["template"]["spec"]["containers"]
    return item


def container_env(item: dict, cluster: dict) -> dict[str, str]:
    """A container's environment: its ConfigMaps (envFrom) and env values; secrets as '<secret:name/key>'."""
    values = {}
    for source in item.get("envFrom", []):
        values |= cluster[("ConfigMap", source["configMapRef"]["name"])]["data"]
    for entry in item.get("env", []):
        if "value" in entry:
            values[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            values[entry["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
    return values


@pytest.mark.parametrize("directory", [K8S, KSERVE], ids=["k8s", "kserve"])
def test_rendering_matches_kubectl_kustomize(directory):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl here: the rendering is not compared with kustomize's")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if result.returncode != 0 and "kustomize" in result.stderr and "unknown command" in result.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert result.returncode == 0, result.stderr
    assert by_kind(render(directory)) == by_kind([doc for doc in yaml.safe_load_all(result.stdout) if doc])


@pytest.mark.parametrize("directory", [K8S, KSERVE], ids=["k8s", "kserve"])
def test_kustomization_resources_exist(directory):
    for entry in yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]:
        assert (directory / entry).exists(), f"{directory.name}/kustomization.yaml lists {entry}, which is missing"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(cluster, kserve, version):
    for doc in cluster.values():
        kubernetes_validate.validate(doc, version, strict=True)
    for (_, name), doc in kserve.items():  # CRDs: not in the schemas; their containers are Pod containers
        for spec in _pod_specs(doc):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": copy.deepcopy(spec)}
            pod["spec"] = {key: pod["spec"][key] for key in ("containers",)}
            kubernetes_validate.validate(pod, version, strict=True)


def test_the_schema_validation_catches_a_misspelt_field(cluster):
    broken = copy.deepcopy(cluster[("Deployment", "digits-torchserve")])
    only_container(broken)["readinessProbe"]["httpGet"]["pathh"] = "/ping"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_everything_lives_in_one_namespace(cluster):
    namespaces = {doc["metadata"].get("namespace") for (kind, _), doc in cluster.items() if kind != "Namespace"}
    assert namespaces == {"digits"} and ("Namespace", "digits") in cluster


def test_images_are_the_two_dockerfiles(cluster):
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {image["name"] for image in kustomization["images"]} == {f"digits-{name}" for name in DOCKERFILES}
    for name in DOCKERFILES:
        assert only_container(cluster[("Deployment", f"digits-{name}")])["image"].startswith(f"digits-{name}:")


def test_the_page_runs_two_replicas_with_session_affinity(cluster):
    deployment = cluster[("Deployment", "digits-ui")]
    assert deployment["spec"]["replicas"] >= 2
    service = cluster[("Service", "digits-ui")]
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert set(service["spec"]["selector"].items()) <= set(pod_labels.items())
    ingress = cluster[("Ingress", "digits-ui")]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "digits-ui" and backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    item = only_container(deployment)
    assert "readinessProbe" in item and "livenessProbe" in item
    (port,) = item["ports"]
    assert int(container_env(item, cluster)["UI_PORT"]) == port["containerPort"]


def filled_secrets(environment: dict[str, str]) -> dict[str, str]:
    """The environment with each value the Secret provides replaced by a stand-in long enough for production."""
    return {k: "s" * 24 if v.startswith("<secret") else v for k, v in environment.items()}


def test_the_page_reads_settings_and_its_secrets_from_the_secret(cluster):
    item = only_container(cluster[("Deployment", "digits-ui")])
    environment = container_env(item, cluster)
    assert set(environment) <= settings_env_names(), set(environment) - settings_env_names()
    assert environment["DATABASE_URL"] == f"<secret:{SECRET}/DATABASE_URL>"
    assert environment["STORAGE_SECRET"] == f"<secret:{SECRET}/STORAGE_SECRET>"
    assert environment["ADMIN_PASSWORD"] == f"<secret:{SECRET}/ADMIN_PASSWORD>"
    # production: the page refuses to start unless the Secret provides both (it never generates them per pod)
    without_secrets = {k: v for k, v in environment.items() if "<secret" not in v}
    with pytest.raises(pydantic.ValidationError, match="STORAGE_SECRET is not set"):
        settings_for(without_secrets)
    assert settings_for(filled_secrets(environment)).app_env == "production"
    assert ("Secret", SECRET) not in cluster, "secrets are created by hand, never committed"


def test_the_page_reaches_torchserve_through_its_service(cluster):
    item = only_container(cluster[("Deployment", "digits-ui")])
    environment = image_env("ui") | filled_secrets(container_env(item, cluster))
    server = container.torchserve(settings_for(environment))  # the addresses the page computes
    service = cluster[("Service", environment["TS_HOST"])]
    ports = {p["port"] for p in service["spec"]["ports"]}
    for address in (server.endpoints.inference, server.endpoints.management):
        assert urlsplit(address).hostname == service["metadata"]["name"] and urlsplit(address).port in ports
    # the placeholder key file (token authorization is off in the cluster) is mounted where TS_KEY_FILE points
    key_file = Path(environment["TS_KEY_FILE"])
    (mount,) = [m for m in item["volumeMounts"] if Path(m["mountPath"]) == key_file.parent]
    volumes = {v["name"]: v for v in cluster[("Deployment", "digits-ui")]["spec"]["template"]["spec"]["volumes"]}
    config_map = cluster[("ConfigMap", volumes[mount["name"]]["configMap"]["name"])]
    keys = json.loads(config_map["data"][key_file.name])
    assert set(keys) == {"inference", "management", "API"} and all(entry["key"] for entry in keys.values())


def image_env(image: str) -> dict[str, str]:
    return dockerfile(DOCKERFILES[image])[-1].env()


def test_torchserve_has_probes_on_ping_and_an_autoscaler(cluster):
    deployment = cluster[("Deployment", "digits-torchserve")]
    item = only_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in item["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert item[probe]["httpGet"]["path"] == "/ping"
        assert ports[item[probe]["httpGet"]["port"]] == 8080
    assert item["resources"]["requests"]["cpu"], "the autoscaler's CPU target is a share of the request"
    hpa = cluster[("HorizontalPodAutoscaler", "digits-torchserve")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits-torchserve"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    service_ports = {p["targetPort"] for p in cluster[("Service", "digits-torchserve")]["spec"]["ports"]}
    assert service_ports <= set(ports)


def test_torchserve_in_the_cluster_listens_everywhere_without_token_auth(cluster):
    item = only_container(cluster[("Deployment", "digits-torchserve")])
    environment = image_env("torchserve") | container_env(item, cluster)
    assert set(environment) <= settings_env_names() | OTHER_ENV
    server = container.torchserve(settings_for(environment))
    ports = {p["containerPort"] for p in item["ports"]}
    for address in (server.endpoints.inference, server.endpoints.management, server.endpoints.metrics):
        assert urlsplit(address).hostname == "0.0.0.0" and urlsplit(address).port in ports
    assert server.properties["disable_token_authorization"] == "true"
    assert server.properties["enable_model_api"] == "false"
    home = {m["mountPath"] for m in item["volumeMounts"]}
    assert environment["TS_HOME"] in home, "TorchServe's working directory must be writable"


def test_the_cluster_and_kserve_register_nothing(cluster):
    """The versions ship inside the image (or KServe's storage): registering is off, and registering by URL is
    closed as well, should the model API ever be switched on."""
    item = only_container(cluster[("Deployment", "digits-torchserve")])
    in_cluster = container.torchserve(settings_for(image_env("torchserve") | container_env(item, cluster))).properties
    under_kserve = read_properties((KSERVE / "config.properties").read_text())
    for properties in (in_cluster, under_kserve):
        assert properties["enable_model_api"] == "false"
        assert "allowed_urls" in properties
        assert registers_by_url(properties) == []


def test_only_the_page_reaches_torchserve(cluster):
    policy = cluster[("NetworkPolicy", "digits-torchserve")]
    torchserve_labels = cluster[("Deployment", "digits-torchserve")]["spec"]["template"]["metadata"]["labels"]
    ui_labels = cluster[("Deployment", "digits-ui")]["spec"]["template"]["metadata"]["labels"]
    assert set(policy["spec"]["podSelector"]["matchLabels"].items()) <= set(torchserve_labels.items())
    api_rule = next(rule for rule in policy["spec"]["ingress"] if {"port": 8080} in rule["ports"])
    (source,) = api_rule["from"]
    assert set(source["podSelector"]["matchLabels"].items()) <= set(ui_labels.items())


def test_pods_run_as_the_images_user(cluster):
    for name in DOCKERFILES:
        security = cluster[("Deployment", f"digits-{name}")]["spec"]["template"]["spec"]["securityContext"]
        assert security["runAsNonRoot"] and security["runAsUser"] == 10001


def test_kserve_inference_service_uses_our_runtime_over_the_v1_protocol(kserve):
    (service,) = [doc for (kind, _), doc in kserve.items() if kind == "InferenceService"]
    (runtime,) = [doc for (kind, _), doc in kserve.items() if kind == "ServingRuntime"]
    assert (
        service["apiVersion"] == "serving.kserve.io/v1beta1" and runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    )
    predictor = service["spec"]["predictor"]
    model = predictor["model"]
    assert set(predictor) <= {"model", "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"}
    assert set(model) <= {"modelFormat", "protocolVersion", "runtime", "storageUri", "resources"}
    assert model["modelFormat"]["name"] == "pytorch" and model["protocolVersion"] == "v1"
    assert model["runtime"] == runtime["metadata"]["name"]
    assert urlsplit(model["storageUri"]).scheme in {"s3", "gs", "pvc", "https", "hdfs", "webhdfs", "azureblob"}
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    assert "pytorch" in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert "v1" in runtime["spec"]["protocolVersions"]
    (item,) = runtime["spec"]["containers"]
    assert item["name"] == "kserve-container" and item["image"].startswith("digits-torchserve:")
    assert "--ts-config=/mnt/models/config/config.properties" in item["args"]
    assert "--model-store=/mnt/models/model-store" in item["args"]


def test_kserve_torchserve_config(kserve):
    properties = read_properties((KSERVE / "config.properties").read_text())
    local = read_properties((ROOT / "config.properties").read_text())
    assert properties["service_envelope"] == "kserve"
    assert properties["disable_token_authorization"] == "true" and properties["enable_model_api"] == "false"
    (runtime,) = [doc for (kind, _), doc in kserve.items() if kind == "ServingRuntime"]
    (port,) = runtime["spec"]["containers"][0]["ports"]
    assert properties["inference_address"] == f"http://0.0.0.0:{port['containerPort']}"
    assert urlsplit(properties["management_address"]).hostname == "127.0.0.1"
    models = json.loads(properties["models"])
    # the envelope reads only the first request of a batch: batching must stay off
    assert all(v["batchSize"] == 1 for versions in models.values() for v in versions.values())
    assert properties["load_models"] == "mnist.mar" and set(models) == {"mnist"}
    for key in ("max_response_size", "default_response_timeout", "metrics_mode", "vmargs", "install_py_dep_per_model"):
        assert properties[key] == local[key], key


@pytest.mark.integration
@pytest.mark.slow
def test_kserve_config_answers_the_v1_protocol(model_store, tmp_path):
    """TorchServe started from deploy/k8s/kserve/config.properties (its addresses moved to free loopback ports)
    answers KServe's POST /v1/models/mnist:predict itself, through the kserve envelope and our handler."""
    server = TorchServe(
        home=tmp_path, config_template=KSERVE / "config.properties", model_store=model_store,
        overrides=isolated_overrides(),
    )  # fmt: skip
    server.start()
    try:
        deadline = time.monotonic() + 240
        while not _pings(server.endpoints.inference):  # no token: KServe's gateway could not send one
            assert server.process.poll() is None and time.monotonic() < deadline, server.log_tail()
            time.sleep(1)
        url = f"{server.endpoints.inference}/v1/models/mnist:predict"
        image = base64.b64encode(digit_one_png()).decode()
        for instance in ({"data": image}, image, {"image": image, "preview": True}):
            answer = httpx.post(url, json={"instances": [instance]}, timeout=30)
            assert answer.status_code == 200, answer.text
            (prediction,) = answer.json()["predictions"]
            assert prediction["digit"] == 1 and prediction["model_version"] == "1.0"
        assert "preview" in prediction
        refused = httpx.post(url, json={"instances": [{"data": "@@not base64@@"}]}, timeout=30)
        assert refused.status_code == 400
        assert "base64" in refused.json()["predictions"][0]["error"]
    finally:
        server.stop()


def _pings(inference: str) -> bool:
    try:
        return httpx.get(f"{inference}/ping", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
