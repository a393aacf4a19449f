"""What one client may cost the app: a few predictions in flight per client at the JSON API, and one lane at a time
for images far larger than a drawing.

InFlight counts a client's requests in flight; one more than the limit is refused (429, Retry-After, at the API)
instead of queueing, so one client cannot take the server's share of TorchServe. LargeImageLane sends images larger
than a slate drawing to TorchServe one at a time, across all clients, so that people drawing never wait behind them.
(The cap on every request body is HTTP's business: ui/http.py.)
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from PIL import Image

from serving.inference import ModelUnavailable


class Busy(RuntimeError):
    """This client already has as many requests in flight as it may."""


class InFlight:
    """At most `limit` requests in flight per client key (one per app; one event loop, no lock)."""

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


class LargeImageLane:
    """At most `lanes` images larger than a slate drawing at TorchServe at once, across all clients: with 4 clients
    sending the dearest accepted images, 4 users drawing keep their latency (make bench-hostile). A large image that
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
