"""One contract, two implementations: every test here runs against the real stores (PostgreSQL) and the in-memory
stand-ins that the page tests use (tests/support/fakes.py), so the stand-ins cannot drift from what the product
does (issue #21: the old stand-in never raised RequestIdReused)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from db.admin import AdminStore
from db.predictions import PredictionRow, PredictionStore, RequestIdReused, RequestIdTaken
from tests.support.fakes import FakeAdminStore, FakePredictionStore

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def predictions(request, pool):
    if request.param == "postgres":
        return PredictionStore(pool)
    return FakePredictionStore()


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def admin(request, pool):
    if request.param == "postgres":
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM admin_login_failures")
            await conn.execute("DELETE FROM admin_sessions")
        return AdminStore(pool)
    return FakeAdminStore()


def row(browser: str = "a", digit: int = 3, *, drawing: bytes | None = None, version: str = "1.0") -> PredictionRow:
    probabilities = [0.01] * 10
    probabilities[digit] = 0.91
    return PredictionRow(
        request_id=uuid.uuid4(), browser_id=browser, model_name="mnist", model_version=version, predicted_digit=digit,
        confidence=0.91, probabilities=probabilities, canvas_png=drawing or b"\x89PNG " + uuid.uuid4().bytes,
        preview_png=None, latency_ms=3.0, client_network="192.0.2.0/24",
    )  # fmt: skip


async def test_an_insert_is_idempotent_by_request_id_and_owned_by_its_browser(predictions):
    first = row()
    row_id = await predictions.insert(first)
    assert await predictions.insert(first) == row_id
    with pytest.raises(RequestIdTaken):
        await predictions.insert(replace(first, browser_id="b"))
    with pytest.raises(RequestIdReused):
        await predictions.insert(replace(first, canvas_png=b"\x89PNG another image"))
    assert await predictions.history_count(browser_id="a") == 1


async def test_labels_touch_only_the_browsers_own_rows_and_a_replayed_label_never_overwrites_a_newer_one(predictions):
    mine = row()
    row_id = await predictions.insert(mine)
    assert not await predictions.set_feedback(prediction_id=row_id, browser_id="b", true_digit=1)
    assert await predictions.set_feedback(prediction_id=row_id, browser_id="a", true_digit=5, network="10.0.0.0/24")
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert not await predictions.set_feedback_by_request_id(
        request_id=mine.request_id, browser_id="a", true_digit=6, at=earlier
    )
    assert not await predictions.set_feedback_by_request_id(request_id=mine.request_id, browser_id="b", true_digit=6)
    (shown,) = await predictions.history(browser_id="a", limit=10)
    assert (shown.true_digit, shown.feedback_network, shown.right) == (5, "10.0.0.0/24", False)
    with pytest.raises(ValueError, match="true_digit"):
        await predictions.set_feedback(prediction_id=row_id, browser_id="a", true_digit=10)


async def test_history_is_newest_first_without_drawings_which_come_one_by_one(predictions):
    drawings = [b"\x89PNG drawing %d" % i for i in range(3)]
    ids = [await predictions.insert(row(drawing=d, digit=i)) for i, d in enumerate(drawings)]
    await predictions.insert(row("b"))
    page = await predictions.history(browser_id="a", limit=2, offset=0)
    assert [r.id for r in page] == ids[:0:-1] and all(r.canvas_png is None for r in page)
    assert [r.id for r in await predictions.history(browser_id="a", limit=2, offset=2)] == ids[:1]
    assert [r.client_network for r in page] == ["192.0.2.0/24"] * 2
    assert await predictions.drawing(browser_id="a", prediction_id=ids[1]) == drawings[1]
    assert await predictions.drawing(browser_id="b", prediction_id=ids[1]) is None
    with pytest.raises(ValueError):
        await predictions.history(browser_id="a", limit=0)


async def test_accuracy_stats_and_recent_drawings(predictions):
    labels = [("a", 3, 3, "1.0"), ("a", 3, 5, "1.0"), ("a", 7, 7, "2.0"), ("b", 1, 1, "2.0"), ("b", 2, None, "2.0")]
    for browser, digit, true, version in labels:
        row_id = await predictions.insert(row(browser, digit, version=version))
        if true is not None:
            await predictions.set_feedback(prediction_id=row_id, browser_id=browser, true_digit=true)
    assert await predictions.accuracy_by_version(browser_id="a") == {"1.0": (1, 2), "2.0": (1, 1)}
    stats = await predictions.stats()
    assert (stats.total, stats.overall) == (5, (3, 4))
    assert stats.per_digit[5] == (0, 1) and stats.confusion[5][3] == 1
    assert stats.per_version == {"1.0": (1, 2, 2), "2.0": (2, 2, 3)}
    recent = await predictions.recent_drawings(limit=10)
    assert [r.predicted_digit for r in recent] == [2, 1, 7, 3, 3] and all(r.canvas_png for r in recent)
    assert len(await predictions.recent_drawings(limit=10, labelled_only=True)) == 4


async def test_login_attempts_are_counted_before_the_check_and_then_must_wait(admin):
    delay = lambda failures: 0.0 if failures < 2 else 100.0  # noqa: E731
    assert await admin.count_login_attempt(address="a", forget=3600, delay=delay) == (0.0, 1)
    assert await admin.count_login_attempt(address="a", forget=3600, delay=delay) == (0.0, 2)
    wait, failures = await admin.count_login_attempt(address="a", forget=3600, delay=delay)
    assert wait > 90 and failures == 2  # not counted while it waits
    assert await admin.count_login_attempt(address="b", forget=3600, delay=delay) == (0.0, 1)
    await admin.clear_login_failures(address="a")
    assert await admin.count_login_attempt(address="a", forget=3600, delay=delay) == (0.0, 1)


async def test_tickets_are_used_once_and_sessions_belong_to_their_browser_and_password(admin):
    ticket, session = hashlib.sha256(b"ticket").digest(), hashlib.sha256(b"session").digest()
    await admin.add_token(token_sha256=ticket, kind="ticket", browser_id="b1", fingerprint="fp", idle=1800)
    assert await admin.redeem_ticket(token_sha256=ticket, browser_id="b2", max_age=60) is None
    assert await admin.redeem_ticket(token_sha256=ticket, browser_id="b1", max_age=60) == "fp"
    assert await admin.redeem_ticket(token_sha256=ticket, browser_id="b1", max_age=60) is None  # used up
    await admin.add_token(token_sha256=session, kind="session", browser_id="b1", fingerprint="fp", idle=1800)
    valid = {"token_sha256": session, "fingerprint": "fp", "idle": 1800, "touch": True}
    assert await admin.session_valid(browser_id="b1", **valid)
    assert not await admin.session_valid(browser_id="b2", **valid)
    assert not await admin.session_valid(browser_id="b1", **{**valid, "fingerprint": "another password"})
    await admin.delete_session(token_sha256=session)
    assert not await admin.session_valid(browser_id="b1", **valid)


async def test_an_insert_keeps_the_time_it_is_given_else_now(predictions):
    """A row replayed from the journal is dated when it was predicted; a fresh one when it is stored."""
    made = datetime.now(UTC) - timedelta(hours=2)
    dated, fresh = replace(row(browser="dated"), created_at=made), row(browser="dated")
    await predictions.insert(dated)
    await predictions.insert(fresh)
    newest, oldest = await predictions.history(browser_id="dated", limit=10)
    assert (newest.request_id, oldest.request_id) == (fresh.request_id, dated.request_id)
    assert oldest.created_at == made
    assert newest.created_at is not None and abs(newest.created_at - datetime.now(UTC)) < timedelta(minutes=5)
