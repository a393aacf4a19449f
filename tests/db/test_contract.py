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
from db.numbers import NumberStore, digit_request_id
from db.predictions import PredictionStore
from db.review import QueueSize, ReviewStore
from records.errors import RequestIdReused, RequestIdTaken
from records.numbers import NumberDigit, StoredNumber
from records.predictions import Prediction, StoredPrediction
from tests.support.fakes import FakeAdminStore, FakeNumberStore, FakePredictionStore, FakeReviewStore

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def predictions(request, pool):
    if request.param == "postgres":
        return PredictionStore(pool)
    return FakePredictionStore()


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def reviewed(request, pool):
    """A predictions store and the review queue over it."""
    if request.param == "postgres":
        return PredictionStore(pool), ReviewStore(pool)
    store = FakePredictionStore()
    return store, FakeReviewStore(store)


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def admin(request, pool):
    if request.param == "postgres":
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM admin_login_failures")
            await conn.execute("DELETE FROM admin_sessions")
        return AdminStore(pool)
    return FakeAdminStore()


def row(browser: str = "a", digit: int = 3, *, drawing: bytes | None = None, version: str = "1.0") -> StoredPrediction:
    probabilities = [0.01] * 10
    probabilities[digit] = 0.91
    answer = Prediction(digit=digit, confidence=0.91, probabilities=probabilities, model_name="mnist",
                        model_version=version, preview_png=None, latency_ms=3.0)  # fmt: skip
    return StoredPrediction(
        request_id=uuid.uuid4(), browser_id=browser, answer=answer,
        canvas_png=drawing or b"\x89PNG " + uuid.uuid4().bytes, client_network="192.0.2.0/24",
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


async def test_an_attempt_counts_against_its_network_too_and_waits_for_the_larger_count(admin):
    delay = lambda failures: 0.0 if failures < 2 else 100.0  # noqa: E731
    net = {"network": "2001:db8::/64", "forget": 3600, "delay": delay}
    assert await admin.count_login_attempt(address="2001:db8::1", **net) == (0.0, 1)
    assert await admin.count_login_attempt(address="2001:db8::2", **net) == (0.0, 2)  # the network's count
    wait, failures = await admin.count_login_attempt(address="2001:db8::3", **net)
    assert wait > 90 and failures == 2  # a fresh address of the network waits for it
    other = {"network": "2001:db8:0:1::/64", "forget": 3600, "delay": delay}
    assert await admin.count_login_attempt(address="2001:db8:0:1::1", **other) == (0.0, 1)
    await admin.clear_login_failures(address="2001:db8::1", network="2001:db8::/64")
    assert await admin.count_login_attempt(address="2001:db8::3", **net) == (0.0, 1)


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


# ---- numbers: the numbers table and its digits' rows of predictions ---------------------------------------------


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def stores(request, pool) -> tuple:
    """(predictions, numbers) on one database: a number's digits are rows of the predictions store."""
    if request.param == "postgres":
        return PredictionStore(pool), NumberStore(pool)
    predictions = FakePredictionStore()
    return predictions, FakeNumberStore(predictions)


def number(
    text: str | None = "42", browser: str = "a", *, drawing: bytes | None = None, digits: str = ""
) -> StoredNumber:
    """A number read as `text` (or refused: None, with `digits` read), each digit with a crop of its own."""
    request_id, read = uuid.uuid4(), digits or text or ""
    return StoredNumber(
        request_id=request_id, browser_id=browser, model_name="mnist", model_version="3.0", number=text,
        canvas_png=drawing or b"\x89PNG number " + uuid.uuid4().bytes, latency_ms=9.0,
        digits=tuple(
            NumberDigit(i, (10 + 100.0 * i, 5, 90 + 100.0 * i, 95),
                        replace(row(browser, int(d), drawing=b"\x89PNG crop " + uuid.uuid4().bytes, version="3.0"),
                                request_id=digit_request_id(request_id, i)))
            for i, d in enumerate(read)
        ),
        not_a_digit=text is None, reason=None if text else "doesn't look like a digit", client_network="192.0.2.0/24",
    )  # fmt: skip


async def test_a_number_is_stored_once_with_its_digits_and_owned_by_its_browser(stores):
    predictions, numbers = stores
    first = number("2026")
    ids = await numbers.insert(first)
    assert len(ids.digit_ids) == 4 and await numbers.insert(first) == ids  # a retry: the same rows
    with pytest.raises(RequestIdTaken):
        await numbers.insert(replace(first, browser_id="b", digits=()))
    with pytest.raises(RequestIdReused):
        await numbers.insert(replace(first, canvas_png=b"\x89PNG another drawing"))
    # each digit is a prediction row of its browser, with its crop (what retraining and the thumbnails read)
    for position, digit_id in enumerate(ids.digit_ids):
        assert (
            await predictions.drawing(browser_id="a", prediction_id=digit_id)
            == first.digits[position].prediction.canvas_png
        )
    assert (await predictions.stats()).total == 4
    assert await numbers.drawing(browser_id="a", number_id=ids.id) == first.canvas_png
    assert await numbers.drawing(browser_id="b", number_id=ids.id) is None


async def test_the_whole_number_labels_each_digit_only_when_the_count_matches(stores):
    predictions, numbers = stores
    read = number("2028")
    await numbers.insert(read)
    assert await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="b", true_number="1") is None
    assert await numbers.set_feedback_by_request_id(
        request_id=read.request_id, browser_id="a", true_number="2026", network="10.0.0.0/24"
    ) == 4  # fmt: skip
    (shown,) = await numbers.timeline(browser_id="a", limit=10)
    assert (shown.true_number, shown.right, shown.feedback_network) == ("2026", False, "10.0.0.0/24")
    assert [(d.prediction.true_digit, d.prediction.right) for d in shown.digits] == [
        (2, True),
        (0, True),
        (2, True),
        (6, False),
    ]
    assert [d.prediction.feedback_network for d in shown.digits] == ["10.0.0.0/24"] * 4
    # another count: the drawing was not split into the digits written, so the digits' labels of the earlier answer
    # are taken back (else retraining would learn "2026" digit by digit from a user who now says "202")
    assert await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="a", true_number="202") == 0
    (shown,) = await numbers.timeline(browser_id="a", limit=10)
    assert shown.true_number == "202" and [d.prediction.true_digit for d in shown.digits] == [None] * 4
    assert [d.prediction.feedback_network for d in shown.digits] == [None] * 4 and (
        await predictions.stats()
    ).overall == (0, 0)
    assert await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="a", true_number="2027") == 4
    (shown,) = await numbers.timeline(browser_id="a", limit=10)
    assert [d.prediction.true_digit for d in shown.digits] == [2, 0, 2, 7]  # the count matches again: the new digits
    with pytest.raises(ValueError, match="true_number"):
        await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="a", true_number="12345678901")
    assert (await predictions.stats()).overall == (3, 4)


async def test_one_digit_corrected_labels_it_and_makes_the_numbers_label(stores):
    _, numbers = stores
    read, refused = number("2028"), number(None, digits="71")
    for each in (read, refused):
        await numbers.insert(each)
    correct = {"browser_id": "a", "network": "10.0.0.0/24"}
    assert await numbers.set_digit_feedback_by_request_id(
        request_id=read.request_id, position=3, true_digit=6, **correct
    )
    assert await numbers.set_digit_feedback_by_request_id(
        request_id=read.request_id, position=0, true_digit=1, **correct
    )
    assert not await numbers.set_digit_feedback_by_request_id(request_id=read.request_id, position=4, true_digit=1,
                                                              **correct)  # fmt: skip
    assert not await numbers.set_digit_feedback_by_request_id(
        request_id=read.request_id, browser_id="b", position=0, true_digit=1
    )
    assert await numbers.set_digit_feedback_by_request_id(request_id=refused.request_id, position=1, true_digit=4,
                                                          **correct)  # fmt: skip
    shown = {n.request_id: n for n in await numbers.timeline(browser_id="a", limit=10)}
    assert shown[read.request_id].true_number == "1026"  # the reading, both corrections kept
    assert [d.prediction.true_digit for d in shown[read.request_id].digits] == [
        1,
        None,
        None,
        6,
    ]  # only what the user said
    assert shown[refused.request_id].true_number == "74"  # a refused number: its closest digits, corrected
    # a typed number of another length takes the digits' labels back, and stays: a digit correction does not
    # rewrite it
    await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="a", true_number="20")
    await numbers.set_digit_feedback_by_request_id(request_id=read.request_id, position=1, true_digit=5, **correct)
    (latest,) = [n for n in await numbers.timeline(browser_id="a", limit=10) if n.request_id == read.request_id]
    assert latest.true_number == "20" and [d.prediction.true_digit for d in latest.digits] == [None, 5, None, None]
    stats = await numbers.stats()
    assert stats == (2, 2, 0)


async def test_a_replayed_label_never_overwrites_a_newer_one(stores):
    _, numbers = stores
    read = number("42")
    await numbers.insert(read)
    await numbers.set_feedback_by_request_id(request_id=read.request_id, browser_id="a", true_number="43")
    earlier = datetime.now(UTC) - timedelta(hours=1)
    old = {"request_id": read.request_id, "browser_id": "a", "at": earlier}
    assert await numbers.set_feedback_by_request_id(true_number="11", **old) is None
    assert not await numbers.set_digit_feedback_by_request_id(position=0, true_digit=9, **old)
    (shown,) = await numbers.timeline(browser_id="a", limit=10)
    assert shown.true_number == "43" and [d.prediction.true_digit for d in shown.digits] == [4, 3]
    # a replayed number of another count takes back the digits' labels older than itself, not a newer one
    mine = {"request_id": read.request_id, "browser_id": "a"}
    await numbers.set_feedback_by_request_id(true_number="1", **mine)  # another length: digit labels leave it be
    later = datetime.now(UTC) + timedelta(hours=1)
    await numbers.set_digit_feedback_by_request_id(position=0, true_digit=7, at=later, **mine)
    await numbers.set_digit_feedback_by_request_id(position=1, true_digit=8, **mine)
    assert await numbers.set_feedback_by_request_id(true_number="123", at=datetime.now(UTC), **mine) == 0
    (shown,) = await numbers.timeline(browser_id="a", limit=10)
    assert shown.true_number == "123" and [d.prediction.true_digit for d in shown.digits] == [7, None]


async def test_the_history_lists_drawings_and_numbers_newest_first_a_number_once(stores):
    predictions, numbers = stores
    entries = []
    for index in range(4):  # drawing, number, drawing, number
        if index % 2:
            entry: StoredPrediction | StoredNumber = number(f"{index}7")
            await numbers.insert(entry)
        else:
            entry = row(digit=index)
            await predictions.insert(entry)
        entries.append(entry.request_id)
    await numbers.insert(number("5", "b"))
    assert await numbers.timeline_count(browser_id="a") == 4 and await numbers.timeline_count(browser_id="b") == 1
    page = await numbers.timeline(browser_id="a", limit=3)
    assert [e.request_id for e in page] == entries[:0:-1]
    assert [type(e).__name__ for e in page] == ["StoredNumber", "StoredPrediction", "StoredNumber"]
    assert page[0].number == "37" and [d.prediction.predicted_digit for d in page[0].digits] == [3, 7]
    assert all(e.canvas_png is None for e in page) and all(d.prediction.canvas_png is None for d in page[0].digits)
    assert [d.box for d in page[0].digits] == [(10.0, 5.0, 90.0, 95.0), (110.0, 5.0, 190.0, 95.0)]
    assert [e.request_id for e in await numbers.timeline(browser_id="a", limit=3, offset=3)] == entries[:1]
    with pytest.raises(ValueError):
        await numbers.timeline(browser_id="a", limit=0)


async def labelled(store, browser: str, digit: int, label: int, network: str) -> int:
    row_id = await store.insert(row(browser, digit))
    assert await store.set_feedback(prediction_id=row_id, browser_id=browser, true_digit=label, network=network)
    return row_id


async def test_the_review_queue_holds_disagreeing_unreviewed_labels_oldest_first(reviewed):
    store, review = reviewed
    first = await labelled(store, "a", 7, 1, "10.0.0.0/24")
    await labelled(store, "a", 3, 3, "10.0.0.0/24")  # agrees: not a suggestion
    third = await labelled(store, "b", 4, 9, "10.0.1.0/24")
    await store.insert(row("c", 5))  # unlabelled
    queue = await review.queue(limit=10)
    assert [s.id for s in queue] == [first, third]
    assert (queue[0].true_digit, queue[0].predicted_digit, queue[0].network) == (1, 7, "10.0.0.0/24")
    assert (queue[0].browser_pending, queue[0].network_pending) == (1, 1)
    assert await review.size() == QueueSize(suggestions=2, browsers=2, networks=2)
    assert [s.id for s in await review.queue(limit=1, offset=1)] == [third]


async def test_a_decision_leaves_the_queue_and_a_changed_label_comes_back(reviewed):
    store, review = reviewed
    first = await labelled(store, "a", 7, 1, "10.0.0.0/24")
    second = await labelled(store, "a", 4, 9, "10.0.0.0/24")
    assert await review.decide([first], "approved", by="test") == 1
    assert [s.id for s in await review.queue(limit=10)] == [second]
    assert await store.set_feedback(prediction_id=first, browser_id="a", true_digit=2)  # a new suggestion
    assert {s.id for s in await review.queue(limit=10)} == {first, second}
    with pytest.raises(ValueError, match="review decision"):
        await review.decide([first], "maybe", by="test")


async def test_batch_decisions_take_every_unreviewed_label_of_a_browser_or_a_network(reviewed):
    store, review = reviewed
    await labelled(store, "a", 7, 1, "10.0.0.0/24")
    await labelled(store, "a", 3, 3, "10.0.0.0/24")  # agreeing labels are taken too
    await labelled(store, "b", 7, 1, "10.0.0.0/24")
    await labelled(store, "c", 7, 1, "10.0.9.0/24")
    assert await review.decide_browsers(["a"], "approved", by="test") == 2
    assert await review.decide_networks(["10.0.0.0/24"], "rejected", by="test") == 1  # b's; a's were reviewed
    assert [s.browser_id for s in await review.queue(limit=10)] == ["c"]
