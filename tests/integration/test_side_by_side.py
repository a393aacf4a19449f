"""Two TorchServe instances on one host (issue #20 N7): each worker socket lives in its own instance's folder, under
a port base of its own, so a worker killed and restarted in one never takes the other's socket."""

import os
import signal
import time
from pathlib import Path

import pytest

from deploy.torchserve import TorchServe, free_ports
from tests.conftest import ROOT, pinned_versions
from tests.integration.conftest import workers

pytestmark = pytest.mark.integration


def sockets(folder: Path) -> set[str]:
    return {path.name for path in folder.glob(".ts.sock.*") if not path.name.endswith(".lock")}


def test_a_second_instance_has_sockets_of_its_own_and_a_worker_restart_there_leaves_the_first_alone(
    torchserve, model_store, tmp_path
):
    before = {(w["id"], w["pid"]) for w in workers(torchserve)}
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    overrides = pinned_versions() | {  # its own REST and gRPC ports; the worker ports are left to the instance
        "inference_address": f"http://127.0.0.1:{inference}",
        "management_address": f"http://127.0.0.1:{management}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_port": str(grpc_management),
    }
    second = TorchServe(home=tmp_path / "second", config_template=ROOT / "config.properties",
                        model_store=model_store, overrides=overrides)  # fmt: skip
    assert second.properties["initial_worker_port"] != torchserve.properties["initial_worker_port"]
    assert f"-Djava.io.tmpdir={second.worker_sockets}" in second.properties["vmargs"]
    second.start()
    try:
        second.wait_ready(models=("mnist",), timeout=180)
        mine, theirs = sockets(torchserve.worker_sockets), sockets(second.worker_sockets)
        assert mine and theirs and not mine & theirs, (mine, theirs)
        victim = workers(second)[0]
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            now = workers(second)
            if all(w["status"] == "READY" for w in now) and victim["pid"] not in {w["pid"] for w in now}:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the second instance's worker did not come back: {workers(second)}")
        assert sockets(torchserve.worker_sockets) == mine
    finally:
        second.stop()
    after = workers(torchserve)
    assert {(w["id"], w["pid"]) for w in after} == before and all(w["status"] == "READY" for w in after)
