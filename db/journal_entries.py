"""What one line of the journal (db/journal.py) holds, and how it is written and read back: a prediction or a number
as the app inserts it, or a label with whose it is and when it was given; one JSON object a line."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import NamedTuple

from db.predictions import stored_prediction
from records.numbers import NumberDigit, StoredNumber
from records.predictions import StoredPrediction

KINDS = ("prediction", "label", "number", "number_label", "digit_label")
LABEL_KINDS = ("label", "number_label", "digit_label")
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)  # what an entry that cannot be written raises

# The fields a journal line holds: the row as the app inserts it (the table's own fields come later), flat, as the
# table's columns (records/predictions.py nests the model's answer; the lines keep the shape they always had).
# created_at: when it was predicted, so that the replayed row keeps that time, not the replay's (lines written before it
# was kept have none: those rows get the time of the replay). reason: why the model refused it (lines written before it
# was kept have none: their rows keep none).
_JOURNALED = ("request_id", "browser_id", "model_name", "model_version", "predicted_digit", "confidence",
              "probabilities", "canvas_png", "preview_png", "latency_ms", "not_a_digit", "reason", "client_network",
              "created_at")  # fmt: skip


def encode_prediction(prediction: StoredPrediction) -> dict:
    """A prediction's entry: its row, the drawings in base64, the time it was made."""
    answer = prediction.answer
    columns = {**asdict(answer), **asdict(prediction), "predicted_digit": prediction.predicted_digit}
    entry = {key: value for key, value in columns.items() if key in _JOURNALED}
    entry["request_id"] = str(prediction.request_id)
    entry["canvas_png"] = base64.b64encode(prediction.canvas_png or b"").decode("ascii")
    entry["preview_png"] = base64.b64encode(answer.preview_png).decode("ascii") if answer.preview_png else None
    entry["created_at"] = (prediction.created_at or datetime.now(UTC)).isoformat()
    return {"kind": "prediction", "prediction": entry}


def decode_prediction(entry: dict) -> StoredPrediction:
    """The row a prediction's entry holds (entry["prediction"])."""
    fields = dict(entry)
    fields["request_id"] = uuid.UUID(fields["request_id"])
    fields["canvas_png"] = base64.b64decode(fields["canvas_png"])
    fields["preview_png"] = base64.b64decode(fields["preview_png"]) if fields["preview_png"] else None
    if fields.get("created_at") is not None:
        fields["created_at"] = _aware(datetime.fromisoformat(fields["created_at"]))
    return stored_prediction(**fields)


def _aware(moment: datetime) -> datetime:
    """A time read back from a line, with its zone (the journal writes UTC; a hand-edited naive one is taken as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A number's line holds these, and its digits as prediction entries with their place and box.
_NUMBER_JOURNALED = ("request_id", "browser_id", "model_name", "model_version", "number", "latency_ms", "not_a_digit",
                     "reason", "client_network")  # fmt: skip


def encode_number(number: StoredNumber) -> dict:
    """A number's entry: its row, the whole drawing in base64, and its digits' rows with their place and box."""
    entry = {key: getattr(number, key) for key in _NUMBER_JOURNALED}
    entry["request_id"] = str(number.request_id)
    entry["canvas_png"] = base64.b64encode(number.canvas_png or b"").decode("ascii")
    entry["created_at"] = (number.created_at or datetime.now(UTC)).isoformat()  # the replayed row keeps its time
    entry["digits"] = [
        encode_prediction(digit.prediction)["prediction"] | {"position": digit.position, "box": list(digit.box)}
        for digit in number.digits
    ]
    return {"kind": "number", "number": entry}


def decode_number(entry: dict) -> StoredNumber:
    """The row a number's entry holds (entry["number"]), with its digits."""
    fields = dict(entry)
    fields["request_id"] = uuid.UUID(fields["request_id"])
    fields["canvas_png"] = base64.b64decode(fields["canvas_png"])
    fields["created_at"] = _aware(datetime.fromisoformat(fields["created_at"])) if fields.get("created_at") else None
    fields["digits"] = tuple(
        NumberDigit(digit["position"], tuple(digit["box"]), decode_prediction({k: v for k, v in digit.items()
                                                                               if k in _JOURNALED}))
        for digit in fields["digits"]
    )  # fmt: skip
    return StoredNumber(**fields)


def encode_label(kind: str, request_id: uuid.UUID, browser_id: str, network: str | None, **label: object) -> dict:
    """A label's entry: whose, what, from where, and when it was given (a replay never overwrites a newer)."""
    return {"kind": kind, "request_id": str(request_id), "browser_id": browser_id, **label,
            "at": datetime.now(UTC).isoformat(), "network": network}  # fmt: skip


def entry_of(line: str | bytes) -> dict | None:
    """A journal line as the entry it holds; None for a line that cannot be read (it is set aside)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) and entry.get("kind") in KINDS else None


class Waiting(NamedTuple):
    """What a journal line is about: its request id (None for a line that cannot be read; replay drops it) and, for a
    prediction or a number, whose it is and the SHA-256 of its drawing: what the database's insert will compare."""

    request_id: uuid.UUID | None
    kind: str | None = None
    browser_id: str | None = None
    image_sha256: bytes | None = None


def waiting_of(entry: dict) -> Waiting:
    """What an entry is about; Waiting(None) for one that cannot be read."""
    try:
        row = entry.get("prediction") or entry.get("number")
        request_id = uuid.UUID((row or entry)["request_id"])
        if row is None:  # a label
            return Waiting(request_id)
        digest = hashlib.sha256(base64.b64decode(row["canvas_png"])).digest()
        return Waiting(request_id, entry["kind"], str(row["browser_id"]), digest)
    except UNREADABLE:
        return Waiting(None)
