"""The review queue: labels that disagree with the answer, waiting for the operator (the admin page, app/review.py).

A label from an anonymous browser is a suggestion. `make retrain` trains on one that disagrees with the answer only
once the operator approved it here (training/screen.py); a rejected label never trains. Batch decisions take every
unreviewed label of a browser or of a network (where the label came from, else where the drawing was sent from), the
agreeing ones too: approving a browser vouches for the person, rejecting a network drops what came from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from db.pool import transaction

Decision = Literal["approved", "rejected"]
DECISIONS = ("approved", "rejected")
# In the queries below: a label's network is where it came from, else where the drawing was sent from
# (coalesce(feedback_network, client_network)); a suggestion waiting is an unreviewed row whose label is not the answer:
# a digit other than the one answered, "not a digit" for an answered digit, or any digit for a refusal (db/init.sql
# predictions_label_contradicts; its index covers the expression as written here). A row is labelled when it has a
# digit label (true_digit) or a not-a-digit one (labelled_not_a_digit).


@dataclass(frozen=True)
class Suggestion:
    """A label that disagrees with the answer and waits for review (a row of predictions)."""

    id: int
    created_at: datetime
    feedback_at: datetime
    browser_id: str
    network: str | None
    model_version: str
    predicted_digit: int
    confidence: float
    not_a_digit: bool | None
    true_digit: int | None  # None when the label is "not a digit"
    labelled_not_a_digit: bool
    canvas_png: bytes
    browser_pending: int  # how many suggestions of this browser wait
    network_pending: int  # how many of this network


@dataclass(frozen=True)
class QueueSize:
    suggestions: int
    browsers: int
    networks: int


def _check(decision: str) -> None:
    if decision not in DECISIONS:
        raise ValueError(f"a review decision is one of {', '.join(DECISIONS)}, got {decision!r}")


class ReviewStore:
    """Every query of the review queue, bound to the app's pool."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def size(self) -> QueueSize:
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "SELECT count(*), count(DISTINCT browser_id), "
                "count(DISTINCT coalesce(feedback_network, client_network)) FROM predictions "
                "WHERE review IS NULL "
                "AND predictions_label_contradicts(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit)"
            )
            suggestions, browsers, networks = await cursor.fetchone() or (0, 0, 0)
            return QueueSize(suggestions, browsers, networks)

    async def queue(self, *, limit: int, offset: int = 0) -> list[Suggestion]:
        """One page of the suggestions waiting for review, oldest first, with their drawings."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=class_row(Suggestion))
            await cursor.execute(
                """
                WITH pending AS (
                    SELECT id, created_at, feedback_at, browser_id,
                           coalesce(feedback_network, client_network)::text AS network, model_version,
                           predicted_digit, confidence, not_a_digit, true_digit,
                           labelled_not_a_digit IS TRUE AS labelled_not_a_digit, canvas_png
                    FROM predictions
                    WHERE review IS NULL
                      AND predictions_label_contradicts(true_digit, labelled_not_a_digit, predicted_digit, not_a_digit)
                )
                SELECT *, count(*) OVER (PARTITION BY browser_id) AS browser_pending,
                       count(*) OVER (PARTITION BY network) AS network_pending
                FROM pending ORDER BY id LIMIT %s OFFSET %s
                """,
                (limit, offset),
            )
            return await cursor.fetchall()

    async def decide(self, ids: list[int], decision: Decision, *, by: str) -> int:
        """Approve or reject these labelled rows (reviewed before or not); how many changed."""
        _check(decision)
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "UPDATE predictions SET review = %s, reviewed_at = now(), reviewed_by = %s "
                "WHERE id = ANY(%s) AND (true_digit IS NOT NULL OR labelled_not_a_digit)",
                (decision, by, list(ids)),
            )
            return cursor.rowcount

    async def decide_browsers(self, browsers: list[str], decision: Decision, *, by: str) -> int:
        """Every unreviewed label of these browsers, agreeing or not; how many changed."""
        _check(decision)
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "UPDATE predictions SET review = %s, reviewed_at = now(), reviewed_by = %s "
                "WHERE browser_id = ANY(%s) AND (true_digit IS NOT NULL OR labelled_not_a_digit) AND review IS NULL",
                (decision, by, list(browsers)),
            )
            return cursor.rowcount

    async def decide_networks(self, networks: list[str], decision: Decision, *, by: str) -> int:
        """Every unreviewed label that came from these networks, agreeing or not; how many changed."""
        _check(decision)
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "UPDATE predictions SET review = %s, reviewed_at = now(), reviewed_by = %s "
                "WHERE coalesce(feedback_network, client_network) = ANY(%s::cidr[]) "
                "AND (true_digit IS NOT NULL OR labelled_not_a_digit) AND review IS NULL",
                (decision, by, list(networks)),
            )
            return cursor.rowcount
