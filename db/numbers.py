"""The numbers table: drawings of several digits read as one number, and the link from each digit's row of
`predictions` to its number (db/init.sql says why a digit is such a row: retraining, stats and compare mode see it
like any drawing).

`StoredNumber` (records/numbers.py) is the one record of a stored number, its digits as NumberDigits (position,
box, and the digit's stored prediction with its crop as the drawing): what the app inserts, what the journal keeps
during an outage, and what the history reads back (without drawings). `NumberStore` holds every query of the numbers
and of their digit rows, bound to the pool; each call is one short transaction, and an outage is StoreUnavailable,
as in PredictionStore.

A digit row's request_id is derived from its number's (`digit_request_id`), so a retried or replayed number finds its
digits again instead of making second rows, and a label can name a digit by its number and position.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import NamedTuple

import psycopg
from psycopg.rows import dict_row, kwargs_row

from db.pool import Connections, transaction
from db.predictions import stored_prediction
from records.errors import RequestIdReused, RequestIdTaken
from records.numbers import MAX_TRUE_DIGITS, NumberDigit, StoredNumber, check_number
from records.predictions import StoredPrediction, check_digit
from records.stats import NumberStats


def digit_request_id(number_request_id: uuid.UUID, position: int) -> uuid.UUID:
    """The request_id of a number's digit row: fixed by the number's request_id and the digit's place."""
    return uuid.uuid5(number_request_id, f"digit {position}")


class NumberIds(NamedTuple):
    """The ids a stored number got: its own, and its digit rows' (left to right)."""

    id: int
    digit_ids: tuple[int, ...]


class NumberStore:
    """Every query of the numbers table and of its digits' rows, bound to the app's pool (one per app).

    The reads list their columns in each query (SQL only as literals: tests/test_sql_parameters.py): a digit's row
    without its crop (NULL::bytea AS canvas_png), a number's row without its drawing."""

    def __init__(self, pool: Connections):
        self.pool = pool

    async def insert(self, row: StoredNumber) -> NumberIds:
        """Store a number and its digit rows in one transaction; a retry with the same request_id returns the first
        ids. Dated `row.created_at` when set (replayed from the journal), else now; its digits get the same time.

        RequestIdTaken when the request_id (or a digit's) is another browser's; RequestIdReused when it is this
        browser's number of another drawing.
        """
        if row.canvas_png is None or any(digit.prediction.canvas_png is None for digit in row.digits):
            raise ValueError("a number is stored with its drawing and each digit with its crop")
        digest = hashlib.sha256(row.canvas_png).digest()
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                INSERT INTO numbers (request_id, browser_id, model_name, model_version, number, not_a_digit, reason,
                                     canvas_png, latency_ms, client_network, created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
                ON CONFLICT (request_id) DO UPDATE SET request_id = EXCLUDED.request_id
                    WHERE numbers.browser_id = EXCLUDED.browser_id
                RETURNING id, sha256(canvas_png) = %s, created_at
                """,
                (
                    row.request_id, row.browser_id, row.model_name, row.model_version, row.number, row.not_a_digit,
                    row.reason, row.canvas_png, row.latency_ms, row.client_network, row.created_at, digest,
                ),
            )  # fmt: skip
            found = await cursor.fetchone()
            # As in PredictionStore.insert: the no-op update returns the existing row unless another browser owns it.
            if found is None:
                raise RequestIdTaken(f"request_id {row.request_id} belongs to another browser's number")
            number_id, same_image, created_at = found
            if not same_image:
                raise RequestIdReused(f"request_id {row.request_id} was used for another drawing (number {number_id})")
            stored = await self._digit_ids(conn, number_id)
            if stored or not row.digits:  # a retry: its digits were stored with it
                return NumberIds(int(number_id), stored)
            return NumberIds(int(number_id), await self._insert_digits(conn, row, number_id, created_at))

    @staticmethod
    async def _digit_ids(conn: psycopg.AsyncConnection, number_id: int) -> tuple[int, ...]:
        cursor = await conn.execute("SELECT id FROM predictions WHERE number_id = %s ORDER BY position", (number_id,))
        return tuple(int(digit_id) for (digit_id,) in await cursor.fetchall())

    @staticmethod
    async def _insert_digits(
        conn: psycopg.AsyncConnection, row: StoredNumber, number_id: int, created_at: datetime
    ) -> tuple[int, ...]:
        ids = []
        for digit in row.digits:
            stored, answer = digit.prediction, digit.prediction.answer
            try:
                async with conn.transaction():  # a savepoint, so the error below leaves the transaction usable
                    cursor = await conn.execute(
                        """
                        INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit,
                                                 confidence, probabilities, canvas_png, preview_png, latency_ms,
                                                 not_a_digit, reason, client_network, created_at, number_id,
                                                 position, box)
                        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                        RETURNING id
                        """,
                        (
                            stored.request_id, stored.browser_id, answer.model_name, answer.model_version,
                            stored.predicted_digit, answer.confidence, list(answer.probabilities), stored.canvas_png,
                            answer.preview_png, answer.latency_ms, answer.not_a_digit, answer.reason,
                            stored.client_network,
                            created_at, number_id, digit.position, list(digit.box),
                        ),
                    )  # fmt: skip
            except psycopg.errors.UniqueViolation as exc:  # a single drawing was stored under this digit's id
                raise RequestIdTaken(f"request_id {stored.request_id} of digit {digit.position} is taken") from exc
            (digit_id,) = await cursor.fetchone() or (0,)
            ids.append(int(digit_id))
        return tuple(ids)

    async def set_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_number: str,
        at: datetime | None = None,
        network: str | None = None,
    ) -> int | None:
        """Record the number the user wrote for their own number (may be changed later), and the network it came from.
        When it has as many digits as were read, each digit row gets its digit as label too (at the same time, unless
        that digit has a newer label of its own); else the digit rows lose the labels they had (unless newer): the
        drawing was not split into the digits the user wrote, so no crop is known to hold one of them, and a label
        left from an earlier answer ("123" before "45") would teach retraining what the user took back.

        Returns how many digit rows were labelled, or None when this browser has no such number (or, with `at`, a
        label replayed from the journal, the number has a newer label)."""
        check_number(true_number, name="true_number")
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                UPDATE numbers SET true_number = %s, feedback_at = coalesce(%s, now()), feedback_network = %s
                WHERE request_id = %s AND browser_id = %s AND (%s::timestamptz IS NULL OR feedback_at IS NULL
                                                               OR feedback_at <= %s)
                RETURNING id, feedback_at
                """,
                (true_number, at, network, request_id, browser_id, at, at),
            )
            found = await cursor.fetchone()
            if found is None:
                return None
            number_id, labelled_at = found
            if len(await self._digit_ids(conn, number_id)) != len(true_number):
                await conn.execute(
                    """
                    UPDATE predictions SET true_digit = NULL, labelled_not_a_digit = NULL, feedback_at = NULL,
                                           feedback_network = NULL
                    WHERE number_id = %s AND feedback_at <= %s
                    """,
                    (number_id, labelled_at),
                )
                return 0
            cursor = await conn.execute(
                """
                UPDATE predictions SET true_digit = substr(%s, position + 1, 1)::smallint,
                                       labelled_not_a_digit = NULL, feedback_at = %s, feedback_network = %s
                WHERE number_id = %s AND (feedback_at IS NULL OR feedback_at <= %s)
                """,
                (true_number, labelled_at, network, number_id, labelled_at),
            )
            return cursor.rowcount

    async def set_digit_feedback_by_request_id(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        position: int,
        true_digit: int,
        at: datetime | None = None,
        network: str | None = None,
    ) -> bool:
        """Record the digit the user meant at `position` (0 = leftmost) of their own number. The number's label becomes
        the reading with this digit corrected (and the corrections before it kept), unless the user typed a number
        of another length: that one stays. False when this browser has no such number or digit (or, with `at`, the
        digit has a newer label)."""
        check_digit(true_digit, name="true_digit")
        async with transaction(self.pool) as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                """SELECT id, request_id, browser_id, model_name, model_version, number, latency_ms, not_a_digit,
                   reason, client_network::text AS client_network, created_at, true_number, feedback_network::text
                   AS feedback_network FROM numbers WHERE request_id = %s AND browser_id = %s FOR UPDATE""",
                (request_id, browser_id),
            )
            number = await cursor.fetchone()
            if number is None:
                return False
            updated = await conn.execute(
                """
                UPDATE predictions SET true_digit = %s, labelled_not_a_digit = NULL,
                                       feedback_at = coalesce(%s, now()), feedback_network = %s
                WHERE number_id = %s AND position = %s AND (%s::timestamptz IS NULL OR feedback_at IS NULL
                                                            OR feedback_at <= %s)
                RETURNING feedback_at
                """,
                (true_digit, at, network, number["id"], position, at, at),
            )
            labelled = await updated.fetchone()
            if labelled is None:
                return False
            digits = await self._digits(conn, [number["id"]])
            corrected = _corrected(_number_row(number, digits), position, true_digit)
            if corrected is not None:
                await conn.execute(
                    """
                    UPDATE numbers SET true_number = %s, feedback_at = %s, feedback_network = %s
                    WHERE id = %s AND (feedback_at IS NULL OR feedback_at <= %s)
                    """,
                    (corrected, labelled[0], network, number["id"], labelled[0]),
                )
            return True

    async def timeline(self, *, browser_id: str, limit: int, offset: int = 0) -> list[StoredPrediction | StoredNumber]:
        """One page of a browser's history, newest first: its single drawings and its numbers (each once, with its
        digits), without drawings (drawing() and the digits' rows serve those)."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
        async with transaction(self.pool) as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # the three reads agree
            cursor = await conn.execute(
                """
                SELECT kind, id FROM (
                    SELECT 'drawing' AS kind, id, created_at FROM predictions
                    WHERE browser_id = %s AND number_id IS NULL
                    UNION ALL
                    SELECT 'number' AS kind, id, created_at FROM numbers WHERE browser_id = %s
                ) AS entries
                ORDER BY created_at DESC, id DESC, kind LIMIT %s OFFSET %s
                """,
                (browser_id, browser_id, limit, offset),
            )
            keys = [(str(kind), int(entry_id)) for kind, entry_id in await cursor.fetchall()]
            drawings = await self._drawings(conn, [entry_id for kind, entry_id in keys if kind == "drawing"])
            numbers = await self._numbers(conn, [entry_id for kind, entry_id in keys if kind == "number"])
        return [drawings[entry_id] if kind == "drawing" else numbers[entry_id] for kind, entry_id in keys]

    async def timeline_count(self, *, browser_id: str) -> int:
        """How many entries a browser's history has: single drawings and numbers (a number's digits are not counted)."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                SELECT (SELECT count(*) FROM predictions WHERE browser_id = %s AND number_id IS NULL)
                     + (SELECT count(*) FROM numbers WHERE browser_id = %s)
                """,
                (browser_id, browser_id),
            )
            (count,) = await cursor.fetchone() or (0,)
        return int(count)

    @staticmethod
    async def _drawings(conn: psycopg.AsyncConnection, ids: list[int]) -> dict[int, StoredPrediction]:
        cursor = conn.cursor(row_factory=kwargs_row(stored_prediction))
        await cursor.execute(
            """SELECT request_id, browser_id, model_name, model_version, predicted_digit, confidence,
               probabilities, NULL::bytea AS canvas_png, preview_png, latency_ms, not_a_digit, reason,
               client_network::text AS client_network, id, created_at, true_digit,
               feedback_network::text AS feedback_network, labelled_not_a_digit IS TRUE AS labelled_not_a_digit
               FROM predictions WHERE id = ANY(%s)""",
            (ids,),
        )
        return {row.id: row for row in await cursor.fetchall() if row.id is not None}

    @staticmethod
    async def _digits(conn: psycopg.AsyncConnection, number_ids: list[int]) -> dict[int, list[NumberDigit]]:
        """The digit rows of these numbers, left to right (without their crops), by number id."""
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            """SELECT number_id, request_id, browser_id, model_name, model_version, predicted_digit, confidence,
               probabilities, NULL::bytea AS canvas_png, preview_png, latency_ms, not_a_digit, reason,
               client_network::text AS client_network, id, created_at, true_digit,
               feedback_network::text AS feedback_network, position, box
               FROM predictions WHERE number_id = ANY(%s) ORDER BY position""",
            (number_ids,),
        )
        digits: dict[int, list[NumberDigit]] = {}
        for found in await cursor.fetchall():
            number_id, position, box = found.pop("number_id"), found.pop("position"), found.pop("box")
            digits.setdefault(number_id, []).append(NumberDigit(position, box, stored_prediction(**found)))
        return digits

    async def _numbers(self, conn: psycopg.AsyncConnection, ids: list[int]) -> dict[int, StoredNumber]:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(
            """SELECT id, request_id, browser_id, model_name, model_version, number, latency_ms, not_a_digit,
               reason, client_network::text AS client_network, created_at, true_number, feedback_network::text AS
               feedback_network FROM numbers WHERE id = ANY(%s)""",
            (ids,),
        )
        found = await cursor.fetchall()
        digits = await self._digits(conn, ids)
        return {number["id"]: _number_row(number, digits) for number in found}

    async def drawing(self, *, browser_id: str, number_id: int) -> bytes | None:
        """The whole drawing of one of the browser's numbers (None: not stored, or not this browser's)."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "SELECT canvas_png FROM numbers WHERE id = %s AND browser_id = %s", (number_id, browser_id)
            )
            found = await cursor.fetchone()
        return bytes(found[0]) if found else None

    async def stats(self) -> NumberStats:
        """How many numbers were read, labelled, and read exactly, over all browsers."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "SELECT count(*), count(true_number), count(*) FILTER (WHERE true_number = number) FROM numbers"
            )
            total, labelled, exact = await cursor.fetchone() or (0, 0, 0)
        return NumberStats(int(total), int(labelled), int(exact))


def _number_row(number: dict, digits: dict[int, list[NumberDigit]]) -> StoredNumber:
    return StoredNumber(canvas_png=None, digits=tuple(digits.get(number["id"], ())), **number)


def _corrected(number: StoredNumber, position: int, digit: int) -> str | None:
    """The number's label once the digit at `position` is `digit`: the label so far (or the reading) with that digit
    changed; None when the user typed a number of another length (it stays) or the result is too long to be one."""
    base = number.true_number or number.reading
    if len(base) != len(number.digits) or len(base) > MAX_TRUE_DIGITS or not 0 <= position < len(base):
        return None
    return base[:position] + str(digit) + base[position + 1 :]
