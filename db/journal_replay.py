"""How the journal's entries (db/journal.py) are written to the database once it is back: the file read and parsed a
chunk at a time in a thread, in batches of one transaction each (or an entry a transaction), each entry applied by
its kind; what can never be written is handed back to be set aside; the written lines are cut from the file."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import psycopg

from db.journal_entries import UNREADABLE, decode_number, decode_prediction, entry_of
from records.errors import StoreUnavailable
from records.numbers import StoredNumber
from records.predictions import StoredPrediction

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # bytes of the file read (or copied) at a time
BATCH = 200  # entries written in one transaction at most (and at most CHUNK bytes of lines, unless one is larger)
_NUMBER_KINDS = ("number", "number_label", "digit_label")  # replayed into the number store
Line = tuple[dict | None, bytes, int]  # a journal line read back: its entry (None: unreadable), itself, where it ends


class ReplayTarget(Protocol):
    """Where a replay writes (db.predictions.PredictionStore; an in-memory stand-in in page tests)."""

    async def insert(self, row: StoredPrediction) -> int: ...

    async def set_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, true_digit: int | None = None, not_a_digit: bool = False,
        at: datetime | None = None, network: str | None = None,
    ) -> bool: ...  # fmt: skip


class NumberReplayTarget(Protocol):
    """Where a replay writes numbers and their labels (db.numbers.NumberStore; a stand-in in page tests)."""

    async def insert(self, row: StoredNumber) -> object: ...

    async def set_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, true_number: str, at: datetime | None = None,
        network: str | None = None,
    ) -> int | None: ...  # fmt: skip

    async def set_digit_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, position: int, true_digit: int, at: datetime | None = None,
        network: str | None = None,
    ) -> bool: ...  # fmt: skip


# A batch of a replay: the stores to write through, on one transaction committed when the block ends
Batches = Callable[[], AbstractAsyncContextManager[tuple[ReplayTarget, NumberReplayTarget]]]


@dataclass
class Progress:
    """How far a replay got: the entries written or set aside, and the file's offset just after the last of them."""

    done: int = 0
    offset: int = 0


async def write_entries(
    entries: AsyncIterator[Line],
    progress: Progress,
    aside: AsideBuffer,
    *,
    store: ReplayTarget,
    numbers: NumberReplayTarget | None,
    batches: Batches | None,
) -> None:
    """Write `entries` in order, keeping `progress` up to date; the lines that can never be written go to `aside`.
    Raises StoreUnavailable at an outage (in batches: nothing of the batch it stopped in is counted)."""
    while batch := await next_batch(entries):
        if batches is None:  # each entry its own transaction: what was written before an outage stays
            for entry, line, after in batch:
                if entry is None or not await apply_entry(store, numbers, entry):
                    await aside.add(line)
                progress.done, progress.offset = progress.done + 1, after
            continue
        try:
            lines = await _apply_batch(batches, batch)
        except psycopg.Error:  # the database refused one for good: the batch again, an entry a transaction
            lines = [line for entry, line, _ in batch
                     if entry is None or not await apply_entry(store, numbers, entry)]  # fmt: skip
        for line in lines:  # the batch is committed
            await aside.add(line)
        progress.done, progress.offset = progress.done + len(batch), batch[-1][2]


async def _apply_batch(batches: Batches, batch: list[Line]) -> list[bytes]:
    """Write a batch's entries in one transaction; the lines to set aside. An entry the database refuses (a
    psycopg.Error) aborts the transaction: raised, and nothing of the batch is kept."""
    aside = []
    async with batches() as (store, numbers):
        for entry, line, _ in batch:
            if entry is None or not await apply_entry(store, numbers, entry, refused=UNREADABLE):
                aside.append(line)
    return aside


async def apply_entry(
    store: ReplayTarget,
    numbers: NumberReplayTarget | None,
    entry: dict,
    *,
    refused: tuple[type[Exception], ...] = (*UNREADABLE, psycopg.Error),
) -> bool:
    """Write one entry; False when it can never be written (it is set aside): when writing it raises one of
    `refused` (what the entry holds, or the database's refusal; in a batch the latter is raised instead)."""
    try:
        if entry["kind"] in _NUMBER_KINDS:
            if numbers is None:
                raise StoreUnavailable("no number store to replay into: kept for a replay that has one")
            await _apply_number(numbers, entry)
        elif entry["kind"] == "prediction":
            await store.insert(decode_prediction(entry["prediction"]))
        elif entry["kind"] == "label":
            applied = await store.set_feedback_by_request_id(
                request_id=uuid.UUID(entry["request_id"]),
                browser_id=entry["browser_id"],
                # a line holds a digit (every line written before "not a digit" labels existed) or not_a_digit
                true_digit=entry.get("true_digit"),
                not_a_digit=entry.get("not_a_digit", False),
                at=datetime.fromisoformat(entry["at"]),
                network=entry.get("network"),  # (lines written before networks were kept have none)
            )
            if not applied:
                logger.warning("journal: label for %s not applied (no such row, or a newer label)", entry)
        return True
    except StoreUnavailable:
        raise
    except refused as exc:
        logger.error("journal: entry set aside, it cannot be written (%s): %.300s", exc, entry)
        return False


async def _apply_number(numbers: NumberReplayTarget, entry: dict) -> None:
    """Write one entry about a number: the number itself, its label or one digit's."""
    if entry["kind"] == "number":
        await numbers.insert(decode_number(entry["number"]))
        return
    who = {"request_id": uuid.UUID(entry["request_id"]), "browser_id": entry["browser_id"],
           "at": datetime.fromisoformat(entry["at"]), "network": entry.get("network")}  # fmt: skip
    if entry["kind"] == "number_label":
        applied = await numbers.set_feedback_by_request_id(true_number=entry["true_number"], **who) is not None
    else:
        applied = await numbers.set_digit_feedback_by_request_id(
            position=entry["position"], true_digit=entry["true_digit"], **who
        )
    if not applied:
        logger.warning("journal: label for %s not applied (no such number, or a newer label)", entry)


class AsideBuffer:
    """Lines a replay sets aside, handed to `put_aside` (run in a thread) a few MB at a time (not held all at once)."""

    def __init__(self, put_aside: Callable[[list[bytes]], None], *, limit: int = CHUNK):
        self.put_aside, self.limit = put_aside, limit
        self.lines: list[bytes] = []
        self.size = 0

    async def add(self, line: bytes) -> None:
        self.lines.append(line)
        self.size += len(line)
        if self.size >= self.limit:
            await self.flush()

    async def flush(self) -> None:
        if self.lines:
            lines, self.lines, self.size = self.lines, [], 0
            await asyncio.to_thread(self.put_aside, lines)


def read_entries(path: Path, start: int, stop: int, rest: bytes) -> tuple[list[Line], bytes]:
    """The lines that end in the file's bytes [start, stop), after `rest` (the unfinished line before start): each
    as (its entry, None when it cannot be read; the line; the offset just after it), and the new unfinished rest."""
    with path.open("rb") as file:
        file.seek(start)
        data = rest + file.read(stop - start)
    parsed: list[Line] = []
    after = start - len(rest)  # the offset where `data` begins
    lines = data.split(b"\n")
    rest = lines.pop()
    for line in lines:
        after += len(line) + 1
        if line.strip():
            parsed.append((entry_of(line), line, after))
    return parsed, rest


async def entries(path: Path, end: int) -> AsyncIterator[Line]:
    """The entries of the file's first `end` bytes in order, read and parsed a chunk at a time in a thread: (the
    entry or None, its line, the offset just after it). A last line without its newline (torn by a crash) too."""
    offset, rest = 0, b""
    while offset < end:
        stop = min(end, offset + CHUNK)
        parsed, rest = await asyncio.to_thread(read_entries, path, offset, stop, rest)
        offset = stop
        for item in parsed:
            yield item
    if rest.strip():
        yield entry_of(rest), rest, end


async def next_batch(entries: AsyncIterator[Line]) -> list[Line]:
    """The next entries, up to BATCH of them and CHUNK bytes of lines (at least one); [] at the end."""
    batch: list[Line] = []
    size = 0
    async for item in entries:
        batch.append(item)
        size += len(item[1])
        if len(batch) >= BATCH or size >= CHUNK:
            break
    return batch


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def drop_first(path: Path, offset: int) -> None:
    """Rewrite the file without its first `offset` bytes (atomically; new lines appended meanwhile are kept),
    copying the rest a chunk at a time."""
    if offset >= file_size(path):
        path.unlink(missing_ok=True)
        return
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)  # created anew below, so that it is private (0600) like the journal
    with (
        path.open("rb") as source,
        os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as target,
    ):
        source.seek(offset)
        shutil.copyfileobj(source, target, CHUNK)
        target.flush()
        os.fsync(target.fileno())
    temporary.replace(path)
