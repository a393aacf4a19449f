"""The connection pool and what every table's store shares: opening it, one transaction per call, outages reported as
StoreUnavailable, and the schema (db/init.sql) applied at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

SCHEMA_FILE = Path(__file__).with_name("init.sql")
# Any constant works; it only has to be the same for every process applying the schema.
_SCHEMA_LOCK_KEY = 0x6469676974  # "digit"


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (down, unreachable, or every pooled connection busy for too long)."""


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
async def transaction(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection]:
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
