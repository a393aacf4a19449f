"""Restarting a part of the product that died, with back-off: the loop behind `make run` once everything is up.

Each part (TorchServe, the private PostgreSQL, the UI: deploy/parts.py) is watched by its own Keeper, a small state
machine stepped once a second, so one part restarting (TorchServe takes 10-30 s to load its models) never delays
noticing that another died:

    running --dies--> waiting --back-off over--> starting --ready--> running
                         ^                          |
                         +--- exits, fails, or not ready in time

The waits double from 1 s up to 30 s while a part keeps failing, and start from 1 s again once it has run for a
minute: a part that dies once comes back at once, one that cannot start does not spin.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Protocol

import httpx

from db.embedded import PrivateServerError
from deploy.torchserve import TorchServeError
from records.errors import ManagementError

# What a part's start may raise; anything else is a bug and ends the supervisor (its `finally` stops the rest).
START_ERRORS = (
    TorchServeError, PrivateServerError, ManagementError, httpx.HTTPError, OSError, subprocess.SubprocessError,
)  # fmt: skip


class Part(Protocol):
    """One server the supervisor keeps running."""

    name: str
    start_timeout: float  # seconds from start() until ready() must hold

    def alive(self) -> bool:
        """Its process runs (cheap: called every second)."""
        ...

    def start(self) -> None:
        """Stop what is left of the last run, then launch it again (may return before it serves: see ready)."""
        ...

    def ready(self) -> bool:
        """It serves (called while starting)."""
        ...

    def restored(self) -> list[str]:
        """Put back what it forgot in a restart, once ready; returns what was done or failed, one line each."""
        ...

    def tick(self) -> str | None:
        """Periodic work while it runs (renew keys, remember its state); a message when something failed."""
        ...

    def last_words(self) -> str:
        """Why it may have died (the end of its log), for the message that says it did."""
        ...


class BackOff:
    """The waits before restarting one part: `first`, twice that, ... at most `cap`; `first` again after a run of
    `steady` seconds."""

    def __init__(self, *, first: float = 1.0, cap: float = 30.0, steady: float = 60.0):
        self.first = first
        self.cap = cap
        self.steady = steady
        self._next = first

    def delay(self, *, ran_for: float) -> float:
        """The wait before the next start of a part that ran `ran_for` seconds before it died or failed."""
        if ran_for >= self.steady:
            self._next = self.first
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay


class State(Enum):
    RUNNING = "running"
    WAITING = "waiting"  # died; restarted when the back-off is over
    STARTING = "starting"  # started again, not ready yet


class Keeper:
    """Keeps one part running: notices it died, waits the back-off, starts it, waits until it is ready, and has it
    put back what it forgot. `say` prints the supervisor's messages (stderr)."""

    def __init__(
        self,
        part: Part,
        *,
        backoff: BackOff | None = None,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ):
        self.part = part
        self.backoff = backoff or BackOff()
        self.clock = clock
        self.say = say or _to_stderr
        self.state = State.RUNNING
        self.since = clock()  # when the current state began
        self.due = 0.0  # WAITING: when to start again
        self.died_at = self.since  # when it last died (what "is back after" counts from)

    def step(self) -> None:
        """One look at the part, acting on what it shows (never raises for a part that fails to start)."""
        now = self.clock()
        if self.state is State.RUNNING:
            self._watch(now)
        elif self.state is State.WAITING and now >= self.due:
            self._start(now)
        elif self.state is State.STARTING:
            self._check_started(now)

    def _watch(self, now: float) -> None:
        if not self.part.alive():
            self._failed(now, f"{self.part.name} stopped unexpectedly:\n{self.part.last_words()}")
        elif problem := self.part.tick():
            self.say(problem)

    def _start(self, now: float) -> None:
        self.say(f"restarting {self.part.name} ...")
        try:
            self.part.start()
        except START_ERRORS as exc:
            self._failed(now, f"{self.part.name} did not start: {exc}")
            return
        self._enter(State.STARTING, now)

    def _check_started(self, now: float) -> None:
        if not self.part.alive():
            self._failed(now, f"{self.part.name} exited while starting:\n{self.part.last_words()}")
        elif self.part.ready():
            self._enter(State.RUNNING, self.clock())
            self.say(f"{self.part.name} is back after {now - self.died_at:.1f} s")
            for line in self.part.restored():
                self.say(f"  {line}")
        elif now - self.since > self.part.start_timeout:
            self._failed(now, f"{self.part.name} was not ready {self.part.start_timeout:.0f} s after its start")

    def _failed(self, now: float, message: str) -> None:
        """It died or could not start: say so, and wait the back-off before the next start."""
        if self.state is State.RUNNING:
            self.died_at = now
        delay = self.backoff.delay(ran_for=now - self.since if self.state is State.RUNNING else 0.0)
        self.say(f"{message}\n{self.part.name}: next start in {delay:.0f} s")
        self.due = now + delay
        self._enter(State.WAITING, now)

    def _enter(self, state: State, now: float) -> None:
        self.state = state
        self.since = now


def keep_running(keepers: Sequence[Keeper], *, interval: float = 1.0) -> None:
    """Step every keeper once per `interval`, until interrupted (Ctrl-C, SIGTERM: the caller stops the parts)."""
    while True:
        for keeper in keepers:
            keeper.step()
        time.sleep(interval)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
