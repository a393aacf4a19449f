"""When to answer "not a digit" instead of a digit, per model version. Pure; the handler applies it.

A version refuses only when its archive carries `refusal.json` (training/archive.py packs it from the version's
folder, like architecture.json), so versions without one answer exactly as before. Its keys:

    {"several_digits": true,            # the structural check below (several_digits)
     "too_little_ink": true,            # a dot or a line (too_little_ink below)
     "not_a_digit_threshold": 0.5}      # refuse when P(not a digit) >= this; needs an 11-output DigitNet

With a 10-output model only the structural check can refuse. With an 11-output model (index 10 = "not a digit"),
the digit probabilities are the softmax over the first 10 outputs and P(not a digit) the softmax over all 11 at
index 10; the threshold is chosen on validation data by the training that made the version.

A refusal is still an HTTP 200: {"not_a_digit": true, "digit": null, "reason": ..., "closest_digit": ...,
"probabilities": [...10...]}; 4xx stays for input that cannot be read at all.

The structural check, "several digits", is cheap (pure numpy on the prepared 28x28 image, no model): the ink falls
apart into parts side by side, with a run of empty columns between them wider than a fraction of the ink's height,
and each side tall enough to be a digit (not a stray dot, not the detached bar of a 5, which overlaps its body's
columns). Written digits keep their parts within each other's columns; numbers written left to right leave gaps.
Drawings whose digits touch or overlap are not caught: that is the model's part (an 11th "not a digit" class,
trained on training/nondigits.py).

Measured on the 28x28 field rather than the full drawing: at 64 or 112 px the same rule caught 1-3 points more
pairs with the same false refusals, not worth carrying a second image through the handler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFUSAL_FILE = "refusal.json"
SEVERAL_DIGITS = "looks like several digits"
NOT_A_DIGIT = "doesn't look like a digit"
TOO_LITTLE_INK = "too little ink to be a digit"
NOT_A_DIGIT_INDEX = 10


@dataclass(frozen=True)
class RefusalPolicy:
    """What may refuse a drawing; the default refuses nothing."""

    several_digits: bool = False
    not_a_digit_threshold: float | None = None
    too_little_ink: bool = False
    # P(not a digit) for a photo or scan of paper: the head learned from drawings, and faint, pencil or blurred ink on
    # paper looks less like them (5.0's head at its drawings' threshold refused 2.7% of synthetic photo digits); None:
    # the drawings' threshold (training/photo_threshold.py chooses it).
    photo_threshold: float | None = None

    @property
    def enabled(self) -> bool:
        return self.several_digits or self.too_little_ink or self.not_a_digit_threshold is not None

    @classmethod
    def load(cls, model_dir: str | Path) -> RefusalPolicy:
        """The policy in model_dir/refusal.json, or the default when there is none."""
        path = Path(model_dir) / REFUSAL_FILE
        if not path.exists():
            return cls()
        spec = json.loads(path.read_text())
        unknown = set(spec) - {"several_digits", "not_a_digit_threshold", "too_little_ink", "photo_threshold"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**spec)

    def reason(
        self, *, field: np.ndarray, not_a_digit: float | None, extent: float = 1.0, photo: bool = False
    ) -> str | None:
        """Why this drawing is refused, or None. field: Prepared.ink; not_a_digit: P(not a digit), None for a
        10-output model; extent: Prepared.extent (1.0 where unknown: a digit of a number); photo: Prepared.photo."""
        if self.too_little_ink and too_little_ink(field, extent=extent):
            return TOO_LITTLE_INK
        if self.several_digits and several_digits(field):
            return SEVERAL_DIGITS
        threshold = self.not_a_digit_threshold
        if photo and self.photo_threshold is not None:
            threshold = self.photo_threshold
        if threshold is not None and not_a_digit is not None and not_a_digit >= threshold:
            return NOT_A_DIGIT
        return None


# ---- too little ink: a dot, a line ----------------------------------------------------------------------------------

# Before this check a tapped dot read as "0, 88% sure" and a horizontal line as "1, 82%": the network has to answer a
# digit for anything, and both are a digit's piece. Measured 2026-12-07 on the prepared 28x28 fields (the longer
# side is 20 px): ink height / width has its minimum at 0.5 on MNIST test (10,000) and 0.6 on 3,747 pendigits
# drawings as the slate draws them; below 0.3 on UNIPEN only 9 of 6,887, all 1s (and a 4) of one site's files whose
# strokes are lying on their side (span 2,300 x 0-900 tablet units). A horizontal line is 0.05-0.15.
MAX_FLATNESS = 0.3  # ink height / ink width below this: a line, not a digit
# A dot: the drawing takes less than this share of the picture's shorter side and fills its box like a blob. A tapped
# dot on the 280 px slate is 6-13% (pen 18-36 px); the slate's smallest digits are 40 px (14%), and MNIST's 20 of 28.
MAX_DOT_EXTENT = 0.14
MIN_DOT_FILL = 0.6  # share of the ink's bounding box that is ink (a disk: 0.79; a written digit: far less)


def too_little_ink(field: np.ndarray, *, extent: float = 1.0) -> bool:
    """True for a drawing that is a line lying flat or a dot: not enough drawn to be any digit."""
    mask = field > INK
    rows, columns = _extent(np.asarray(mask.any(axis=1))), _extent(np.asarray(mask.any(axis=0)))
    if not rows or not columns:
        return False
    if rows / columns < MAX_FLATNESS:
        return True
    fill = np.count_nonzero(mask) / (rows * columns)
    return bool(extent < MAX_DOT_EXTENT and fill >= MIN_DOT_FILL)


# ---- several digits side by side -------------------------------------------------------------------------------------

INK = 0.1  # a field pixel counts as ink above this (the field is in [0, 1])
# Measured 2026-12-01 with MIN_GAP 0.15 (0.10 / 0.20 in brackets). Wrongly refused: MNIST test as 28x28 images
# 0.06% (0.11 / 0.02), drawn as canvases by canvas.render 0.03% (0.06 / 0.01) and canvas.render_pen 0.07% (0.08 /
# 0.03) of 10,000 each; 0 of 7,494 real pen-drawn digits (pendigits, 30 writers, strokes drawn as a slate). Caught:
# 95.8% (97.8 / 91.1) of training pairs, 58.3% (69.3 / 52.1) of held-out pairs (nondigits, 1,000 each), of which
# by gap (x 20 px): < 0.1 (touching) 0%, 0.1-0.2 18%, 0.2-0.3 66%, 0.3-0.45 97%, >= 0.45 100%; no letter, shape or
# held-out scribble, 0.4% of training scribbles.
MIN_GAP = 0.15  # the empty run's width, as a fraction of the ink's height
MIN_SIDE = 0.4  # each side's ink height, as a fraction of the whole ink's height


@dataclass(frozen=True)
class SideBySide:
    """The widest gap between parts side by side, as a fraction of the ink's height (0: none)."""

    gap: float

    @property
    def several(self) -> bool:
        return self.gap >= MIN_GAP


def side_by_side(field: np.ndarray) -> SideBySide:
    """field: (28, 28) ink in [0, 1] (Prepared.ink). The widest run of empty columns with enough ink either side."""
    mask = field > INK
    filled = np.asarray(mask.any(axis=0))  # (28,) columns holding ink
    if not filled.any():
        return SideBySide(gap=0.0)
    height = _extent(np.asarray(mask.any(axis=1)))
    columns = np.flatnonzero(filled)
    widest = 0.0
    for start, stop in _empty_runs(filled[columns[0] : columns[-1] + 1], offset=int(columns[0])):
        left, right = _extent(np.asarray(mask[:, :start].any(axis=1))), _extent(np.asarray(mask[:, stop:].any(axis=1)))
        if min(left, right) >= MIN_SIDE * height:
            widest = max(widest, (stop - start) / height)
    return SideBySide(gap=widest)


def several_digits(field: np.ndarray) -> bool:
    """True when the prepared image looks like several digits side by side (the module docstring)."""
    return side_by_side(field).several


def _extent(any_ink: np.ndarray) -> int:
    """Rows (or columns) from the first to the last one holding ink."""
    where = np.flatnonzero(any_ink)
    return int(where[-1] - where[0] + 1) if where.size else 0


def _empty_runs(filled: np.ndarray, *, offset: int) -> list[tuple[int, int]]:
    """[start, stop) column ranges of the runs of False in filled, shifted by offset."""
    edges = np.flatnonzero(np.diff(np.concatenate([[1], filled.astype(np.int8), [1]])))
    return [(int(a) + offset, int(b) + offset) for a, b in zip(edges[::2], edges[1::2], strict=True)]
