"""Reading and writing the test database from async tests without blocking the event loop.

The page under test (NiceGUI's `user` fixture) runs on the test's own event loop: a synchronous psycopg call there
stops the page too, and once hung a test for 600 s in a SELECT under load. These use psycopg's async connection and
give up, with an error that says so, after QUERY_SECONDS.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

QUERY_SECONDS = 30.0


async def fetch_all(database_url: str, query: str, params: tuple = ()) -> list[tuple[Any, ...]]:
    """Every row of one query, on a connection of its own (TimeoutError after QUERY_SECONDS)."""
    async with asyncio.timeout(QUERY_SECONDS):
        async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=10) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()


async def fetch_one(database_url: str, query: str, params: tuple = ()) -> tuple[Any, ...] | None:
    """The first row of one query, None when there is none."""
    rows = await fetch_all(database_url, query, params)
    return rows[0] if rows else None


async def execute(database_url: str, query: str, params: tuple = ()) -> None:
    """One statement, committed (TimeoutError after QUERY_SECONDS)."""
    async with asyncio.timeout(QUERY_SECONDS):
        async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=10, autocommit=True) as conn:
            await conn.execute(query, params)
