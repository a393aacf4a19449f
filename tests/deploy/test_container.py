"""deploy.container, the TorchServe image's entry point and health check: the same configuration as `make run`, and —
with a real TorchServe — `serve` and `ping` run as the containers run them, in the environments of docker-compose.yml
(token authorization on, keys renewed) and of deploy/k8s (token authorization off, the page's placeholder key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from deploy import container, run
from deploy.torchserve import free_ports
from serving.auth import KeyFile
from serving.endpoints import local_url
from tests.deploy.files import ROOT, digit_one_png, settings_env_names, settings_for

ONE_VERSION = {  # load 1.0 only: the live tests are about the container, not the versions
    "load_models": "mnist.mar",
    "models": json.dumps({"mnist": {"1.0": {"defaultVersion": True, "marName": "mnist.mar", "minWorkers": 1}}}),
}


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"TS_HOST": "0.0.0.0"},
        {"TS_HOST": "torchserve", "TS_INFERENCE_PORT": "18080"},
        {"TS_HOST": "0.0.0.0", "TS_PROPERTIES": '{"disable_token_authorization": "true"}', "TS_METRICS_PORT": "9"},
    ],
    ids=["local", "container", "page-in-compose", "cluster"],
)
def test_same_configuration_as_make_run(environment):
    settings = settings_for(environment)
    assert container.torchserve(settings).config_text == run.torchserve(settings).config_text


def test_local_url_reaches_an_all_interfaces_address_on_loopback():
    assert local_url("http://0.0.0.0:8080") == "http://127.0.0.1:8080"
    assert local_url("http://torchserve:8081/") == "http://torchserve:8081"


def test_keys_are_renewed_at_half_their_lifetime():
    server = container.torchserve(settings_for({"TS_PROPERTIES": '{"token_expiration_min": "10"}'}))
    assert container.renewal_interval(server) == 300
    assert container.token_auth(server)
    cluster = container.torchserve(settings_for({"TS_PROPERTIES": '{"disable_token_authorization": "true"}'}))
    assert not container.token_auth(cluster)


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without any Settings variable, plus `values`."""
    names = settings_env_names()
    return {k: v for k, v in os.environ.items() if k.upper() not in names} | values


def test_serve_refuses_to_start_without_the_archives(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "deploy.container", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=clean_environment(TS_HOME=str(tmp_path / "home"), MODEL_STORE=str(tmp_path)),
    )  # fmt: skip
    assert result.returncode == 2
    assert "missing model archive(s) mnist-v5.0.mar, mnist-v4.0.mar, mnist.mar" in result.stderr
    assert "make archive" in result.stderr


def test_ping_fails_when_nothing_listens(tmp_path):
    (port,) = free_ports(1)
    environment = {"TS_HOME": str(tmp_path), "TS_INFERENCE_PORT": str(port)}
    (tmp_path / "key_file.json").write_text(json.dumps({"inference": {"key": "k"}}))
    assert container.ping(settings_for(environment), timeout=2) == 1
    (tmp_path / "key_file.json").unlink()
    assert container.ping(settings_for(environment), timeout=2) == 1  # no key file yet


def cluster_torchserve_properties() -> dict[str, str]:
    """TS_PROPERTIES of the TorchServe Deployment in deploy/k8s."""
    docs = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "torchserve.yaml").read_text())
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    (item,) = deployment["spec"]["template"]["spec"]["containers"]
    return json.loads(next(e["value"] for e in item["env"] if e["name"] == "TS_PROPERTIES"))


def cluster_placeholder_key() -> str:
    docs = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "config.yaml").read_text())
    config_map = next(doc for doc in docs if doc["metadata"]["name"] == "digits-torchserve-keys")
    return json.loads(config_map["data"]["key_file.json"])["inference"]["key"]


def wait_for_ping(environment: dict[str, str], process: subprocess.Popen, *, timeout: float = 240) -> None:
    """Until `python -m deploy.container ping` (the compose health check) exits 0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"deploy.container serve exited with {process.returncode}"
        check = [sys.executable, "-m", "deploy.container", "ping"]
        if subprocess.run(check, cwd=ROOT, env=environment, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"TorchServe not healthy after {timeout:.0f} s")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["compose", "cluster"])
def test_serve_and_ping_as_the_containers_run_them(mode, model_store, tmp_path):
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    properties = ONE_VERSION | {
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_port": str(grpc_management),
        "initial_worker_port": str(20000 + (inference % 4000) * 10),
    }
    if mode == "cluster":
        properties |= cluster_torchserve_properties()
    home = tmp_path / "home"
    environment = clean_environment(
        TS_HOME=str(home), MODEL_STORE=str(model_store), TS_HOST="127.0.0.1", TS_INFERENCE_PORT=str(inference),
        TS_MANAGEMENT_PORT=str(management), TS_METRICS_PORT=str(metrics), TS_PROPERTIES=json.dumps(properties),
    )  # fmt: skip
    log = (tmp_path / "stdout").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.container", "serve"], cwd=ROOT, env=environment, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_ping(environment, process)
        url = f"http://127.0.0.1:{inference}/predictions/mnist"
        # in the cluster TorchServe runs without token authorization and ignores the placeholder key the page sends
        key = KeyFile(home / "key_file.json").key("inference") if mode == "compose" else cluster_placeholder_key()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "image/png"}
        answer = httpx.post(url, content=digit_one_png(), headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["digit"] == 1
        if mode == "compose":  # renewing gives new keys in key_file.json, and the health check follows them
            server = container.torchserve(settings_for(environment))
            container.renew_keys(server)
            assert KeyFile(home / "key_file.json").key("inference") != key
            assert container.ping(settings_for(environment)) == 0
        process.send_signal(signal.SIGTERM)  # docker stop / Kubernetes
        assert process.wait(timeout=60) == 0
        torchserve_pid = int((home / "torchserve.pid").read_text()) if (home / "torchserve.pid").exists() else None
        assert torchserve_pid is None, "TorchServe's pid file is removed once it has stopped"
        assert b"Torchserve version" in (tmp_path / "stdout").read_bytes(), "TorchServe's log goes to stdout"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
