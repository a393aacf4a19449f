"""When to answer "not a digit" instead of a digit, per model version. Pure; the handler applies it.

A version refuses only when its archive carries `refusal.json` (training/archive.py packs it from the version's
folder, like architecture.json), so versions without one answer exactly as before. Its keys:

    {"several_digits": true,            # the structural check of handler/structure.py
     "not_a_digit_threshold": 0.5}      # refuse when P(not a digit) >= this; needs an 11-output DigitNet

With a 10-output model only the structural check can refuse. With an 11-output model (index 10 = "not a digit"),
the digit probabilities are the softmax over the first 10 outputs and P(not a digit) the softmax over all 11 at
index 10; the threshold is chosen on validation data by the training that made the version.

A refusal is still an HTTP 200: {"not_a_digit": true, "digit": null, "reason": ..., "closest_digit": ...,
"probabilities": [...10...]}; 4xx stays for input that cannot be read at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .structure import several_digits
else:  # inside the .mar, every file sits flat in the model directory
    from structure import several_digits

REFUSAL_FILE = "refusal.json"
SEVERAL_DIGITS = "looks like several digits"
NOT_A_DIGIT = "doesn't look like a digit"
NOT_A_DIGIT_INDEX = 10


@dataclass(frozen=True)
class RefusalPolicy:
    """What may refuse a drawing; the default refuses nothing."""

    several_digits: bool = False
    not_a_digit_threshold: float | None = None

    @property
    def enabled(self) -> bool:
        return self.several_digits or self.not_a_digit_threshold is not None

    @classmethod
    def load(cls, model_dir: str | Path) -> RefusalPolicy:
        """The policy in model_dir/refusal.json, or the default when there is none."""
        path = Path(model_dir) / REFUSAL_FILE
        if not path.exists():
            return cls()
        spec = json.loads(path.read_text())
        unknown = set(spec) - {"several_digits", "not_a_digit_threshold"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**spec)

    def reason(self, *, field: np.ndarray, not_a_digit: float | None) -> str | None:
        """Why this drawing is refused, or None. field: Prepared.ink; not_a_digit: P(not a digit), None for a
        10-output model."""
        if self.several_digits and several_digits(field):
            return SEVERAL_DIGITS
        threshold = self.not_a_digit_threshold
        if threshold is not None and not_a_digit is not None and not_a_digit >= threshold:
            return NOT_A_DIGIT
        return None
