"""The `not_a_digit` mark of a refused drawing and the reason it was refused: added to databases made before them,
stored by inserts and by the journal's replay, read back by the history. Kept apart from test_store.py on purpose
(small, separate)."""

from __future__ import annotations

import json

import pytest

from db.journal import Journal
from db.journal_entries import encode_prediction
from db.numbers import NumberStore
from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
from records.predictions import StoredPrediction
from tests.conftest import fresh_database
from tests.db.test_store import fetch, prediction, with_answer

pytestmark = pytest.mark.asyncio


async def test_the_column_is_added_to_an_existing_table_and_old_rows_stay_null(server_url):
    with fresh_database(server_url, prefix="test_nad_upgrade") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:
                await conn.execute("ALTER TABLE predictions DROP COLUMN not_a_digit")  # a database made before
            await fetch(pool, "INSERT INTO predictions (request_id, browser_id, model_name, model_version, "
                        "predicted_digit, confidence, probabilities, canvas_png, latency_ms) VALUES "
                        "(gen_random_uuid(), 'b', 'mnist', '1.0', 3, 0.9, %s, 'x', 1) RETURNING id",
                        ([0.1] * 10,))  # fmt: skip
            await apply_schema(pool)
            await apply_schema(pool)  # idempotent
            assert await fetch(pool, "SELECT not_a_digit FROM predictions") == [(None,)]
        finally:
            await pool.close()


async def test_a_refused_row_is_stored_marked_with_its_closest_digit_and_shows_in_the_history(pool):
    refused = with_answer(prediction("browser-r", 7), digit=None, not_a_digit=True)
    answered = with_answer(prediction("browser-r", 2), not_a_digit=False)
    for row in (refused, answered):
        await PredictionStore(pool).insert(row)
    stored = await fetch(pool, "SELECT predicted_digit, not_a_digit FROM predictions ORDER BY id")
    assert stored == [(7, True), (2, False)]
    newest_first = await PredictionStore(pool).history(browser_id="browser-r", limit=10)
    assert [(row.predicted_digit, row.answer.not_a_digit) for row in newest_first] == [(2, False), (7, True)]
    assert [row.answer.digit for row in newest_first] == [2, None]  # the answer read back as the model gave it


async def test_the_journal_keeps_the_mark(pool, tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    await journal.add_prediction(with_answer(prediction("browser-j", 4), digit=None, not_a_digit=True))
    assert await journal.replay(PredictionStore(pool)) == 1
    assert await fetch(pool, "SELECT predicted_digit, not_a_digit FROM predictions") == [(4, True)]


# ---- the refusal's reason ----------------------------------------------------------------------------------------

SEVERAL = "looks like several digits"


async def test_the_reason_column_is_added_to_an_existing_table_and_old_rows_stay_null(server_url):
    with fresh_database(server_url, prefix="test_reason_upgrade") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:
                await conn.execute("ALTER TABLE predictions DROP COLUMN reason")  # a database made before
            await fetch(pool, "INSERT INTO predictions (request_id, browser_id, model_name, model_version, "
                        "predicted_digit, confidence, probabilities, canvas_png, latency_ms, not_a_digit) VALUES "
                        "(gen_random_uuid(), 'b', 'mnist', '1.0', 3, 0.9, %s, 'x', 1, true) RETURNING id",
                        ([0.1] * 10,))  # fmt: skip
            await apply_schema(pool)
            await apply_schema(pool)  # idempotent
            assert await fetch(pool, "SELECT reason FROM predictions") == [(None,)]
            (old,) = await PredictionStore(pool).history(browser_id="b", limit=1)
            assert (old.answer.not_a_digit, old.answer.reason) == (True, None)
        finally:
            await pool.close()


async def test_a_refused_row_keeps_its_reason_and_reads_back_the_answer_it_stored(pool):
    refused = with_answer(prediction("browser-why", 7), digit=None, not_a_digit=True, reason=SEVERAL)
    await PredictionStore(pool).insert(refused)
    await PredictionStore(pool).insert(prediction("browser-why", 2))
    assert await fetch(pool, "SELECT reason FROM predictions ORDER BY id") == [(SEVERAL,), (None,)]
    newest_first = await PredictionStore(pool).history(browser_id="browser-why", limit=10)
    assert [row.answer.reason for row in newest_first] == [None, SEVERAL]
    assert newest_first[1].answer == refused.answer  # the model's answer, as it was given
    (shown, _) = await NumberStore(pool).timeline(browser_id="browser-why", limit=10)
    assert isinstance(shown, StoredPrediction) and shown.answer.reason is None  # the newest: answered
    assert (await NumberStore(pool).timeline(browser_id="browser-why", limit=1, offset=1))[0].answer.reason == SEVERAL


async def test_the_journal_keeps_the_reason_and_replays_lines_written_before_it(pool, tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    refused = with_answer(prediction("browser-jr", 4), digit=None, not_a_digit=True, reason=SEVERAL)
    await journal.add_prediction(refused)
    old = with_answer(prediction("browser-jr", 5), digit=None, not_a_digit=True)
    entry = encode_prediction(old)
    del entry["prediction"]["reason"]  # as lines were written before the reason was kept
    with journal.path.open("a") as file:
        file.write(json.dumps(entry) + "\n")
    journal._index = None  # the line written by hand: read the file again
    assert await journal.replay(PredictionStore(pool)) == 2
    stored = await fetch(pool, "SELECT predicted_digit, not_a_digit, reason FROM predictions ORDER BY id")
    assert stored == [(4, True, SEVERAL), (5, True, None)]
