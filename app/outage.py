"""What the app knows of the database being down, for the reads.

A read while PostgreSQL is down waits for the pool's timeout (5 s) before it fails; NiceGUI gives a page 3 s to build,
so /stats and /models answered a raw 500 during an outage, and every page waited again. Once a read or
a write has met the outage, reads answer at once (StoreUnavailable) for `retry` seconds; then one read tries again.
Writes have their own, stronger notion (app/predictions.py `database_down`: they go to the journal until it has been
replayed), which the read side respects as well (app/history.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from records.errors import StoreUnavailable

T = TypeVar("T")
KNOWN_DOWN = "the database cannot be reached (it was a moment ago: not asked again yet)"


class Outage:
    """One per app (app/context.py wire): the use cases that read report what they met, and ask before reading."""

    def __init__(self, *, retry: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.retry = retry
        self.clock = clock
        self._seen_at: float | None = None

    def seen(self) -> None:
        """A call met the outage."""
        self._seen_at = self.clock()

    def over(self) -> None:
        """A call reached the database."""
        self._seen_at = None

    @property
    def known(self) -> bool:
        return self._seen_at is not None and self.clock() - self._seen_at < self.retry

    def check(self) -> None:
        """StoreUnavailable at once while the outage is known."""
        if self.known:
            raise StoreUnavailable(KNOWN_DOWN)

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, unless the outage is known (then StoreUnavailable at once); what it meets is remembered."""
        self.check()
        try:
            result = await call()
        except StoreUnavailable:
            self.seen()
            raise
        self.over()
        return result
