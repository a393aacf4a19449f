"""Admin login for /models: the password (settings.secret("admin_password")), a limit on failed attempts, and the
browser's logged-in mark.

Failed logins are counted per client address; after `admin_max_failures` within `admin_lockout_seconds` that address
is refused until the window has passed. A successful login is remembered in the browser's server-side storage
together with a fingerprint of the password, so changing the password logs every browser out.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import defaultdict, deque

from nicegui import app

from settings import Settings

SESSION_KEY = "admin"


class LoginLimiter:
    """Failed logins per client address in a sliding window."""

    def __init__(self, *, max_failures: int, window: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str) -> deque[float]:
        failures, now = self._failures[client], self.clock()
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> float:
        """Seconds until this client may try again (0: now)."""
        failures = self._recent(client)
        if len(failures) < self.max_failures:
            return 0.0
        return max(0.0, self.window - (self.clock() - failures[0]))

    def attempts_left(self, client: str) -> int:
        return max(0, self.max_failures - len(self._recent(client)))

    def failed(self, client: str) -> None:
        self._recent(client).append(self.clock())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def fingerprint(password: str) -> str:
    return hashlib.sha256(b"digit-recognizer admin\0" + password.encode()).hexdigest()


class AdminLogin:
    """The admin password check for the app (one per app, built at start-up)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.limiter = LoginLimiter(max_failures=settings.admin_max_failures, window=settings.admin_lockout_seconds)

    @property
    def password(self) -> str:
        return self.settings.secret("admin_password")

    def is_admin(self) -> bool:
        """Whether the current browser is logged in (with the current password)."""
        return hmac.compare_digest(str(app.storage.user.get(SESSION_KEY, "")), fingerprint(self.password))

    def check_login(self, client: str, password: str) -> str | None:
        """None when the password is right (and the browser is now logged in); else the message to show."""
        wait = self.limiter.retry_after(client)
        if wait > 0:
            return f"Too many failed attempts: try again in {wait:.0f} s."
        if not hmac.compare_digest(password.encode(), self.password.encode()):
            self.limiter.failed(client)
            left = self.limiter.attempts_left(client)
            return "Wrong password." + (f" {left} attempt(s) left." if left > 0 else " Locked for a while.")
        self.limiter.succeeded(client)
        app.storage.user[SESSION_KEY] = fingerprint(self.password)
        return None

    @staticmethod
    def logout() -> None:
        app.storage.user.pop(SESSION_KEY, None)
