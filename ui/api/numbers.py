"""Several digits in one drawing, read as one number (app/numbers.py): POST /api/numbers, PUT
/api/numbers/{id}/label (the whole number) and PUT /api/numbers/{id}/digits/{position}/label (one digit of it)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.numbers import RecordedNumber
from records.numbers import DigitReading
from ui.api import common
from ui.api.common import LabelIn, Note, SavedAs
from ui.deps import CurrentApp

router = APIRouter()
MAX_POSITION = 63  # far beyond any number read; bounds what reaches PostgreSQL's smallint


class DigitOut(BaseModel):
    position: int = Field(description="0 for the leftmost digit")
    id: int | None = Field(description="the digit's prediction row (its crop: /drawings/{id}); null unless saved")
    digit: int = Field(description="the digit read (the closest one when this part is refused)")
    not_a_digit: bool = False
    confidence: float
    probabilities: list[float]
    box: list[float] = Field(description="[left, top, right, bottom] in the drawing's pixels")


class NumberOut(BaseModel):
    id: int | None = Field(description="the number's id; null unless saved in the database")
    request_id: uuid.UUID
    saved: SavedAs
    number: str | None = Field(description='the digits read, left to right ("0089"); null when none can be read')
    not_a_digit: bool = False
    reason: str | None = Field(None, description="why no number could be read")
    digits: list[DigitOut]
    model_name: str
    model_version: str
    latency_ms: float
    note: Note = None


class NumberLabelIn(BaseModel):
    # strict: a JSON string of ASCII digits only (2026 as a JSON number would lose "0089"'s zeros)
    model_config = ConfigDict(strict=True, extra="forbid")
    number: str = Field(pattern=r"^[0-9]{1,10}$")


class NumberLabelOut(BaseModel):
    request_id: uuid.UUID
    number: str
    saved: Literal["database", "journal"]
    digits_labelled: int | None = Field(
        description="digits that got their label: all when the count matches what was read, else 0 (and the "
        "digits' earlier labels are taken back); null when journaled (not known until the database is back)"
    )
    note: Note = None


class DigitLabelOut(BaseModel):
    request_id: uuid.UUID
    position: int
    digit: int
    saved: Literal["database", "journal"]
    note: Note = None


@router.post("/api/numbers", response_model=NumberOut)
async def create_number(
    request: Request,
    context: CurrentApp,
    save: bool = Query(True),
    idempotency_key: str | None = Header(None),
) -> NumberOut:
    recorded = await common.read_drawing(
        request, context, context.numbers.read, idempotency_key=idempotency_key, save=save
    )
    return _number_out(recorded)


def _number_out(recorded: RecordedNumber) -> NumberOut:
    reading = recorded.reading
    pairs = zip(reading.digits, recorded.digit_ids, strict=True)
    return NumberOut(
        note=common.unchecked(recorded.checked, common.UNCHECKED_KEY, "number"),
        id=recorded.row_id,
        request_id=recorded.request_id,
        saved=recorded.saved.value,
        number=reading.number,
        not_a_digit=reading.not_a_digit,
        reason=reading.reason,
        digits=[_digit_out(position, digit, digit_id) for position, (digit, digit_id) in enumerate(pairs)],
        model_name=reading.model_name,
        model_version=reading.model_version,
        latency_ms=round(reading.latency_ms, 2),
    )


def _digit_out(position: int, digit: DigitReading, digit_id: int | None) -> DigitOut:
    return DigitOut(
        position=position,
        id=digit_id,
        digit=digit.digit,
        not_a_digit=digit.not_a_digit,
        confidence=digit.confidence,
        probabilities=digit.probabilities,
        box=list(digit.box),
    )


@router.put("/api/numbers/{request_id}/label", response_model=NumberLabelOut)
async def label_number(
    request: Request, request_id: uuid.UUID, body: NumberLabelIn, context: CurrentApp
) -> NumberLabelOut:
    with common.label_errors("no such number of yours"):
        labelled = await context.numbers.label_number(
            browser_id=common.client_id(), request_id=request_id, number=body.number, network=common.network(request)
        )
    return NumberLabelOut(
        request_id=request_id,
        number=body.number,
        saved=labelled.saved.value,  # type: ignore[arg-type]  # a label is never "not saved"
        digits_labelled=labelled.digits_labelled,
        note=common.unchecked(labelled.checked, common.UNCHECKED_LABEL, "number"),
    )


@router.put("/api/numbers/{request_id}/digits/{position}/label", response_model=DigitLabelOut)
async def label_digit(
    request: Request,
    request_id: uuid.UUID,
    body: LabelIn,
    context: CurrentApp,
    position: int = Path(ge=0, le=MAX_POSITION),
) -> DigitLabelOut:
    with common.label_errors("no such digit in a number of yours"):
        kept = await context.numbers.keep_digit_label(
            browser_id=common.client_id(), request_id=request_id, position=position, digit=body.digit,
            network=common.network(request),
        )  # fmt: skip
    saved = kept.saved.value  # a label is never "not saved"
    note = common.unchecked(kept.checked, common.UNCHECKED_LABEL, "number")
    return DigitLabelOut(request_id=request_id, position=position, digit=body.digit, saved=saved, note=note)  # type: ignore[arg-type]
