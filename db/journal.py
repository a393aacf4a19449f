"""A durable local journal for what could not be written to PostgreSQL, replayed exactly once when it is back.

When the database is unreachable, the web app still answers predictions; each prediction it could not store and
each label it could not record is appended here (one JSON line, flushed and fsync'ed before the user is told "kept
locally"). A background task replays the journal in order as soon as the database answers again:

- a prediction is inserted with its original request_id; the insert is idempotent by request_id, so a replay
  interrupted after the commit but before the journal was trimmed does not create a second row;
- a label is applied by (request_id, browser_id) with the time the user gave it, and only if no later label was
  given since (feedback_at), so replaying an old label never overwrites a newer one;
- a number (db/numbers.py) is kept whole, with its digits' rows, and inserted by request_id like a prediction; its
  labels (the whole number typed, or one digit) follow the rule of a label. They are replayed into the number store.

Entries are removed from the file only after they are committed, by rewriting it atomically (write, fsync, rename).
A replay reads the file a chunk at a time in a thread, never whole and never on the event loop; what stays in memory
is an index of what each line is about, whose it is and its size.

What the journal may hold is capped, in all and per browser id and per network (a browser id costs nothing to
renew): an entry that would pass a cap is refused with JournalFull, so one client flooding saves during an outage
fills neither the disk nor the time a replay takes, and the others keep their share.
A line that cannot be read (torn by a crash or a full disk, edited by hand) never stops the replay, nor the app's
start: it is moved aside, whole, to `<journal>.rejected` (kept for an operator, counted in the page's note) and the
rest is replayed. A write either appends a whole line or raises JournalWriteError, leaving the file as it was.

Here the Journal, what it writes and what it refuses; db/journal_entries.py what a line holds, db/journal_index.py what
is kept in memory of the file, db/journal_replay.py how a replay writes the entries to the database.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from db.journal_entries import LABEL_KINDS, Waiting, encode_label, encode_number, encode_prediction
from db.journal_index import Held, Index
from db.journal_replay import (
    AsideBuffer,
    Batches,
    NumberReplayTarget,
    Progress,
    ReplayTarget,
    drop_first,
    entries,
    file_size,
    write_entries,
)
from db.numbers import NumberStore
from db.pool import one_transaction
from db.predictions import PredictionStore
from records.errors import JournalFull, JournalWriteError, StoreUnavailable
from records.numbers import StoredNumber, check_number
from records.predictions import StoredPrediction, check_digit, check_label

logger = logging.getLogger(__name__)


class Journal:
    """Append-only JSON lines in one file; safe for the tasks of one process (one writer process per file).

    What it may hold is capped (None: no cap): `max_bytes` in all, `max_bytes_per_client` per browser id and
    `max_bytes_per_network` per network (a browser id costs nothing to renew, a network does), an entry counting for
    at least ENTRY_WEIGHT bytes. An entry that would pass a cap is not written: JournalFull, which the page and the
    API answer with 503 "NOT saved".
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int | None = None,
        max_bytes_per_client: int | None = None,
        max_bytes_per_network: int | None = None,
    ):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_bytes_per_client = max_bytes_per_client
        self.max_bytes_per_network = max_bytes_per_network
        self._lock = asyncio.Lock()
        self._replaying = asyncio.Lock()
        self._index: Index | None = None
        self._set_aside: int | None = None
        self.refused = 0  # entries refused at a cap since start

    @property
    def pending(self) -> int:
        """How many entries wait to be written to the database."""
        return len(self._held().lines)

    @property
    def size(self) -> int:
        """The bytes the waiting entries take in the file."""
        return self._held().total

    def pending_request_ids(self) -> AbstractSet[uuid.UUID]:
        """The request ids the entries are about (asked on every prediction and label: kept in memory)."""
        return self._held().request_ids.keys()

    def waiting(self, request_id: uuid.UUID, *, kind: str) -> Waiting | None:
        """The first prediction (kind "prediction") or number ("number") waiting under `request_id`: the one a replay
        will insert, which every later one is compared with. None when the journal holds none."""
        return self._held().first.get((request_id, kind))

    async def load(self) -> None:
        """Read what the file holds into memory (what each entry is about and whose it is), in a thread: a journal
        of an earlier outage may be large. (Otherwise done on first use.)"""
        if self._index is None:
            index = await asyncio.to_thread(Index.of_file, self.path)
            if self._index is None:
                self._index = index

    def _held(self) -> Index:
        """What each line of the file is about, in order; read from the file once (streamed), then kept up to date
        by _append and replay (this process is the file's only writer)."""
        if self._index is None:
            self._index = Index.of_file(self.path)
        return self._index

    async def _append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        held = Held.of(entry, size=len(line.encode()))
        async with self._lock:
            index = self._held()
            self._check_room(index, held, entry["kind"])
            await asyncio.to_thread(self._write_line, line)
            index.add(held)

    def check_room(self, *, browser_id: str, network: str | None, size: int) -> None:
        """JournalFull now when a drawing of about `size` bytes in the file, of this client and network, would not
        fit: asked before the model's work, so that a client at its cap costs the server no more than that."""
        self._check_room(self._held(), Held(Waiting(None), size, browser_id, network), "prediction")

    def _check_room(self, index: Index, held: Held, kind: str) -> None:
        """JournalFull when `held` would take the journal, its client or its network past a cap."""
        caps = [("in all", self.max_bytes, index.weight)]
        if held.browser_id is not None:
            caps.append(("for this client", self.max_bytes_per_client, index.by_client[held.browser_id]))
        if held.network is not None:
            caps.append(("for this network", self.max_bytes_per_network, index.by_network[held.network]))
        for cap, limit, used in caps:
            if limit is not None and used + held.weight > limit:
                self.refused += 1
                if self.refused % 1000 == 1:  # a flood would fill the log instead: every 1000th refusal
                    logger.warning("journal full %s (%d of %d bytes): entries refused (%d so far)",
                                   cap, used, limit, self.refused)  # fmt: skip
                raise JournalFull("label" if kind in LABEL_KINDS else "drawing", cap=cap)

    @property
    def rejected_path(self) -> Path:
        """Where lines that cannot be read are moved, whole, for an operator to look at."""
        return self.path.with_name(self.path.name + ".rejected")

    @property
    def set_aside(self) -> int:
        """How many unreadable lines were moved to rejected_path (kept until an operator removes the file; counted
        once, then kept up to date)."""
        if self._set_aside is None:
            self._set_aside = count_lines(self.rejected_path)
        return self._set_aside

    def _write_line(self, line: str) -> None:
        append_whole(self.path, line.encode())

    def _put_aside(self, lines: list[bytes]) -> None:
        count = self.set_aside
        append_whole(self.rejected_path, b"".join(line + b"\n" for line in lines))
        self._set_aside = count + len(lines)
        logger.error("journal: %d unreadable line(s) moved to %s", len(lines), self.rejected_path)

    async def add_prediction(self, prediction: StoredPrediction) -> None:
        await self._append(encode_prediction(prediction))

    async def add_label(
        self,
        *,
        request_id: uuid.UUID,
        browser_id: str,
        true_digit: int | None = None,
        not_a_digit: bool = False,
        network: str | None = None,
    ) -> None:
        """A single drawing's label: a digit, or (`not_a_digit`) no digit. A digit's line is written as it always was
        (true_digit), so a journal written by this version replays on the one before for every label it knew."""
        check_label(true_digit, not_a_digit)
        label = {"not_a_digit": True} if not_a_digit else {"true_digit": true_digit}
        await self._append(encode_label("label", request_id, browser_id, network, **label))

    async def add_number(self, number: StoredNumber) -> None:
        await self._append(encode_number(number))

    async def add_number_label(
        self, *, request_id: uuid.UUID, browser_id: str, true_number: str, network: str | None = None
    ) -> None:
        check_number(true_number, name="true_number")
        await self._append(encode_label("number_label", request_id, browser_id, network, true_number=true_number))

    async def add_digit_label(
        self, *, request_id: uuid.UUID, browser_id: str, position: int, true_digit: int, network: str | None = None
    ) -> None:
        check_digit(true_digit, name="true_digit")
        await self._append(
            encode_label("digit_label", request_id, browser_id, network, position=position, true_digit=true_digit)
        )

    async def replay(
        self, store: ReplayTarget, *, numbers: NumberReplayTarget | None = None, batches: Batches | None = None
    ) -> int:
        """Write the journal to the database in order; returns how many entries were written. Predictions and their
        labels go to `store`, numbers and theirs to `numbers` (without it, the replay stops at the first number and
        keeps it and everything after it for a call that has one). With `batches` (PostgreSQL: `batches(pool)`),
        up to BATCH entries at a time are written in one transaction, through the stores it gives; without, each
        entry is its own.

        Stops at the first outage (StoreUnavailable) and keeps the rest (in batches: the whole batch it stopped in)
        for the next call. A line that cannot be read, or an entry the database refuses for good (a constraint
        violation), is moved aside (rejected_path): it could never succeed, and keeping it would block everything
        behind it. A label for a row that does not exist, or older than the row's label, is dropped with a warning
        (that is its right outcome).

        The file is read and parsed a chunk at a time in a thread, never whole and never on the event loop, up to
        what it held when the replay began (what is appended meanwhile waits for the next call); what was written
        is cut from the file at the end.
        """
        async with self._replaying:
            async with self._lock:
                end = file_size(self.path)
            progress, aside = Progress(), AsideBuffer(self._put_aside)
            try:
                await write_entries(
                    entries(self.path, end), progress, aside, store=store, numbers=numbers, batches=batches
                )
            except StoreUnavailable:
                pass  # the outage ends this replay: what is left waits for the next call
            finally:
                if progress.done:
                    async with self._lock:
                        await aside.flush()  # kept before they leave the journal
                        await asyncio.to_thread(drop_first, self.path, progress.offset)
                        self._index = await asyncio.to_thread(self._held().without_first, progress.done)
            done = progress.done
            if done:
                logger.info("journal: wrote %d entr%s to the database", done, "y" if done == 1 else "ies")
            return done


def batches(pool: AsyncConnectionPool) -> Batches:
    """Journal.replay's batches on PostgreSQL: the prediction and number stores on one transaction of the pool."""

    @asynccontextmanager
    async def batch() -> AsyncIterator[tuple[ReplayTarget, NumberReplayTarget]]:
        async with one_transaction(pool) as shared:
            yield PredictionStore(shared), NumberStore(shared)

    return batch


def count_lines(path: Path) -> int:
    """The non-blank lines of the file (0 when there is none), read line by line."""
    try:
        with path.open("rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0


def append_whole(path: Path, data: bytes) -> None:
    """Append `data` to `path` (created 0600) and fsync, all of it or nothing: os.write may write less than asked
    (a full disk), so it is called until everything is written, and on failure the file is cut back to its former
    size. A file that does not end with a newline (a line torn by a crash) gets one first, so that the torn line
    stays alone and the new one stays readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            written = 0
            while written < len(data):
                count = os.write(fd, data[written:])
                if count == 0:
                    raise OSError(errno.ENOSPC, "no byte written")
                written += count
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)
            raise JournalWriteError(exc.errno, f"could not write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
