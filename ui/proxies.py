"""Warnings for an operator whose page sits behind a reverse proxy it was not told about.

Behind an ingress or a proxy that is not in TRUSTED_PROXIES, every request comes from the proxy's address: all users
are one address and one network. The learning loop then counts every browser as one network (its caps and screen
judge them together, training/screen.py), the admin back-off and the per-network limits treat everyone as one
client. Nothing breaks loudly, so the page says so: at start-up in production when TRUSTED_PROXIES is empty, and once
when a request carries X-Forwarded-For that the page does not believe.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

UNSET = (
    "TRUSTED_PROXIES is not set: if the page is behind a reverse proxy or an ingress, every user has the proxy's "
    "address, and retraining, the admin back-off and the per-network limits count them all as one network. Set "
    "TRUSTED_PROXIES to the proxy's addresses (docs/operations.md)."
)
FORWARDED = (
    "a request came with X-Forwarded-For from %s, which is not in TRUSTED_PROXIES: the header is ignored and every "
    "user behind that proxy counts as its one address. Set TRUSTED_PROXIES to the proxy's addresses "
    "(docs/operations.md)."
)


def warn_at_start(*, trusted_proxies: list[str], production: bool) -> bool:
    """Log UNSET in production without trusted proxies; whether it warned."""
    if production and not trusted_proxies:
        logger.warning(UNSET)
        return True
    return False


class ForwardedWithoutTrust:
    """ASGI middleware: the first request that carries X-Forwarded-For while no proxy is trusted is logged, once per
    process (the warned flag lives on this instance, built with the app)."""

    def __init__(self, app: ASGIApp, *, trusted: bool):
        self.app = app
        self.trusted = trusted
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.warned
            and not self.trusted
            and scope["type"] in ("http", "websocket")
            and any(name == b"x-forwarded-for" for name, _ in scope.get("headers", []))
        ):
            self.warned = True
            client = scope.get("client")
            logger.warning(FORWARDED, client[0] if client else "an unknown address")
        await self.app(scope, receive, send)
