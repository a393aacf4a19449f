"""A number: several digits in one drawing, as the model read it and as it is stored.

`NumberReading` is the model's reading (serving/inference.py parses it), each digit a `DigitReading` with its box.
`StoredNumber` is a number kept (db/numbers.py): the number's own fields and its digits as `NumberDigit`s: a digit's
place and box, and the digit's stored prediction (records/predictions.py), whose drawing is the digit's crop. A digit
is a stored prediction so that retraining, stats and compare mode see it like any drawing (db/init.sql); the place
and box are what only a digit of a number has, so they live beside it rather than as optional fields of every
prediction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from records.predictions import StoredPrediction

MAX_TRUE_DIGITS = 10  # what a user may type as the number they wrote
MAX_READ_DIGITS = 64  # far above what the handler reads (it caps the pieces of a drawing at 40)
_DIGIT_CHARACTERS = frozenset("0123456789")  # str.isdigit() would let "²" and other scripts' digits through

Box = tuple[float, float, float, float]  # left, top, right, bottom, in the drawing's pixels


def check_number(value: object, *, name: str, most: int = MAX_TRUE_DIGITS) -> None:
    """ValueError unless `value` is a string of 1..`most` ASCII digits ("0089" keeps its zeros)."""
    if not isinstance(value, str) or not 1 <= len(value) <= most or not set(value) <= _DIGIT_CHARACTERS:
        raise ValueError(f"{name} must be a string of 1 to {most} digits 0-9, got {str(value)[:40]!r}")


@dataclass(frozen=True)
class DigitReading:
    """One digit of a number as the model read it: the digit (the closest one when refused), where it is, how sure."""

    digit: int
    confidence: float
    probabilities: list[float]
    box: Box
    preview_png: bytes | None = None  # the 28x28 image the model saw for this digit
    not_a_digit: bool = False  # the version's refusal rules refused this part (then the number is None)


@dataclass(frozen=True)
class NumberReading:
    """The model's reading of a drawing of several digits (X-Read: number): `number` is the digits read, left to right,
    as a string ("0089" keeps its zeros), or None when no number can be read (`reason` says why)."""

    number: str | None
    digits: list[DigitReading]  # left to right; empty when the drawing could not be split into digits
    model_name: str
    model_version: str
    latency_ms: float
    not_a_digit: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class NumberDigit:
    """One digit of a stored number: its place (0 = leftmost), its box in the number's drawing, and its stored
    prediction (the crop as its drawing)."""

    position: int
    box: Box
    prediction: StoredPrediction

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"a digit of a number has a 4-value box, got {self.box}")
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))  # read back from the table as a list


@dataclass(frozen=True)
class StoredNumber:
    """One stored number (a row of `numbers`) with its digits, left to right. The fields after `client_network` are
    the table's own: set once the row exists (id, created_at) or labelled (true_number, feedback_network)."""

    request_id: uuid.UUID
    browser_id: str
    model_name: str
    model_version: str
    number: str | None  # the digits read; None when no number could be read (reason says why)
    canvas_png: bytes | None  # the whole drawing as sent; None where a read leaves it out
    latency_ms: float
    digits: tuple[NumberDigit, ...]  # position 0.. with their boxes; each digit's drawing: its crop
    not_a_digit: bool = False
    reason: str | None = None
    client_network: str | None = None
    id: int | None = None
    created_at: datetime | None = None  # set by the table on insert, or before it (journaled: when it was read)
    true_number: str | None = None
    feedback_network: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", tuple(self.digits))
        if self.number is not None:
            check_number(self.number, name="number", most=MAX_READ_DIGITS)
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms!r}")
        for position, digit in enumerate(self.digits):
            if digit.position != position or digit.prediction.browser_id != self.browser_id:
                raise ValueError(f"digit {position} of a number must have position {position} and the same browser")

    @property
    def reading(self) -> str:
        """The digits read, left to right, also when the number was refused (then each digit's closest one)."""
        return self.number or "".join(str(digit.prediction.predicted_digit) for digit in self.digits)

    @property
    def right(self) -> bool | None:
        """Whether the number was read exactly; None until labelled."""
        if self.true_number is None:
            return None
        return self.true_number == self.number
