"""What one client may cost the app: a few predictions in flight per client, and a few more per network, at the JSON
API, and one lane at a time for images far larger than a drawing.

InFlight counts a client's requests in flight; one more than the limit is refused (429, Retry-After, at the API)
instead of queueing, so one client cannot take the server's share of TorchServe. A client is its cookie, which costs
nothing to renew, so requests are also counted per network of the client's address (`address_block`): one address
showing a fresh cookie with every request gets no more than its network's share. LargeImageLane sends images larger
than a slate drawing to TorchServe one at a time, across all clients, so that people drawing never wait behind them;
those waiting take turns by network, then by client within it, so that one client or network with many waiting,
or dear ones, gets its share of the lane's time, not the lane.
(The cap on every request body is HTTP's business: ui/http.py.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from app.picture_headers import PictureRefused, read_header
from records.errors import ModelUnavailable, PredictionRejected

# The block one client holds at least: the /64 is the smallest an IPv6 client is given (its addresses are free to
# rotate); an IPv4 /24 is one household's or office's neighbourhood. Not app/addresses.py's, the poisoning screen's
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
    sending the dearest accepted images, 4 users drawing keep their latency (make bench-hostile). Every number is such
    an image (the Number slate is 840 x 280), so the lane is fair rather than first come, first served: the next turn
    goes to the network that has held the lane least (in seconds) of those with requests waiting, and within it to
    the client that has held it least: a network sending many, or dear, requests gets its share of the lane's time,
    not the lane. Ties go round in turn (round-robin). A network that starts waiting starts level with the others
    waiting (no credit for the time it was away), so one arriving waits at most one turn of each other network (each
    turn's cost is bounded: the handler refuses a number whose reading costs more than its work budget). A large image
    that waits longer than `wait` seconds is answered "busy" (ModelUnavailable: 503 with Retry-After at the API).

    A turn whose image the model server refused (PredictionRejected: too complex to read, not an image it takes) is
    counted `refused_weight` times its length: people send drawings the reader takes, and time spent on ones it
    refuses is what an attack on the lane is made of. Without it, eight networks sending zigzags held eight turns in
    nine against one network of users (10x their latency); with it, the users' next request waits for about one."""

    def __init__(
        self,
        *,
        lanes: int = 1,
        wait: float = 10.0,
        refused_weight: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.lanes = lanes
        self.wait = wait
        self.refused_weight = refused_weight
        self.clock = clock
        self._busy = 0
        # network -> client -> their waiting requests, each a future set when its turn comes; among those that have
        # held the lane least, the first has the next turn and goes to the end once served
        self._waiting: OrderedDict[str, OrderedDict[str, deque[asyncio.Future[None]]]] = OrderedDict()
        self._held: dict[str, float] = {}  # seconds each network has held the lane, while any waits
        self._client_held: dict[tuple[str, str], float] = {}  # ... and each client of a network
        # each network's last turn, as counted: the next turn goes to the network that would *finish* first, so that
        # among networks level in time held, one whose turns are cheap goes before one whose turns are dear
        self._last: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, data: bytes, *, client: str = "", network: str | None = None) -> AsyncIterator[None]:
        """A turn for `data` if it is larger than a slate drawing (else at once), for `client` of `network` (None:
        the client stands alone)."""
        if pixel_count(data) <= SLATE_PIXELS:
            yield
            return
        network = network if network is not None else f"client {client}"
        await self._turn(client, network)
        started, weight = self.clock(), 1.0
        try:
            yield
        except PredictionRejected:
            weight = self.refused_weight
            raise
        finally:
            self._busy -= 1
            self._count(network, client, (self.clock() - started) * weight)
            self._serve()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for clients in self._waiting.values() for queue in clients.values())

    async def _turn(self, client: str, network: str) -> None:
        if self._busy < self.lanes and not self._waiting:
            self._busy += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(network, client, turn)
        served = False
        try:
            async with asyncio.timeout(self.wait):
                await turn
            served = True
        except TimeoutError as exc:
            raise ModelUnavailable("the server is busy with large images: try again in a moment") from exc
        finally:
            if not served:  # timed out or cancelled
                self._leave(network, client, turn)

    def _enqueue(self, network: str, client: str, turn: asyncio.Future[None]) -> None:
        """Queue `turn`; a network (or client) that starts waiting starts level with those already waiting."""
        if network not in self._waiting:
            floor = min((self._held.get(other, 0.0) for other in self._waiting), default=0.0)
            self._held[network] = max(self._held.get(network, 0.0), floor)
        clients = self._waiting.setdefault(network, OrderedDict())
        if client not in clients:
            floor = min((self._client_held.get((network, other), 0.0) for other in clients), default=0.0)
            self._client_held[network, client] = max(self._client_held.get((network, client), 0.0), floor)
        clients.setdefault(client, deque()).append(turn)

    def _count(self, network: str, client: str, seconds: float) -> None:
        """A turn ended after `seconds`; with nobody waiting, nobody is owed anything: the counts start again."""
        self._last[network] = seconds
        if not self._waiting:
            self._held.clear()
            self._client_held.clear()
            return
        self._held[network] = self._held.get(network, 0.0) + seconds
        self._client_held[network, client] = self._client_held.get((network, client), 0.0) + seconds

    def _leave(self, network: str, client: str, turn: asyncio.Future[None]) -> None:
        """A request that stops waiting: out of its queue; a turn given to it meanwhile goes to the next."""
        if turn.done() and not turn.cancelled():
            self._busy -= 1
        turn.cancel()
        self._drop(network, client, turn)
        self._serve()

    def _serve(self) -> None:
        """Give free lanes to the next in turn: of the networks waiting, the one that would finish its turn first
        (the time it has held the lane and its last turn's; the first of equals), and within it the client that has
        held it least; each then goes to the end of its order."""
        while self._busy < self.lanes and self._waiting:
            network = min(self._waiting, key=lambda n: self._held.get(n, 0.0) + self._last.get(n, 0.0))
            clients = self._waiting[network]
            client = min(clients, key=lambda c: self._client_held.get((network, c), 0.0))
            queue = clients[client]
            turn = queue.popleft()
            if queue:
                clients.move_to_end(client)
            else:
                del clients[client]
            if clients:
                self._waiting.move_to_end(network)
            else:
                del self._waiting[network]
            if not turn.done():
                self._busy += 1
                turn.set_result(None)

    def _drop(self, network: str, client: str, turn: asyncio.Future[None]) -> None:
        clients = self._waiting.get(network)
        queue = clients.get(client) if clients is not None else None
        if queue is None or turn not in queue:
            return
        queue.remove(turn)
        if not queue:
            del clients[client]  # type: ignore[union-attr]
        if not clients:
            del self._waiting[network]
