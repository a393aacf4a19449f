"""Explanations as bounded work: what one tab (or a script acting as one) can cost the model server by asking Why?.

An explanation costs TorchServe tens to hundreds of times a prediction, and runs in the same workers and batches, so
before this a single tab asking Why? for every digit of every drawing starved everyone (four users'
median latency 45-75x; docs/security.md N1). Here:

- **One pass per drawing.** The first Why? for a drawing asks for all ten digits' maps at once (`target: all`: one
  forward along the path, one backward per digit), kept in a cache keyed by (drawing, version): switching digits,
  or asking again after another prediction, costs the server nothing. Asks for a drawing whose pass is under way
  wait for that pass instead of starting another.
- **At most one per client.** A client (a browser) has at most one pass waiting and one running; a newer ask replaces
  its older one that has not started (that one ends with `Superseded`, which the page ignores: it is stale).
- **A server-wide budget.** Passes go through one lane, one at a time, and after each the lane stays closed for as
  long again (`share` 0.5): whatever the clients do, explanations take at most half of one TorchServe worker's time.
  A pass that cannot get the lane within `wait` seconds is answered "busy".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from records.errors import ModelUnavailable
from records.explanations import AllExplanations, Explanation

logger = logging.getLogger(__name__)

ExplainAll = Callable[..., Awaitable[AllExplanations]]  # serving.inference.Predictor.explain_all(png, *, version)
Key = tuple[bytes, str]  # (sha256 of the drawing, model version)


class Superseded(Exception):
    """The client asked for another drawing's explanation before this one started: this one is not worth doing."""


@dataclass
class _Client:
    waiting: asyncio.Task | None = None  # a pass queued for this client, not started yet
    running: asyncio.Task | None = None  # this client's pass at the model server


@dataclass
class Explainer:
    """Bounded, cached explanations for the app (one per app, in its context)."""

    explain_all: ExplainAll
    share: float = 0.5  # of one worker's time, at most, over any stretch
    wait: float = 8.0  # seconds a pass may wait for the lane before "busy"
    cache_size: int = 256  # drawings whose ten maps are kept
    _cache: OrderedDict[Key, AllExplanations] = field(default_factory=OrderedDict)
    _passes: dict[Key, asyncio.Task] = field(default_factory=dict)
    _clients: dict[str, _Client] = field(default_factory=dict)
    _lane: asyncio.Lock = field(default_factory=asyncio.Lock)
    passes_run: int = 0  # passes sent to the model server (tests, logs)

    async def explain(self, png: bytes, *, target: int, version: str, client: str) -> Explanation:
        """Why the model of `version` reads `png` as it does, for digit `target`. Raises Superseded (a newer ask of
        the same client replaced this one), ModelUnavailable (busy, or the server cannot answer) or
        PredictionRejected."""
        key = (hashlib.sha256(png).digest(), version)
        if (cached := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return cached.for_target(target)
        task = self._passes.get(key)
        if task is None:
            task = self._queue(key, png, client=client)
        return (await asyncio.shield(task)).for_target(target)

    def _queue(self, key: Key, png: bytes, *, client: str) -> asyncio.Task:
        state = self._clients.setdefault(client, _Client())
        if state.waiting is not None and not state.waiting.done():
            state.waiting.cancel(msg="superseded")  # not started: the newer ask takes its place
        task = asyncio.create_task(self._pass(key, png, state))
        state.waiting = task
        self._passes[key] = task
        task.add_done_callback(lambda done: self._finished(key, client, done))
        return task

    async def _pass(self, key: Key, png: bytes, state: _Client) -> AllExplanations:
        try:
            if state.running is not None:  # this client's earlier pass first: one at the server per client
                await asyncio.wait([state.running])
            await self._acquire_lane()
        except asyncio.CancelledError as exc:
            raise Superseded("a newer explanation of this client replaced this one") from exc
        state.waiting, state.running = None, asyncio.current_task()
        started = time.monotonic()
        try:
            self.passes_run += 1
            answer = await self.explain_all(png, version=key[1])
        finally:
            state.running = None
            busy = time.monotonic() - started
            asyncio.get_running_loop().call_later(busy * (1 / self.share - 1), self._lane.release)
        self._cache[key] = answer
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return answer

    async def _acquire_lane(self) -> None:
        try:
            await asyncio.wait_for(self._lane.acquire(), self.wait)
        except TimeoutError as exc:
            raise ModelUnavailable("explanations are busy right now: try again in a moment") from exc

    def _finished(self, key: Key, client: str, task: asyncio.Task) -> None:
        if self._passes.get(key) is task:
            del self._passes[key]
        if (state := self._clients.get(client)) is not None:
            state.waiting = None if state.waiting is task else state.waiting
            state.running = None if state.running is task else state.running
            if state.waiting is None and state.running is None:
                del self._clients[client]
        if not task.cancelled() and (error := task.exception()) is not None and not isinstance(error, Superseded):
            logger.debug("explanation failed: %s", error)
