"""The page's JSON API: what the drawing page does, for scripts and the load test (`make load`).

    POST /api/predictions                     body: the PNG (Content-Type: image/png); optional header
                                              Idempotency-Key: <uuid> makes a retry return the same row
                                              ?save=false: predict only (like the page's Live mode)
    PUT  /api/predictions/{request_id}/label  JSON {"digit": 0-9}: the digit the user meant (a JSON integer)
    GET  /api/history?limit=10&offset=0       this client's predictions and numbers, newest first
    POST /api/numbers                         body: a PNG of several digits, read as one number (Idempotency-Key and
                                              ?save=false as for predictions)
    PUT  /api/numbers/{request_id}/label      JSON {"number": "2026"}: the number the user wrote (1-10 digits, a string)
    PUT  /api/numbers/{request_id}/digits/{position}/label
                                              JSON {"digit": 0-9}: one digit of it (position 0 = leftmost)

Every route gets the App through `Depends(current_app)` (ui/deps.py), so a test replaces it with one on stand-ins.

Strict on purpose: the body of a prediction is the image's own bytes (PNG or JPEG, else 415); an Idempotency-Key names
one image (reused with another: 409); a label is a JSON integer 0-9 (true, "7", 7.0: 422); paging numbers are bounded
(422, never a database error). Each route declares its response model (PredictionOut, LabelOut, HistoryOut, ...).

The client is identified like a browser: by NiceGUI's signed session cookie (set on the first response; keep it, as
a browser does). Every read and label is scoped to that identity, so knowing another client's ids is not enough.
Records go through the app's Predictions (app/predictions.py), like the page's: during a database outage they are
journaled, not lost ("saved": "journal"). What the database would refuse and the journal can tell (an Idempotency-Key
it holds for another image or client, a label for another client's entry it holds) is refused at once, as the database
path refuses it; what only the database can tell is checked when it is back, and such an answer says so in "note".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Literal

from fastapi import Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from nicegui import app
from pydantic import BaseModel, ConfigDict, Field

from app.context import App
from app.drawings import media_type
from app.limits import Busy, address_block
from app.networks import network_of
from app.numbers import RecordedNumber
from app.predictions import NotYours
from app.records import (
    DigitReading,
    JournalFull,
    JournalWriteError,
    ModelUnavailable,
    NumberRow,
    PredictionRejected,
    PredictionRow,
    RequestIdReused,
    RequestIdTaken,
    StoreUnavailable,
)
from ui.deps import CurrentApp
from ui.http import client_key

NOT_KEPT = "not saved: the database is unavailable and so is the server's journal"
MAX_BODY = 4 * 1024 * 1024  # TorchServe's max_request_size (config.properties); ui/limits.BodyLimit enforces it
MAX_OFFSET = 1_000_000  # far beyond any history; bounds what reaches PostgreSQL's bigint OFFSET
SavedAs = Literal["database", "journal", "not saved"]
# "note" when what was kept waits in the journal unchecked (app/predictions.py Recorded.checked, LabelKept.checked)
UNCHECKED_KEY = (
    "kept in the server's journal while the database is unavailable, but not checked: if this Idempotency-Key "
    "already names another image or another client's {what} in the database, this {what} is dropped when it is back"
)
UNCHECKED_LABEL = (
    "kept in the server's journal while the database is unavailable, but not checked: it is applied when the "
    "database is back if that {what} is yours, and dropped if not"
)
NOTE = 'only when "saved" is "journal" and what was kept is checked when the database is back: says so'


def _absent(value: object) -> bool:
    return value is None


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
    note: str | None = Field(None, description=NOTE, exclude_if=_absent)


class LabelIn(BaseModel):
    # strict: a JSON integer only (lax mode would take true as 1 and "7" or " 7 " as 7)
    model_config = ConfigDict(strict=True, extra="forbid")
    digit: int = Field(ge=0, le=9)


class LabelOut(BaseModel):
    request_id: uuid.UUID
    digit: int
    saved: Literal["database", "journal"]
    note: str | None = Field(None, description=NOTE, exclude_if=_absent)


class HistoryItem(BaseModel):
    id: int
    request_id: uuid.UUID
    created_at: datetime
    digit: int
    confidence: float
    true_digit: int | None
    model_version: str


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


def _client_id() -> str:
    return app.storage.browser["id"]


def _network(request: Request) -> str | None:
    """The client's network (as the configured proxies tell its address), kept with predictions and labels."""
    return network_of(request.client.host if request.client else None)


def _request_id(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise HTTPException(400, f"Idempotency-Key must be a UUID, got {value[:60]!r}") from exc


async def create_prediction(
    request: Request,
    context: CurrentApp,
    save: bool = Query(True),
    idempotency_key: str | None = Header(None),
) -> PredictionOut:
    request_id = _request_id(idempotency_key)
    async with _client_slot(request, context):
        with _refusals():
            recorded = await context.predictions.predict(
                await _body(request), browser_id=_client_id(), request_id=request_id, save=save,
                network=_network(request),
            )  # fmt: skip
    p = recorded.prediction
    return PredictionOut(
        note=_unchecked(recorded.checked, UNCHECKED_KEY, "prediction"),
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


async def _body(request: Request) -> bytes:
    """The drawing; read inside the client's slot (BodyLimit has capped it at MAX_BODY)."""
    body = await request.body()
    if not body:
        raise HTTPException(400, "empty body: send the drawing as a PNG (Content-Type: image/png)")
    return body


# A 429 is answered after this long, not at once: a client that retries at once (32 connections, a fresh cookie each)
# would otherwise make the page parse and refuse hundreds of requests a second, which slowed everyone else 6x; held
# this long, each connection asks at most once a second, and a waiting request costs the event loop nothing
BUSY_DELAY_SECONDS = 1.0


@asynccontextmanager
async def _client_slot(request: Request, context: App) -> AsyncIterator[None]:
    """One of the client's in-flight slots and one of its network's (predictions and numbers share them), else 429
    after BUSY_DELAY_SECONDS. A client's cookie is free to renew, its network is not: the network's limit holds
    whatever cookies it shows."""
    address = request.client.host if request.client else None
    try:
        with context.in_flight.slot(client_key(request), network=address_block(address) or f"address {address}"):
            yield
        return
    except Busy as exc:  # only the slot raises it: the request's own work never ran
        busy = exc
    await asyncio.sleep(BUSY_DELAY_SECONDS)
    raise HTTPException(
        429,
        f"too many predictions in flight: at most {busy.limit} per {busy.per}"
        + (" (the network of your address, whatever its cookies)" if busy.per == "network" else "")
        + "; retry when one is answered",
        headers={"Retry-After": "1"},
    ) from busy


@contextmanager
def _refusals() -> Iterator[None]:
    """The use cases' errors as the answers of POST /api/predictions and /api/numbers (docs/api.md "The page's
    JSON API")."""
    try:
        yield
    except PredictionRejected as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    except ModelUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "2"}) from exc
    except RequestIdReused as exc:
        raise HTTPException(409, "this Idempotency-Key was already used with another image: use a new key") from exc
    except RequestIdTaken as exc:
        raise HTTPException(409, "this Idempotency-Key belongs to another client") from exc
    except JournalFull as exc:  # says what happened and what to do
        raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from exc
    except JournalWriteError as exc:
        raise HTTPException(503, f"{NOT_KEPT} ({exc.strerror})") from exc


@contextmanager
def _label_errors(missing: str) -> Iterator[None]:
    """A label's errors: not the client's (404 with `missing`), a bad value (422), nowhere to keep it (503)."""
    try:
        yield
    except NotYours as exc:
        raise HTTPException(404, missing) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    except JournalFull as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from exc
    except JournalWriteError as exc:
        raise HTTPException(503, f"{NOT_KEPT} ({exc.strerror})") from exc


async def label_prediction(request: Request, request_id: uuid.UUID, body: LabelIn, context: CurrentApp) -> LabelOut:
    digit = body.digit
    with _label_errors("no such prediction of yours"):
        kept = await context.predictions.keep_label(
            browser_id=_client_id(), request_id=request_id, digit=digit, network=_network(request)
        )
    note = _unchecked(kept.checked, UNCHECKED_LABEL, "prediction")
    return LabelOut(request_id=request_id, digit=digit, saved=kept.saved.value, note=note)  # type: ignore[arg-type]


def _unchecked(checked: bool, template: str, what: str) -> str | None:
    """The answer's note: None when what was kept was checked (or saved in the database)."""
    return None if checked else template.format(what=what)


async def history(
    context: CurrentApp,
    limit: int = Query(10, ge=1, le=100),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> HistoryOut:
    try:
        entries, total = await context.history.rows(browser_id=_client_id(), limit=limit, offset=offset)
    except StoreUnavailable as exc:
        raise HTTPException(503, "the history is unavailable: the database cannot be reached") from exc
    return HistoryOut(
        total=total,
        predictions=[
            HistoryItem(
                id=row.id,  # type: ignore[arg-type]  # a stored row has its id and time
                request_id=row.request_id,
                created_at=row.created_at,  # type: ignore[arg-type]
                digit=row.predicted_digit,
                confidence=row.confidence,
                true_digit=row.true_digit,
                model_version=row.model_version,
            )
            for row in entries
            if isinstance(row, PredictionRow)
        ],
        numbers=[_number_item(number) for number in entries if isinstance(number, NumberRow)],
    )


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, never the value sent: FastAPI's own answer echoes it, and a number JSON cannot hold
    (1e400 parses as inf, NaN) made that answer fail with a 500 and a 100-line traceback (issue #20 N5)."""
    detail = [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
              for error in (exc.errors() if isinstance(exc, RequestValidationError) else [])]  # fmt: skip
    return JSONResponse({"detail": detail}, status_code=422)


async def drawing_response(context: App, *, browser_id: str, prediction_id: int) -> Response:
    """One of the browser's own drawings (the history's thumbnails); 404 for another's, 503 without the database."""
    try:
        image = await context.history.drawing(browser_id=browser_id, prediction_id=prediction_id)
    except StoreUnavailable:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return _image_response(image)


async def number_drawing_response(context: App, *, browser_id: str, number_id: int) -> Response:
    """The whole drawing of one of the browser's numbers, as drawing_response answers."""
    try:
        image = await context.history.number_drawing(browser_id=browser_id, number_id=number_id)
    except StoreUnavailable:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return _image_response(image)


def _image_response(image: bytes | None) -> Response:
    if image is None:
        return Response(status_code=404)
    # a row's drawing never changes; private: it is this browser's
    return Response(image, media_type=media_type(image), headers={"Cache-Control": "private, max-age=86400"})


def register() -> None:
    """Add the routes to NiceGUI's FastAPI app (called by ui/main.py's startup(), once per app)."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_api_route("/api/predictions", create_prediction, methods=["POST"], response_model=PredictionOut)
    app.add_api_route("/api/predictions/{request_id}/label", label_prediction, methods=["PUT"], response_model=LabelOut)
    app.add_api_route("/api/history", history, methods=["GET"], response_model=HistoryOut)
    app.add_api_route("/api/numbers", create_number, methods=["POST"], response_model=NumberOut)
    app.add_api_route("/api/numbers/{request_id}/label", label_number, methods=["PUT"], response_model=NumberLabelOut)
    app.add_api_route(
        "/api/numbers/{request_id}/digits/{position}/label", label_digit, methods=["PUT"], response_model=DigitLabelOut
    )


# ---- numbers: several digits in one drawing (app/numbers.py) ----------------------------------------------------


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
    note: str | None = Field(None, description=NOTE, exclude_if=_absent)


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
    note: str | None = Field(None, description=NOTE, exclude_if=_absent)


class DigitLabelOut(BaseModel):
    request_id: uuid.UUID
    position: int
    digit: int
    saved: Literal["database", "journal"]
    note: str | None = Field(None, description=NOTE, exclude_if=_absent)


MAX_POSITION = 63  # far beyond any number read; bounds what reaches PostgreSQL's smallint


async def create_number(
    request: Request,
    context: CurrentApp,
    save: bool = Query(True),
    idempotency_key: str | None = Header(None),
) -> NumberOut:
    request_id = _request_id(idempotency_key)
    async with _client_slot(request, context):
        with _refusals():
            recorded = await context.numbers.read(
                await _body(request), browser_id=_client_id(), request_id=request_id, save=save,
                network=_network(request),
            )  # fmt: skip
    return _number_out(recorded)


def _number_out(recorded: RecordedNumber) -> NumberOut:
    reading = recorded.reading
    pairs = zip(reading.digits, recorded.digit_ids, strict=True)
    return NumberOut(
        note=_unchecked(recorded.checked, UNCHECKED_KEY, "number"),
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


async def label_number(
    request: Request, request_id: uuid.UUID, body: NumberLabelIn, context: CurrentApp
) -> NumberLabelOut:
    with _label_errors("no such number of yours"):
        labelled = await context.numbers.label_number(
            browser_id=_client_id(), request_id=request_id, number=body.number, network=_network(request)
        )
    return NumberLabelOut(
        request_id=request_id,
        number=body.number,
        saved=labelled.saved.value,  # type: ignore[arg-type]  # a label is never "not saved"
        digits_labelled=labelled.digits_labelled,
        note=_unchecked(labelled.checked, UNCHECKED_LABEL, "number"),
    )


async def label_digit(
    request: Request,
    request_id: uuid.UUID,
    body: LabelIn,
    context: CurrentApp,
    position: int = Path(ge=0, le=MAX_POSITION),
) -> DigitLabelOut:
    with _label_errors("no such digit in a number of yours"):
        kept = await context.numbers.keep_digit_label(
            browser_id=_client_id(), request_id=request_id, position=position, digit=body.digit,
            network=_network(request),
        )  # fmt: skip
    saved = kept.saved.value  # a label is never "not saved"
    note = _unchecked(kept.checked, UNCHECKED_LABEL, "number")
    return DigitLabelOut(request_id=request_id, position=position, digit=body.digit, saved=saved, note=note)  # type: ignore[arg-type]


def _number_item(number: NumberRow) -> NumberHistoryItem:
    return NumberHistoryItem(
        id=number.id,  # type: ignore[arg-type]  # a stored row has its id and time
        request_id=number.request_id,
        created_at=number.created_at,  # type: ignore[arg-type]
        number=number.number,
        true_number=number.true_number,
        model_version=number.model_version,
        digits=[_digit_item(digit) for digit in number.digits],
    )


def _digit_item(digit: PredictionRow) -> DigitHistoryItem:
    return DigitHistoryItem(
        id=digit.id,  # type: ignore[arg-type]  # a stored digit has its id and place
        position=digit.position,  # type: ignore[arg-type]
        digit=digit.predicted_digit,
        confidence=digit.confidence,
        box=list(digit.box or ()),
        true_digit=digit.true_digit,
    )
