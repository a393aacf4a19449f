"""Numbers: several digits written in one drawing, read together, recorded, and corrected by the user.

What the page's Number mode and the JSON API's /api/numbers both do. A number is stored whole (its drawing, the number
read) and each digit as a prediction row of its own, its crop of the drawing (app/drawings.py `digit_crop`) as the
drawing, so a corrected digit is a labelled drawing for `make retrain` like any other (db/init.sql says why).

The user corrects a number by typing it (`label_number`: each digit gets its label when the count matches) or one
digit (`label_digit`). The database may be down: like a prediction, a number and its labels then wait in the journal;
`Predictions` (app/predictions.py) owns that state and the journal's replay, which this use case shares.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.drawings import CropError, digit_crop, stored_copy
from app.ports import ModelServer, NumberRecords
from app.predictions import LabelKept, NotYours, Predictions, SavedIn, check_image, owned_in_journal, refuse_reuse
from db.numbers import NumberIds, digit_request_id
from records.errors import PredictionRejected, StoreUnavailable
from records.numbers import DigitReading, NumberDigit, NumberReading, StoredNumber, check_number
from records.predictions import Prediction, StoredPrediction, check_digit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedNumber:
    """A number as the model read it, the row it was kept as (its digits with their crops), and where; `checked` as
    in Recorded (app/predictions.py)."""

    reading: NumberReading
    row: StoredNumber
    saved: SavedIn
    checked: bool = True

    @property
    def request_id(self) -> uuid.UUID:
        return self.row.request_id

    @property
    def row_id(self) -> int | None:
        """The number's id; None unless saved in the database."""
        return self.row.id

    @property
    def digit_ids(self) -> list[int | None]:
        """Each digit's prediction row id, left to right (None unless saved in the database)."""
        return [digit.prediction.id for digit in self.row.digits]


@dataclass(frozen=True)
class NumberLabelled:
    """Where a number's label was kept, and how many of its digits got theirs (None: not known yet, journaled);
    `checked` as in LabelKept (app/predictions.py)."""

    saved: SavedIn
    digits_labelled: int | None
    checked: bool = True


class Numbers:
    """Reads numbers with the model server and records them, or journals them while the database is down. One per
    app (app/context.py)."""

    def __init__(self, *, server: ModelServer, store: NumberRecords, predictions: Predictions):
        self.server = server
        self.store = store
        self.predictions = predictions  # the journal, the lane for large images, and "the database is down"

    async def read(
        self,
        png: bytes,
        *,
        browser_id: str,
        request_id: uuid.UUID | None = None,
        save: bool = True,
        version: str | None = None,
        network: str | None = None,
    ) -> RecordedNumber:
        """Ask the model server for the number in a drawing (PredictorError when it cannot answer) and record it with
        each digit's crop unless `save` is False.

        PredictionRejected (415) for anything but PNG or JPEG bytes; RequestIdReused (a RequestIdTaken) when the
        request_id already names another drawing of this browser.
        """
        check_image(png)
        if save:
            self.predictions.check_room(png, browser_id=browser_id, network=network, request_id=request_id)
        # large images (every number) take their turn, for the model and the crops: app/limits.py LargeImageLane
        async with self.predictions.lane.slot(png, client=browser_id, network=network):
            reading = await self.server.read_number(png, version=version)
            crops: list[bytes | None] = [None] * len(reading.digits)  # live readings keep nothing
            if save:
                crops = await asyncio.to_thread(_crops, png, reading)  # decoding a large image takes a while
        row = number_row(reading, png=png, crops=crops, browser_id=browser_id, network=network,
                         request_id=request_id or uuid.uuid4())  # fmt: skip
        if not save:
            return RecordedNumber(reading, row, SavedIn.NOT_SAVED)
        journal = self.predictions.journal
        if not self.predictions.database_down and row.request_id not in journal.pending_request_ids():
            try:
                return RecordedNumber(reading, _with_ids(row, await self.store.insert(row)), SavedIn.DATABASE)
            except StoreUnavailable as exc:
                self.predictions.database_down = True
                logger.warning("number %s kept in the journal: %s", row.request_id, exc)
        row = replace(row, created_at=datetime.now(UTC))  # replayed later, the row still says when it was read
        waiting = journal.waiting(row.request_id, kind="number")
        if waiting is not None:  # answered as the database would: a retry kept once, a reuse refused now
            refuse_reuse(waiting, browser_id=browser_id, image=row.canvas_png)
            return RecordedNumber(reading, row, SavedIn.JOURNAL)
        await journal.add_number(row)
        return RecordedNumber(reading, row, SavedIn.JOURNAL, checked=request_id is None)

    async def label_number(
        self, *, browser_id: str, request_id: uuid.UUID, number: str, network: str | None = None
    ) -> NumberLabelled:
        """Record the number the user wrote (ValueError unless 1-10 digits 0-9); each digit row gets its digit when the
        count matches what was read. NotYours when this browser has no such number."""
        check_number(number, name="true_number")
        journal = self.predictions.journal
        if not self._journaling(request_id):
            try:
                labelled = await self.store.set_feedback_by_request_id(
                    request_id=request_id, browser_id=browser_id, true_number=number, network=network
                )
            except StoreUnavailable as exc:
                self._down(request_id, exc)
            else:
                if labelled is None:
                    raise NotYours(f"no number {request_id} of this browser")
                return NumberLabelled(SavedIn.DATABASE, labelled)
        owned = owned_in_journal(journal, request_id, kind="number", browser_id=browser_id)
        await journal.add_number_label(
            request_id=request_id, browser_id=browser_id, true_number=number, network=network
        )
        return NumberLabelled(SavedIn.JOURNAL, None, checked=owned)

    async def label_digit(
        self, *, browser_id: str, request_id: uuid.UUID, position: int, digit: int, network: str | None = None
    ) -> SavedIn:
        """Where keep_digit_label kept the label (the page labels only its own numbers: nothing to check)."""
        kept = await self.keep_digit_label(
            browser_id=browser_id, request_id=request_id, position=position, digit=digit, network=network
        )
        return kept.saved

    async def keep_digit_label(
        self, *, browser_id: str, request_id: uuid.UUID, position: int, digit: int, network: str | None = None
    ) -> LabelKept:
        """Record the digit the user meant at `position` (0 = leftmost) of their number (ValueError unless 0-9); the
        number's label becomes the reading with that digit corrected (db/numbers.py). NotYours when this browser has
        no such number or no digit there (during an outage: when the journal holds another browser's number)."""
        check_digit(digit, name="true_digit")
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise NotYours(f"no digit {position!r} in a number")
        if not self._journaling(request_id):
            try:
                found = await self.store.set_digit_feedback_by_request_id(
                    request_id=request_id, browser_id=browser_id, position=position, true_digit=digit, network=network
                )
            except StoreUnavailable as exc:
                self._down(request_id, exc)
            else:
                if not found:
                    raise NotYours(f"no digit {position} in a number {request_id} of this browser")
                return LabelKept(SavedIn.DATABASE)
        journal = self.predictions.journal
        owned = owned_in_journal(journal, request_id, kind="number", browser_id=browser_id)
        await journal.add_digit_label(
            request_id=request_id, browser_id=browser_id, position=position, true_digit=digit, network=network
        )
        return LabelKept(SavedIn.JOURNAL, checked=owned)

    def _journaling(self, request_id: uuid.UUID) -> bool:
        """Whether a label goes to the journal: the database is down, or its number still waits there (order)."""
        return self.predictions.database_down or request_id in self.predictions.journal.pending_request_ids()

    def _down(self, request_id: uuid.UUID, exc: StoreUnavailable) -> None:
        self.predictions.database_down = True
        logger.warning("label for number %s kept in the journal: %s", request_id, exc)


def number_row(
    reading: NumberReading,
    *,
    png: bytes,
    crops: list[bytes | None],
    browser_id: str,
    request_id: uuid.UUID,
    network: str | None,
) -> StoredNumber:
    """The row a reading is kept as: the drawing (app/drawings.py stored_copy), and each digit with its position and
    box, and as a stored prediction with its crop (its request_id derived from the number's)."""
    digits = tuple(
        NumberDigit(
            position=position,
            box=digit.box,
            prediction=StoredPrediction(
                request_id=digit_request_id(request_id, position),
                browser_id=browser_id,
                answer=digit_answer(reading, digit),
                canvas_png=crop,
                client_network=network,
            ),
        )
        for position, (digit, crop) in enumerate(zip(reading.digits, crops, strict=True))
    )
    return StoredNumber(
        request_id=request_id,
        browser_id=browser_id,
        model_name=reading.model_name,
        model_version=reading.model_version,
        number=reading.number,
        canvas_png=stored_copy(png),
        latency_ms=reading.latency_ms,
        digits=digits,
        not_a_digit=reading.not_a_digit,
        reason=reading.reason,
        client_network=network,
    )


def digit_answer(reading: NumberReading, digit: DigitReading) -> Prediction:
    """A digit of a number as the model's answer for one drawing: its digit (None when refused, the closest one
    kept), the number's model and the latency of the request that read it (all digits come from one)."""
    return Prediction(
        digit=None if digit.not_a_digit else digit.digit,
        confidence=digit.confidence,
        probabilities=digit.probabilities,
        model_name=reading.model_name,
        model_version=reading.model_version,
        preview_png=digit.preview_png,
        latency_ms=reading.latency_ms,
        not_a_digit=digit.not_a_digit,
        closest_digit=digit.digit,
    )


def _crops(png: bytes, reading: NumberReading) -> list[bytes | None]:
    """Each digit's crop (app/drawings.py); PredictionRejected when the drawing cannot be cut (nothing is kept)."""
    try:
        return [digit_crop(png, digit.box) for digit in reading.digits]
    except CropError as exc:
        raise PredictionRejected(str(exc), status=422) from exc


def _with_ids(row: StoredNumber, ids: NumberIds) -> StoredNumber:
    """The row with the ids it was stored under. A retry read by another version since may have more or fewer digits
    than the stored first answer: the ids are those of the stored digits at each place."""
    stored = dict(enumerate(ids.digit_ids))
    digits = tuple(replace(d, prediction=replace(d.prediction, id=stored.get(d.position))) for d in row.digits)
    return replace(row, id=ids.id, digits=digits)
