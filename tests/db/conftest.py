"""Fixtures for the db tests: a real PostgreSQL (private server, or TEST_DATABASE_URL), a fresh database per test
module, and a pool per test on an emptied table.

TEST_DATABASE_URL, when set, must allow CREATE DATABASE (each module gets its own database, dropped afterwards).
Async fixtures are declared with pytest_asyncio.fixture and async tests carry the asyncio mark, so the tests run
with asyncio_mode "strict" or "auto"; everything async is function-scoped (one event loop per test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool

from db.pool import SCHEMA_FILE, open_pool
from tests.conftest import fresh_database


@pytest.fixture(scope="module")
def db_url(server_url, request) -> Iterator[str]:
    """A database of its own for the test module, with the schema applied."""
    with fresh_database(server_url, prefix=f"test_{request.module.__name__.rpartition('.')[2]}") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA_FILE.read_text())
        yield url


@pytest_asyncio.fixture
async def pool(db_url) -> AsyncIterator[AsyncConnectionPool]:
    """An open pool on the module's database, whose predictions and numbers tables start empty."""
    pool = await open_pool(db_url, max_size=3)
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE predictions, numbers RESTART IDENTITY")
    try:
        yield pool
    finally:
        await pool.close()
