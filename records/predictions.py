"""One prediction, from the model's answer to the stored row.

`Prediction` is the model's answer as TorchServe gave it (serving/inference.py parses it): what the page shows, what
the JSON API returns, and the part of a stored prediction that the model decided. `StoredPrediction` is that answer
kept: the answer itself plus only what storing adds (whose, the drawing, where from, the row's id and time, the
user's label). No field is held twice, so the answer read back from the table (db/predictions.py) is the same record
the model server answered, refusal reason included.

Why composition rather than one flat row: the answer exists before anything is stored (a live prediction is never
kept, an explanation's answer neither), and a stored row must not be able to disagree with the answer it keeps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

DIGITS = range(10)


def check_digit(value: object, *, name: str) -> None:
    """ValueError unless `value` is an integer digit 0..9."""
    # bool is an int in Python; True must not silently become the digit 1
    if isinstance(value, bool) or not isinstance(value, int) or value not in DIGITS:
        raise ValueError(f"{name} must be an integer digit 0..9, got {value!r}")


def check_label(true_digit: object, not_a_digit: object) -> None:
    """ValueError unless a label is exactly one of: a digit 0..9 (`true_digit`), or not a digit (`not_a_digit` True)."""
    if not isinstance(not_a_digit, bool):
        raise ValueError(f"not_a_digit must be true or false, got {not_a_digit!r}")
    if not_a_digit and true_digit is not None:
        raise ValueError("a label is a digit or not a digit, not both")
    if not not_a_digit:
        check_digit(true_digit, name="true_digit")


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one drawing. A version with a refusal policy may answer "not a digit" (HTTP 200, `digit`
    null): that is an answer, not an error, with `not_a_digit` set, the reason, and the closest digit."""

    digit: int | None  # None when the model refused the drawing as not a digit
    confidence: float  # of the most probable digit (the closest one when refused)
    probabilities: list[float]
    model_name: str
    model_version: str
    preview_png: bytes | None  # the 28x28 image the model saw
    latency_ms: float
    not_a_digit: bool = False
    reason: str | None = None  # why it was refused ("looks like several digits"), None unless refused
    closest_digit: int = -1  # the most probable digit: `digit` when answered, the nearest one when refused

    def __post_init__(self) -> None:
        if self.closest_digit < 0:  # not given: the most probable digit
            object.__setattr__(self, "closest_digit", self.probabilities.index(max(self.probabilities)))

    @property
    def runner_up(self) -> int:
        """The second most probable digit (the "why not ...?" of an explanation)."""
        return sorted(range(len(self.probabilities)), key=lambda d: -self.probabilities[d])[1]


@dataclass(frozen=True)
class StoredPrediction:
    """One stored prediction (a row of `predictions`): the model's answer and what keeping it adds. The fields after
    `client_network` are the table's own: set once the row exists (id, created_at) or labelled (true_digit,
    feedback_network)."""

    request_id: uuid.UUID
    browser_id: str
    answer: Prediction
    canvas_png: bytes | None  # the drawing as sent (app/drawings.py), a number's digit: its crop; None where a read
    # leaves it out
    client_network: str | None = None  # the asking address's network (app/addresses.py); None: unknown
    id: int | None = None
    created_at: datetime | None = None  # set by the table on insert, or before it (journaled: when it was predicted)
    true_digit: int | None = None
    feedback_network: str | None = None
    labelled_not_a_digit: bool = False  # the user says it is not a digit (true_digit is then None)

    def __post_init__(self) -> None:
        # The table's CHECKs hold as well; failing here gives the caller a readable message instead.
        answer = self.answer
        check_digit(answer.closest_digit, name="predicted_digit")
        if not 0.0 <= answer.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {answer.confidence!r}")
        if len(answer.probabilities) != len(DIGITS):
            raise ValueError(f"probabilities must hold 10 values (one per digit), got {len(answer.probabilities)}")
        if answer.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {answer.latency_ms!r}")

    @property
    def predicted_digit(self) -> int:
        """The digit as the table keeps it (predicted_digit): the digit answered, or the closest one when refused."""
        return self.answer.closest_digit

    @property
    def labelled(self) -> bool:
        return self.true_digit is not None or self.labelled_not_a_digit

    @property
    def right(self) -> bool | None:
        """Whether the answer was right; None until labelled. A refusal the user confirmed was right; a refused real
        digit was not, nor a digit answered for what the user says is not a digit."""
        if self.labelled_not_a_digit:
            return self.answer.not_a_digit
        if self.true_digit is None:
            return None
        return self.true_digit == self.predicted_digit and not self.answer.not_a_digit
