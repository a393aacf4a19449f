"""Admin login for /models: the password (settings.secret("admin_password")), a slowing delay after failed attempts,
and server-side admin sessions.

Login attempts are counted per client address in PostgreSQL (admin_login_failures: shared by every UI process, kept
across restarts), each before its password is checked and all one at a time, so that N attempts sent at once check
no more passwords than the policy allows. The address is the socket's peer unless the request came through one of
TRUSTED_PROXIES (ui/main.py passes them to uvicorn), so an X-Forwarded-For header chooses nothing. After
`admin_free_failures` failures each further one doubles the wait before that address may try again, from
`admin_first_delay_seconds` up to `admin_max_delay_seconds`: guessing slows to one try a minute, and whoever shares
the admin's address can make the admin wait at most that long, never lock them out for good. Each attempt also counts
against the address's network (app/limits.py `address_block`: the IPv4 /24, the IPv6 /64), and the wait is the larger
of the two: an IPv6 client holds at least a /64 and could otherwise take a fresh address, with fresh attempts, for
every guess.

Sessions ("renew at login"): NiceGUI's app.storage.user is keyed by the browser-id cookie, which is also the identity
of the browser's drawings and is not changed at login; whoever holds a copy of that cookie shares it. So a login makes
a new random token instead, kept by the browser in its own HttpOnly, SameSite=Strict cookie (ADMIN_COOKIE) and in
PostgreSQL as its SHA-256, with the browser id and a fingerprint of the password. The login form runs over the
websocket, where no cookie can be set: it hands the browser a one-time ticket (60 s, bound to the browser id) that the
HTTP route /admin/session exchanges for the session cookie. Every admin action checks the session row: logging out
deletes it (open tabs stop working), a changed password or `admin_idle_seconds` without an action ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

from app.limits import address_block
from app.outage import Outage
from app.ports import AdminRecords
from settings import Settings

ADMIN_COOKIE = "admin_session"
TICKET_SECONDS = 60.0


class LoginRefused(Exception):
    """A login attempt that did not succeed; the message is for the user."""


def fingerprint(password: str) -> str:
    return hashlib.sha256(b"digit-recognizer admin\0" + password.encode()).hexdigest()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def backoff_delay(failures: int, *, free: int, first: float, cap: float) -> float:
    """Seconds an address waits after `failures` failed logins: none for the first `free`, then doubling, capped."""
    if failures <= free:
        return 0.0
    return min(cap, first * 2.0 ** (failures - free - 1))


class AdminLogin:
    """The admin password check and sessions for the app (one per app, built at start-up)."""

    def __init__(self, settings: Settings, store: AdminRecords, *, outage: Outage | None = None):
        self.settings = settings
        self.store = store
        self.outage = outage or Outage()  # a session check during a known outage answers at once (app/outage.py)

    @property
    def password(self) -> str:
        return self.settings.secret("admin_password")

    def _delay(self, failures: int) -> float:
        s = self.settings
        return backoff_delay(
            failures, free=s.admin_free_failures, first=s.admin_first_delay_seconds, cap=s.admin_max_delay_seconds
        )

    async def check_login(self, address: str, password: str, *, browser_id: str) -> str:
        """The one-time ticket for /admin/session when the password is right; else LoginRefused (StoreUnavailable
        when the database cannot be reached: no login without it). The attempt is counted before the password is
        checked, all attempts one at a time (db/admin.py AdminStore.count_login_attempt)."""
        network = address_block(address)
        wait, failures = await self.outage.read(
            lambda: self.store.count_login_attempt(
                address=address, network=network, forget=self.settings.admin_forget_seconds, delay=self._delay
            )
        )
        if wait > 0:
            raise LoginRefused(f"Too many failed attempts: try again in {math.ceil(wait)} s.")
        if not hmac.compare_digest(password.encode(), self.password.encode()):
            delay = self._delay(failures)
            raise LoginRefused(
                "Wrong password." + (f" Wait {math.ceil(delay)} s before the next attempt." if delay else "")
            )
        await self.store.clear_login_failures(address=address, network=network)
        return await self._new_token("ticket", browser_id=browser_id)

    async def _new_token(self, kind: str, *, browser_id: str) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.add_token(
            token_sha256=_digest(token),
            kind=kind,
            browser_id=browser_id,
            fingerprint=fingerprint(self.password),
            idle=max(self.settings.admin_idle_seconds, TICKET_SECONDS),
        )
        return token

    async def start_session(self, ticket: str, *, browser_id: str) -> str | None:
        """A new session token for this browser in exchange for its ticket (used up); None for an invalid ticket."""
        found = await self.store.redeem_ticket(
            token_sha256=_digest(ticket), browser_id=browser_id, max_age=TICKET_SECONDS
        )
        if found is None or not hmac.compare_digest(found, fingerprint(self.password)):
            return None
        return await self._new_token("session", browser_id=browser_id)

    async def session_valid(self, token: str | None, *, browser_id: str, touch: bool = True) -> bool:
        """Whether `token` is a live admin session of this browser (checked before every admin action);
        StoreUnavailable when the database cannot be reached (at once while that is known: app/outage.py)."""
        self.outage.check()  # during a known outage even the login form could not work: StoreUnavailable at once
        if not token:
            return False
        return await self.outage.read(
            lambda: self.store.session_valid(
                token_sha256=_digest(token),
                browser_id=browser_id,
                fingerprint=fingerprint(self.password),
                idle=self.settings.admin_idle_seconds,
                touch=touch,
            )
        )

    async def end_session(self, token: str) -> None:
        await self.store.delete_session(token_sha256=_digest(token))
