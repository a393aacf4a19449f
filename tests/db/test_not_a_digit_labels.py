"""The label "not a digit" (predictions.labelled_not_a_digit): on the real stores and the stand-ins alike (stored, read
back, counted, queued for review), and on PostgreSQL alone (its CHECKs and trigger, an older database upgraded at
start, the journal, retraining's feedback)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import psycopg
import pytest

from db.journal import Journal
from db.journal_entries import encode_label
from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
from db.review import ReviewStore
from records.predictions import StoredPrediction
from records.stats import RefusalStats
from tests.conftest import ROOT, fresh_database
from tests.db.test_contract import predictions, reviewed, row  # noqa: F401  (fixtures: both implementations)
from tests.db.test_store import fetch
from training import screen

pytestmark = pytest.mark.asyncio


def refused(browser: str = "a", closest: int = 3) -> StoredPrediction:
    answered = row(browser, closest)
    return replace(answered, answer=replace(answered.answer, digit=None, not_a_digit=True, reason="doesn't look"))


async def test_a_not_a_digit_label_is_stored_read_back_and_replaces_a_digit(predictions):  # noqa: F811
    row_id = await predictions.insert(refused())
    assert await predictions.set_feedback(prediction_id=row_id, browser_id="a", true_digit=3)
    assert await predictions.set_feedback(prediction_id=row_id, browser_id="a", not_a_digit=True)
    (back,) = await predictions.history(browser_id="a", limit=5)
    assert (back.true_digit, back.labelled_not_a_digit, back.labelled, back.right) == (None, True, True, True)
    assert await predictions.set_feedback(prediction_id=row_id, browser_id="a", true_digit=5)
    (back,) = await predictions.history(browser_id="a", limit=5)
    assert (back.true_digit, back.labelled_not_a_digit, back.right) == (5, False, False)


@pytest.mark.parametrize("label", [{}, {"true_digit": 3, "not_a_digit": True}, {"not_a_digit": 1}])
async def test_a_label_is_exactly_one_of_a_digit_and_not_a_digit(predictions, label):  # noqa: F811
    row_id = await predictions.insert(row())
    with pytest.raises(ValueError):
        await predictions.set_feedback(prediction_id=row_id, browser_id="a", **label)


async def test_accuracy_and_stats_count_confirmed_refusals_right_and_the_rest_wrong(predictions):  # noqa: F811
    labels = [
        (refused(closest=3), {"not_a_digit": True}),  # confirmed refusal: right
        (refused(closest=4), {"true_digit": 4}),  # overturned, even to its closest digit: wrong
        (row(digit=6), {"not_a_digit": True}),  # "this is not a digit" on an answered 6: wrong
        (row(digit=2), {"true_digit": 2}),  # right
        (refused(closest=1), {}),  # a refusal nobody labelled
    ]
    for drawing, label in labels:
        row_id = await predictions.insert(drawing)
        if label:
            assert await predictions.set_feedback(prediction_id=row_id, browser_id="a", **label)
    assert await predictions.accuracy_by_version(browser_id="a") == {"1.0": (2, 4)}
    stats = await predictions.stats()
    assert stats.overall == (2, 4)
    assert stats.refusals == RefusalStats(answered=3, confirmed=1, overturned=1, not_digits=1)
    assert sum(a.labelled for a in stats.per_digit.values()) == 2  # the matrix holds digit labels only
    newest_first = await predictions.recent_drawings(limit=10, labelled_only=True)
    assert len(newest_first) == 4


async def test_not_a_digit_on_an_answered_digit_waits_for_review_and_a_confirmed_refusal_does_not(reviewed):  # noqa: F811
    store, review = reviewed
    flagged = await store.insert(row("a", 6))
    confirmed = await store.insert(refused("a", 3))
    assert await store.set_feedback(prediction_id=flagged, browser_id="a", not_a_digit=True)
    assert await store.set_feedback(prediction_id=confirmed, browser_id="a", not_a_digit=True)
    (suggestion,) = await review.queue(limit=10)
    assert (suggestion.id, suggestion.true_digit, suggestion.labelled_not_a_digit) == (flagged, None, True)
    assert await review.decide([flagged], "rejected", by="test") == 1
    assert await review.queue(limit=10) == []
    assert await store.set_feedback(prediction_id=flagged, browser_id="a", true_digit=1)  # a new label: again
    assert [s.id for s in await review.queue(limit=10)] == [flagged]
    assert await review.decide_browsers(["a"], "approved", by="test") == 2  # the confirmation too


async def test_a_refusal_labelled_a_digit_waits_for_review_even_its_closest_digit(reviewed):  # noqa: F811
    """ "It is a digit: N" overturns the answer "not a digit", whether N is the closest digit or not."""
    store, review = reviewed
    closest = await store.insert(refused("a", 3))
    other = await store.insert(refused("a", 3))
    answered = await store.insert(row("a", 3))
    for row_id, digit in ((closest, 3), (other, 5), (answered, 3)):
        assert await store.set_feedback(prediction_id=row_id, browser_id="a", true_digit=digit)
    queue = await review.queue(limit=10)
    assert [(s.id, s.true_digit, s.predicted_digit, s.not_a_digit) for s in queue] == [
        (closest, 3, 3, True), (other, 5, 3, True)
    ]  # fmt: skip
    assert (await review.size()).suggestions == 2


# ---- PostgreSQL alone ----------------------------------------------------------------------------------------------

DIRECT_WRITES = {
    "both labels": "true_digit = 3, labelled_not_a_digit = true, feedback_at = now()",
    "false is no label": "labelled_not_a_digit = false, feedback_at = now()",
    "a label without its time": "labelled_not_a_digit = true",
    "a review of no label": "review = 'approved', reviewed_at = now(), reviewed_by = 'x'",
}


@pytest.mark.parametrize("change", DIRECT_WRITES.values(), ids=DIRECT_WRITES.keys())
async def test_the_checks_refuse_a_direct_write(pool, change):
    row_id = await PredictionStore(pool).insert(row())
    with pytest.raises(psycopg.errors.CheckViolation):
        # the SQL is the test's own constant, chosen by the parameter
        await fetch(pool, "UPDATE predictions SET " + change + " WHERE id = %s RETURNING id", (row_id,))


OLD_SCHEMA = [  # what a database made before "not a digit" labels holds
    "DROP TRIGGER predictions_label_changed ON predictions",
    "ALTER TABLE predictions DROP COLUMN labelled_not_a_digit",  # its CHECKs and the queue's index go with it
    "DROP FUNCTION predictions_label_contradicts",
    "ALTER TABLE predictions ADD CONSTRAINT predictions_feedback_check CHECK ((true_digit IS NULL) = "
    "(feedback_at IS NULL))",
    "ALTER TABLE predictions ADD CONSTRAINT predictions_review_values_check CHECK (review IS NULL OR (review IN "
    "('approved', 'rejected') AND true_digit IS NOT NULL AND reviewed_at IS NOT NULL AND reviewed_by IS NOT NULL))",
    "CREATE INDEX predictions_review_queue_idx ON predictions (id) WHERE true_digit IS NOT NULL AND review IS NULL "
    "AND true_digit <> predicted_digit",
    "CREATE OR REPLACE FUNCTION predictions_label_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.true_digit IS DISTINCT FROM OLD.true_digit AND NEW.review IS NOT DISTINCT FROM OLD.review THEN "
    "NEW.review := NULL; NEW.reviewed_at := NULL; NEW.reviewed_by := NULL; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER predictions_label_changed BEFORE UPDATE OF true_digit ON predictions FOR EACH ROW "
    "EXECUTE FUNCTION predictions_label_changed()",
]


async def test_an_older_database_is_upgraded_at_start_and_keeps_its_labels(server_url):
    with fresh_database(server_url, prefix="test_nad_labels_upgrade") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:
                for statement in OLD_SCHEMA:
                    await conn.execute(statement)  # type: ignore[arg-type]  # the test's own constants
            old = await PredictionStore(pool).insert(row("a", 3))
            await fetch(pool, "UPDATE predictions SET true_digit = 5, feedback_at = now() WHERE id = %s "
                        "RETURNING id", (old,))  # fmt: skip
            await apply_schema(pool)
            await apply_schema(pool)  # idempotent
            assert await fetch(pool, "SELECT true_digit, labelled_not_a_digit FROM predictions") == [(5, None)]
            indexes = await fetch(pool, "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'predictions_%%_idx'")
            assert ("predictions_review_queue_idx",) not in indexes and ("predictions_pending_labels_idx",) in indexes
            assert [s.id for s in await ReviewStore(pool).queue(limit=5)] == [old]
            flagged = await PredictionStore(pool).insert(row("a", 6))
            assert await PredictionStore(pool).set_feedback(prediction_id=flagged, browser_id="a", not_a_digit=True)
            assert await ReviewStore(pool).decide([flagged], "approved", by="test") == 1
            assert await PredictionStore(pool).set_feedback(prediction_id=flagged, browser_id="a", true_digit=6)
            review = await fetch(pool, "SELECT review FROM predictions WHERE id = %s", (flagged,))
            assert review == [(None,)]  # the trigger: a changed label waits for review again
        finally:
            await pool.close()


PREVIOUS_RULE = [  # the release before: a refusal labelled its closest digit agreed, and its index said so
    "DROP INDEX predictions_pending_labels_idx",
    "DROP FUNCTION predictions_label_contradicts",
    "CREATE FUNCTION predictions_label_disagrees(true_digit smallint, labelled_not_a_digit boolean, predicted_digit "
    "smallint, not_a_digit boolean) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(true_digit <> "
    "predicted_digit, false) OR coalesce(labelled_not_a_digit AND not_a_digit IS NOT TRUE, false) $$",
    "CREATE INDEX predictions_suggestions_idx ON predictions (id) WHERE review IS NULL AND "
    "predictions_label_disagrees(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit)",
]


async def test_the_previous_rules_index_is_replaced_and_its_rows_reach_the_queue(server_url):
    """An overturned refusal stored under the previous rule was left out of its index; the start replaces function
    and index (never a silent redefinition: the old index would stay stale), and the queue's queries use the new one."""
    with fresh_database(server_url, prefix="test_nad_labels_rule") as url:
        pool = await open_pool(url)
        try:
            await apply_schema(pool)
            async with pool.connection() as conn:
                for statement in PREVIOUS_RULE:
                    await conn.execute(statement)  # type: ignore[arg-type]  # the test's own constants
            overturned = await PredictionStore(pool).insert(refused("a", 3))
            assert await PredictionStore(pool).set_feedback(prediction_id=overturned, browser_id="a", true_digit=3)
            await apply_schema(pool)
            await apply_schema(pool)  # idempotent
            indexes = await fetch(pool, "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'predictions_%%_idx'")
            assert ("predictions_suggestions_idx",) not in indexes and ("predictions_pending_labels_idx",) in indexes
            functions = await fetch(pool, "SELECT proname FROM pg_proc WHERE proname LIKE 'predictions_label_%%'")
            assert sorted(functions) == [("predictions_label_changed",), ("predictions_label_contradicts",)]
            assert [s.id for s in await ReviewStore(pool).queue(limit=5)] == [overturned]
            async with pool.connection() as conn:
                await conn.execute("SET enable_seqscan = off")
                plan = await conn.execute(
                    "EXPLAIN SELECT id FROM predictions WHERE review IS NULL "
                    "AND predictions_label_contradicts(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit)"
                )
                assert "predictions_pending_labels_idx" in str(await plan.fetchall())
        finally:
            await pool.close()


async def test_the_review_queries_are_the_index_predicate_word_for_word():
    """PostgreSQL uses a partial index only for a query that implies its predicate: db/review.py's queries write the
    rule exactly as db/init.sql's index does."""
    rule = "predictions_label_contradicts(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit)"
    schema, queries = (ROOT / "db" / "init.sql").read_text(), (ROOT / "db" / "review.py").read_text()
    index = schema[schema.index("CREATE INDEX IF NOT EXISTS predictions_pending_labels_idx") :].split(";")[0]
    assert " ".join(index.split()).endswith(f"WHERE review IS NULL AND {rule}")
    assert queries.count(rule) == 2 and queries.count("WHERE review IS NULL") == 2


async def test_the_journal_keeps_a_not_a_digit_label_and_replays_the_lines_written_before(pool, tmp_path):
    mine, older = refused("a", 3), row("a", 2)
    for drawing in (mine, older):
        await PredictionStore(pool).insert(drawing)
    journal = Journal(tmp_path / "journal.jsonl")
    await journal.add_label(request_id=mine.request_id, browser_id="a", not_a_digit=True)
    with journal.path.open("a") as file:  # a label's line as every version before wrote it
        file.write(json.dumps(encode_label("label", older.request_id, "a", None, true_digit=7)) + "\n")
    journal._index = None  # the line written by hand: read the file again
    assert await journal.replay(PredictionStore(pool)) == 2
    stored = await fetch(pool, "SELECT true_digit, labelled_not_a_digit FROM predictions ORDER BY id")
    assert stored == [(None, True), (7, None)]
    with pytest.raises(ValueError):
        await journal.add_label(request_id=uuid.uuid4(), browser_id="a", true_digit=3, not_a_digit=True)


async def test_retraining_reads_not_a_digit_labels_for_the_head_and_never_as_digits(pool):
    """labelled_feedback holds both kinds of label with what the answer was; the digit fine-tune's examples hold the
    digit labels only."""
    store = PredictionStore(pool)
    labels = [(refused("a", 3), {"not_a_digit": True}), (row("a", 6), {"not_a_digit": True}),
              (row("a", 2), {"true_digit": 2}), (refused("a", 4), {"true_digit": 4})]  # fmt: skip
    for drawing, label in labels:
        assert await store.set_feedback(prediction_id=await store.insert(drawing), browser_id="a", **label)
    feedback = await store.labelled_feedback()
    assert [(f.true_digit, f.predicted_digit, f.labelled_not_a_digit, f.answered_not_a_digit) for f in feedback] == [
        (None, 3, True, True), (None, 6, True, False), (2, 2, False, False), (4, 4, False, True)
    ]  # fmt: skip
    assert [e.label for e in screen.examples(feedback)] == [2, 4]
