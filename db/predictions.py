"""The predictions table: one row per prediction served to a browser, with the drawing and the user's label.

`StoredPrediction` (records/predictions.py) is the one record of a stored prediction: what the app inserts, what the
journal keeps during an outage, and what the history and compare mode read back (without the drawing where it is not
needed: a history page shows thumbnails by URL); `stored_prediction` makes it of a row's columns. `PredictionStore`
holds every query of the table, bound to the pool; each call is one short transaction, and an outage is
StoreUnavailable. Constraint violations (bugs, not outages) stay psycopg errors.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row, kwargs_row

from db.pool import Connections, transaction
from records.errors import RequestIdReused, RequestIdTaken
from records.predictions import Prediction, StoredPrediction, check_label
from records.stats import Accuracy, RefusalStats, Stats


def stored_prediction(
    *,
    model_name: str,
    model_version: str,
    predicted_digit: int,
    confidence: float,
    probabilities: list[float],
    preview_png: bytes | None,
    latency_ms: float,
    not_a_digit: bool | None,
    reason: str | None = None,  # absent from journal lines written before it was kept
    **stored: Any,
) -> StoredPrediction:
    """A stored prediction of a row's columns: the model's answer of its own columns, the rest as they are."""
    refused = bool(not_a_digit)  # NULL: written before versions could refuse, so it was not refused
    answer = Prediction(
        digit=None if refused else predicted_digit,
        confidence=confidence,
        probabilities=list(probabilities),
        model_name=model_name,
        model_version=model_version,
        preview_png=preview_png,
        latency_ms=latency_ms,
        not_a_digit=refused,
        reason=reason,
        closest_digit=predicted_digit,
    )
    return StoredPrediction(answer=answer, **stored)


@dataclass(frozen=True)
class Feedback:
    """A labelled drawing as the page stored it: what `make retrain` learns from. The label is a digit (`true_digit`)
    or "not a digit" (`labelled_not_a_digit`, true_digit None); the answer a digit, or a refusal
    (`answered_not_a_digit`, predicted_digit then its closest digit)."""

    canvas_png: bytes
    true_digit: int | None
    browser_id: str
    created_at: datetime
    predicted_digit: int
    confidence: float
    model_version: str
    network: str | None = None  # where the label came from (else the prediction; None: unknown)
    review: str | None = None  # the operator's review (db/review.py): 'approved', 'rejected', None (not reviewed)
    labelled_not_a_digit: bool = False
    answered_not_a_digit: bool = False


class PredictionStore:
    """Every query of the predictions table, bound to the app's pool (one per app)."""

    def __init__(self, pool: Connections):
        self.pool = pool

    async def insert(self, row: StoredPrediction) -> int:
        """Store a prediction and return its id; a retry with the same request_id returns the first row's id. The row
        is dated `row.created_at` when set (a prediction replayed from the journal keeps the time it was made), else
        now.

        RequestIdTaken when the request_id is another browser's; RequestIdReused when it is this browser's, for another
        image (answering with the first row's id would pair the new digit with the old drawing).
        """
        if row.canvas_png is None:
            raise ValueError("a prediction is stored with its drawing")
        digest, answer = hashlib.sha256(row.canvas_png).digest(), row.answer
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit,
                                         confidence, probabilities, canvas_png, preview_png, latency_ms, not_a_digit,
                                         reason, client_network, created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
                ON CONFLICT (request_id) DO UPDATE SET request_id = EXCLUDED.request_id
                    WHERE predictions.browser_id = EXCLUDED.browser_id
                RETURNING id, sha256(canvas_png) = %s
                """,
                (
                    row.request_id, row.browser_id, answer.model_name, answer.model_version, row.predicted_digit,
                    answer.confidence, list(answer.probabilities), row.canvas_png, answer.preview_png,
                    answer.latency_ms, answer.not_a_digit, answer.reason, row.client_network, row.created_at, digest,
                ),
            )  # fmt: skip
            found = await cursor.fetchone()
        # The no-op update makes RETURNING yield the existing id; its WHERE yields nothing when another browser owns it.
        if found is None:
            raise RequestIdTaken(f"request_id {row.request_id} belongs to another browser's prediction")
        row_id, same_image = found
        if not same_image:
            raise RequestIdReused(f"request_id {row.request_id} was used for another image (row {row_id})")
        return int(row_id)

    async def set_feedback(
        self,
        *,
        prediction_id: int,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        network: str | None = None,
    ) -> bool:
        """Record the user's label of their own prediction (may be changed later): the digit they meant, or (with
        `not_a_digit`) that it is no digit; and the network it came from (app/addresses.py). False when no such
        prediction belongs to browser_id: a browser never labels another's rows."""
        check_label(true_digit, not_a_digit)
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                UPDATE predictions SET true_digit = %s, labelled_not_a_digit = %s, feedback_at = now(),
                                       feedback_network = %s
                WHERE id = %s AND browser_id = %s
                """,
                (true_digit, not_a_digit or None, network, prediction_id, browser_id),
            )
            return cursor.rowcount == 1

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool:
        """Like set_feedback, by the client's request_id (a prediction kept in the journal has no row id yet). With
        `at` (a label replayed from the journal) it applies only if no later label was recorded since."""
        check_label(true_digit, not_a_digit)
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                UPDATE predictions SET true_digit = %s, labelled_not_a_digit = %s,
                                       feedback_at = coalesce(%s, now()), feedback_network = %s
                WHERE request_id = %s AND browser_id = %s AND (%s::timestamptz IS NULL OR feedback_at IS NULL
                                                               OR feedback_at <= %s)
                """,
                (true_digit, not_a_digit or None, at, network, request_id, browser_id, at, at),
            )
            return cursor.rowcount == 1

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[StoredPrediction]:
        """One page of a browser's predictions, newest first, without their drawings (drawing() serves those)."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=kwargs_row(stored_prediction))
            await cursor.execute(
                """
                SELECT request_id, browser_id, model_name, model_version, predicted_digit, confidence, probabilities,
                       NULL::bytea AS canvas_png, preview_png, latency_ms, not_a_digit, reason,
                       client_network::text AS client_network, id, created_at, true_digit,
                       feedback_network::text AS feedback_network,
                       labelled_not_a_digit IS TRUE AS labelled_not_a_digit
                FROM predictions WHERE browser_id = %s
                ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s
                """,
                (browser_id, limit, offset),
            )
            return await cursor.fetchall()

    async def history_count(self, *, browser_id: str) -> int:
        """How many predictions a browser has (for the history pager)."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute("SELECT count(*) FROM predictions WHERE browser_id = %s", (browser_id,))
            (count,) = await cursor.fetchone() or (0,)
        return int(count)

    async def drawing(self, *, browser_id: str, prediction_id: int) -> bytes | None:
        """The drawing of one of the browser's predictions (None: not stored, or not this browser's)."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "SELECT canvas_png FROM predictions WHERE id = %s AND browser_id = %s", (prediction_id, browser_id)
            )
            found = await cursor.fetchone()
        return bytes(found[0]) if found else None

    async def accuracy_by_version(self, *, browser_id: str) -> dict[str, Accuracy]:
        """{model_version: (correct, labelled)} over the browser's labelled predictions. Right is the digit answered
        and labelled, or a refusal labelled not a digit; a refusal labelled a digit (even its closest) and a digit
        answered for what is labelled not a digit are wrong (as StoredPrediction.right)."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                SELECT model_version,
                       count(*) FILTER (WHERE (true_digit = predicted_digit AND not_a_digit IS NOT TRUE)
                                              OR (labelled_not_a_digit AND not_a_digit)),
                       count(*)
                FROM predictions WHERE browser_id = %s AND (true_digit IS NOT NULL OR labelled_not_a_digit)
                GROUP BY model_version ORDER BY model_version
                """,
                (browser_id,),
            )
            return {version: Accuracy(correct, labelled) for version, correct, labelled in await cursor.fetchall()}

    async def stats(self) -> Stats:
        """Accuracy overall, per true digit and per model version, the confusion matrix of digit labels, and the
        refusals answered, confirmed and overturned, over all browsers (right and wrong as accuracy_by_version)."""
        async with transaction(self.pool) as conn:
            # Both queries read one snapshot, so the matrix and the per-version totals agree with each other.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor = await conn.execute(
                """
                SELECT true_digit, predicted_digit, count(*) FROM predictions
                WHERE true_digit IS NOT NULL GROUP BY true_digit, predicted_digit
                """
            )
            pairs = await cursor.fetchall()
            cursor = await conn.execute(
                """
                SELECT model_version,
                       count(*) FILTER (WHERE (true_digit = predicted_digit AND not_a_digit IS NOT TRUE)
                                              OR (labelled_not_a_digit AND not_a_digit)),
                       count(*) FILTER (WHERE true_digit IS NOT NULL OR labelled_not_a_digit), count(*)
                FROM predictions GROUP BY model_version ORDER BY model_version
                """
            )
            versions = await cursor.fetchall()
            cursor = await conn.execute(
                """
                SELECT count(*) FILTER (WHERE not_a_digit),
                       count(*) FILTER (WHERE not_a_digit AND labelled_not_a_digit),
                       count(*) FILTER (WHERE not_a_digit AND true_digit IS NOT NULL),
                       count(*) FILTER (WHERE not_a_digit IS NOT TRUE AND labelled_not_a_digit)
                FROM predictions
                """
            )
            refusals = RefusalStats(*(await cursor.fetchone() or (0, 0, 0, 0)))
        return Stats.from_counts(pairs, versions, refusals)

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[StoredPrediction]:
        """The newest predictions of all browsers, with their drawings (admin only: compare mode), newest first."""
        if limit < 1:
            raise ValueError(f"need limit >= 1, got {limit}")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=kwargs_row(stored_prediction))
            await cursor.execute(
                """
                SELECT request_id, browser_id, model_name, model_version, predicted_digit, confidence, probabilities,
                       canvas_png, preview_png, latency_ms, not_a_digit, reason,
                       client_network::text AS client_network, id, created_at, true_digit,
                       feedback_network::text AS feedback_network,
                       labelled_not_a_digit IS TRUE AS labelled_not_a_digit
                FROM predictions WHERE %s = false OR true_digit IS NOT NULL OR labelled_not_a_digit
                ORDER BY created_at DESC, id DESC LIMIT %s
                """,
                (labelled_only, limit),
            )
            return await cursor.fetchall()

    async def labelled_feedback(self) -> list[Feedback]:
        """Every labelled drawing, of every browser, oldest first (retraining only; the pages never call it): digit
        labels, and "not a digit" ones (true_digit None: for the refusal head, never a digit), with whether the
        answer was a refusal."""
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=class_row(Feedback))
            await cursor.execute(
                """
                SELECT canvas_png, true_digit, browser_id, created_at, predicted_digit, confidence, model_version,
                       coalesce(feedback_network, client_network)::text AS network, review,
                       labelled_not_a_digit IS TRUE AS labelled_not_a_digit, not_a_digit IS TRUE AS answered_not_a_digit
                FROM predictions WHERE true_digit IS NOT NULL OR labelled_not_a_digit ORDER BY id
                """
            )
            return await cursor.fetchall()
