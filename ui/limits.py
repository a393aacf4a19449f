"""What one request and one client may cost the page: a cap on every request body, at most a few predictions in
flight per client at the JSON API, and one lane at a time for images far larger than a drawing.

BodyLimit is an ASGI middleware around the whole app: a declared Content-Length over the cap is answered 413 before a
byte of the body is read; without one (chunked) or with one that lies, reading stops at the cap with 413. Nothing
downstream ever holds more than the cap in memory.

InFlight counts a client's requests in flight; one more than the limit is refused (429, Retry-After) instead of
queueing, so one client cannot take the server's share of TorchServe. A client is its browser-id cookie when the
request carries a validly signed one (NiceGUI's session cookie); a request without one (or with a forged one) would
get a fresh id every time, so it is counted by its address instead.
"""

from __future__ import annotations

import asyncio
import io
import json
from base64 import b64decode
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from itsdangerous import BadSignature, TimestampSigner
from nicegui.storage import Storage
from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.inference import ModelUnavailable

SESSION_COOKIE = "session"  # Starlette's SessionMiddleware, as NiceGUI adds it
SESSION_MAX_AGE = 14 * 24 * 3600  # its default max_age


def too_large(limit: int) -> str:
    return f"the body is larger than the {limit} bytes accepted: at most {limit} bytes"


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_body` bytes, by Content-Length before reading, else while reading."""

    def __init__(self, app: ASGIApp, *, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            status = 413 if declared.isdigit() else 400
            detail = too_large(self.max_body) if status == 413 else "Content-Length is not a number"
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:  # chunked, or a Content-Length that lies: stop here
                    raise HTTPException(413, too_large(self.max_body))
            return message

        await self.app(scope, capped, send)


class Busy(RuntimeError):
    """This client already has as many requests in flight as it may."""


class InFlight:
    """At most `limit` requests in flight per client key (one per app, in the AppContext; one event loop, no lock)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._counts: Counter[str] = Counter()

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        if self._counts[key] >= self.limit:
            raise Busy(f"{key} has {self._counts[key]} requests in flight")
        self._counts[key] += 1
        try:
            yield
        finally:
            self._counts[key] -= 1
            if self._counts[key] <= 0:
                del self._counts[key]


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


# The slate exports 280 x 280; an image far larger (an upload through the API) costs the TorchServe worker up to
# ~6x a drawing to decode (make bench-inputs), so those take turns through one lane instead of crowding drawings out.
SLATE_PIXELS = 300 * 300


def pixel_count(data: bytes) -> int:
    """Width x height from the image's header (Pillow decodes no pixel here); 0 when it cannot tell."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 0  # TorchServe's handler refuses it with the reason
    return width * height


class HeavyLane:
    """At most `lanes` images larger than a slate drawing at TorchServe at once, across all clients: with 4 clients
    sending the dearest accepted images, 4 users drawing keep their latency (make bench-hostile). A heavy request that
    waits longer than `wait` seconds is answered "busy" (ModelUnavailable: 503 with Retry-After at the API)."""

    def __init__(self, *, lanes: int = 1, wait: float = 10.0):
        self._slots = asyncio.Semaphore(lanes)
        self.wait = wait

    @asynccontextmanager
    async def slot(self, data: bytes) -> AsyncIterator[None]:
        if pixel_count(data) <= SLATE_PIXELS:
            yield
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait)
        except TimeoutError as exc:
            raise ModelUnavailable("the server is busy with large images: try again in a moment") from exc
        try:
            yield
        finally:
            self._slots.release()
