"""Predict and record: what the page and the JSON API both do with a drawing and with a label.

A prediction is stored with a request_id chosen here (or by the API client, so that a retried request never makes a
second row). When PostgreSQL cannot be reached, the prediction and later its label go to the local journal
(db/journal.py) and are written when the database is back; the caller tells the user, discreetly. The Recorder is the
one owner of "the database is down": after one failed write it sends writes straight to the journal (instead of
waiting for the pool's timeout on every request) until the journal has been replayed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from dataclasses import dataclass

from app.drawings import stored_copy
from db import store
from db.journal import Journal
from serving.inference import Prediction, PredictionRejected, Predictor
from ui.limits import HeavyLane

logger = logging.getLogger(__name__)


# What a drawing may be: the slate sends PNG; scripts may send JPEG. Anything else (JSON, multipart, base64 text, which
# TorchServe's handler would also decode) is refused before TorchServe, so canvas_png only ever holds image bytes.
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
NOT_AN_IMAGE = (
    "not an image: send the PNG or JPEG file's own bytes as the body (Content-Type: image/png or image/jpeg); "
    "JSON, multipart and base64 text are not accepted here"
)


def check_image(data: bytes) -> None:
    """PredictionRejected (415) unless `data` starts like a PNG or a JPEG file."""
    if not any(data.startswith(signature) for signature in IMAGE_SIGNATURES):
        raise PredictionRejected(NOT_AN_IMAGE, status=415)


class Saved(enum.Enum):
    DATABASE = "database"
    JOURNAL = "journal"  # kept locally, written when the database is back
    NOT_SAVED = "not saved"  # live predictions


@dataclass(frozen=True)
class Recorded:
    prediction: Prediction
    request_id: uuid.UUID
    row_id: int | None  # None unless saved in the database
    saved: Saved


class Label(enum.Enum):
    DATABASE = "database"
    JOURNAL = "journal"
    NOT_FOUND = "not found"  # no such prediction of this browser


@dataclass(frozen=True)
class JournalNote:
    """What the page says about the journal: writes waiting for the database, and unreadable lines set aside."""

    pending: int
    set_aside: int


class Recorder:
    """Predicts with the TorchServe client and records in PostgreSQL, or in the journal while the database is down.
    One per app (built at start-up, ui/context.py)."""

    def __init__(self, *, predictor: Predictor, store: store.Store, journal: Journal, heavy: HeavyLane | None = None):
        self.predictor = predictor
        self.heavy = heavy or HeavyLane()
        self.store = store
        self.journal = journal
        self.database_down = False  # set by a failed write; cleared once the journal has been replayed

    def note(self) -> JournalNote:
        return JournalNote(pending=self.journal.pending if self.database_down else 0, set_aside=self.journal.set_aside)

    async def replay(self) -> None:
        """Write what the journal kept as soon as the database answers again; never raises (the entries stay)."""
        if self.journal.pending:
            try:
                await self.journal.replay(self.store.pool)
            except Exception:  # keep replaying later whatever happened (the entries stay in the file)
                logger.exception("journal replay failed")
        self.database_down = self.journal.pending > 0

    async def replay_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.replay()

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
        """Ask TorchServe (PredictorError when it cannot answer) and record the answer unless `save` is False.

        PredictionRejected (415) for anything but PNG or JPEG bytes; store.RequestIdReused (a RequestIdTaken) when the
        request_id already names another image of this browser.
        """
        check_image(png)
        async with self.heavy.slot(png):
            prediction = await self.predictor.predict(png, version=version)
        request_id = request_id or uuid.uuid4()
        if not save:
            return Recorded(prediction, request_id, None, Saved.NOT_SAVED)
        record = store.NewPrediction(
            request_id=request_id,
            browser_id=browser_id,
            model_name=prediction.model_name,
            model_version=prediction.model_version,
            predicted_digit=prediction.closest_digit,  # the digit, or the closest one when refused (marked)
            confidence=prediction.confidence,
            probabilities=prediction.probabilities,
            canvas_png=stored_copy(png),  # the image, not what a client appended to it (app/drawings.py)
            preview_png=prediction.preview_png,
            latency_ms=prediction.latency_ms,
            not_a_digit=prediction.not_a_digit,
            client_network=network,
        )
        if not self.database_down and request_id not in self.journal.pending_request_ids():
            try:
                row_id = await self.store.insert_prediction(record)
                return Recorded(prediction, request_id, row_id, Saved.DATABASE)
            except store.StoreUnavailable as exc:
                self.database_down = True
                logger.warning("prediction %s kept in the journal: %s", request_id, exc)
        await self.journal.add_prediction(record)
        return Recorded(prediction, request_id, None, Saved.JOURNAL)

    async def label(
        self,
        *,
        browser_id: str,
        request_id: uuid.UUID,
        digit: int,
        row_id: int | None = None,
        network: str | None = None,
    ) -> Label:
        """Record the digit the user meant (ValueError unless 0-9) and the network it came from. By row id when
        known, else by request_id."""
        store.check_digit(digit, name="true_digit")
        journaled = {"request_id": request_id, "browser_id": browser_id, "true_digit": digit, "network": network}
        if self.database_down or request_id in self.journal.pending_request_ids():  # keep the journal's order
            await self.journal.add_label(**journaled)
            return Label.JOURNAL
        try:
            if row_id is not None:
                found = await self.store.set_feedback(
                    prediction_id=row_id, browser_id=browser_id, true_digit=digit, network=network
                )
            else:
                found = await self.store.set_feedback_by_request_id(
                    request_id=request_id, browser_id=browser_id, true_digit=digit, network=network
                )
        except store.StoreUnavailable as exc:
            self.database_down = True
            logger.warning("label for %s kept in the journal: %s", request_id, exc)
            await self.journal.add_label(**journaled)
            return Label.JOURNAL
        return Label.DATABASE if found else Label.NOT_FOUND
