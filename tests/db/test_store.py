"""db/store.py and db/init.sql against a real PostgreSQL: what the history and stats pages show, and the guarantees
behind them (idempotent inserts, feedback scoped to its browser, CHECK constraints)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from psycopg import errors, sql

from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
from records.errors import RequestIdReused, RequestIdTaken, StoreUnavailable
from records.predictions import Prediction, StoredPrediction
from records.stats import Accuracy, VersionStats
from tests.conftest import free_port, fresh_database

pytestmark = pytest.mark.asyncio

PNG = b"\x89PNG\r\n\x1a\n fake canvas"


def prediction(
    browser_id: str = "browser-a", digit: int = 3, *, version: str = "1.0", request_id: uuid.UUID | None = None
) -> StoredPrediction:
    probabilities = [0.01] * 10
    probabilities[digit] = 0.91
    return StoredPrediction(
        request_id=request_id or uuid.uuid4(),
        browser_id=browser_id,
        answer=Prediction(
            digit=digit,
            confidence=0.91,
            probabilities=probabilities,
            model_name="mnist",
            model_version=version,
            preview_png=b"preview",
            latency_ms=4.5,
        ),
        canvas_png=PNG + bytes([digit]),
    )


def with_answer(row: StoredPrediction, **changes: object) -> StoredPrediction:
    """The row with its model's answer changed (records/predictions.py: the answer is a record of its own)."""
    return replace(row, answer=replace(row.answer, **changes))


async def accuracy_of(pool, browser_id: str) -> Accuracy:
    """A browser's accuracy over all versions."""
    by_version = await PredictionStore(pool).accuracy_by_version(browser_id=browser_id)
    return Accuracy(sum(a.correct for a in by_version.values()), sum(a.labelled for a in by_version.values()))


async def fetch(pool, query: str, params: tuple = ()) -> list[tuple]:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall()


async def test_schema_applies_twice_on_a_fresh_database(server_url):
    with fresh_database(server_url, prefix="test_schema") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            await apply_schema(pool)
            indexes = {name for (name,) in await fetch(pool, "SELECT indexname FROM pg_indexes")}
            comment = await fetch(pool, "SELECT obj_description('predictions'::regclass, 'pg_class')")
            await PredictionStore(pool).insert(prediction())
        finally:
            await pool.close()
    assert {"predictions_browser_history_idx", "predictions_model_version_idx", "predictions_labelled_idx"} <= indexes
    assert "fine-tuning" in comment[0][0]


async def test_history_is_newest_first_paginated_and_counted(pool):
    ids = [await PredictionStore(pool).insert(prediction("browser-a", digit)) for digit in (1, 2, 3, 4, 5)]
    await PredictionStore(pool).insert(prediction("browser-b", 9))

    first = await PredictionStore(pool).history(browser_id="browser-a", limit=2, offset=0)
    second = await PredictionStore(pool).history(browser_id="browser-a", limit=2, offset=2)
    last = await PredictionStore(pool).history(browser_id="browser-a", limit=2, offset=4)

    assert [row.id for row in first + second + last] == ids[::-1]
    assert [row.predicted_digit for row in first] == [5, 4]
    newest = first[0]
    assert (newest.canvas_png, newest.true_digit, newest.answer.model_version) == (None, None, "1.0")  # no drawing
    assert await PredictionStore(pool).drawing(browser_id="browser-a", prediction_id=newest.id) == PNG + bytes([5])
    assert await PredictionStore(pool).drawing(browser_id="browser-b", prediction_id=newest.id) is None  # not theirs
    assert newest.answer.confidence == pytest.approx(0.91)
    assert await PredictionStore(pool).history_count(browser_id="browser-a") == 5
    assert await PredictionStore(pool).history_count(browser_id="browser-b") == 1
    assert await PredictionStore(pool).history(browser_id="nobody", limit=10) == []


async def test_history_refuses_a_bad_page(pool):
    with pytest.raises(ValueError, match="limit"):
        await PredictionStore(pool).history(browser_id="browser-a", limit=0)


async def test_same_request_id_is_stored_once(pool):
    retried = prediction(request_id=uuid.uuid4())
    first = await PredictionStore(pool).insert(retried)
    second = await PredictionStore(pool).insert(retried)
    assert first == second
    assert await PredictionStore(pool).history_count(browser_id="browser-a") == 1


async def test_request_id_of_another_browser_is_refused(pool):
    request_id = uuid.uuid4()
    await PredictionStore(pool).insert(prediction("browser-a", request_id=request_id))
    with pytest.raises(RequestIdTaken):
        await PredictionStore(pool).insert(prediction("browser-b", request_id=request_id))
    assert await PredictionStore(pool).history_count(browser_id="browser-b") == 0


async def test_request_id_reused_for_another_image_is_refused(pool):
    """Same browser, same request_id, another drawing: not the first row's id (its digit would pair with this image)."""
    request_id = uuid.uuid4()
    first = await PredictionStore(pool).insert(prediction(digit=3, request_id=request_id))
    with pytest.raises(RequestIdReused):
        await PredictionStore(pool).insert(prediction(digit=4, request_id=request_id))  # canvas_png differs
    assert [row.id for row in await PredictionStore(pool).history(browser_id="browser-a", limit=10)] == [first]


async def test_feedback_labels_that_row_and_can_be_changed(pool):
    labelled = await PredictionStore(pool).insert(prediction(digit=3))
    other = await PredictionStore(pool).insert(prediction(digit=3))

    assert await PredictionStore(pool).set_feedback(prediction_id=labelled, browser_id="browser-a", true_digit=5)
    (first_time,) = (await fetch(pool, "SELECT feedback_at FROM predictions WHERE id = %s", (labelled,)))[0]
    assert await PredictionStore(pool).set_feedback(prediction_id=labelled, browser_id="browser-a", true_digit=3)

    rows = await fetch(pool, "SELECT id, true_digit, feedback_at FROM predictions ORDER BY id")
    assert rows[0][:2] == (labelled, 3)
    assert first_time is not None and rows[0][2] >= first_time
    assert rows[1] == (other, None, None)


async def test_feedback_never_touches_another_browsers_row(pool):
    row_id = await PredictionStore(pool).insert(prediction("browser-a"))
    assert not await PredictionStore(pool).set_feedback(prediction_id=row_id, browser_id="browser-b", true_digit=1)
    assert not await PredictionStore(pool).set_feedback(
        prediction_id=row_id + 100, browser_id="browser-a", true_digit=1
    )
    assert await fetch(pool, "SELECT true_digit, feedback_at FROM predictions") == [(None, None)]


async def test_another_browsers_request_id_opens_nothing(pool):
    """Knowing a row's request_id (or id) is not enough: every lookup and update also needs its browser id."""
    mine = prediction("browser-a")
    await PredictionStore(pool).insert(mine)
    await PredictionStore(pool).set_feedback_by_request_id(
        request_id=mine.request_id, browser_id="browser-a", true_digit=4
    )
    before = await fetch(pool, "SELECT true_digit, feedback_at FROM predictions")
    for at in (None, before[0][1]):  # a live label, and a replayed one (journal) carrying its time
        assert not await PredictionStore(pool).set_feedback_by_request_id(
            request_id=mine.request_id, browser_id="browser-b", true_digit=9, at=at
        )
    assert await PredictionStore(pool).history(browser_id="browser-b", limit=10) == []
    assert await fetch(pool, "SELECT true_digit, feedback_at FROM predictions") == before == [(4, before[0][1])]


@pytest.mark.parametrize("bad", [-1, 10, True, 3.0, "3", None])
async def test_invalid_true_digit_is_refused_in_python(pool, bad):
    row_id = await PredictionStore(pool).insert(prediction())
    with pytest.raises(ValueError, match=r"true_digit must be an integer digit 0\.\.9"):
        await PredictionStore(pool).set_feedback(prediction_id=row_id, browser_id="browser-a", true_digit=bad)
    assert await fetch(pool, "SELECT true_digit FROM predictions") == [(None,)]


# Writes that bypass db/store.py's checks, and the constraint that refuses each (psycopg CheckViolation).
INVALID_UPDATES = {
    "true_digit 10": ("true_digit = 10, feedback_at = now()", "predictions_true_digit_check"),
    "true_digit -1": ("true_digit = -1, feedback_at = now()", "predictions_true_digit_check"),
    "label without its time": ("true_digit = 4", "predictions_feedback_check"),
    "time without a label": ("feedback_at = now()", "predictions_feedback_check"),
    "predicted_digit -1": ("predicted_digit = -1", "predictions_predicted_digit_check"),
    "predicted_digit 10": ("predicted_digit = 10", "predictions_predicted_digit_check"),
    "confidence 1.5": ("confidence = 1.5", "predictions_confidence_check"),
    "confidence -0.1": ("confidence = -0.1", "predictions_confidence_check"),
    "confidence NaN": ("confidence = 'NaN'", "predictions_confidence_check"),
    "a probability 1.5": ("probabilities[3] = 1.5", "predictions_probability_values_check"),
    "a probability -0.1": ("probabilities[3] = -0.1", "predictions_probability_values_check"),
    "a probability NaN": ("probabilities[3] = 'NaN'", "predictions_probability_values_check"),
    "a probability NULL": ("probabilities[3] = NULL", "predictions_probability_values_check"),
    "latency -1": ("latency_ms = -1", "predictions_latency_ms_check"),
}


@pytest.mark.parametrize("case", INVALID_UPDATES, ids=list(INVALID_UPDATES))
async def test_database_checks_refuse_invalid_rows(pool, case):
    assignment, constraint = INVALID_UPDATES[case]
    row_id = await PredictionStore(pool).insert(prediction())
    with pytest.raises(errors.CheckViolation) as refused:
        await fetch(pool, sql.SQL("UPDATE predictions SET {} WHERE id = %s").format(sql.SQL(assignment)), (row_id,))
    assert refused.value.diag.constraint_name == constraint
    rows = await fetch(pool, "SELECT predicted_digit, confidence, true_digit, feedback_at, latency_ms FROM predictions")
    assert rows == [(3, pytest.approx(0.91), None, None, 4.5)]  # unchanged


INSERT_RAW = """
    INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit, confidence,
                             probabilities, canvas_png, latency_ms)
    VALUES (gen_random_uuid(), 'raw', 'mnist', '1.0', 1, 0.5, %s::real[], '\\x00', 1)
    RETURNING id
"""


async def test_probabilities_must_be_ten_values(pool):
    with pytest.raises(ValueError, match="10 values"):
        with_answer(prediction(), probabilities=[0.1] * 9)
    for bad in ([0.1] * 9, [0.1] * 11, [[0.1] * 5, [0.1] * 5]):
        with pytest.raises(errors.CheckViolation, match="probabilities"):
            await fetch(pool, INSERT_RAW, (bad,))
    assert len(await fetch(pool, INSERT_RAW, ([0.1] * 10,))) == 1


async def test_a_constraint_missing_from_an_existing_table_is_added_at_start(server_url):
    """init.sql runs at every start on databases made by older versions: it adds the constraints they lack, and
    rows written before it are not re-checked (NOT VALID), so the start never fails on old data."""
    out_of_range = [1.5] + [0.0] * 9
    with fresh_database(server_url, prefix="test_upgrade") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:
                await conn.execute("ALTER TABLE predictions DROP CONSTRAINT predictions_probability_values_check")
            old = await fetch(pool, INSERT_RAW, (out_of_range,))  # what the older schema allowed
            await apply_schema(pool)
            await apply_schema(pool)
            with pytest.raises(errors.CheckViolation, match="predictions_probability_values_check"):
                await fetch(pool, INSERT_RAW, (out_of_range,))
            assert await fetch(pool, "SELECT id FROM predictions") == old
        finally:
            await pool.close()


async def test_new_prediction_validates_its_values():
    # predicted_digit is the answer's closest digit (the digit itself unless refused)
    for field, bad, named in (("closest_digit", 10, "predicted_digit"), ("confidence", 1.5, "confidence"),
                              ("latency_ms", -1.0, "latency_ms")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            with_answer(prediction(), **{field: bad})


async def test_browser_accuracy_counts_only_labelled_rows_of_that_browser(pool):
    for digit, truth in ((3, 3), (5, 3), (8, 8), (1, None)):
        row_id = await PredictionStore(pool).insert(prediction("browser-a", digit))
        if truth is not None:
            await PredictionStore(pool).set_feedback(prediction_id=row_id, browser_id="browser-a", true_digit=truth)
    other = await PredictionStore(pool).insert(prediction("browser-b", 2))
    await PredictionStore(pool).set_feedback(prediction_id=other, browser_id="browser-b", true_digit=2)

    assert await accuracy_of(pool, "browser-a") == (2, 3)
    assert await accuracy_of(pool, "browser-b") == (1, 1)
    assert await accuracy_of(pool, "nobody") == (0, 0)


# (browser, model version, predicted digit, true digit or None)
KNOWN = [
    ("a", "1.0", 3, 3), ("a", "1.0", 3, 3), ("b", "1.0", 5, 3), ("b", "1.0", 8, 8), ("a", "1.0", 1, 7),
    ("a", "1.0", 2, None), ("c", "2.0", 7, 7), ("c", "2.0", 1, 1), ("b", "2.0", 0, None),
]  # fmt: skip


async def test_stats_on_a_known_data_set(pool):
    for browser, version, predicted, truth in KNOWN:
        row_id = await PredictionStore(pool).insert(prediction(browser, predicted, version=version))
        if truth is not None:
            await PredictionStore(pool).set_feedback(prediction_id=row_id, browser_id=browser, true_digit=truth)

    stats = await PredictionStore(pool).stats()

    assert stats.total == 9
    assert stats.overall == (5, 7) and stats.overall.rate == pytest.approx(5 / 7)
    expected_digits = {digit: (0, 0) for digit in range(10)} | {3: (2, 3), 8: (1, 1), 7: (1, 2), 1: (1, 1)}
    assert stats.per_digit == expected_digits
    assert stats.per_digit[0].rate is None
    expected_confusion = [[0] * 10 for _ in range(10)]
    for true, predicted, count in ((3, 3, 2), (3, 5, 1), (8, 8, 1), (7, 1, 1), (7, 7, 1), (1, 1, 1)):
        expected_confusion[true][predicted] = count
    assert stats.confusion == expected_confusion
    assert stats.per_version == {"1.0": VersionStats(3, 5, 6), "2.0": VersionStats(2, 2, 3)}


async def test_stats_of_an_empty_table(pool):
    stats = await PredictionStore(pool).stats()
    assert (stats.total, stats.overall, stats.per_version) == (0, Accuracy(0, 0), {})
    assert stats.confusion == [[0] * 10 for _ in range(10)]
    assert stats.overall.rate is None


async def test_unreachable_database_is_reported_as_unavailable():
    url = f"postgresql://postgres:wrong@127.0.0.1:{free_port()}/digits"
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        await open_pool(url, timeout=1)


async def test_networks_of_the_prediction_and_the_label_are_kept_and_feedback_reads_the_labels(pool):
    """The poisoning screen of `make retrain` counts networks (issue #20 N2): each prediction keeps the network that
    asked, each label the network that gave it; labelled_feedback reads the label's (else the prediction's)."""
    asked = await PredictionStore(pool).insert(replace(prediction(digit=4), client_network="192.0.2.0/24"))
    old = await PredictionStore(pool).insert(prediction(digit=4))
    assert await PredictionStore(pool).set_feedback(prediction_id=asked, browser_id="browser-a", true_digit=4,
                                    network="198.51.100.0/24")  # fmt: skip
    assert await PredictionStore(pool).set_feedback(prediction_id=old, browser_id="browser-a", true_digit=9)
    rows = await fetch(pool, "SELECT id, client_network::text, feedback_network::text FROM predictions ORDER BY id")
    assert rows[-2:] == [(asked, "192.0.2.0/24", "198.51.100.0/24"), (old, None, None)]
    by_digit = {f.true_digit: f.network for f in await PredictionStore(pool).labelled_feedback()}
    assert by_digit[4] == "198.51.100.0/24" and by_digit[9] is None


async def test_a_network_that_is_not_a_network_is_refused(pool):
    with pytest.raises(errors.InvalidTextRepresentation):
        await PredictionStore(pool).insert(replace(prediction(), client_network="not an address"))
