"""Async data access for predictions and corrections (psycopg 3 + an AsyncConnectionPool).

Every function takes the pool opened once at app start (`open_pool`), runs one short transaction and returns plain
dataclasses. When the database cannot be reached, they raise `StoreUnavailable`, so the UI can say "database
unavailable" instead of a stack trace; constraint violations (bugs, not outages) stay psycopg errors.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

SCHEMA_FILE = Path(__file__).with_name("init.sql")
DIGITS = range(10)
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x6469676974  # "digit"


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (down, unreachable, or every pooled connection busy for too long)."""


class RequestIdTaken(ValueError):
    """A request_id already belongs to another browser's prediction (a client bug or a forged id)."""


class RequestIdReused(RequestIdTaken):
    """A request_id already names this browser's prediction of another image: a retry must send the same image."""


@dataclass(frozen=True)
class NewPrediction:
    """What the web app stores for one answered prediction request."""

    request_id: uuid.UUID
    browser_id: str
    model_name: str
    model_version: str
    predicted_digit: int
    confidence: float
    probabilities: list[float]
    canvas_png: bytes
    preview_png: bytes | None
    latency_ms: float
    not_a_digit: bool | None = None  # refused as not a digit (predicted_digit: the closest one); None: unknown
    client_network: str | None = None  # the asking address's network (app/networks.py), None: unknown

    def __post_init__(self) -> None:
        # The table's CHECKs hold as well; failing here gives the caller a readable message instead.
        check_digit(self.predicted_digit, name="predicted_digit")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence!r}")
        if len(self.probabilities) != len(DIGITS):
            raise ValueError(f"probabilities must hold 10 values (one per digit), got {len(self.probabilities)}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms!r}")


@dataclass(frozen=True)
class HistoryRow:
    """One line of a browser's history page."""

    id: int
    request_id: uuid.UUID
    created_at: datetime
    predicted_digit: int
    confidence: float
    true_digit: int | None
    model_version: str
    canvas_png: bytes
    not_a_digit: bool | None = None


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


@dataclass(frozen=True)
class Stats:
    """Global numbers for the stats page (all browsers)."""

    total: int  # all predictions, labelled or not
    overall: Accuracy
    per_digit: dict[int, Accuracy]  # keyed by the true digit; all of 0..9 present
    confusion: list[list[int]]  # confusion[true][predicted], 10x10, labelled rows only
    per_version: dict[str, VersionStats]


def check_digit(value: int, *, name: str) -> None:
    # bool is an int in Python; True must not silently become the digit 1
    if isinstance(value, bool) or not isinstance(value, int) or value not in DIGITS:
        raise ValueError(f"{name} must be an integer digit 0..9, got {value!r}")


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 5, timeout: float = 10.0, name: str = "digits"
) -> AsyncConnectionPool:
    """An opened pool with min_size working connections; StoreUnavailable if none can be made within timeout.

    `timeout` also bounds how long a query waits for a free connection later on.
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        name=name,
        # A pooled connection dies silently when the server restarts; checking on checkout hands out live ones only.
        check=AsyncConnectionPool.check_connection,
        kwargs={"connect_timeout": max(1, round(timeout))},
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except psycopg.OperationalError as exc:  # PoolTimeout is one
        await pool.close()
        raise StoreUnavailable(f"cannot connect to the database within {timeout:.0f} s: {exc}") from exc
    return pool


@asynccontextmanager
async def _transaction(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection whose block is one transaction; outages become StoreUnavailable."""
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as exc:  # connection lost, server shutting down, PoolTimeout, PoolClosed
        raise StoreUnavailable(f"database unavailable: {exc}") from exc


async def apply_schema(pool: AsyncConnectionPool, *, schema_file: Path = SCHEMA_FILE) -> None:
    """Create the tables and indexes if missing (db/init.sql); safe to run on every start."""
    script = schema_file.read_text()
    async with _transaction(pool) as conn:
        # Two app processes starting together would race on CREATE TABLE IF NOT EXISTS (duplicate pg_type rows).
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        # No parameters: psycopg sends the script with the simple protocol, which allows several statements.
        await conn.execute(script)


async def insert_prediction(pool: AsyncConnectionPool, prediction: NewPrediction) -> int:
    """Store a prediction and return its id; a retry with the same request_id returns the first row's id.

    RequestIdTaken when the request_id is another browser's; RequestIdReused when it is this browser's, for another
    image (answering with the first row's id would pair the new digit with the old drawing).
    """
    digest = hashlib.sha256(prediction.canvas_png).digest()
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit, confidence,
                                     probabilities, canvas_png, preview_png, latency_ms, not_a_digit, client_network)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (request_id) DO UPDATE SET request_id = EXCLUDED.request_id
                WHERE predictions.browser_id = EXCLUDED.browser_id
            RETURNING id, sha256(canvas_png) = %s
            """,
            (
                prediction.request_id, prediction.browser_id, prediction.model_name, prediction.model_version,
                prediction.predicted_digit, prediction.confidence, list(prediction.probabilities),
                prediction.canvas_png, prediction.preview_png, prediction.latency_ms, prediction.not_a_digit,
                prediction.client_network, digest,
            ),
        )  # fmt: skip
        row = await cursor.fetchone()
    # The no-op update makes RETURNING yield the existing id; its WHERE yields nothing when another browser owns it.
    if row is None:
        raise RequestIdTaken(f"request_id {prediction.request_id} belongs to another browser's prediction")
    row_id, same_image = row
    if not same_image:
        raise RequestIdReused(f"request_id {prediction.request_id} was used for another image (row {row_id})")
    return row_id


async def set_feedback(
    pool: AsyncConnectionPool, *, prediction_id: int, browser_id: str, true_digit: int, network: str | None = None
) -> bool:
    """Record the digit the user meant for their own prediction (may be changed later), and the network it came
    from (app/networks.py).

    Returns False when no such prediction belongs to browser_id: a browser never labels another's rows.
    """
    check_digit(true_digit, name="true_digit")
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            UPDATE predictions SET true_digit = %s, feedback_at = now(), feedback_network = %s
            WHERE id = %s AND browser_id = %s
            """,
            (true_digit, network, prediction_id, browser_id),
        )
        return cursor.rowcount == 1


async def set_feedback_by_request_id(
    pool: AsyncConnectionPool,
    *,
    request_id: uuid.UUID,
    browser_id: str,
    true_digit: int,
    at: datetime | None = None,
    network: str | None = None,
) -> bool:
    """Like set_feedback, by the client's request_id (a prediction kept in the journal has no row id yet).

    With `at` (a label replayed from the journal) it applies only if no later label was recorded since.
    Returns False when nothing was updated.
    """
    check_digit(true_digit, name="true_digit")
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            UPDATE predictions SET true_digit = %s, feedback_at = coalesce(%s, now()), feedback_network = %s
            WHERE request_id = %s AND browser_id = %s AND (%s::timestamptz IS NULL OR feedback_at IS NULL
                                                           OR feedback_at <= %s)
            """,
            (true_digit, at, network, request_id, browser_id, at, at),
        )
        return cursor.rowcount == 1


async def prediction_id(pool: AsyncConnectionPool, *, request_id: uuid.UUID, browser_id: str) -> int | None:
    """The row id of a browser's prediction by its request_id (None: not stored, or not this browser's)."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            "SELECT id FROM predictions WHERE request_id = %s AND browser_id = %s", (request_id, browser_id)
        )
        row = await cursor.fetchone()
    return row[0] if row else None


async def history(pool: AsyncConnectionPool, *, browser_id: str, limit: int, offset: int = 0) -> list[HistoryRow]:
    """One page of a browser's predictions, newest first."""
    if limit < 1 or offset < 0:
        raise ValueError(f"need limit >= 1 and offset >= 0, got limit={limit}, offset={offset}")
    async with _transaction(pool) as conn:
        cursor = conn.cursor(row_factory=class_row(HistoryRow))
        await cursor.execute(
            """
            SELECT id, request_id, created_at, predicted_digit, confidence, true_digit, model_version, canvas_png,
                   not_a_digit
            FROM predictions
            WHERE browser_id = %s
            ORDER BY created_at DESC, id DESC
            LIMIT %s OFFSET %s
            """,
            (browser_id, limit, offset),
        )
        return await cursor.fetchall()


async def history_count(pool: AsyncConnectionPool, *, browser_id: str) -> int:
    """How many predictions a browser has (for the history pager)."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute("SELECT count(*) FROM predictions WHERE browser_id = %s", (browser_id,))
        row = await cursor.fetchone()
    return row[0]


async def browser_accuracy(pool: AsyncConnectionPool, *, browser_id: str) -> Accuracy:
    """(correct, labelled) over the browser's predictions that carry a label."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            SELECT count(*) FILTER (WHERE true_digit = predicted_digit), count(true_digit)
            FROM predictions WHERE browser_id = %s
            """,
            (browser_id,),
        )
        correct, labelled = await cursor.fetchone()
    return Accuracy(correct, labelled)


async def browser_accuracy_by_version(pool: AsyncConnectionPool, *, browser_id: str) -> dict[str, Accuracy]:
    """{model_version: (correct, labelled)} over the browser's labelled predictions."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            SELECT model_version, count(*) FILTER (WHERE true_digit = predicted_digit), count(*)
            FROM predictions WHERE browser_id = %s AND true_digit IS NOT NULL
            GROUP BY model_version ORDER BY model_version
            """,
            (browser_id,),
        )
        return {version: Accuracy(correct, labelled) for version, correct, labelled in await cursor.fetchall()}


async def stats(pool: AsyncConnectionPool) -> Stats:
    """Accuracy overall, per true digit and per model version, and the confusion matrix, over all browsers."""
    async with _transaction(pool) as conn:
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
            SELECT model_version, count(*) FILTER (WHERE true_digit = predicted_digit), count(true_digit), count(*)
            FROM predictions GROUP BY model_version ORDER BY model_version
            """
        )
        versions = await cursor.fetchall()
    return _summarize(pairs, versions)


def _summarize(pairs: list[tuple[int, int, int]], versions: list[tuple[str, int, int, int]]) -> Stats:
    """Stats from (true, predicted, count) pairs and (version, correct, labelled, total) rows."""
    confusion = [[0] * len(DIGITS) for _ in DIGITS]
    for true_digit, predicted_digit, count in pairs:
        confusion[true_digit][predicted_digit] = count
    per_digit = {digit: Accuracy(confusion[digit][digit], sum(confusion[digit])) for digit in DIGITS}
    overall = Accuracy(sum(a.correct for a in per_digit.values()), sum(a.labelled for a in per_digit.values()))
    per_version = {version: VersionStats(correct, labelled, total) for version, correct, labelled, total in versions}
    total = sum(v.total for v in per_version.values())
    return Stats(total=total, overall=overall, per_digit=per_digit, confusion=confusion, per_version=per_version)


class DefaultVersion(NamedTuple):
    version: str
    updated_at: datetime
    updated_by: str


async def get_default_version(pool: AsyncConnectionPool, *, model_name: str) -> DefaultVersion | None:
    """The operator's chosen default version of a model, or None when none was ever chosen."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            "SELECT version, updated_at, updated_by FROM model_defaults WHERE model_name = %s", (model_name,)
        )
        row = await cursor.fetchone()
    return DefaultVersion(*row) if row else None


async def set_default_version(pool: AsyncConnectionPool, *, model_name: str, version: str, updated_by: str) -> None:
    """Remember the operator's choice of default version (applied to TorchServe by the caller and the UI)."""
    async with _transaction(pool) as conn:
        await conn.execute(
            """
            INSERT INTO model_defaults (model_name, version, updated_by) VALUES (%s, %s, %s)
            ON CONFLICT (model_name) DO UPDATE
                SET version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()
            """,
            (model_name, version, updated_by),
        )


@dataclass(frozen=True)
class Drawing:
    """A stored drawing with its label, for comparing model versions on real user input."""

    id: int
    canvas_png: bytes
    true_digit: int | None
    predicted_digit: int
    model_version: str


async def recent_drawings(pool: AsyncConnectionPool, *, limit: int, labelled_only: bool = False) -> list[Drawing]:
    """The newest drawings of all browsers (admin only: compare mode), newest first."""
    if limit < 1:
        raise ValueError(f"need limit >= 1, got {limit}")
    async with _transaction(pool) as conn:
        cursor = conn.cursor(row_factory=class_row(Drawing))
        await cursor.execute(
            """
            SELECT id, canvas_png, true_digit, predicted_digit, model_version FROM predictions
            WHERE %s = false OR true_digit IS NOT NULL
            ORDER BY created_at DESC, id DESC LIMIT %s
            """,
            (labelled_only, limit),
        )
        return await cursor.fetchall()


class DefaultVersions:
    """The operator's chosen default version per model, in model_defaults (serving.versions.RememberedDefault)."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def chosen(self, model_name: str) -> str | None:
        row = await get_default_version(self.pool, model_name=model_name)
        return row.version if row else None

    async def remember(self, model_name: str, version: str, *, by: str) -> None:
        await set_default_version(self.pool, model_name=model_name, version=version, updated_by=by)


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


async def labelled_feedback(pool: AsyncConnectionPool) -> list[Feedback]:
    """Every labelled drawing of every browser, oldest first (retraining only; the pages never call it)."""
    async with _transaction(pool) as conn:
        cursor = conn.cursor(row_factory=class_row(Feedback))
        await cursor.execute(
            """
            SELECT canvas_png, true_digit, browser_id, created_at, predicted_digit, confidence, model_version,
                   coalesce(feedback_network, client_network)::text AS network
            FROM predictions WHERE true_digit IS NOT NULL ORDER BY id
            """
        )
        return await cursor.fetchall()


# Admin login (ui/admin.py): failures per client address, and sessions. Durations are seconds.


_LOGIN_LOCK_KEY = 0x61646D696E  # "admin": every login check of the one admin account, one at a time


async def count_login_attempt(
    pool: AsyncConnectionPool, *, address: str, forget: float, delay: Callable[[int], float]
) -> tuple[float, int]:
    """Count a login attempt of an address as a failure *before* its password is checked, unless it must wait:
    (seconds still to wait, 0 when counted; the address's failures now). `delay(failures)` is the wait the policy
    asks after that many failures. All logins are serialised (a transaction-level advisory lock for the account and
    the address's row), so N attempts sent at once are judged one after another: no more passwords are checked than
    the policy allows (issue #20 N4; before, 20 simultaneous tabs all had theirs checked). A right password clears
    the count (clear_login_failures)."""
    async with _transaction(pool) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOGIN_LOCK_KEY,))
        cursor = await conn.execute(
            """
            SELECT failures, extract(epoch FROM now() - last_failure)::float8 FROM admin_login_failures
            WHERE address = %s AND last_failure > now() - make_interval(secs => %s)
            """,
            (address, forget),
        )
        row = await cursor.fetchone()
        failures, since = (row[0], row[1]) if row else (0, 0.0)
        wait = delay(failures) - since
        if wait > 0:
            return wait, failures
        cursor = await conn.execute(
            """
            INSERT INTO admin_login_failures AS f (address, failures) VALUES (%s, 1)
            ON CONFLICT (address) DO UPDATE SET last_failure = now(),
                failures = CASE WHEN f.last_failure > now() - make_interval(secs => %s) THEN f.failures + 1 ELSE 1 END
            RETURNING failures
            """,
            (address, forget),
        )
        (counted,) = await cursor.fetchone()
    return 0.0, counted


async def clear_login_failures(pool: AsyncConnectionPool, *, address: str) -> None:
    async with _transaction(pool) as conn:
        await conn.execute("DELETE FROM admin_login_failures WHERE address = %s", (address,))


async def add_admin_token(
    pool: AsyncConnectionPool, *, token_sha256: bytes, kind: str, browser_id: str, fingerprint: str, idle: float
) -> None:
    """Store a login ticket or session (and drop the ones idle for longer than `idle`)."""
    async with _transaction(pool) as conn:
        await conn.execute("DELETE FROM admin_sessions WHERE last_seen < now() - make_interval(secs => %s)", (idle,))
        await conn.execute(
            "INSERT INTO admin_sessions (token_sha256, kind, browser_id, password_fingerprint) VALUES (%s, %s, %s, %s)",
            (token_sha256, kind, browser_id, fingerprint),
        )


async def redeem_admin_ticket(
    pool: AsyncConnectionPool, *, token_sha256: bytes, browser_id: str, max_age: float
) -> str | None:
    """Use up a login ticket of this browser made within `max_age`; its password fingerprint, or None."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            DELETE FROM admin_sessions WHERE token_sha256 = %s AND kind = 'ticket' AND browser_id = %s
                AND created_at > now() - make_interval(secs => %s)
            RETURNING password_fingerprint
            """,
            (token_sha256, browser_id, max_age),
        )
        row = await cursor.fetchone()
    return row[0] if row else None


async def admin_session_valid(
    pool: AsyncConnectionPool, *, token_sha256: bytes, browser_id: str, fingerprint: str, idle: float, touch: bool
) -> bool:
    """Whether this browser's session exists, was made with this password and was used within `idle` seconds;
    with `touch`, this use counts (an admin action), else not (the page's own periodic refresh)."""
    async with _transaction(pool) as conn:
        cursor = await conn.execute(
            """
            UPDATE admin_sessions SET last_seen = CASE WHEN %s THEN now() ELSE last_seen END
            WHERE token_sha256 = %s AND kind = 'session' AND browser_id = %s AND password_fingerprint = %s
                AND last_seen > now() - make_interval(secs => %s)
            RETURNING 1
            """,
            (touch, token_sha256, browser_id, fingerprint, idle),
        )
        return await cursor.fetchone() is not None


async def delete_admin_session(pool: AsyncConnectionPool, *, token_sha256: bytes) -> None:
    async with _transaction(pool) as conn:
        await conn.execute("DELETE FROM admin_sessions WHERE token_sha256 = %s", (token_sha256,))


class Store:
    """The queries the app runs, bound to its pool: what ui/ calls (context.store). Page tests hand the pages an
    in-memory stand-in with the same methods (tests/support/fakes.py); the SQL is tested against the real
    PostgreSQL in tests/db."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def insert_prediction(self, prediction: NewPrediction) -> int:
        return await insert_prediction(self.pool, prediction)

    async def set_feedback(
        self, *, prediction_id: int, browser_id: str, true_digit: int, network: str | None = None
    ) -> bool:
        return await set_feedback(
            self.pool, prediction_id=prediction_id, browser_id=browser_id, true_digit=true_digit, network=network
        )

    async def set_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, true_digit: int, network: str | None = None
    ) -> bool:
        return await set_feedback_by_request_id(
            self.pool, request_id=request_id, browser_id=browser_id, true_digit=true_digit, network=network
        )

    async def history(self, *, browser_id: str, limit: int, offset: int = 0) -> list[HistoryRow]:
        return await history(self.pool, browser_id=browser_id, limit=limit, offset=offset)

    async def history_count(self, *, browser_id: str) -> int:
        return await history_count(self.pool, browser_id=browser_id)

    async def browser_accuracy_by_version(self, *, browser_id: str) -> dict[str, Accuracy]:
        return await browser_accuracy_by_version(self.pool, browser_id=browser_id)

    async def stats(self) -> Stats:
        return await stats(self.pool)

    async def recent_drawings(self, *, limit: int, labelled_only: bool = False) -> list[Drawing]:
        return await recent_drawings(self.pool, limit=limit, labelled_only=labelled_only)
