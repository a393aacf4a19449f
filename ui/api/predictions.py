"""POST /api/predictions (one digit read, and recorded unless ?save=false) and PUT /api/predictions/{id}/label (a digit,
or "not a digit")."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from ui.api import common
from ui.api.common import DrawingLabelIn, Note, SavedAs
from ui.deps import CurrentApp

router = APIRouter()


class PredictionOut(BaseModel):
    id: int | None = Field(description="the row's id; null unless saved in the database")
    request_id: uuid.UUID
    saved: SavedAs
    digit: int | None = Field(description="the digit read; null when the drawing is refused as not a digit")
    not_a_digit: bool = False
    reason: str | None = Field(None, description='why it was refused, e.g. "looks like several digits"')
    closest_digit: int = Field(description="the digit it is closest to (the digit itself unless refused)")
    confidence: float
    probabilities: list[float]
    model_name: str
    model_version: str
    latency_ms: float
    note: Note = None


def _false(value: object) -> bool:
    return value is False


class LabelOut(BaseModel):
    request_id: uuid.UUID
    digit: int | None = Field(description='the true digit; null when labelled "not a digit"')
    # only in the answer to {"not_a_digit": true}: a digit's answer stays what it always was
    not_a_digit: bool = Field(False, description='labelled "not a digit"', exclude_if=_false)
    saved: Literal["database", "journal"]
    note: Note = None


@router.post("/api/predictions", response_model=PredictionOut)
async def create_prediction(
    request: Request,
    context: CurrentApp,
    save: bool = Query(True),
    idempotency_key: str | None = Header(None),
) -> PredictionOut:
    recorded = await common.read_drawing(
        request, context, context.predictions.predict, idempotency_key=idempotency_key, save=save
    )
    p = recorded.prediction
    return PredictionOut(
        note=common.unchecked(recorded.checked, common.UNCHECKED_KEY, "prediction"),
        id=recorded.row_id,
        request_id=recorded.request_id,
        saved=recorded.saved.value,
        digit=p.digit,
        not_a_digit=p.not_a_digit,
        reason=p.reason,
        closest_digit=p.closest_digit,
        confidence=p.confidence,
        probabilities=p.probabilities,
        model_name=p.model_name,
        model_version=p.model_version,
        latency_ms=round(p.latency_ms, 2),
    )


@router.put("/api/predictions/{request_id}/label", response_model=LabelOut)
async def label_prediction(
    request: Request, request_id: uuid.UUID, body: DrawingLabelIn, context: CurrentApp
) -> LabelOut:
    digit, not_a_digit = body.digit, body.not_a_digit
    with common.label_errors("no such prediction of yours"):
        kept = await context.predictions.keep_label(
            browser_id=common.client_id(), request_id=request_id, digit=digit, not_a_digit=not_a_digit,
            network=common.network(request),
        )  # fmt: skip
    note = common.unchecked(kept.checked, common.UNCHECKED_LABEL, "prediction")
    return LabelOut(
        request_id=request_id, digit=digit, not_a_digit=not_a_digit, saved=kept.saved.value,  # type: ignore[arg-type]
        note=note,
    )  # fmt: skip
