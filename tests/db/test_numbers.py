"""db/numbers.py and the numbers part of db/init.sql against a real PostgreSQL: what only the database does (its
checks, an older database upgraded at start, a number's digits in retraining's feedback, the journal's numbers). The
behaviour the stand-in shares is in test_contract.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors, sql

from db.journal import Journal
from db.numbers import NumberStore
from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
from records.errors import RequestIdTaken
from records.numbers import check_number
from tests.conftest import fresh_database
from tests.db.test_contract import number

pytestmark = pytest.mark.asyncio


async def fetch(pool, query, params: tuple | None = None) -> list[tuple]:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall()


@pytest.mark.parametrize("bad", ["", "12345678901", "2a", " 42", "٤٢", "²", 42, None])
async def test_only_one_to_ten_ascii_digits_are_a_true_number(bad):
    with pytest.raises(ValueError, match="1 to 10 digits"):
        check_number(bad, name="true_number")


# Writes that bypass db/numbers.py's checks, and the constraint that refuses each.
INVALID = {
    "number with a letter": ("numbers", "number = '4a'", "numbers_number_check"),
    "empty number": ("numbers", "number = ''", "numbers_number_check"),
    "true_number of 11 digits": ("numbers", "true_number = '12345678901', feedback_at = now()",
                                 "numbers_true_number_check"),
    "label without its time": ("numbers", "true_number = '42'", "numbers_feedback_check"),
    "digit without its box": ("predictions", "box = NULL", "predictions_number_digit_check"),
    "digit without its place": ("predictions", "position = NULL", "predictions_number_digit_check"),
    "negative place": ("predictions", "position = -1", "predictions_number_digit_check"),
    "box of 3 values": ("predictions", "box = '{1, 2, 3}'", "predictions_number_digit_check"),
}  # fmt: skip


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
async def test_database_checks_refuse_invalid_numbers_and_digits(pool, case):
    table, assignment, constraint = INVALID[case]
    ids = await NumberStore(pool).insert(number("42"))
    where = "id = %s" if table == "numbers" else "number_id = %s"
    with pytest.raises(errors.CheckViolation) as refused:
        await fetch(pool, sql.SQL("UPDATE {} SET {} WHERE " + where).format(sql.Identifier(table), sql.SQL(assignment)),
                    (ids.id,))  # fmt: skip
    assert refused.value.diag.constraint_name == constraint


async def test_a_digit_points_at_a_number_that_exists_and_one_place_holds_one_digit(pool):
    ids = await NumberStore(pool).insert(number("42"))
    with pytest.raises(errors.ForeignKeyViolation):
        await fetch(pool, "UPDATE predictions SET number_id = 999 WHERE id = %s", (ids.digit_ids[0],))
    with pytest.raises(errors.UniqueViolation):
        await fetch(pool, "UPDATE predictions SET position = 1 WHERE id = %s", (ids.digit_ids[0],))


async def test_an_older_database_gets_the_numbers_at_start_and_keeps_its_rows(server_url):
    """init.sql on a database made before numbers existed: it adds the table and the columns, the old rows stay."""
    with fresh_database(server_url, prefix="test_numbers_upgrade") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:  # back to the schema before numbers
                await conn.execute(
                    "ALTER TABLE predictions DROP COLUMN number_id, DROP COLUMN position, DROP COLUMN box"
                )
                await conn.execute("DROP TABLE numbers")
            single = number("7").digits[0].prediction
            old_id = await PredictionStore(pool).insert(single)
            await apply_schema(pool)
            await apply_schema(pool)  # and again at the next start
            ids = await NumberStore(pool).insert(number("42"))
            entries = await NumberStore(pool).timeline(browser_id="a", limit=10)
            assert [e.id for e in entries] == [ids.id, old_id]
            constraints = await fetch(
                pool, "SELECT conname FROM pg_constraint WHERE conname LIKE 'predictions_number%'"
            )
            assert sorted(name for (name,) in constraints) == [
                "predictions_number_digit_check",
                "predictions_number_id_fkey",
            ]  # once each
        finally:
            await pool.close()


async def test_a_corrected_digit_is_labelled_feedback_with_its_crop(pool):
    read = number("2028")
    await NumberStore(pool).insert(read)
    await NumberStore(pool).set_digit_feedback_by_request_id(
        request_id=read.request_id, browser_id="a", position=3, true_digit=6, network="10.0.0.0/24"
    )
    (feedback,) = await PredictionStore(pool).labelled_feedback()
    assert (feedback.canvas_png, feedback.true_digit, feedback.predicted_digit) == (
        read.digits[3].prediction.canvas_png,
        6,
        8,
    )
    assert (feedback.browser_id, feedback.network, feedback.model_version) == ("a", "10.0.0.0/24", "3.0")


async def test_a_single_drawing_under_a_digits_request_id_refuses_the_number_whole(pool):
    """A digit's request_id is derived from its number's; a drawing stored under it (a forged key) makes the number
    fail as a whole, with nothing half-written."""
    read = number("42")
    await PredictionStore(pool).insert(replace(read.digits[1].prediction, browser_id="b"))
    with pytest.raises(RequestIdTaken, match="digit 1"):
        await NumberStore(pool).insert(read)
    assert await fetch(pool, "SELECT count(*) FROM numbers") == [(0,)]
    assert await fetch(pool, "SELECT count(*) FROM predictions") == [(1,)]


async def test_numbers_and_their_labels_wait_in_the_journal_and_replay_once(pool, db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    read, other = number("2028"), number(None, digits="71")
    await journal.add_number(read)
    await journal.add_number_label(
        request_id=read.request_id, browser_id="a", true_number="2026", network="10.0.0.0/24"
    )
    await journal.add_number(other)
    await journal.add_digit_label(request_id=other.request_id, browser_id="a", position=0, true_digit=1)
    assert journal.pending_request_ids() == {read.request_id, other.request_id}
    assert await journal.replay(PredictionStore(pool)) == 0 and journal.pending == 4  # no number store: kept
    assert await journal.replay(PredictionStore(pool), numbers=NumberStore(pool)) == 4
    assert journal.pending == 0
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT number, true_number, canvas_png FROM numbers ORDER BY id").fetchall()
        digits = conn.execute("SELECT position, predicted_digit, true_digit, canvas_png, box FROM predictions "
                              "ORDER BY number_id, position").fetchall()  # fmt: skip
    assert [(n, t, bytes(png)) for n, t, png in stored] == [("2028", "2026", read.canvas_png),
                                                           (None, "11", other.canvas_png)]  # fmt: skip
    assert [(p, d, t) for p, d, t, _, _ in digits] == [
        (0, 2, 2),
        (1, 0, 0),
        (2, 2, 2),
        (3, 8, 6),
        (0, 7, 1),
        (1, 1, None),
    ]
    assert bytes(digits[3][3]) == read.digits[3].prediction.canvas_png and digits[3][4] == [310.0, 5.0, 390.0, 95.0]
    # replayed again (a crash before the journal was trimmed): nothing doubles
    await journal.add_number(read)
    assert await journal.replay(PredictionStore(pool), numbers=NumberStore(pool)) == 1
    assert await fetch(pool, "SELECT count(*) FROM numbers") == [(2,)]


async def test_a_number_replayed_from_the_journal_keeps_the_time_it_was_read(pool, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    read_at = datetime.now(UTC) - timedelta(hours=2)
    await journal.add_number(replace(number("42"), created_at=read_at))
    await journal.replay(PredictionStore(pool), numbers=NumberStore(pool))
    assert await fetch(pool, "SELECT created_at FROM numbers") == [(read_at,)]
    assert await fetch(pool, "SELECT DISTINCT created_at FROM predictions") == [(read_at,)]  # its digits too
