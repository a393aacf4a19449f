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
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from collections.abc import Set as AbstractSet
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from db.numbers import NumberRow, NumberStore, check_number
from db.pool import StoreUnavailable, one_transaction
from db.predictions import PredictionRow, PredictionStore, check_digit

logger = logging.getLogger(__name__)


# The fields a journal line holds: the row as the app inserts it (the table's own fields come later).
# created_at: when it was predicted, so that the replayed row keeps that time, not the replay's (lines written before it
# was kept have none: those rows get the time of the replay).
_JOURNALED = ("request_id", "browser_id", "model_name", "model_version", "predicted_digit", "confidence",
              "probabilities", "canvas_png", "preview_png", "latency_ms", "not_a_digit", "client_network",
              "created_at")  # fmt: skip


def _encode_prediction(prediction: PredictionRow) -> dict:
    entry = {key: value for key, value in asdict(prediction).items() if key in _JOURNALED}
    entry["request_id"] = str(prediction.request_id)
    entry["canvas_png"] = base64.b64encode(prediction.canvas_png or b"").decode("ascii")
    entry["preview_png"] = base64.b64encode(prediction.preview_png).decode("ascii") if prediction.preview_png else None
    entry["created_at"] = (prediction.created_at or datetime.now(UTC)).isoformat()
    return {"kind": "prediction", "prediction": entry}


def _decode_prediction(entry: dict) -> PredictionRow:
    fields = dict(entry)
    fields["request_id"] = uuid.UUID(fields["request_id"])
    fields["canvas_png"] = base64.b64decode(fields["canvas_png"])
    fields["preview_png"] = base64.b64decode(fields["preview_png"]) if fields["preview_png"] else None
    if fields.get("created_at") is not None:
        fields["created_at"] = _aware(datetime.fromisoformat(fields["created_at"]))
    return PredictionRow(**fields)


def _aware(moment: datetime) -> datetime:
    """A time read back from a line, with its zone (the journal writes UTC; a hand-edited naive one is taken as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A number's line holds these, and its digits as prediction entries with their place and box.
_NUMBER_JOURNALED = ("request_id", "browser_id", "model_name", "model_version", "number", "latency_ms", "not_a_digit",
                     "reason", "client_network")  # fmt: skip


def _encode_number(number: NumberRow) -> dict:
    entry = {key: getattr(number, key) for key in _NUMBER_JOURNALED}
    entry["request_id"] = str(number.request_id)
    entry["canvas_png"] = base64.b64encode(number.canvas_png or b"").decode("ascii")
    entry["created_at"] = (number.created_at or datetime.now(UTC)).isoformat()  # the replayed row keeps its time
    entry["digits"] = [
        _encode_prediction(digit)["prediction"] | {"position": digit.position, "box": list(digit.box or ())}
        for digit in number.digits
    ]
    return {"kind": "number", "number": entry}


def _decode_number(entry: dict) -> NumberRow:
    fields = dict(entry)
    fields["request_id"] = uuid.UUID(fields["request_id"])
    fields["canvas_png"] = base64.b64decode(fields["canvas_png"])
    fields["created_at"] = _aware(datetime.fromisoformat(fields["created_at"])) if fields.get("created_at") else None
    digits = []
    for digit in fields["digits"]:
        position, box = digit["position"], tuple(digit["box"])
        digits.append(replace(_decode_prediction({k: v for k, v in digit.items() if k in _JOURNALED}),
                              position=position, box=box))  # fmt: skip
    fields["digits"] = tuple(digits)
    return NumberRow(**fields)


_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)  # what an entry that cannot be written raises
_Line = tuple[dict | None, bytes, int]  # a journal line read back: its entry (None: unreadable), itself, where it ends


class ReplayTarget(Protocol):
    """Where a replay writes (db.predictions.PredictionStore; an in-memory stand-in in page tests)."""

    async def insert(self, row: PredictionRow) -> int: ...

    async def set_feedback_by_request_id(
        self, *, request_id: uuid.UUID, browser_id: str, true_digit: int, at: datetime | None = None,
        network: str | None = None,
    ) -> bool: ...  # fmt: skip


class NumberReplayTarget(Protocol):
    """Where a replay writes numbers and their labels (db.numbers.NumberStore; a stand-in in page tests)."""

    async def insert(self, row: NumberRow) -> object: ...

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


class JournalWriteError(OSError):
    """An entry could not be written whole (a full disk, a read-only folder): nothing of it is in the file."""


def _entry(line: str | bytes) -> dict | None:
    """A journal line as the entry it holds; None for a line that cannot be read (it is set aside)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) and entry.get("kind") in _KINDS else None


_KINDS = ("prediction", "label", "number", "number_label", "digit_label")


class Waiting(NamedTuple):
    """What a journal line is about: its request id (None for a line that cannot be read; replay drops it) and, for a
    prediction or a number, whose it is and the SHA-256 of its drawing: what the database's insert will compare."""

    request_id: uuid.UUID | None
    kind: str | None = None
    browser_id: str | None = None
    image_sha256: bytes | None = None


def _waiting(entry: dict) -> Waiting:
    """What an entry is about; Waiting(None) for one that cannot be read."""
    try:
        row = entry.get("prediction") or entry.get("number")
        request_id = uuid.UUID((row or entry)["request_id"])
        if row is None:  # a label
            return Waiting(request_id)
        digest = hashlib.sha256(base64.b64decode(row["canvas_png"])).digest()
        return Waiting(request_id, entry["kind"], str(row["browser_id"]), digest)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Waiting(None)


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
        self._index: _Index | None = None
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
            index = await asyncio.to_thread(_Index.of_file, self.path)
            if self._index is None:
                self._index = index

    def _held(self) -> _Index:
        """What each line of the file is about, in order; read from the file once (streamed), then kept up to date
        by _append and _drop_first (this process is the file's only writer)."""
        if self._index is None:
            self._index = _Index.of_file(self.path)
        return self._index

    async def _append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        held = _Held.of(entry, size=len(line.encode()))
        async with self._lock:
            index = self._held()
            self._check_room(index, held, entry["kind"])
            await asyncio.to_thread(self._write_line, line)
            index.add(held)

    def check_room(self, *, browser_id: str, network: str | None, size: int) -> None:
        """JournalFull now when a drawing of about `size` bytes in the file, of this client and network, would not
        fit: asked before the model's work, so that a client at its cap costs the server no more than that."""
        self._check_room(self._held(), _Held(Waiting(None), size, browser_id, network), "prediction")

    def _check_room(self, index: _Index, held: _Held, kind: str) -> None:
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
                raise JournalFull("label" if kind in _LABEL_KINDS else "drawing", cap=cap)

    @property
    def rejected_path(self) -> Path:
        """Where lines that cannot be read are moved, whole, for an operator to look at."""
        return self.path.with_name(self.path.name + ".rejected")

    @property
    def set_aside(self) -> int:
        """How many unreadable lines were moved to rejected_path (kept until an operator removes the file; counted
        once, then kept up to date)."""
        if self._set_aside is None:
            self._set_aside = _count_lines(self.rejected_path)
        return self._set_aside

    def _write_line(self, line: str) -> None:
        append_whole(self.path, line.encode())

    def _put_aside(self, lines: list[bytes]) -> None:
        count = self.set_aside
        append_whole(self.rejected_path, b"".join(line + b"\n" for line in lines))
        self._set_aside = count + len(lines)
        logger.error("journal: %d unreadable line(s) moved to %s", len(lines), self.rejected_path)

    async def add_prediction(self, prediction: PredictionRow) -> None:
        await self._append(_encode_prediction(prediction))

    async def add_label(
        self, *, request_id: uuid.UUID, browser_id: str, true_digit: int, network: str | None = None
    ) -> None:
        check_digit(true_digit, name="true_digit")
        await self._append(
            {
                "kind": "label",
                "request_id": str(request_id),
                "browser_id": browser_id,
                "true_digit": true_digit,
                "at": datetime.now(UTC).isoformat(),
                "network": network,
            }
        )

    async def add_number(self, number: NumberRow) -> None:
        await self._append(_encode_number(number))

    async def add_number_label(
        self, *, request_id: uuid.UUID, browser_id: str, true_number: str, network: str | None = None
    ) -> None:
        check_number(true_number, name="true_number")
        await self._append(_label("number_label", request_id, browser_id, network, true_number=true_number))

    async def add_digit_label(
        self, *, request_id: uuid.UUID, browser_id: str, position: int, true_digit: int, network: str | None = None
    ) -> None:
        check_digit(true_digit, name="true_digit")
        await self._append(
            _label("digit_label", request_id, browser_id, network, position=position, true_digit=true_digit)
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
                end = _file_size(self.path)
            done, offset, unreadable = 0, 0, _AsideBuffer(self)
            entries = _entries(self.path, end)
            try:
                while batch := await _batch(entries):
                    if batches is None:  # each entry its own transaction: what was written before an outage stays
                        for entry, line, after in batch:
                            if entry is None or not await self._apply(store, numbers, entry):
                                await unreadable.add(line)
                            done, offset = done + 1, after
                        continue
                    try:
                        aside = await self._apply_batch(batches, batch)
                    except psycopg.Error:  # the database refused one for good: the batch again, an entry a transaction
                        aside = [line for entry, line, _ in batch
                                 if entry is None or not await self._apply(store, numbers, entry)]  # fmt: skip
                    for line in aside:  # the batch is committed
                        await unreadable.add(line)
                    done, offset = done + len(batch), batch[-1][2]
            except StoreUnavailable:
                pass
            finally:
                if done:
                    async with self._lock:
                        await unreadable.flush()  # kept before they leave the journal
                        await asyncio.to_thread(self._drop_first, offset)
                        self._index = await asyncio.to_thread(self._held().without_first, done)
            if done:
                logger.info("journal: wrote %d entr%s to the database", done, "y" if done == 1 else "ies")
            return done

    async def _apply_batch(self, batches: Batches, batch: list[_Line]) -> list[bytes]:
        """Write a batch's entries in one transaction; the lines to set aside. An entry the database refuses (a
        psycopg.Error) aborts the transaction: raised, and nothing of the batch is kept."""
        aside = []
        async with batches() as (store, numbers):
            for entry, line, _ in batch:
                if entry is None or not await self._apply(store, numbers, entry, refused=_UNREADABLE):
                    aside.append(line)
        return aside

    async def _apply(
        self,
        store: ReplayTarget,
        numbers: NumberReplayTarget | None,
        entry: dict,
        *,
        refused: tuple[type[Exception], ...] = (*_UNREADABLE, psycopg.Error),
    ) -> bool:
        """Write one entry; False when it can never be written (it is set aside): when writing it raises one of
        `refused` (what the entry holds, or the database's refusal; in a batch the latter is raised instead)."""
        if entry["kind"] in ("number", "number_label", "digit_label"):
            if numbers is None:
                raise StoreUnavailable("no number store to replay into: kept for a replay that has one")
            return await self._apply_number(numbers, entry, refused=refused)
        try:
            if entry["kind"] == "prediction":
                await store.insert(_decode_prediction(entry["prediction"]))
            elif entry["kind"] == "label":
                applied = await store.set_feedback_by_request_id(
                    request_id=uuid.UUID(entry["request_id"]),
                    browser_id=entry["browser_id"],
                    true_digit=entry["true_digit"],
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

    async def _apply_number(
        self, numbers: NumberReplayTarget, entry: dict, *, refused: tuple[type[Exception], ...]
    ) -> bool:
        """Write one entry about a number; False when it can never be written (it is set aside)."""
        try:
            if entry["kind"] == "number":
                await numbers.insert(_decode_number(entry["number"]))
                return True
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
            return True
        except StoreUnavailable:
            raise
        except refused as exc:
            logger.error("journal: entry set aside, it cannot be written (%s): %.300s", exc, entry)
            return False

    def _drop_first(self, offset: int) -> None:
        """Rewrite the file without its first `offset` bytes (atomically; new lines appended meanwhile are kept),
        copying the rest a chunk at a time."""
        if offset >= _file_size(self.path):
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)  # created anew below, so that it is private (0600) like the journal
        with (
            self.path.open("rb") as source,
            os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as target,
        ):
            source.seek(offset)
            shutil.copyfileobj(source, target, _CHUNK)
            target.flush()
            os.fsync(target.fileno())
        temporary.replace(self.path)


_CHUNK = 1024 * 1024  # bytes of the file read (or copied) at a time
ENTRY_WEIGHT = 4096  # an entry counts for at least this many bytes against the caps (_Held.weight)
BATCH = 200  # entries written in one transaction at most (and at most _CHUNK bytes of lines, unless one is larger)
_LABEL_KINDS = ("label", "number_label", "digit_label")
JOURNAL_FULL = (
    "The database is unavailable and this server's store for drawings waiting for it is full: your {what} was NOT "
    "saved; try again later"
)


class JournalFull(JournalWriteError):
    """The journal holds as much as it may (`cap`: in all, for this client, for this network): nothing of the entry
    was written."""

    def __init__(self, what: str, *, cap: str):
        super().__init__(errno.ENOSPC, JOURNAL_FULL.format(what=what))
        self.cap = cap

    def __str__(self) -> str:
        return str(self.strerror)


class _Held(NamedTuple):
    """What the index keeps of one line: what it is about, its size in the file, whose it is and from where."""

    waiting: Waiting
    size: int
    browser_id: str | None = None
    network: str | None = None

    @property
    def weight(self) -> int:
        """What it counts for against the caps: its size, and at least ENTRY_WEIGHT (a label's few hundred bytes
        cost a replay as much time as a drawing's few thousand: a cap in bytes alone would let labels in by the
        hundred thousand)."""
        return max(self.size, ENTRY_WEIGHT)

    @classmethod
    def of(cls, entry: dict, *, size: int) -> _Held:
        row = entry.get("prediction") or entry.get("number")
        owner = row if isinstance(row, dict) else entry  # a label carries its browser and network itself
        browser, network = owner.get("browser_id"), owner.get("client_network" if owner is row else "network")
        return cls(_waiting(entry), size, _text(browser), _text(network))

    @classmethod
    def of_line(cls, line: bytes) -> _Held:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            return cls(Waiting(None), len(line))
        return cls.of(entry, size=len(line)) if isinstance(entry, dict) else cls(Waiting(None), len(line))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class _Index:
    """The journal's lines in order (_Held), and what the caps and the lookups need, kept up to date as lines are
    added; rebuilt when the first lines leave the file."""

    lines: list[_Held] = dataclass_field(default_factory=list)
    total: int = 0  # bytes in the file
    weight: int = 0  # what they count for against the caps (_Held.weight)
    by_client: Counter[str] = dataclass_field(default_factory=Counter)
    by_network: Counter[str] = dataclass_field(default_factory=Counter)
    request_ids: Counter[uuid.UUID] = dataclass_field(default_factory=Counter)
    first: dict[tuple[uuid.UUID, str], Waiting] = dataclass_field(default_factory=dict)

    @classmethod
    def of(cls, lines: Iterable[_Held]) -> _Index:
        index = cls()
        for held in lines:
            index.add(held)
        return index

    @classmethod
    def of_file(cls, path: Path) -> _Index:
        """Each non-blank line of the file, read line by line (never the whole file at once)."""
        try:
            with path.open("rb") as file:
                return cls.of(_Held.of_line(line) for line in file if line.strip())
        except FileNotFoundError:
            return cls()

    def add(self, held: _Held) -> None:
        self.lines.append(held)
        self.total += held.size
        self.weight += held.weight
        if held.browser_id is not None:
            self.by_client[held.browser_id] += held.weight
        if held.network is not None:
            self.by_network[held.network] += held.weight
        waiting = held.waiting
        if waiting.request_id is not None:
            self.request_ids[waiting.request_id] += 1
            if waiting.kind is not None:
                self.first.setdefault((waiting.request_id, waiting.kind), waiting)

    def without_first(self, count: int) -> _Index:
        return _Index.of(self.lines[count:])


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0


def _read_entries(path: Path, start: int, stop: int, rest: bytes) -> tuple[list[_Line], bytes]:
    """The lines that end in the file's bytes [start, stop), after `rest` (the unfinished line before start): each
    as (its entry, None when it cannot be read; the line; the offset just after it), and the new unfinished rest."""
    with path.open("rb") as file:
        file.seek(start)
        data = rest + file.read(stop - start)
    parsed: list[_Line] = []
    after = start - len(rest)  # the offset where `data` begins
    lines = data.split(b"\n")
    rest = lines.pop()
    for line in lines:
        after += len(line) + 1
        if line.strip():
            parsed.append((_entry(line), line, after))
    return parsed, rest


async def _entries(path: Path, end: int) -> AsyncIterator[_Line]:
    """The entries of the file's first `end` bytes in order, read and parsed a chunk at a time in a thread: (the
    entry or None, its line, the offset just after it). A last line without its newline (torn by a crash) too."""
    offset, rest = 0, b""
    while offset < end:
        stop = min(end, offset + _CHUNK)
        parsed, rest = await asyncio.to_thread(_read_entries, path, offset, stop, rest)
        offset = stop
        for item in parsed:
            yield item
    if rest.strip():
        yield _entry(rest), rest, end


async def _batch(entries: AsyncIterator[_Line]) -> list[_Line]:
    """The next entries, up to BATCH of them and _CHUNK bytes of lines (at least one); [] at the end."""
    batch: list[_Line] = []
    size = 0
    async for item in entries:
        batch.append(item)
        size += len(item[1])
        if len(batch) >= BATCH or size >= _CHUNK:
            break
    return batch


def batches(pool: AsyncConnectionPool) -> Batches:
    """Journal.replay's batches on PostgreSQL: the prediction and number stores on one transaction of the pool."""

    @asynccontextmanager
    async def batch() -> AsyncIterator[tuple[ReplayTarget, NumberReplayTarget]]:
        async with one_transaction(pool) as shared:
            yield PredictionStore(shared), NumberStore(shared)

    return batch


class _AsideBuffer:
    """Lines a replay sets aside, written to the rejected file a few MB at a time (not held all at once)."""

    def __init__(self, journal: Journal, *, limit: int = _CHUNK):
        self.journal, self.limit = journal, limit
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
            await asyncio.to_thread(self.journal._put_aside, lines)


def _label(kind: str, request_id: uuid.UUID, browser_id: str, network: str | None, **label: object) -> dict:
    """A label's journal entry: whose, what, from where, and when it was given (a replay never overwrites a newer)."""
    return {"kind": kind, "request_id": str(request_id), "browser_id": browser_id, **label,
            "at": datetime.now(UTC).isoformat(), "network": network}  # fmt: skip


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
