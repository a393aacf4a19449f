"""What the API's routers share: who the client is, its in-flight slots, the body it sent, the use cases' errors as
HTTP answers, and the pieces of the answers every resource has ("saved", "note", a digit's label)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Literal, Protocol, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nicegui import app
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.addresses import network_of
from app.context import App
from app.limits import Busy, address_block
from app.predictions import NotYours
from records.errors import (
    JournalFull,
    JournalWriteError,
    ModelUnavailable,
    PredictionRejected,
    RequestIdReused,
    RequestIdTaken,
)
from ui.http import client_key

NOT_KEPT = "not saved: the database is unavailable and so is the server's journal"
MAX_BODY = 4 * 1024 * 1024  # TorchServe's max_request_size (config.properties); ui/http.py BodyLimit enforces it
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


def _absent(value: object) -> bool:
    return value is None


# An answer's "note": left out of the JSON unless it says something
Note = Annotated[
    str | None,
    Field(
        description='only when "saved" is "journal" and what was kept is checked when the database is back: says so',
        exclude_if=_absent,
    ),
]


class LabelIn(BaseModel):
    # strict: a JSON integer only (lax mode would take true as 1 and "7" or " 7 " as 7)
    model_config = ConfigDict(strict=True, extra="forbid")
    digit: int = Field(ge=0, le=9)


ONE_LABEL = 'give exactly one of "digit" (0-9) and "not_a_digit": true'


class DrawingLabelIn(BaseModel):
    """A single drawing's label: {"digit": N}, or {"not_a_digit": true}; exactly one of them."""

    model_config = ConfigDict(strict=True, extra="forbid")
    digit: int | None = Field(None, ge=0, le=9)
    not_a_digit: bool = False

    @model_validator(mode="after")
    def _one_label(self) -> DrawingLabelIn:
        if (self.digit is None) != self.not_a_digit:
            raise ValueError(ONE_LABEL)
        return self


def client_id() -> str:
    """The client's browser id, from NiceGUI's signed session cookie: every read and label is scoped to it."""
    return app.storage.browser["id"]


def network(request: Request) -> str | None:
    """The client's network (as the configured proxies tell its address), kept with predictions and labels."""
    return network_of(request.client.host if request.client else None)


def _request_id_of(value: str | None) -> uuid.UUID | None:
    """The Idempotency-Key header as a UUID (None without one); 400 for anything else."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise HTTPException(400, f"Idempotency-Key must be a UUID, got {value[:60]!r}") from exc


async def _drawing_body(request: Request) -> bytes:
    """The drawing; read inside the client's slot (BodyLimit has capped it at MAX_BODY)."""
    content = await request.body()
    if not content:
        raise HTTPException(400, "empty body: send the drawing as a PNG (Content-Type: image/png)")
    return content


# A 429 is answered after this long, not at once: a client that retries at once (32 connections, a fresh cookie each)
# would otherwise make the page parse and refuse hundreds of requests a second, which slowed everyone else 6x; held
# this long, each connection asks at most once a second, and a waiting request costs the event loop nothing
BUSY_DELAY_SECONDS = 1.0


Out = TypeVar("Out", covariant=True)


class Reads(Protocol[Out]):
    """A use case that reads a drawing and records it unless save=False (Predictions.predict, Numbers.read)."""

    async def __call__(
        self, png: bytes, /, *, browser_id: str, request_id: uuid.UUID | None, save: bool, network: str | None
    ) -> Out: ...


async def read_drawing(
    request: Request, context: App, read: Reads[Out], *, idempotency_key: str | None, save: bool
) -> Out:
    """The drawing the request's body holds, read (and recorded) by `read` in one of the client's in-flight slots;
    the use case's errors as the API's answers."""
    key = _request_id_of(idempotency_key)
    async with _client_slot(request, context):
        with _refusals():
            image = await _drawing_body(request)
            return await read(image, browser_id=client_id(), request_id=key, save=save, network=network(request))


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
    except (JournalFull, JournalWriteError) as exc:
        raise _not_kept(exc) from exc


@contextmanager
def label_errors(missing: str) -> Iterator[None]:
    """A label's errors: not the client's (404 with `missing`), a bad value (422), nowhere to keep it (503)."""
    try:
        yield
    except NotYours as exc:
        raise HTTPException(404, missing) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    except (JournalFull, JournalWriteError) as exc:
        raise _not_kept(exc) from exc


def _not_kept(exc: JournalWriteError) -> HTTPException:
    """503 for what neither the database nor the journal could keep; a full journal says so and when to retry."""
    if isinstance(exc, JournalFull):
        return HTTPException(503, str(exc), headers={"Retry-After": "60"})
    return HTTPException(503, f"{NOT_KEPT} ({exc.strerror})")


def unchecked(checked: bool, template: str, what: str) -> str | None:
    """The answer's note: None when what was kept was checked (or saved in the database)."""
    return None if checked else template.format(what=what)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why, never the value sent: FastAPI's own answer echoes it, and a number JSON cannot hold
    (1e400 parses as inf, NaN) would make that answer fail with a 500 and a 100-line traceback."""
    detail = [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
              for error in (exc.errors() if isinstance(exc, RequestValidationError) else [])]  # fmt: skip
    return JSONResponse({"detail": detail}, status_code=422)
