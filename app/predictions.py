"""Predict and record: what the page and the JSON API both do with a drawing and with a label.

A prediction is stored with a request_id chosen here (or by the API client, so that a retried request never makes a
second row). When PostgreSQL cannot be reached, the prediction and later its label go to the local journal
(db/journal.py) and are written when the database is back; the caller tells the user, discreetly. `Predictions` is
the one owner of "the database is down": after one failed write it sends writes straight to the journal (instead of
waiting for the pool's timeout on every request) until the journal has been replayed.

What is kept of a drawing is the image itself (app/drawings.py), with the network it came from (app/addresses.py).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.drawings import MAX_STORED_BYTES, stored_copy
from app.limits import LargeImageLane
from app.outage import Outage
from app.ports import ModelServer, NumberRecords, PendingWrites, PredictionRecords
from db.journal import Batches, Waiting
from records.errors import PredictionRejected, RequestIdReused, RequestIdTaken, StoreUnavailable
from records.predictions import Prediction, StoredPrediction, check_label

logger = logging.getLogger(__name__)


# What a drawing may be: the slate sends PNG; scripts and uploads may send JPEG. Anything else (JSON, multipart, base64
# text, which TorchServe's handler would also decode) is refused before TorchServe, so canvas_png only ever holds
# image bytes.
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
NOT_AN_IMAGE = (
    "not an image: send the PNG or JPEG file's own bytes as the body (Content-Type: image/png or image/jpeg); "
    "JSON, multipart and base64 text are not accepted here"
)


def check_image(data: bytes) -> None:
    """PredictionRejected (415) unless `data` starts like a PNG or a JPEG file."""
    if not any(data.startswith(signature) for signature in IMAGE_SIGNATURES):
        raise PredictionRejected(NOT_AN_IMAGE, status=415)


class SavedIn(enum.Enum):
    """Where a prediction or a label was kept."""

    DATABASE = "database"
    JOURNAL = "journal"  # kept locally, written when the database is back
    NOT_SAVED = "not saved"  # live predictions


class NotYours(LookupError):
    """No such prediction of this browser (a label for another browser's row, or a row that does not exist)."""


def refuse_reuse(waiting: Waiting, *, browser_id: str, image: bytes | None) -> None:
    """What the database's insert would answer to a request_id the journal holds (a drawing or a number waiting
    there): RequestIdTaken when it is another browser's, RequestIdReused when it names another image; nothing for a
    retry (same browser, same image)."""
    if waiting.browser_id != browser_id:
        raise RequestIdTaken(f"request_id {waiting.request_id} belongs to another browser's {waiting.kind} (journal)")
    if waiting.image_sha256 != hashlib.sha256(image or b"").digest():
        raise RequestIdReused(f"request_id {waiting.request_id} was used for another image (journal)")


def owned_in_journal(journal: PendingWrites, request_id: uuid.UUID, *, kind: str, browser_id: str) -> bool:
    """For a label kept during an outage: True when the journal holds this browser's `kind` ("prediction", "number")
    under `request_id` (the label will apply); NotYours when it holds another browser's (refused now, as the database
    would); False when it holds none (whose it is is known only at replay, which drops it if not this browser's)."""
    waiting = journal.waiting(request_id, kind=kind)
    if waiting is not None and waiting.browser_id != browser_id:
        raise NotYours(f"no {kind} {request_id} of this browser")
    return waiting is not None


@dataclass(frozen=True)
class LabelKept:
    """Where a label was kept; `checked` False when it waits in the journal for a prediction the journal does not
    hold: whether that prediction is this browser's is known only when the database is back (if not, it is dropped)."""

    saved: SavedIn
    checked: bool = True


@dataclass(frozen=True)
class Recorded:
    """A prediction as it was kept (with its drawing and the model's answer), and where. `checked` False:
    kept in the journal under a request_id its client chose and the journal does not know, which may name another
    image or another browser's row in the database; that is known only at replay (which then drops this one)."""

    row: StoredPrediction
    saved: SavedIn
    checked: bool = True

    @property
    def prediction(self) -> Prediction:
        """The model's answer."""
        return self.row.answer

    @property
    def request_id(self) -> uuid.UUID:
        return self.row.request_id

    @property
    def row_id(self) -> int | None:
        """The row's id; None unless saved in the database."""
        return self.row.id

    @property
    def labellable(self) -> bool:
        return self.saved is not SavedIn.NOT_SAVED


@dataclass(frozen=True)
class JournalNote:
    """What the page says about the journal: writes waiting for the database, and unreadable lines set aside."""

    pending: int
    set_aside: int


class Predictions:
    """Predicts with the model server and records in PostgreSQL, or in the journal while the database is down. One
    per app (app/context.py)."""

    def __init__(
        self,
        *,
        server: ModelServer,
        store: PredictionRecords,
        journal: PendingWrites,
        lane: LargeImageLane | None = None,
        outage: Outage | None = None,
        number_store: NumberRecords | None = None,
        replay_batches: Batches | None = None,
    ):
        self.server = server
        self.lane = lane or LargeImageLane()
        self.store = store
        self.journal = journal
        self.outage = outage or Outage()  # what the reads know (app/outage.py): told of every outage met here
        self.number_store = number_store  # where the journal's numbers are replayed (app/numbers.py writes them)
        self.replay_batches = replay_batches  # a replay's batches, each one transaction (db/journal.py batches)
        self.database_down = False  # set by a failed write; cleared once the journal has been replayed

    def note(self) -> JournalNote:
        return JournalNote(pending=self.journal.pending if self.database_down else 0, set_aside=self.journal.set_aside)

    async def replay(self) -> None:
        """Write what the journal kept as soon as the database answers again; never raises (the entries stay)."""
        if self.journal.pending:
            try:
                await self.journal.replay(self.store, numbers=self.number_store, batches=self.replay_batches)
            except Exception:  # keep replaying later whatever happened (the entries stay in the file)
                logger.exception("journal replay failed")
            if not self.journal.pending:
                self.outage.over()  # everything was written: the database answers again
        self.database_down = self.journal.pending > 0

    async def replay_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.replay()

    def check_room(self, png: bytes, *, browser_id: str, network: str | None, request_id: uuid.UUID | None) -> None:
        """During an outage, JournalFull at once when the journal has no room left for this drawing of this client
        and network (a retry it holds needs none): refused before the model's work rather than after it."""
        if self.database_down and request_id not in self.journal.pending_request_ids():
            size = min(len(png), MAX_STORED_BYTES) * 4 // 3  # its line holds the stored copy in base64, and more
            self.journal.check_room(browser_id=browser_id, network=network, size=size)

    async def ask(
        self, png: bytes, *, version: str | None = None, client: str = "server", network: str | None = None
    ) -> Prediction:
        """The model's answer for an image, nothing kept (large images take their turn in the lane, as `client` of
        `network`: app/limits.py)."""
        async with self.lane.slot(png, client=client, network=network):
            return await self.server.predict(png, version=version)

    async def predict(
        self,
        png: bytes,
        *,
        browser_id: str,
        request_id: uuid.UUID | None = None,
        save: bool = True,
        version: str | None = None,
        network: str | None = None,
    ) -> Recorded:
        """Ask the model server (PredictorError when it cannot answer) and record the answer unless `save` is False.

        PredictionRejected (415) for anything but PNG or JPEG bytes; RequestIdReused (a RequestIdTaken) when the
        request_id already names another image of this browser.
        """
        check_image(png)
        if save:
            self.check_room(png, browser_id=browser_id, network=network, request_id=request_id)
        prediction = await self.ask(png, version=version, client=browser_id, network=network)
        answered = datetime.now(UTC)  # a journaled row keeps this time (a failed insert may have waited seconds)
        row = StoredPrediction(
            request_id=request_id or uuid.uuid4(),
            browser_id=browser_id,
            answer=prediction,
            canvas_png=stored_copy(png),  # the image, not what a client appended to it
            client_network=network,
        )
        if not save:
            return Recorded(row, SavedIn.NOT_SAVED)
        if not self.database_down and row.request_id not in self.journal.pending_request_ids():
            try:
                row_id = await self.store.insert(row)
                return Recorded(_with_id(row, row_id), SavedIn.DATABASE)
            except StoreUnavailable as exc:
                self.database_down = True
                self.outage.seen()
                logger.warning("prediction %s kept in the journal: %s", row.request_id, exc)
        row = replace(row, created_at=answered)  # replayed later, the row still says when it was drawn
        return await self._keep(row, chosen=request_id is not None)

    async def _keep(self, row: StoredPrediction, *, chosen: bool) -> Recorded:
        """Keep a prediction in the journal. A request_id the journal holds is answered as the database would answer
        it: a retry is kept once, another browser's or another image's is refused now (refuse_reuse). One the client
        `chosen` that the journal does not know is kept unchecked (Recorded.checked)."""
        waiting = self.journal.waiting(row.request_id, kind="prediction")
        if waiting is not None:
            refuse_reuse(waiting, browser_id=row.browser_id, image=row.canvas_png)
            return Recorded(row, SavedIn.JOURNAL)
        await self.journal.add_prediction(row)
        return Recorded(row, SavedIn.JOURNAL, checked=not chosen)

    async def label(
        self,
        *,
        browser_id: str,
        request_id: uuid.UUID,
        digit: int | None = None,
        not_a_digit: bool = False,
        row_id: int | None = None,
        network: str | None = None,
    ) -> SavedIn:
        """Where keep_label kept the label (the page labels only its own predictions: nothing to check)."""
        kept = await self.keep_label(
            browser_id=browser_id, request_id=request_id, digit=digit, not_a_digit=not_a_digit, row_id=row_id,
            network=network,
        )  # fmt: skip
        return kept.saved

    async def keep_label(
        self,
        *,
        browser_id: str,
        request_id: uuid.UUID,
        digit: int | None = None,
        not_a_digit: bool = False,
        row_id: int | None = None,
        network: str | None = None,
    ) -> LabelKept:
        """Record the user's label, the digit they meant or (`not_a_digit`) that it is no digit (ValueError unless
        exactly one, and a digit 0-9), and the network it came from; where it was kept. By row id when known, else
        by request_id. NotYours when this browser has no such prediction (during an outage: when the journal holds
        another browser's under that id)."""
        check_label(digit, not_a_digit)
        if self.database_down or request_id in self.journal.pending_request_ids():  # keep the journal's order
            return await self._journal_label(request_id, browser_id, digit, not_a_digit, network)
        try:
            if row_id is not None:
                found = await self.store.set_feedback(
                    prediction_id=row_id, browser_id=browser_id, true_digit=digit, not_a_digit=not_a_digit,
                    network=network,
                )  # fmt: skip
            else:
                found = await self.store.set_feedback_by_request_id(
                    request_id=request_id, browser_id=browser_id, true_digit=digit, not_a_digit=not_a_digit,
                    network=network,
                )  # fmt: skip
        except StoreUnavailable as exc:
            self.database_down = True
            self.outage.seen()
            logger.warning("label for %s kept in the journal: %s", request_id, exc)
            return await self._journal_label(request_id, browser_id, digit, not_a_digit, network)
        if not found:
            raise NotYours(f"no prediction {request_id} of this browser")
        return LabelKept(SavedIn.DATABASE)

    async def _journal_label(
        self, request_id: uuid.UUID, browser_id: str, digit: int | None, not_a_digit: bool, network: str | None
    ) -> LabelKept:
        owned = owned_in_journal(self.journal, request_id, kind="prediction", browser_id=browser_id)
        await self.journal.add_label(
            request_id=request_id, browser_id=browser_id, true_digit=digit, not_a_digit=not_a_digit, network=network
        )
        return LabelKept(SavedIn.JOURNAL, checked=owned)


def _with_id(row: StoredPrediction, row_id: int) -> StoredPrediction:
    return replace(row, id=row_id)
