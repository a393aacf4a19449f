"""The explainer's bounds (issue #20 N1), on a scripted model server whose passes end when the test says so: one pass
per drawing whatever is asked, one per client at the server and a newer ask replacing a waiting one, one lane for the
whole server with a rest after each pass, and the cache surviving predictions of other drawings."""

import asyncio
import itertools

import pytest

from app.explanations import Explainer, Superseded
from records.errors import ModelUnavailable
from records.explanations import AllExplanations, FieldBox
from records.predictions import Prediction


class ScriptedServer:
    """explain_all that records each pass and, when `hold` is set, answers only once the test releases it."""

    def __init__(self, *, hold: bool = False):
        self.hold = hold
        self.passes: list[tuple[bytes, str]] = []
        self.released: dict[bytes, asyncio.Event] = {}
        self.times: list[tuple[float, float]] = []  # (start, end) of each pass, the loop's clock

    async def explain_all(self, png: bytes, *, version: str) -> AllExplanations:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.passes.append((png, version))
        if self.hold:
            await self.released.setdefault(png, asyncio.Event()).wait()
        self.times.append((start, loop.time()))
        prediction = Prediction(7, 0.9, [0.01] * 7 + [0.91] + [0.01] * 2, "mnist", version, None, 1.0)
        maps = [[[float(d + len(png))] * 28 for _ in range(28)] for d in range(10)]
        return AllExplanations(prediction, maps, FieldBox(0, 0, 280, 280), "scripted")

    def release(self, png: bytes) -> None:
        self.released.setdefault(png, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_pass_answers_every_digit_and_survives_other_drawings():
    server = ScriptedServer()
    explainer = Explainer(explain_all=server.explain_all)
    for target in range(10):
        answer = await explainer.explain(b"seven", target=target, version="3.0", client="a")
        assert answer.target == target and answer.attributions[0][0] == target + 5
    await explainer.explain(b"other drawing", target=3, version="3.0", client="a")
    await explainer.explain(b"seven", target=4, version="3.0", client="a")  # back to the first: from the cache
    await explainer.explain(b"seven", target=4, version="1.0", client="a")  # another version: another pass
    assert server.passes == [(b"seven", "3.0"), (b"other drawing", "3.0"), (b"seven", "1.0")]


async def test_asks_for_a_drawing_whose_pass_is_under_way_wait_for_it():
    server = ScriptedServer(hold=True)
    explainer = Explainer(explain_all=server.explain_all)
    asks = [asyncio.create_task(explainer.explain(b"seven", target=d, version="3.0", client=c))
            for d in range(10) for c in ("tab", "another tab")]  # fmt: skip
    await settle()
    server.release(b"seven")
    answers = await asyncio.gather(*asks)
    assert [a.target for a in answers] == [d for d in range(10) for _ in range(2)]
    assert len(server.passes) == 1


async def test_a_newer_ask_replaces_the_clients_waiting_one_not_its_running_one():
    server = ScriptedServer(hold=True)
    explainer = Explainer(explain_all=server.explain_all, share=1.0)
    first = asyncio.create_task(explainer.explain(b"one", target=1, version="3.0", client="flood"))
    await settle()
    second = asyncio.create_task(explainer.explain(b"two", target=2, version="3.0", client="flood"))
    await settle()
    third = asyncio.create_task(explainer.explain(b"three", target=3, version="3.0", client="flood"))
    await settle()
    with pytest.raises(Superseded):
        await second  # waiting behind "one", replaced by "three" before it started
    assert server.passes == [(b"one", "3.0")]  # "three" waits for the client's running pass
    server.release(b"one")
    assert (await first).target == 1
    await settle()
    server.release(b"three")
    assert (await third).target == 3
    assert [png for png, _ in server.passes] == [b"one", b"three"]


async def test_one_lane_for_all_clients_and_a_rest_after_each_pass():
    """Ten clients at once: their passes run one after another, each starting no sooner than the previous one's
    duration after it ended (share 0.5: explanations take at most half of one worker's time)."""
    server, times = ScriptedServer(), []

    async def slow(png, *, version):
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(0.02)
        times.append((start, asyncio.get_running_loop().time()))
        return await server.explain_all(png, version=version)

    explainer = Explainer(explain_all=slow, share=0.5)
    await asyncio.gather(*(explainer.explain(bytes([i]), target=0, version="3.0", client=f"c{i}") for i in range(5)))
    assert len(times) == 5
    for (start, end), (next_start, _) in itertools.pairwise(times):
        assert next_start >= end + (end - start) * 0.95, (start, end, next_start)


async def test_a_pass_that_cannot_get_the_lane_in_time_is_busy_and_the_client_can_ask_again():
    server = ScriptedServer(hold=True)
    explainer = Explainer(explain_all=server.explain_all, wait=0.05)
    first = asyncio.create_task(explainer.explain(b"one", target=1, version="3.0", client="a"))
    await settle()
    with pytest.raises(ModelUnavailable, match="explanations are busy"):
        await explainer.explain(b"two", target=1, version="3.0", client="b")
    server.release(b"one")
    await first
    assert explainer._clients.keys() <= {"a"}  # nothing kept for a client whose pass ended


async def test_the_cache_keeps_the_newest_drawings():
    server = ScriptedServer()
    explainer = Explainer(explain_all=server.explain_all, cache_size=2, share=1.0)
    for png in (b"a", b"b", b"c", b"a"):
        await explainer.explain(png, target=0, version="3.0", client="x")
    assert [png for png, _ in server.passes] == [b"a", b"b", b"c", b"a"]  # "a" had been dropped for "c"
