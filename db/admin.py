"""Admin login state (app/admin.py): failed attempts per client address and per its network, and login tickets and
sessions.

Failures are counted in PostgreSQL, shared by every UI process and kept across restarts; tokens are stored as their
SHA-256 only. Durations are seconds. A network's failures are a row of admin_login_failures like an address's, keyed
by the network ("2001:db8::/64"; an address never holds a "/").
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from db.pool import transaction

_LOGIN_LOCK_KEY = 0x61646D696E  # "admin": every login check of the one admin account, one at a time


def _keys(address: str, network: str | None) -> list[str]:
    """The rows of admin_login_failures an attempt counts in: its address's and its network's."""
    return [address] if network is None else [address, network]


class AdminStore:
    """The admin_login_failures and admin_sessions tables, bound to the app's pool."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def count_login_attempt(
        self, *, address: str, forget: float, delay: Callable[[int], float], network: str | None = None
    ) -> tuple[float, int]:
        """Count a login attempt of an address, and of its `network`, as a failure *before* its password is checked,
        unless it must wait: (seconds still to wait, the larger of the address's and the network's; 0 when counted;
        the larger of their failures now). `delay(failures)` is the wait the policy asks after that many failures.
        All logins are serialised (a transaction-level advisory lock for the account, then the rows), so N attempts
        sent at once are judged one after another: no more passwords are checked than the policy allows
        (docs/security.md N4). A right password clears the counts (clear_login_failures).
        Times are clock_timestamp(), not now() (when the transaction began): an attempt that waited for the lock began
        before the failure it waited for was counted, saw a negative time since it, and read that as a wait left.
        """
        keys = _keys(address, network)
        async with transaction(self.pool) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOGIN_LOCK_KEY,))
            cursor = await conn.execute(
                """
                SELECT failures, extract(epoch FROM clock_timestamp() - last_failure)::float8
                FROM admin_login_failures
                WHERE address = ANY(%s) AND last_failure > clock_timestamp() - make_interval(secs => %s)
                """,
                (keys, forget),
            )
            found = await cursor.fetchall()
            wait = max((delay(failures) - since for failures, since in found), default=0.0)
            if wait > 0:
                return wait, max(failures for failures, _ in found)
            counted = [await self._count_failure(conn, key, forget) for key in keys]
        return 0.0, max(counted)

    @staticmethod
    async def _count_failure(conn: psycopg.AsyncConnection, key: str, forget: float) -> int:
        """One more failure of an address or network (a first one after `forget` seconds starts again); its count."""
        cursor = await conn.execute(
            """
            INSERT INTO admin_login_failures AS f (address, failures, last_failure)
            VALUES (%s, 1, clock_timestamp())
            ON CONFLICT (address) DO UPDATE SET last_failure = clock_timestamp(),
                failures = CASE WHEN f.last_failure > clock_timestamp() - make_interval(secs => %s)
                                THEN f.failures + 1
                                ELSE 1 END
            RETURNING failures
            """,
            (key, forget),
        )
        (counted,) = await cursor.fetchone() or (1,)
        return int(counted)

    async def clear_login_failures(self, *, address: str, network: str | None = None) -> None:
        async with transaction(self.pool) as conn:
            await conn.execute("DELETE FROM admin_login_failures WHERE address = ANY(%s)", (_keys(address, network),))

    async def add_token(
        self, *, token_sha256: bytes, kind: str, browser_id: str, fingerprint: str, idle: float
    ) -> None:
        """Store a login ticket or session (and drop the ones idle for longer than `idle`)."""
        async with transaction(self.pool) as conn:
            await conn.execute(
                "DELETE FROM admin_sessions WHERE last_seen < now() - make_interval(secs => %s)", (idle,)
            )
            await conn.execute(
                "INSERT INTO admin_sessions (token_sha256, kind, browser_id, password_fingerprint) "
                "VALUES (%s, %s, %s, %s)",
                (token_sha256, kind, browser_id, fingerprint),
            )

    async def redeem_ticket(self, *, token_sha256: bytes, browser_id: str, max_age: float) -> str | None:
        """Use up a login ticket of this browser made within `max_age`; its password fingerprint, or None."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                """
                DELETE FROM admin_sessions WHERE token_sha256 = %s AND kind = 'ticket' AND browser_id = %s
                    AND created_at > now() - make_interval(secs => %s)
                RETURNING password_fingerprint
                """,
                (token_sha256, browser_id, max_age),
            )
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def session_valid(
        self, *, token_sha256: bytes, browser_id: str, fingerprint: str, idle: float, touch: bool
    ) -> bool:
        """Whether this browser's session exists, was made with this password and was used within `idle` seconds;
        with `touch`, this use counts (an admin action), else not (the page's own periodic refresh)."""
        async with transaction(self.pool) as conn:
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

    async def delete_session(self, *, token_sha256: bytes) -> None:
        async with transaction(self.pool) as conn:
            await conn.execute("DELETE FROM admin_sessions WHERE token_sha256 = %s", (token_sha256,))
