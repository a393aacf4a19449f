"""The connection pool and what every table's store shares: opening it, one transaction per call, outages reported as
StoreUnavailable, and the schema (db/init.sql) applied at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from records.errors import StoreUnavailable

SCHEMA_FILE = Path(__file__).with_name("init.sql")
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x6469676974  # "digit"


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 5, timeout: float = 10.0, name: str = "digits"
) -> AsyncConnectionPool:
    """An opened pool with min_size working connections; StoreUnavailable if none can be made within timeout.

    `timeout` also bounds how long a query waits for a free connection later on, and how long the pool keeps trying
    one connection after an outage before it gives up that try: its tries back off (1, 2, 4, ... s), so after a
    30 s outage the next one came up to 30 s after the database was back (the journal waited that long). Given up,
    the next query that waits for a connection starts a fresh try at once.
    """
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        reconnect_timeout=timeout,
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


class Connections(Protocol):
    """Where a store takes a connection for each call: the pool, or a batch's one transaction (OneTransaction)."""

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection]: ...


class OneTransaction:
    """The connections of a batch of writes: one connection and one transaction for every call, committed once when
    the batch ends (one_transaction). A call the database refuses aborts the transaction: the whole batch."""

    def __init__(self, conn: psycopg.AsyncConnection):
        self.conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        yield self.conn


@asynccontextmanager
async def one_transaction(pool: AsyncConnectionPool) -> AsyncIterator[OneTransaction]:
    """A batch of writes on one pooled connection in one transaction, committed at the end: one commit (and one
    fsync) for many rows. StoreUnavailable on an outage, and then nothing of the batch is kept."""
    async with transaction(pool) as conn, conn.transaction():
        yield OneTransaction(conn)


@asynccontextmanager
async def transaction(pool: Connections) -> AsyncIterator[psycopg.AsyncConnection]:
    """A pooled connection whose block is one transaction; outages become StoreUnavailable."""
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as exc:  # connection lost, server shutting down, PoolTimeout, PoolClosed
        raise StoreUnavailable(f"database unavailable: {exc}") from exc


async def apply_schema(pool: AsyncConnectionPool, *, schema_file: Path = SCHEMA_FILE) -> None:
    """Create the tables and indexes if missing (db/init.sql); safe to run on every start."""
    script = schema_file.read_text()
    async with transaction(pool) as conn:
        # Two app processes starting together would race on CREATE TABLE IF NOT EXISTS (duplicate pg_type rows).
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        # No parameters: psycopg sends the script with the simple protocol, which allows several statements.
        await conn.execute(script)
