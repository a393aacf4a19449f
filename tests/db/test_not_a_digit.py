"""The `not_a_digit` mark of a refused drawing: added to databases made before it, stored by inserts and by the
journal's replay, read back by the history page. Kept apart from test_store.py on purpose (small, separate)."""

from __future__ import annotations

import pytest

from db.journal import Journal
from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
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
