"""GET /api/history?limit=10&offset=0: the client's predictions and numbers, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from records.errors import StoreUnavailable
from records.numbers import NumberDigit, StoredNumber
from records.predictions import StoredPrediction
from ui.api.common import client_id
from ui.deps import CurrentApp

router = APIRouter()
MAX_OFFSET = 1_000_000  # far beyond any history; bounds what reaches PostgreSQL's bigint OFFSET


class HistoryItem(BaseModel):
    id: int
    request_id: uuid.UUID
    created_at: datetime
    digit: int
    confidence: float
    true_digit: int | None
    not_a_digit: bool = Field(False, description='whether the model answered "not a digit" (digit: the closest)')
    labelled_not_a_digit: bool = Field(False, description='whether you labelled it "not a digit" (true_digit null)')
    model_version: str
    reason: str | None = Field(None, description='why the drawing was refused, e.g. "looks like several digits"')


class DigitHistoryItem(BaseModel):
    id: int = Field(description="the digit's prediction row: its crop is /drawings/{id}")
    position: int
    digit: int
    confidence: float
    box: list[float]
    true_digit: int | None


class NumberHistoryItem(BaseModel):
    id: int
    request_id: uuid.UUID
    created_at: datetime
    number: str | None
    true_number: str | None
    model_version: str
    digits: list[DigitHistoryItem]


class HistoryOut(BaseModel):
    total: int = Field(description="the client's entries in all: single drawings and numbers")
    predictions: list[HistoryItem] = Field(description="the single drawings of this page of the history")
    numbers: list[NumberHistoryItem] = Field(description="the numbers of this page (each once, with its digits)")


@router.get("/api/history", response_model=HistoryOut)
async def history(
    context: CurrentApp,
    limit: int = Query(10, ge=1, le=100),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> HistoryOut:
    try:
        entries, total = await context.history.rows(browser_id=client_id(), limit=limit, offset=offset)
    except StoreUnavailable as exc:
        raise HTTPException(503, "the history is unavailable: the database cannot be reached") from exc
    return HistoryOut(
        total=total,
        predictions=[_prediction_item(row) for row in entries if isinstance(row, StoredPrediction)],
        numbers=[_number_item(number) for number in entries if isinstance(number, StoredNumber)],
    )


def _prediction_item(row: StoredPrediction) -> HistoryItem:
    return HistoryItem(
        id=row.id,  # type: ignore[arg-type]  # a stored row has its id and time
        request_id=row.request_id,
        created_at=row.created_at,  # type: ignore[arg-type]
        digit=row.predicted_digit,
        confidence=row.answer.confidence,
        true_digit=row.true_digit,
        not_a_digit=row.answer.not_a_digit,
        labelled_not_a_digit=row.labelled_not_a_digit,
        model_version=row.answer.model_version,
        reason=row.answer.reason,
    )


def _number_item(number: StoredNumber) -> NumberHistoryItem:
    return NumberHistoryItem(
        id=number.id,  # type: ignore[arg-type]  # a stored row has its id and time
        request_id=number.request_id,
        created_at=number.created_at,  # type: ignore[arg-type]
        number=number.number,
        true_number=number.true_number,
        model_version=number.model_version,
        digits=[_digit_item(digit) for digit in number.digits],
    )


def _digit_item(digit: NumberDigit) -> DigitHistoryItem:
    stored = digit.prediction
    return DigitHistoryItem(
        id=stored.id,  # type: ignore[arg-type]  # a stored digit has its id
        position=digit.position,
        digit=stored.predicted_digit,
        confidence=stored.answer.confidence,
        box=list(digit.box),
        true_digit=stored.true_digit,
    )
