"""Predict and record: what the page and the JSON API both do with a drawing and with a label.

A prediction is stored with a request_id chosen here (or by the API client, so that a retried request never makes a
second row). When PostgreSQL cannot be reached, the prediction and later its label go to the local journal
(db/journal.py) and are written when the database is back; the caller tells the user, discreetly.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass

from db import store
from ui.predictor import Prediction
from ui.services import Services

logger = logging.getLogger(__name__)


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


async def predict(
    services: Services,
    png: bytes,
    *,
    browser_id: str,
    request_id: uuid.UUID | None = None,
    save: bool = True,
    version: str | None = None,
) -> Recorded:
    """Ask TorchServe (PredictorError when it cannot answer) and record the answer unless `save` is False."""
    prediction = await services.predictor.predict(png, version=version)
    request_id = request_id or uuid.uuid4()
    if not save:
        return Recorded(prediction, request_id, None, Saved.NOT_SAVED)
    record = store.NewPrediction(
        request_id=request_id,
        browser_id=browser_id,
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        predicted_digit=prediction.digit,
        confidence=prediction.confidence,
        probabilities=prediction.probabilities,
        canvas_png=png,
        preview_png=prediction.preview_png,
        latency_ms=prediction.latency_ms,
    )
    if not services.database_down and request_id not in services.journal.pending_request_ids():
        try:
            row_id = await store.insert_prediction(services.pool, record)
            return Recorded(prediction, request_id, row_id, Saved.DATABASE)
        except store.StoreUnavailable as exc:
            services.database_down = True
            logger.warning("prediction %s kept in the journal: %s", request_id, exc)
    await services.journal.add_prediction(record)
    return Recorded(prediction, request_id, None, Saved.JOURNAL)


class Label(enum.Enum):
    DATABASE = "database"
    JOURNAL = "journal"
    NOT_FOUND = "not found"  # no such prediction of this browser


async def label(
    services: Services, *, browser_id: str, request_id: uuid.UUID, digit: int, row_id: int | None = None
) -> Label:
    """Record the digit the user meant (ValueError unless 0-9). By row id when known, else by request_id."""
    store.check_digit(digit, name="true_digit")
    if services.database_down or request_id in services.journal.pending_request_ids():  # keep the journal's order
        await services.journal.add_label(request_id=request_id, browser_id=browser_id, true_digit=digit)
        return Label.JOURNAL
    try:
        if row_id is not None:
            found = await store.set_feedback(
                services.pool, prediction_id=row_id, browser_id=browser_id, true_digit=digit
            )
        else:
            found = await store.set_feedback_by_request_id(
                services.pool, request_id=request_id, browser_id=browser_id, true_digit=digit
            )
    except store.StoreUnavailable as exc:
        services.database_down = True
        logger.warning("label for %s kept in the journal: %s", request_id, exc)
        await services.journal.add_label(request_id=request_id, browser_id=browser_id, true_digit=digit)
        return Label.JOURNAL
    return Label.DATABASE if found else Label.NOT_FOUND
