"""Outages against real TorchServe processes of this module's own (never the session's, which other modules share):
keys regenerated at run time or expired, TorchServe stopped and started again, a worker killed under load.

What the page does with it (ui/pages/draw.py): a ModelUnavailable becomes a red notification with its message, the
drawing stays on the slate and no row is written (rows are saved only after a prediction), so the next press of
Predict after TorchServe is back simply works: no retry can create a duplicate row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from deploy.torchserve import TorchServe, temporary
from records.errors import ManagementError, ModelUnavailable
from serving.inference import Predictor
from serving.management import ModelManager
from tests.conftest import ROOT, running_torchserve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONCURRENCY = 8  # clients of the crash test; each has at most one request in flight


@pytest.fixture(scope="module")
def server(model_store, tmp_path_factory) -> Iterator[TorchServe]:
    """A TorchServe of this module's own, as config.properties configures it, on free ports."""
    with running_torchserve(tmp_path_factory.mktemp("torchserve-outages"), model_store) as server:
        yield server


@pytest.fixture
async def predictor(server) -> Predictor:
    predictor = Predictor(inference_url=server.endpoints.inference, key_file=server.key_file)
    yield predictor
    await predictor.close()


@pytest.fixture
async def manager(server) -> ModelManager:
    async with ModelManager(management_url=server.endpoints.management, key_file=server.key_file) as manager:
        yield manager


def record_statuses(client: httpx.AsyncClient) -> list[int]:
    """The status of every response the client receives from now on, in order."""
    statuses: list[int] = []

    async def hook(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    client.event_hooks["response"].append(hook)
    return statuses


def stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def regenerate(server: TorchServe, kind: str) -> None:
    """New key of one kind through TorchServe's token API (management port, API key); it rewrites key_file.json."""
    headers = {"Authorization": f"Bearer {server.keys()['API']}"}
    response = httpx.get(f"{server.endpoints.management}/token", params={"type": kind}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def regenerate_unnoticed(server: TorchServe, kind: str) -> None:
    """A regeneration that leaves the key file's (mtime, size) as it was, as on a file system with coarse timestamps
    or when the file changes within one timestamp tick: the client cannot see the change and must learn it from the
    server's refusal. The size depends on the printed expiry time, so regenerate until it is the same."""
    before = stamp(server.key_file)
    for _ in range(5):
        regenerate(server, kind)
        if server.key_file.stat().st_size == before[1]:
            os.utime(server.key_file, ns=(before[0], before[0]))
            assert stamp(server.key_file) == before
            return
    pytest.fail("the key file's size changed at every regeneration")


def refused(url: str, key: str) -> bool:
    response = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return response.status_code == 400 and "InvalidKeyException" in response.text


# --- keys regenerated through the token API ---------------------------------------------------------------------


async def test_predictor_follows_a_regenerated_inference_key(server, predictor, canvas_pngs):
    png, label, _ = canvas_pngs[0]
    statuses = record_statuses(predictor.client)
    assert (await predictor.predict(png)).digit == label
    old_key = server.keys()["inference"]

    regenerate(server, "inference")  # the file's stamp changes: the next request reads it first
    assert refused(f"{server.endpoints.inference}/ping", old_key)
    assert (await predictor.predict(png)).digit == label
    assert statuses == [200, 200]

    regenerate_unnoticed(server, "inference")  # the cached key is now refused: re-read, retry once
    assert (await predictor.predict(png)).digit == label
    assert statuses == [200, 200, 400, 200]


async def test_model_manager_follows_a_regenerated_management_key(server, manager):
    statuses = record_statuses(manager.client)
    assert await manager.default_version() == "1.0"
    old_key = server.keys()["management"]

    regenerate(server, "management")
    assert refused(f"{server.endpoints.management}/models", old_key)
    assert await manager.default_version() == "1.0"
    assert statuses == [200, 200]

    regenerate_unnoticed(server, "management")
    assert await manager.default_version() == "1.0"
    assert statuses == [200, 200, 400, 200]


async def test_expired_keys_are_reported_and_renewal_brings_the_same_clients_back(model_store, canvas_pngs):
    """Keys expire without the file changing: re-reading cannot help until something renews them (the token API).
    Until then both clients say so; after renewal the same instances work again."""
    png, label, _ = canvas_pngs[1]
    settings = {"token_expiration_min": "0.25", "load_models": "mnist.mar"}  # 15 s; 1.0 only, to start faster
    with temporary(config_template=ROOT / "config.properties", model_store=model_store, overrides=settings) as server:
        predictor = Predictor(inference_url=server.endpoints.inference, key_file=server.key_file)
        manager = ModelManager(management_url=server.endpoints.management, key_file=server.key_file)
        try:
            keys = server.keys()
            deadline = time.monotonic() + 60
            while not refused(f"{server.endpoints.management}/models", keys["management"]):
                assert time.monotonic() < deadline, "the management key did not expire"
                await asyncio.sleep(1)
            assert refused(f"{server.endpoints.inference}/ping", keys["inference"])  # made in the same instant

            with pytest.raises(ModelUnavailable, match="refused this app's key"):
                await predictor.predict(png)
            with pytest.raises(ManagementError, match="expired"):
                await manager.default_version()

            regenerate(server, "inference")
            regenerate(server, "management")
            assert (await predictor.predict(png)).digit == label
            assert await manager.default_version() == "1.0"
        finally:
            await predictor.close()
            await manager.close()


# --- a worker killed under load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """CONCURRENCY clients predicting in a loop, each with one request at a time, until stopped; every failure is
    kept with the HTTP status that caused it (None: no answer at all, e.g. a timeout)."""

    predictor: Predictor
    png: bytes
    successes: int = 0
    in_flight: int = 0
    failures: list[tuple[str, int | None]] = field(default_factory=list)
    running: bool = True
    _status: dict[int, int | None] = field(default_factory=dict)  # per client task: its last request's status

    def __post_init__(self) -> None:
        self.predictor.client.event_hooks["response"].append(self._remember)

    async def _remember(self, response: httpx.Response) -> None:
        self._status[id(asyncio.current_task())] = response.status_code

    async def client(self) -> None:
        task = id(asyncio.current_task())
        while self.running:
            self._status[task] = None
            self.in_flight += 1
            try:
                await self.predictor.predict(self.png)
                self.successes += 1
            except ModelUnavailable as exc:
                self.failures.append((str(exc), self._status[task]))
            finally:
                self.in_flight -= 1


def worker_pids(server: TorchServe, version: str) -> list[tuple[int, str]]:
    """(pid, status) of each worker of one version, from the management API."""
    headers = {"Authorization": f"Bearer {server.keys()['management']}"}
    response = httpx.get(f"{server.endpoints.management}/models/mnist/{version}", headers=headers, timeout=10)
    response.raise_for_status()
    return [(worker["pid"], worker["status"]) for worker in response.json()[0]["workers"]]


def kill_worker(server: TorchServe, pid: int) -> None:
    """SIGKILL one python worker, after checking it is one of this server's (its process group, its command)."""
    assert os.getpgid(pid) == server.process.pid, f"pid {pid} is not in this TorchServe's process group"
    assert "model_service_worker.py" in Path(f"/proc/{pid}/cmdline").read_text()
    os.kill(pid, signal.SIGKILL)


async def wait_until(condition, *, timeout: float, what: str) -> float:
    """Seconds until condition() holds (checked every 0.1 s); fails the test after timeout."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} after {timeout:.0f} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_killed_worker_fails_at_most_the_requests_in_flight_and_is_respawned(server, predictor, canvas_pngs):
    png, label, _ = canvas_pngs[2]
    [(old_pid, _)] = worker_pids(server, "1.0")
    [(other_pid, _)] = worker_pids(server, "2.0")
    load = Load(predictor=predictor, png=png)
    clients = [asyncio.create_task(load.client()) for _ in range(CONCURRENCY)]
    try:
        await wait_until(lambda: load.successes >= 50, timeout=60, what="the load did not get going")
        in_flight = load.in_flight
        kill_worker(server, old_pid)
        killed_at = time.monotonic()

        def respawned() -> bool:
            return any(pid != old_pid and status == "READY" for pid, status in worker_pids(server, "1.0"))

        await wait_until(respawned, timeout=120, what="no new READY worker")
        respawn_seconds = time.monotonic() - killed_at
        served = load.successes
        await wait_until(lambda: load.successes >= served + 50, timeout=60, what="the load did not resume")
    finally:
        load.running = False
        await asyncio.gather(*clients)

    print(f"\nkilled worker {old_pid} with {in_flight} requests in flight; READY again after {respawn_seconds:.1f} s; "
          f"{len(load.failures)} failed, {load.successes} succeeded: {load.failures}")  # fmt: skip
    assert len(load.failures) <= CONCURRENCY
    assert all(status is not None and status >= 500 for _, status in load.failures), load.failures
    assert [pid for pid, _ in worker_pids(server, "2.0")] == [other_pid]  # the other version's worker is untouched
    for _ in range(20):
        assert (await predictor.predict(png)).digit == label


# --- TorchServe stopped and started again (last: it leaves a new process behind) ---------------------------------


async def test_predictor_reports_the_outage_and_recovers_after_a_restart_with_new_keys(
    server, predictor, manager, canvas_pngs
):
    png, label, _ = canvas_pngs[3]
    assert (await predictor.predict(png)).digit == label
    old_key = server.keys()["inference"]

    server.stop()
    with pytest.raises(ModelUnavailable, match="model server is unavailable"):
        await predictor.predict(png)
    with pytest.raises(ManagementError, match="unreachable"):
        await manager.default_version()

    started = time.monotonic()
    server.start()
    seen = []  # what the page would have shown during the start-up, in order, without repeats
    while True:
        assert server.process.poll() is None, server.log_tail()
        assert time.monotonic() - started < 180, f"not back after 180 s; last said: {seen[-1:]}"
        try:
            prediction = await predictor.predict(png)
            break
        except ModelUnavailable as exc:
            if str(exc) not in seen[-1:]:
                seen.append(str(exc))
            await asyncio.sleep(0.2)
    print(f"\nback after {time.monotonic() - started:.1f} s; meanwhile: {seen}")

    assert prediction.digit == label
    assert server.keys()["inference"] != old_key
    assert refused(f"{server.endpoints.inference}/ping", old_key)
    assert await manager.default_version() == "1.0"
