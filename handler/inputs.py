"""Requests as TorchServe hands them to the handler -> image bytes. Pure; unit-tested without a server.

Accepted per request: the raw PNG/JPEG body, a multipart form field `data`, or JSON {"image": "<base64 or data: URL>"}
(with an optional "preview": true). A multipart field `preview=1` asks for the preprocessed image as well; so does
the header `X-Preview: 1`, which the handler reads. An explanation request may name the digit to explain: JSON
"target": 3, a multipart field `target=3`, or the header `X-Target: 3` (read by the handler). A request may ask for
a whole number instead of one digit: JSON "read": "number", a multipart field `read=number`, or the header
`X-Read: number` (read by the handler).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# Decided by how this file was imported, not by whether `handler` imports: an editable install of another checkout
# makes `handler` importable inside a TorchServe worker, and classes from two copies (PreprocessError) do not match.
if TYPE_CHECKING or __package__:  # the repository layout (tests, UI; and what mypy checks)
    from .preprocess import Prepared, PreprocessError
else:  # inside the .mar, every file sits flat in the model directory
    from preprocess import Prepared, PreprocessError

TRUTHY = {"1", "true", "yes", "on"}
DIGITS = set("0123456789")
SEND = 'send a PNG/JPEG body, a multipart field "data", or JSON {"image": ...}'


class RequestError(PreprocessError):
    """The request does not carry an image in one of the accepted forms."""


@dataclass
class Item:
    """One request of a batch: its prepared image, or why it has none."""

    prepared: Prepared | None = None
    preview: bool = False
    error: PreprocessError | None = None
    tensor: Any = None  # the model input, (1, 28, 28), made per request where a failure stays the request's
    explain: bool = False  # an /explanations request: answer with attributions as well
    target: int | None = None  # the digit to explain; None: the predicted one; ALL: every digit (see parse_target)
    attributions: Any = None  # (1, 28, 28) tensor, set by the handler's inference for explain items
    all_attributions: Any = None  # (10, 1, 28, 28) tensor when the target is ALL
    number: Any = None  # a number request: its numbers.Layout (tensor is then its candidates, (n, 1, 28, 28))
    logits: Any = None  # a number request: its candidates' logits, (n, classes), set by the handler's inference
    wide: list[int] = field(default_factory=list)  # ... its candidates the pair reader reads (indices), if any ...
    pair_inputs: Any = None  # ... their pair fields, (k, 1, 28, 56) ...
    pair_logits: Any = None  # ... and the pair reader's logits for them, (k, 101), set by the handler's inference


@dataclass(frozen=True)
class Request:
    """What one request asks: the image bytes, whether it wants the preview, and the target it names (unchecked)."""

    image: bytes
    preview: bool = False
    target: Any = None
    read: str = ""  # "number": read every digit of the drawing (as sent: checked by the handler)


class TargetError(RequestError):
    """The digit to explain is not one of 0-9."""


# "target": "all" asks for the maps of all ten digits in one answer (one pass costs far less than ten requests).
ALL = -1


def parse_target(value) -> int | None:
    """A target as sent (JSON number or string, form field bytes, header text) -> 0..9, ALL for "all"; None when
    absent."""
    if value is None:
        return None
    if isinstance(value, str | bytes | bytearray) and _text(value).strip().lower() == "all":
        return ALL
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and 0 <= value <= 9:
            return int(value)
    elif isinstance(value, str | bytes | bytearray):
        text = _text(value).strip()
        if not text:
            return None
        if text in DIGITS:
            return int(text)
    raise TargetError(f'target must be a digit 0-9 or "all", not {_text(value)[:20]!r}')


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def _from_base64(text: str) -> bytes:
    """Base64 or a data: URL (data:image/png;base64,....) -> bytes."""
    text = text.strip()
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise RequestError("the data: URL must be base64-encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"the image field is not valid base64: {exc}") from exc


def _from_json(body: dict) -> Request:
    image = body.get("image")
    if not isinstance(image, str) or not image:
        raise RequestError('JSON requests need an "image" field: a base64 PNG/JPEG or a data: URL')
    preview = _text(body.get("preview", "")).lower() in TRUTHY
    return Request(_from_base64(image), preview, body.get("target"), _text(body.get("read") or ""))


def _no_image(row: dict) -> RequestError:
    """Nothing to read: say so, naming the form fields that came instead of "data" (a misnamed multipart field)."""
    fields = [str(key)[:40] for key in row if key not in ("data", "body", "preview")]
    if fields:
        return RequestError(f'no image: the request has no field "data" (it has {", ".join(fields[:5])}); ' + SEND)
    return RequestError("empty request: " + SEND)


def _as_row(row) -> dict:
    """Under KServe (`service_envelope=kserve`) the handler gets the instances of {"instances": [...]} instead of
    request rows: a bare base64 string or data: URL, {"data": "<base64>"}, or {"image": ..., "preview": ...}."""
    if isinstance(row, str):
        return {"data": row}
    if not isinstance(row, dict):
        raise RequestError('each instance must be a base64 string or an object {"image": "<base64>"}')
    if row.get("data") is None and row.get("body") is None and isinstance(row.get("image"), str):
        return {"body": row}  # (a multipart field named "image" is bytes, and is not this)
    return row


def parse_request(row: dict) -> tuple[bytes, bool]:
    """One TorchServe request row (or KServe instance) -> (image bytes, whether a preview is wanted)."""
    request = read_request(row)
    return request.image, request.preview


def read_request(row: dict) -> Request:
    """One TorchServe request row (or KServe instance) -> what it asks (see Request)."""
    row = _as_row(row)
    preview = _text(row.get("preview", "")).lower() in TRUTHY  # multipart field preview=1
    target = row.get("target")  # multipart field target=3
    read = _text(row.get("read") or "")  # multipart field read=number
    payload = row.get("data") if row.get("data") is not None else row.get("body")
    if isinstance(payload, dict):
        return _with_form_fields(_from_json(payload), preview=preview, target=target, read=read)
    if isinstance(payload, list):
        raise RequestError('send one image per request: JSON {"image": ...}, not a list')
    if isinstance(payload, bool | int | float):  # a JSON scalar body (bytes(5) would be five zero bytes)
        raise RequestError('JSON requests must be an object: {"image": "<base64>"}')
    text = isinstance(payload, str)  # a text body: base64, a data: URL, or JSON that TorchServe did not decode
    if text:
        payload = str(payload).encode("utf-8")
    if not payload:
        raise _no_image(row)
    payload = bytes(payload)
    if payload.lstrip()[:1] in (b"{", b"["):
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"invalid JSON body: {exc}") from exc
        except RecursionError as exc:  # e.g. 200,000 "[": the parser recurses once per level
            raise RequestError("invalid JSON body: nested too deeply") from exc
        if not isinstance(body, dict):
            raise RequestError('JSON requests must be an object: {"image": "<base64>"}')
        return _with_form_fields(_from_json(body), preview=preview, target=target, read=read)
    if payload.startswith(b"data:") or text:
        return Request(_from_base64(payload.decode("ascii", "replace")), preview, target, read)
    return Request(payload, preview, target, read)


def _with_form_fields(request: Request, *, preview: bool, target, read: str) -> Request:
    return Request(
        request.image, request.preview or preview, request.target if target is None else target, request.read or read
    )
