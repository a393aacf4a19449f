"""What the reads know of a database outage (app/outage.py): after one call met it, reads answer at once for a while,
then one tries again; a call that reaches the database ends it."""

import pytest

from app.outage import Outage
from records.errors import StoreUnavailable


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_after_an_outage_reads_answer_at_once_until_the_retry_then_ask_again():
    clock, asked = Clock(), []
    outage = Outage(retry=10.0, clock=clock)

    async def down():
        asked.append("down")
        raise StoreUnavailable("connection refused")

    async def up():
        asked.append("up")
        return 42

    with pytest.raises(StoreUnavailable):
        await outage.read(down)
    assert outage.known
    clock.now += 9.0
    with pytest.raises(StoreUnavailable):
        await outage.read(up)  # not asked: known down
    assert asked == ["down"]
    clock.now += 1.5
    assert not outage.known
    assert await outage.read(up) == 42
    assert asked == ["down", "up"] and not outage.known


async def test_a_call_that_reaches_the_database_ends_the_outage():
    outage = Outage()
    outage.seen()
    assert outage.known
    outage.over()
    assert not outage.known
