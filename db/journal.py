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
import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import psycopg

from db.numbers import NumberRow, check_number
from db.pool import StoreUnavailable
from db.predictions import PredictionRow, check_digit

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


class JournalWriteError(OSError):
    """An entry could not be written whole (a full disk, a read-only folder): nothing of it is in the file."""


def _entry(line: str) -> dict | None:
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


def _waiting_line(line: str) -> Waiting:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return Waiting(None)
    return _waiting(entry) if isinstance(entry, dict) else Waiting(None)


class Journal:
    """Append-only JSON lines in one file; safe for the tasks of one process (one writer process per file)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = asyncio.Lock()
        self._replaying = asyncio.Lock()
        self._ids: list[Waiting] | None = None

    def _lines(self) -> list[str]:
        try:
            return [line for line in self.path.read_text(errors="replace").splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    @property
    def pending(self) -> int:
        """How many entries wait to be written to the database."""
        return len(self._index())

    def pending_request_ids(self) -> set[uuid.UUID]:
        """The request ids the entries are about (asked on every prediction and label: kept in memory)."""
        return {waiting.request_id for waiting in self._index() if waiting.request_id is not None}

    def waiting(self, request_id: uuid.UUID, *, kind: str) -> Waiting | None:
        """The first prediction (kind "prediction") or number ("number") waiting under `request_id`: the one a replay
        will insert, which every later one is compared with. None when the journal holds none."""
        return next((w for w in self._index() if w.request_id == request_id and w.kind == kind), None)

    def _index(self) -> list[Waiting]:
        """What each line of the file is about, in order; read from the file once, then kept up to date by _append
        and _drop_first (this process is the file's only writer)."""
        if self._ids is None:
            self._ids = [_waiting_line(line) for line in self._lines()]
        return self._ids

    async def _append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        async with self._lock:
            index = self._index()
            await asyncio.to_thread(self._write_line, line)
            index.append(_waiting(entry))

    @property
    def rejected_path(self) -> Path:
        """Where lines that cannot be read are moved, whole, for an operator to look at."""
        return self.path.with_name(self.path.name + ".rejected")

    @property
    def set_aside(self) -> int:
        """How many unreadable lines were moved to rejected_path (kept until an operator removes the file)."""
        try:
            return sum(1 for line in self.rejected_path.read_text(errors="replace").splitlines() if line.strip())
        except FileNotFoundError:
            return 0

    def _write_line(self, line: str) -> None:
        append_whole(self.path, line.encode())

    def _set_aside(self, lines: list[str]) -> None:
        append_whole(self.rejected_path, "".join(line + "\n" for line in lines).encode())
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

    async def replay(self, store: ReplayTarget, *, numbers: NumberReplayTarget | None = None) -> int:
        """Write the journal to the database in order; returns how many entries were written. Predictions and their
        labels go to `store`, numbers and theirs to `numbers` (without it, the replay stops at the first number and
        keeps it and everything after it for a call that has one).

        Stops at the first outage (StoreUnavailable) and keeps the rest for the next call. A line that cannot be
        read, or an entry the database refuses for good (a constraint violation), is moved aside (rejected_path):
        it could never succeed, and keeping it would block everything behind it. A label for a row that does not
        exist, or older than the row's label, is dropped with a warning (that is its right outcome).
        """
        async with self._replaying:
            async with self._lock:
                lines = self._lines()
            done, unreadable = 0, []
            try:
                for line in lines:
                    entry = _entry(line)
                    if entry is None or not await self._apply(store, numbers, entry):
                        unreadable.append(line)
                    done += 1
            except StoreUnavailable:
                pass
            finally:
                if done:
                    async with self._lock:
                        if unreadable:  # kept before they leave the journal
                            await asyncio.to_thread(self._set_aside, unreadable)
                        await asyncio.to_thread(self._drop_first, done)
            if done:
                logger.info("journal: wrote %d entr%s to the database", done, "y" if done == 1 else "ies")
            return done

    async def _apply(self, store: ReplayTarget, numbers: NumberReplayTarget | None, entry: dict) -> bool:
        """Write one entry; False when it can never be written (it is set aside)."""
        if entry["kind"] in ("number", "number_label", "digit_label"):
            if numbers is None:
                raise StoreUnavailable("no number store to replay into: kept for a replay that has one")
            return await self._apply_number(numbers, entry)
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
        except (ValueError, KeyError, TypeError, AttributeError, psycopg.Error) as exc:
            logger.error("journal: entry set aside, it cannot be written (%s): %.300s", exc, entry)
            return False

    async def _apply_number(self, numbers: NumberReplayTarget, entry: dict) -> bool:
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
        except (ValueError, KeyError, TypeError, AttributeError, psycopg.Error) as exc:
            logger.error("journal: entry set aside, it cannot be written (%s): %.300s", exc, entry)
            return False

    def _drop_first(self, count: int) -> None:
        """Rewrite the file without its first `count` lines (atomically; new lines appended meanwhile are kept)."""
        remaining = self._lines()[count:]
        self._ids = [_waiting_line(line) for line in remaining]
        if not remaining:
            self.path.unlink(missing_ok=True)
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)  # created anew below, so that it is private (0600) like the journal
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write("".join(line + "\n" for line in remaining))
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.path)


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
