"""The large-image lane (app/limits.py LargeImageLane), through which every number goes: one image at a time, and
those waiting served in turns, by the network and then the client that has held the lane least, so that a client or
a network with many requests waiting, or dear ones, takes its share of the lane's time, not the lane. On the
stand-ins (FakePredictor), through the Numbers use case as the page and the API call it; the lane's clock is the
test's (each reading takes the time the test says)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import zlib
from dataclasses import dataclass, field

import pytest
from PIL import Image

from app.limits import LargeImageLane
from app.numbers import Numbers
from app.predictions import Predictions
from db.journal import Journal
from records.errors import ModelUnavailable, PredictionRejected
from records.numbers import NumberReading
from tests.support.fakes import FakeNumberStore, FakePredictionStore, FakePredictor
from tools.bad_inputs import encode
from tools.bench_inputs import number_drawing

NUMBER = number_drawing()  # 840 x 280: larger than a slate drawing, so it takes the lane
SMALL = b"not even an image"  # its size cannot be told: no lane


def numbered(browser: str) -> bytes:
    """A drawing of its own for each browser (a dot placed by its name): the model server can tell whose it reads."""
    image = Image.open(io.BytesIO(NUMBER))
    image.putpixel((5 + zlib.crc32(browser.encode()) % 800, 5), (0, 0, 0, 255))
    return encode(image)


@dataclass
class Gated(FakePredictor):
    """Reads each number only when the test lets one through (`gate`); notes whose it reads, in order; each reading
    takes `cost` of the browser's name seconds on the test's clock (`now`), 0 unless said."""

    order: list[str] = field(default_factory=list)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))
    names: dict[bytes, str] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    now: float = 0.0

    async def read_number(self, png: bytes, *, version: str | None = None) -> NumberReading:
        name = self.names[png]
        self.order.append(name)
        await self.gate.acquire()
        self.now += self.cost.get(name, 0.0)
        return await super().read_number(png, version=version)


def numbers_on(server: Gated, tmp_path) -> Numbers:
    store = FakePredictionStore()
    journal = Journal(tmp_path / "pending.jsonl")
    lane = LargeImageLane(clock=lambda: server.now)
    predictions = Predictions(server=server, store=store, journal=journal, lane=lane)
    return Numbers(server=server, store=FakeNumberStore(store), predictions=predictions)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def served_order(
    tmp_path, requests: list[tuple[str, str | None]], cost: dict[str, float] | None = None
) -> list[str]:
    """Read a number for each of `requests` ((browser, network)), sent in this order while the lane is busy with
    another user's, then let the model server answer one at a time (each taking `cost` of its browser seconds): the
    order in which they reached it."""
    server = Gated(cost=cost or {})
    numbers = numbers_on(server, tmp_path)

    async def read(browser: str, network: str | None) -> str | None:
        png = numbered(browser)
        server.names[png] = browser
        recorded = await numbers.read(png, browser_id=browser, network=network, save=False)
        return recorded.reading.number

    tasks = [asyncio.create_task(read("first", "198.51.100.0/24"))]
    await settle()
    for browser, network in requests:
        tasks.append(asyncio.create_task(read(browser, network)))
        await settle()
    for _ in tasks:
        server.gate.release()
        await settle()
    assert all(number is not None for number in await asyncio.gather(*tasks))
    return server.order[1:]


async def test_a_client_with_eight_waiting_does_not_keep_another_client_of_its_network_waiting(tmp_path):
    requests = [("A", "203.0.113.0/24")] * 8 + [("B", "203.0.113.0/24")]
    order = await served_order(tmp_path, requests)
    assert "B" in order[:2], order
    assert order.count("A") == 8


async def test_a_network_of_fresh_cookies_takes_one_turn_a_round(tmp_path):
    """Eight browser ids from one network (an attacker renewing its cookie), then one user of another network."""
    requests = [(f"cookie {i}", "203.0.113.0/24") for i in range(8)] + [("B", "192.0.2.0/24")]
    order = await served_order(tmp_path, requests)
    assert "B" in order[:2], order


async def test_networks_take_turns_and_their_clients_take_turns_within(tmp_path):
    n1, n2 = "203.0.113.0/24", "192.0.2.0/24"
    requests = [("A", n1)] * 3 + [("C", n1)] * 2 + [("B", n2)] * 2
    order = await served_order(tmp_path, requests)
    assert order == ["A", "B", "C", "B", "A", "C", "A"]


async def test_a_network_whose_readings_cost_twice_as_much_gets_half_as_many_turns(tmp_path):
    """The lane's time is shared, not its turns: zigzags that cost the reader twice a number get one turn for every
    two of the users' numbers."""
    attacker, users = "203.0.113.0/24", "192.0.2.0/24"
    requests = [("zigzag", attacker)] * 6 + [("A", users)] * 3 + [("B", users)] * 3
    order = await served_order(tmp_path, requests, cost={"zigzag": 2.0, "A": 1.0, "B": 1.0})
    assert order[:9].count("zigzag") == 3  # a third of the turns: half the users' network's
    assert [name for name in order[:9] if name != "zigzag"] == ["A", "B"] * 3


async def test_a_network_that_was_away_starts_level_with_those_waiting(tmp_path):
    """No credit for the time it did not use: it does not take every turn when it comes back."""
    server = Gated(cost={"A": 1.0, "B": 1.0})
    numbers = numbers_on(server, tmp_path)

    async def read(browser: str, network: str) -> None:
        png = numbered(browser)
        server.names[png] = browser
        await numbers.read(png, browser_id=browser, network=network, save=False)

    tasks = [asyncio.create_task(read("first", "198.51.100.0/24"))]
    await settle()
    tasks += [asyncio.create_task(read("A", "203.0.113.0/24")) for _ in range(6)]
    await settle()
    for _ in range(4):  # A alone: it holds the lane four turns
        server.gate.release()
        await settle()
    tasks += [asyncio.create_task(read("B", "192.0.2.0/24")) for _ in range(3)]
    await settle()
    for _ in range(len(tasks)):
        server.gate.release()
        await settle()
    await asyncio.gather(*tasks)
    assert server.order[5:] == ["B", "A", "B", "A", "B"]


async def test_without_a_network_a_client_stands_alone(tmp_path):
    order = await served_order(tmp_path, [("A", None)] * 4 + [("B", None)])
    assert order[:2] == ["A", "B"]


async def test_small_images_skip_the_lane():
    lane = LargeImageLane()
    async with lane.slot(NUMBER, client="A"), lane.slot(SMALL, client="B"):  # B would wait forever in the lane
        pass


async def test_a_request_that_waits_too_long_is_busy_and_gives_up_its_place():
    lane = LargeImageLane(wait=0.05)
    holding = asyncio.Event()

    async def hold() -> None:
        async with lane.slot(NUMBER, client="A"):
            holding.set()
            await asyncio.sleep(0.2)

    holder = asyncio.create_task(hold())
    await holding.wait()
    with pytest.raises(ModelUnavailable, match="busy"):
        async with lane.slot(NUMBER, client="B", network="192.0.2.0/24"):
            pass
    assert lane.waiting == 0
    await holder
    async with lane.slot(NUMBER, client="C"):  # the lane is free again
        pass


async def test_a_cancelled_wait_leaves_no_turn_behind():
    lane = LargeImageLane()
    gate = asyncio.Event()

    async def hold(client: str) -> None:
        async with lane.slot(NUMBER, client=client):
            await gate.wait()

    holder = asyncio.create_task(hold("A"))
    await settle()
    waiter = asyncio.create_task(hold("B"))
    await settle()
    assert lane.waiting == 1
    waiter.cancel()
    await settle()
    assert lane.waiting == 0
    gate.set()
    await holder
    async with asyncio.timeout(1):
        async with lane.slot(NUMBER, client="C"):  # nobody holds the lane
            pass


async def test_turns_the_reader_refused_count_tenfold_so_many_attacking_networks_wait_behind_users(tmp_path):
    """Eight networks sending drawings the reader refuses (too complex), and one network of users: each refused turn
    costs its network ten times its length, so the users' requests come next after at most one attacker's."""
    server = Gated(cost={"user": 1.0, **{f"zigzag {i}": 1.0 for i in range(8)}})
    refused = {f"zigzag {i}" for i in range(8)}
    original = server.read_number

    async def read_number(png: bytes, *, version: str | None = None) -> NumberReading:
        reading = await original(png, version=version)
        if server.names[png] in refused:
            raise PredictionRejected("This drawing is too complex to read as a number", status=422)
        return reading

    server.read_number = read_number  # type: ignore[method-assign]
    numbers = numbers_on(server, tmp_path)

    async def read(browser: str, network: str, times: int) -> None:
        png = numbered(browser)
        server.names[png] = browser
        for _ in range(times):
            with contextlib.suppress(PredictionRejected):
                await numbers.read(png, browser_id=browser, network=network, save=False)

    tasks = [asyncio.create_task(read(f"zigzag {i}", f"203.0.{i}.0/24", 4)) for i in range(8)]
    await settle()
    tasks.append(asyncio.create_task(read("user", "192.0.2.0/24", 4)))
    await settle()
    while not all(task.done() for task in tasks):
        server.gate.release()
        await settle()
    await asyncio.gather(*tasks)
    users = [index for index, name in enumerate(server.order) if name == "user"]
    assert users[0] <= 8 and all(b - a <= 3 for a, b in itertools.pairwise(users)), server.order
