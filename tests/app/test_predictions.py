"""Predictions during an outage: a prediction kept in the journal carries the time it was made, and the row written
when the database is back is dated then, not at the replay (issue #23: replayed rows showed the replay's time)."""

from datetime import UTC, datetime, timedelta

from app.predictions import Predictions, SavedIn
from db.journal import Journal
from records.errors import StoreUnavailable
from tests.support.fakes import FakePredictionStore, FakePredictor

DRAWING = b"\x89PNG\r\n\x1a\n a drawing"


class DownStore(FakePredictionStore):
    """The predictions table while the database is down: every insert fails as an outage."""

    async def insert(self, row):
        raise StoreUnavailable("database unavailable: connection refused")


async def test_a_journaled_prediction_keeps_its_time_through_the_replay(tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    predictions = Predictions(server=FakePredictor(), store=DownStore(), journal=journal)
    before = datetime.now(UTC)
    recorded = await predictions.predict(DRAWING, browser_id="b")
    assert recorded.saved is SavedIn.JOURNAL
    made = recorded.row.created_at
    assert made is not None and before <= made <= datetime.now(UTC)

    back = FakePredictionStore()
    await journal.replay(back)
    (row,) = back.rows
    assert row.created_at == made


async def test_a_prediction_stored_directly_is_dated_by_the_store(tmp_path):
    store = FakePredictionStore()
    predictions = Predictions(server=FakePredictor(), store=store, journal=Journal(tmp_path / "pending.jsonl"))
    recorded = await predictions.predict(DRAWING, browser_id="b")
    assert recorded.saved is SavedIn.DATABASE and recorded.row.created_at is None
    assert abs(store.rows[0].created_at - datetime.now(UTC)) < timedelta(minutes=1)
