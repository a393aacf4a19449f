"""Admin login without servers: the failure limiter and the per-address lockout (ui/admin.py)."""

from __future__ import annotations

from settings import Settings
from ui.admin import AdminLogin, LoginLimiter

PASSWORD = "correct horse battery staple"


def test_login_limiter_window():
    now = [0.0]
    limiter = LoginLimiter(max_failures=2, window=60, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 60 and limiter.retry_after("b") == 0
    now[0] = 30
    assert limiter.retry_after("a") == 30
    now[0] = 61
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0


def test_a_locked_out_address_does_not_lock_out_the_others():
    """check_login (what the page calls with the request's client address) counts failures per address."""
    admin = AdminLogin(Settings(_env_file=None, admin_password=PASSWORD, admin_max_failures=3))
    for left in ("2 attempt(s) left.", "1 attempt(s) left.", "Locked for a while."):
        assert admin.check_login("203.0.113.7", "guess") == f"Wrong password. {left}"
    assert admin.check_login("203.0.113.7", PASSWORD).startswith("Too many failed attempts")
    assert admin.check_login("198.51.100.2", "guess") == "Wrong password. 2 attempt(s) left."
