"""The supervisor's restarts without real servers: the back-off, one part's keeper stepped on a fake clock, and what
TorchServe forgot put back through a scripted management API. The real product loses and gets back its parts in
tests/deploy/test_survival.py."""

import json

import httpx
import pytest

from db.embedded import PrivateServerError
from deploy.parts import LoadedVersions
from deploy.restarts import BackOff, Keeper, State
from serving.management import SyncManagement
from tests.serving.test_inference import write_key


def test_the_waits_double_up_to_the_cap_and_start_over_after_a_steady_run():
    backoff = BackOff(first=1, cap=30, steady=60)
    assert [backoff.delay(ran_for=0) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(ran_for=61) == 1
    assert backoff.delay(ran_for=5) == 2


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakePart:
    """A part whose process lives while `running`; `failures` starts fail before one succeeds."""

    name = "fake"
    start_timeout = 10.0

    def __init__(self, *, failures: int = 0, becomes_ready: bool = True) -> None:
        self.running = True
        self.is_ready = True
        self.failures = failures
        self.becomes_ready = becomes_ready
        self.starts = 0
        self.ticks = 0

    def alive(self) -> bool:
        return self.running

    def start(self) -> None:
        self.starts += 1
        if self.failures:
            self.failures -= 1
            raise PrivateServerError("port taken")
        self.running, self.is_ready = True, False

    def ready(self) -> bool:
        self.is_ready = self.is_ready or self.becomes_ready
        return self.is_ready

    def restored(self) -> list[str]:
        return ["put back 2.1"]

    def tick(self) -> str | None:
        self.ticks += 1
        return None

    def last_words(self) -> str:
        return "killed"


def stepped(keeper: Keeper, clock: Clock, *, seconds: int) -> None:
    for _ in range(seconds):
        keeper.step()
        clock.now += 1


def test_a_part_that_dies_is_started_again_after_the_first_wait_and_put_back():
    clock, said, part = Clock(), [], FakePart()
    keeper = Keeper(part, clock=clock, say=said.append)
    stepped(keeper, clock, seconds=3)
    assert part.ticks == 3 and part.starts == 0
    part.running = False
    stepped(keeper, clock, seconds=3)  # noticed, waited 1 s, started, ready
    assert keeper.state is State.RUNNING and part.starts == 1
    assert "fake stopped unexpectedly:\nkilled\nfake: next start in 1 s" in said
    assert any(line.startswith("fake is back after") for line in said) and "  put back 2.1" in said


def test_a_part_that_cannot_start_waits_longer_each_time():
    clock, said, part = Clock(), [], FakePart(failures=3)
    keeper = Keeper(part, clock=clock, say=said.append)
    part.running = False
    stepped(keeper, clock, seconds=20)
    waits = [line.rsplit("next start in ", 1)[1] for line in said if "next start in" in line]
    assert waits == ["1 s", "2 s", "4 s", "8 s"] and part.starts == 4 and keeper.state is State.RUNNING
    assert "fake did not start: port taken\nfake: next start in 2 s" in said


def test_a_part_not_ready_in_time_is_started_again():
    clock, said, part = Clock(), [], FakePart(becomes_ready=False)
    keeper = Keeper(part, clock=clock, say=said.append)
    part.running = False
    stepped(keeper, clock, seconds=16)
    assert part.starts == 2 and "fake was not ready 10 s after its start\nfake: next start in 2 s" in said


class ScriptedTorchServe:
    """The management API's answers about one model's versions, and the changes asked of it."""

    def __init__(self, versions: dict[str, dict], default: str):
        self.versions = versions
        self.default = default
        self.asked: list[str] = []

    def describe(self, version: str) -> dict:
        return {"modelVersion": version, "workers": [{"id": "1", "status": "READY"}], **self.versions[version]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, dict(request.url.params)
        if request.method == "GET" and path == "/models/mnist":
            return httpx.Response(200, json=[self.describe(self.default)])
        if request.method == "GET" and path == "/models/mnist/all":
            return httpx.Response(200, json=[self.describe(v) for v in self.versions])
        self.asked.append(f"{request.method} {path} {json.dumps(params, sort_keys=True)}")
        if path == "/models":
            version = params["url"].removeprefix("mnist-v").removesuffix(".mar")
            self.versions[version] = {"modelUrl": params["url"], "minWorkers": 1, "maxWorkers": 1}
        elif path.endswith("/set-default"):
            self.default = path.split("/")[3]
        else:  # scale
            self.versions[path.split("/")[3]].update(minWorkers=params["min_worker"], maxWorkers=params["max_worker"])
        return httpx.Response(200, json={"status": "ok"})


def versions(**workers: int) -> dict[str, dict]:
    return {
        v.replace("_", "."): {"modelUrl": f"mnist-v{v.replace('_', '.')}.mar", "minWorkers": n, "maxWorkers": n,
                              "batchSize": 16, "maxBatchDelay": 2}
        for v, n in workers.items()
    }  # fmt: skip


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "key_file.json"
    write_key(path, "k")
    return path


def test_versions_registered_and_scaled_at_run_time_and_the_default_come_back_after_a_restart(key_file):
    before = ScriptedTorchServe(versions(**{"4_0": 2, "1_0": 2, "2_1": 1}), default="2.1")
    remembered = LoadedVersions("mnist")
    remembered.observe(
        SyncManagement(management_url="http://ts", key_file=key_file, transport=httpx.MockTransport(before))
    )

    after = ScriptedTorchServe(versions(**{"4_0": 2, "1_0": 1}), default="4.0")  # config.properties' start
    management = SyncManagement(management_url="http://ts", key_file=key_file, transport=httpx.MockTransport(after))
    lines = remembered.restore(management)
    assert lines == [
        "scaled mnist 1.0 back to 2 worker(s)",
        "registered mnist 2.1 again (mnist-v2.1.mar)",
        "made mnist 2.1 the default again",
    ]
    assert after.asked[0] == 'PUT /models/mnist/1.0 {"max_worker": "2", "min_worker": "2", "synchronous": "true"}'
    assert after.asked[1].startswith("POST /models ") and '"url": "mnist-v2.1.mar"' in after.asked[1]
    assert '"initial_workers": "1"' in after.asked[1] and '"batch_size": "16"' in after.asked[1]
    assert after.asked[2] == "PUT /models/mnist/2.1/set-default {}" and after.default == "2.1"
    assert remembered.restore(management) == []  # nothing left to do


def test_a_version_that_cannot_be_put_back_is_said_and_the_rest_still_comes_back(key_file):
    remembered = LoadedVersions("mnist")
    before = ScriptedTorchServe(versions(**{"4_0": 1, "2_1": 1, "2_2": 1}), default="4.0")
    remembered.observe(
        SyncManagement(management_url="http://ts", key_file=key_file, transport=httpx.MockTransport(before))
    )
    after = ScriptedTorchServe(versions(**{"4_0": 1}), default="4.0")

    def refuse_2_1(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("url") == "mnist-v2.1.mar":
            return httpx.Response(500, json={"message": "Failed to save model"})
        return after(request)

    management = SyncManagement(
        management_url="http://ts", key_file=key_file, transport=httpx.MockTransport(refuse_2_1)
    )
    lines = remembered.restore(management)
    assert lines[0].startswith("could not put back mnist 2.1: cannot register mnist-v2.1.mar") and len(lines) == 2
    assert lines[1] == "registered mnist 2.2 again (mnist-v2.2.mar)" and "2.2" in after.versions
