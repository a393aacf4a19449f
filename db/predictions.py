"""The predictions table: one row per prediction served to a browser, with the drawing and the user's label.

`PredictionRow` is the one record of a stored prediction: what the app inserts, what the journal keeps during an
outage, and what the history and compare mode read back (without the drawing where it is not needed: a history page
shows thumbnails by URL). `PredictionStore` holds every query of the table, bound to the pool; each call is one
short transaction, and an outage is StoreUnavailable. Constraint violations (bugs, not outages) stay psycopg errors.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from psycopg.rows import class_row

from db.pool import Connections, transaction

DIGITS = range(10)


class RequestIdTaken(ValueError):
    """A request_id already belongs to another browser's prediction (a client bug or a forged id)."""


class RequestIdReused(RequestIdTaken):
    """A request_id already names this browser's prediction of another image: a retry must send the same image."""


def check_digit(value: object, *, name: str) -> None:
    # bool is an int in Python; True must not silently become the digit 1
    if isinstance(value, bool) or not isinstance(value, int) or value not in DIGITS:
        raise ValueError(f"{name} must be an integer digit 0..9, got {value!r}")


@dataclass(frozen=True)
class PredictionRow:
    """One stored prediction (a row of `predictions`). The fields after `client_network` are the table's own: set
    once the row exists (id, created_at) or labelled (true_digit, feedback_network)."""

    request_id: uuid.UUID
    browser_id: str
    model_name: str
    model_version: str
    predicted_digit: int  # the digit answered, or the closest one when the drawing was refused as not a digit
    confidence: float
    probabilities: list[float]
    canvas_png: bytes | None  # the drawing as sent (app/drawings.py); None where a read leaves it out
    preview_png: bytes | None  # the 28x28 image the model saw
    latency_ms: float
    not_a_digit: bool | None = None  # refused as not a digit; None: written before versions could refuse
    client_network: str | None = None  # the asking address's network (app/addresses.py); None: unknown
    id: int | None = None
    created_at: datetime | None = None  # set by the table on insert, or before it (journaled: when it was predicted)
    true_digit: int | None = None
    feedback_network: str | None = None
    # A digit of a number (db/numbers.py): its place (0 = leftmost) and its box in the number's drawing, [left, top,
    # right, bottom] (canvas_png is then the digit's crop); None for a single drawing.
    position: int | None = None
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        # The table's CHECKs hold as well; failing here gives the caller a readable message instead.
        check_digit(self.predicted_digit, name="predicted_digit")
        if (self.position is None) != (self.box is None) or (self.box is not None and len(self.box) != 4):
            raise ValueError(f"a digit of a number has a position and a 4-value box, got {self.position}, {self.box}")
        if self.box is not None:  # read back from the table as a list
            object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence!r}")
        if len(self.probabilities) != len(DIGITS):
            raise ValueError(f"probabilities must hold 10 values (one per digit), got {len(self.probabilities)}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms!r}")

    @property
    def right(self) -> bool | None:
        """Whether the answer was right (a refused real digit was not); None until labelled."""
        if self.true_digit is None:
            return None
        return self.true_digit == self.predicted_digit and not self.not_a_digit


class Accuracy(NamedTuple):
    """Correct predictions among the labelled ones; compares equal to the plain tuple (correct, labelled)."""

    correct: int
    labelled: int

    @property
    def rate(self) -> float | None:
        """correct / labelled, or None when nothing is labelled yet."""
        return self.correct / self.labelled if self.labelled else None


class VersionStats(NamedTuple):
    """Accuracy of one model version over its labelled rows, and how many predictions it made in all."""

    correct: int
    labelled: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


class NumberStats(NamedTuple):
    """Whole numbers (db/numbers.py): how many were read, how many the users labelled, how many of those were read
    exactly (every digit, and no digit too many or too few)."""

    total: int
    labelled: int
    exact: int

    @property
    def rate(self) -> float | None:
        return self.exact / self.labelled if self.labelled else None


NO_NUMBERS = NumberStats(total=0, labelled=0, exact=0)


@dataclass(frozen=True)
class Stats:
    """Global numbers for the stats page (all browsers)."""

    total: int  # all predictions, labelled or not: single drawings and the digits of numbers
    overall: Accuracy
    per_digit: dict[int, Accuracy]  # keyed by the true digit; all of 0..9 present
    confusion: list[list[int]]  # confusion[true][predicted], 10x10, labelled rows only
    per_version: dict[str, VersionStats]
    numbers: NumberStats = NO_NUMBERS  # whole numbers, counted apart (app/history.py adds them)

    @classmethod
    def from_counts(cls, pairs: list[tuple[int, int, int]], versions: list[tuple[str, int, int, int]]) -> Stats:
        """From (true, predicted, count) pairs and (version, correct, labelled, total) rows."""
        confusion = [[0] * len(DIGITS) for _ in DIGITS]
        for true_digit, predicted_digit, count in pairs:
            confusion[true_digit][predicted_digit] = count
        per_digit = {digit: Accuracy(confusion[digit][digit], sum(confusion[digit])) for digit in DIGITS}
        overall = Accuracy(sum(a.correct for a in per_digit.values()), sum(a.labelled for a in per_digit.values()))
        per_version = {
            version: VersionStats(correct, labelled, total) for version, correct, labelled, total in versions
        }
        total = sum(v.total for v in per_version.values())
        return cls(total=total, overall=overall, per_digit=per_digit, confusion=confusion, per_version=per_version)


@dataclass(frozen=True)
class Feedback:
    """A labelled drawing as the page stored it: what `make retrain` learns from."""

    canvas_png: bytes
    true_digit: int
    browser_id: str
    created_at: datetime
    predicted_digit: int
    confidence: float
    model_version: str
    network: str | None = None  # where the label came from (else the prediction; None: unknown)
    review: str | None = None  # the operator's review (db/review.py): 'approved', 'rejected', None (not reviewed)


class PredictionStore:
    """Every query of the predictions table, bound to the app's pool (one per app)."""

    def __init__(self, pool: Connections):
        self.pool = pool

    async def insert(self, row: PredictionRow) -> int:
        """Store a prediction and return its id; a retry with the same request_id returns the first row's id. The row
        is dated `row.created_at` when set (a prediction replayed from the journal keeps the time it was made), else
        now.

        RequestIdTaken when the request_id is another browser's; RequestIdReused when it is this browser's, for another
        image (answering with the first row's id would pair the new digit with the old drawing).
        """
        if row.canvas_png is None:
            raise ValueError("a prediction is stored with its drawing")
        digest = hashlib.sha256(row.canvas_png).digest()
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit,
                                         confidence, probabilities, canvas_png, preview_png, latency_ms, not_a_digit,
                                         client_network, created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
                ON CONFLICT (request_id) DO UPDATE SET request_id = EXCLUDED.request_id
                    WHERE predictions.browser_id = EXCLUDED.browser_id
                RETURNING id, sha256(canvas_png) = %s
                """,
                (
                    row.request_id, row.browser_id, row.model_name, row.model_version, row.predicted_digit,
                    row.confidence, list(row.probabilities), row.canvas_png, row.preview_png, row.latency_ms,
                    row.not_a_digit, row.client_network, row.created_at, digest,
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
        self, *, prediction_id: int, browser_id: str, true_digit: int, network: str | None = None
    ) -> bool:
        """Record the digit the user meant for their own prediction (may be changed later), and the network it came
        from (app/addresses.py). False when no such prediction belongs to browser_id: a browser never labels
        another's rows."""
        check_digit(true_digit, name="true_digit")
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                UPDATE predictions SET true_digit = %s, feedback_at = now(), feedback_network = %s
                WHERE id = %s AND browser_id = %s
                """,
                (true_digit, network, prediction_id, browser_id),
            )
            return cursor.rowcount == 1

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool:
        """Like set_feedback, by the client's request_id (a prediction kept in the journal has no row id yet). With
        `at` (a label replayed from the journal) it applies only if no later label was recorded since."""
        check_digit(true_digit, name="true_digit")
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                UPDATE predictions SET true_digit = %s, feedback_at = coalesce(%s, now()), feedback_network = %s
                WHERE request_id = %s AND browser_id = %s AND (%s::timestamptz IS NULL OR feedback_at IS NULL
                                                               OR feedback_at <= %s)
                """,
                (true_digit, at, network, request_id, browser_id, at, at),
            )
            return cursor.rowcount == 1

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[PredictionRow]:
        """One page of a browser's predictions, newest first, without their drawings (drawing() serves those)."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=class_row(PredictionRow))
            await cursor.execute(
                """
                SELECT request_id, browser_id, model_name, model_version, predicted_digit, confidence, probabilities,
                       NULL::bytea AS canvas_png, preview_png, latency_ms, not_a_digit,
                       client_network::text AS client_network, id, created_at, true_digit,
                       feedback_network::text AS feedback_network
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
        """{model_version: (correct, labelled)} over the browser's labelled predictions."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                SELECT model_version, count(*) FILTER (WHERE true_digit = predicted_digit), count(*)
                FROM predictions WHERE browser_id = %s AND true_digit IS NOT NULL
                GROUP BY model_version ORDER BY model_version
                """,
                (browser_id,),
            )
            return {version: Accuracy(correct, labelled) for version, correct, labelled in await cursor.fetchall()}

    async def stats(self) -> Stats:
        """Accuracy overall, per true digit and per model version, and the confusion matrix, over all browsers."""
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
                SELECT model_version, count(*) FILTER (WHERE true_digit = predicted_digit), count(true_digit),
                       count(*)
                FROM predictions GROUP BY model_version ORDER BY model_version
                """
            )
            versions = await cursor.fetchall()
        return Stats.from_counts(pairs, versions)

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[PredictionRow]:
        """The newest predictions of all browsers, with their drawings (admin only: compare mode), newest first."""
        if limit < 1:
            raise ValueError(f"need limit >= 1, got {limit}")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=class_row(PredictionRow))
            await cursor.execute(
                """
                SELECT request_id, browser_id, model_name, model_version, predicted_digit, confidence, probabilities,
                       canvas_png, preview_png, latency_ms, not_a_digit, client_network::text AS client_network, id,
                       created_at, true_digit, feedback_network::text AS feedback_network
                FROM predictions WHERE %s = false OR true_digit IS NOT NULL
                ORDER BY created_at DESC, id DESC LIMIT %s
                """,
                (labelled_only, limit),
            )
            return await cursor.fetchall()

    async def labelled_feedback(self) -> list[Feedback]:
        """Every labelled drawing of every browser, oldest first (retraining only; the pages never call it)."""
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=class_row(Feedback))
            await cursor.execute(
                """
                SELECT canvas_png, true_digit, browser_id, created_at, predicted_digit, confidence, model_version,
                       coalesce(feedback_network, client_network)::text AS network, review
                FROM predictions WHERE true_digit IS NOT NULL ORDER BY id
                """
            )
            return await cursor.fetchall()
