"""HTTP's part of what a request may cost, and who is asking.

BodyLimit is an ASGI middleware around the whole app: a declared Content-Length over the cap is answered 413 before a
byte of the body is read; without one (chunked) or with one that lies, reading stops at the cap with 413. Nothing
downstream ever holds more than the cap in memory.

`client_key` names the client for the JSON API's in-flight limit (app/limits.py InFlight): its browser-id cookie when
the request carries a validly signed one (NiceGUI's session cookie); a request without one (or with a forged one)
would get a fresh id every time, so it is counted by its address instead.
"""

from __future__ import annotations

import json
from base64 import b64decode

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature, TimestampSigner
from nicegui.storage import Storage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def client_key(request: Request) -> str:
    """Who is asking, for InFlight: the signed browser id, else the address (as the configured proxies tell it)."""
    if browser_id := signed_browser_id(request):
        return f"browser {browser_id}"
    return f"address {request.client.host if request.client else 'unknown'}"
