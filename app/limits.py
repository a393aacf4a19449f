"""What one client may cost the app: a few predictions in flight per client, and a few more per network, at the JSON
API, and one lane at a time for images far larger than a drawing.

InFlight counts a client's requests in flight; one more than the limit is refused (429, Retry-After, at the API)
instead of queueing, so one client cannot take the server's share of TorchServe. A client is its cookie, which costs
nothing to renew, so requests are also counted per network of the client's address (`address_block`): one address
showing a fresh cookie with every request gets no more than its network's share. LargeImageLane sends images larger
than a slate drawing to TorchServe one at a time, across all clients, so that people drawing never wait behind them.
(The cap on every request body is HTTP's business: ui/http.py.)
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from app.picture_headers import PictureRefused, read_header
from serving.inference import ModelUnavailable

# The block one client holds at least: the /64 is the smallest an IPv6 client is given (its addresses are free to
# rotate); an IPv4 /24 is one household's or office's neighbourhood. Not app/networks.py's, the poisoning screen's
# choice, which may be wider.
BLOCK_PREFIX = {4: 24, 6: 64}


def address_block(address: str | None) -> str | None:
    """'203.0.113.7' -> '203.0.113.0/24', '2001:db8::1' -> '2001:db8::/64' (an IPv4-mapped one as IPv4); None when
    there is no address or it is not an IP address (a test client's name)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{BLOCK_PREFIX[ip.version]}", strict=False))


class Busy(RuntimeError):
    """This client (`per` "client") or its network ("network") already has as many requests in flight as it may
    (`limit`)."""

    def __init__(self, message: str, *, per: str, limit: int):
        super().__init__(message)
        self.per = per
        self.limit = limit


class InFlight:
    """At most `limit` requests in flight per client key, and `per_network` per network (one per app; one event loop,
    no lock)."""

    def __init__(self, limit: int, *, per_network: int | None = None):
        self.limit = limit
        self.per_network = per_network
        self._counts: Counter[str] = Counter()

    @contextmanager
    def slot(self, key: str, *, network: str | None = None) -> Iterator[None]:
        """One slot of the client `key` and of its `network` (None: counted per client only), else Busy."""
        held = [(f"client {key}", self.limit, "client")]
        if network is not None and self.per_network is not None:
            held.append((f"network {network}", self.per_network, "network"))
        for name, limit, per in held:
            if self._counts[name] >= limit:
                raise Busy(f"{name} has {self._counts[name]} requests in flight", per=per, limit=limit)
        for name, _, _ in held:
            self._counts[name] += 1
        try:
            yield
        finally:
            for name, _, _ in held:
                self._counts[name] -= 1
                if self._counts[name] <= 0:
                    del self._counts[name]


# The slate exports 280 x 280; an image far larger (an upload through the API) costs the TorchServe worker up to
# ~6x a drawing to decode (make bench-inputs), so those take turns through one lane instead of crowding drawings out.
SLATE_PIXELS = 300 * 300


def pixel_count(data: bytes) -> int:
    """Width x height from the image's header (app/picture_headers.py: a bounded walk, no pixel decoded; Image.open
    would read every JPEG segment before the image in Python, on the event loop: 1.7 s for 4 MB of empty comments);
    0 when it cannot tell or would refuse it."""
    try:
        return read_header(data).pixels
    except PictureRefused:
        return 0  # TorchServe's handler refuses it with the reason


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
