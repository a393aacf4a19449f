"""POST /api/predictions (one digit read, and recorded unless ?save=false) and PUT /api/predictions/{id}/label."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from ui.api import common
from ui.api.common import LabelIn, Note, SavedAs
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


class LabelOut(BaseModel):
    request_id: uuid.UUID
    digit: int
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
async def label_prediction(request: Request, request_id: uuid.UUID, body: LabelIn, context: CurrentApp) -> LabelOut:
    digit = body.digit
    with common.label_errors("no such prediction of yours"):
        kept = await context.predictions.keep_label(
            browser_id=common.client_id(), request_id=request_id, digit=digit, network=common.network(request)
        )
    note = common.unchecked(kept.checked, common.UNCHECKED_LABEL, "prediction")
    return LabelOut(request_id=request_id, digit=digit, saved=kept.saved.value, note=note)  # type: ignore[arg-type]
