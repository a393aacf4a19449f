"""HTTP's part of what a request may cost, and who is asking.

BodyLimit is an ASGI middleware around the whole app: a declared Content-Length over the cap is answered 413 before a
byte of the body is read; without one (chunked) or with one that lies, reading stops at the cap with 413. Nothing
downstream ever holds more than the cap in memory.

OriginCheck is another: a browser sends the page's origin with every request that may change something, so one whose
Origin is another site's is a cross-site request forgery (a form or fetch on a page the victim visits) and is refused
with 403; a request without Origin (a script, curl) is not a browser's cross-site request and goes on. It also adds
to every response the headers that keep the page out of other sites' frames (clickjacking) and stop browsers from
guessing content types.

`client_key` names the client for the JSON API's in-flight limit (app/limits.py InFlight): its browser-id cookie when
the request carries a validly signed one (NiceGUI's session cookie); a request without one (or with a forged one)
would get a fresh id every time, so it is counted by its address instead.
"""

from __future__ import annotations

import json
import logging
from base64 import b64decode
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature, TimestampSigner
from nicegui.storage import Storage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

SESSION_COOKIE = "session"  # Starlette's SessionMiddleware, as NiceGUI adds it
SESSION_MAX_AGE = 14 * 24 * 3600  # its default max_age


def too_large(limit: int) -> str:
    return f"the body is larger than the {limit} bytes accepted: at most {limit} bytes"


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_body` bytes, by Content-Length before reading, else while reading.
    `larger`: paths (by prefix) that may take more, and how much (the slate's pictures: a phone photo)."""

    def __init__(self, app: ASGIApp, *, max_body: int, larger: dict[str, int] | None = None):
        self.app = app
        self.max_body = max_body
        self.larger = larger or {}

    def limit(self, path: str) -> int:
        return next((limit for prefix, limit in self.larger.items() if path.startswith(prefix + "/")), self.max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope.get("path", ""))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = 413 if declared.isdigit() else 400
            detail = too_large(limit) if status == 413 else "Content-Length is not a number"
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # chunked, or a Content-Length that lies: stop here
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, capped, send)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# GET routes that change state (the admin login's ticket exchange, logout): a browser navigating to them from another
# site (Sec-Fetch-Site) is refused too; browsers send no Origin with such a navigation
STATE_CHANGING_GETS = ("/admin/session", "/admin/logout")
# On every response. The CSP holds only what was checked not to break NiceGUI (its pages run inline scripts and a
# websocket, so a script-src would need nonces NiceGUI does not give): no other site may frame the page.
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]
CROSS_ORIGIN = (
    "cross-origin request refused: this server takes state-changing requests from its own pages only (a script may "
    "send no Origin header; a proxy that changes the Host header needs ALLOWED_ORIGINS)"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, *, scheme: str, host: str) -> bool:
    """Whether a browser's Origin header names the scheme and Host the request was addressed to. An https origin for
    an http request is the same page behind a TLS proxy whose X-Forwarded-Proto is not believed (TRUSTED_PROXIES);
    the reverse would be a downgrade. Ports are compared as the browser wrote both (its scheme's default when left
    out)."""
    try:
        theirs, ours = urlsplit(origin), urlsplit(f"//{host}")
        default = _DEFAULT_PORTS.get(theirs.scheme)
        their_port, our_port = theirs.port or default, ours.port or default
    except ValueError:  # a port that is not a number
        return False
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return (
        default is not None
        and theirs.hostname is not None
        and theirs.hostname == ours.hostname
        and their_port == our_port
        and theirs.scheme in (scheme, "https")
        and f"{theirs.scheme}://{theirs.netloc}" == origin  # nothing but scheme://[user@]host[:port]
        and "@" not in theirs.netloc
    )


def parse_origins(value: str) -> frozenset[str]:
    """ALLOWED_ORIGINS (comma-separated) as the exact strings browsers send: lower case, no trailing slash."""
    return frozenset(o.strip().rstrip("/").lower() for o in value.split(",") if o.strip())


class OriginCheck:
    """ASGI middleware: 403 for a state-changing request (or websocket) whose Origin is neither the page's own nor in
    `allowed`; a browser's cross-site navigation to a state-changing GET is refused too. Adds SECURITY_HEADERS to
    every HTTP response."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str] = frozenset()):
        self.app = app
        self.allowed = allowed

    def refused(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if scope["type"] == "http" and method not in UNSAFE_METHODS:
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
            return path in STATE_CHANGING_GETS and site in ("cross-site", "same-site")
        origin = headers.get(b"origin")
        if origin is None:
            return False
        text = origin.decode("latin-1").lower()
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if text in self.allowed or same_origin(text, scheme=scope.get("scheme", "http"), host=host):
            return False
        logger.warning("refused a %s %s from Origin %.100r (Host %.100r)", method, path, text, host)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.refused(scope):
            if scope["type"] == "websocket":  # closed before it is accepted: the server answers 403
                await send({"type": "websocket.close", "code": 1008, "reason": "cross-origin"})
                return
            await JSONResponse({"detail": CROSS_ORIGIN}, status_code=403)(scope, receive, self._secured(send))
            return
        await self.app(scope, receive, self._secured(send) if scope["type"] == "http" else send)

    @staticmethod
    def _secured(send: Send) -> Send:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return secured


def signed_browser_id(request: Request) -> str | None:
    """The browser id in the request's own session cookie, if its signature holds (not one made for this request)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or not Storage.secret:
        return None
    try:
        data = TimestampSigner(str(Storage.secret)).unsign(cookie.encode(), max_age=SESSION_MAX_AGE)
        browser_id = json.loads(b64decode(data)).get("id")
    except (BadSignature, ValueError, AttributeError):
        return None
    return browser_id if isinstance(browser_id, str) else None


def browser_key(browser_id: str) -> str:
    """The client key of a browser whose id the page already knows (its own visitor): as client_key names it."""
    return f"browser {browser_id}"


def client_key(request: Request) -> str:
    """Who is asking, for InFlight and the pictures in hand: the signed browser id, else the address (as the
    configured proxies tell it)."""
    if browser_id := signed_browser_id(request):
        return browser_key(browser_id)
    return f"address {request.client.host if request.client else 'unknown'}"
