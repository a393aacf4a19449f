"""The number reader's first step (segmentation.py): a drawing's ink as parts, in reading order. Pure numpy.

The ink falls into connected parts (components.py); specks are dropped, and a low mark lying within one other part's
columns (a 5's bar, a 7's cross, the top of a 4) joins it. What the later steps measure against is found here too:
the digits' height (the median height of the tall parts), the writing's slant and the strokes' width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Sizes are fractions of the digits' height unless they say otherwise.
MAX_PARTS = 40  # parts at most after joining (the cost must stay bounded)
SPECK = 0.12  # a part smaller than this both ways is a speck; a candidate with less ink than a stroke this long too
SMALL_MARK = 0.5  # a part lower than this, lying within one other part's columns, belongs to it
WITHIN = 0.8  # ... "within": this share of its columns inside the other's
TALL = 0.45  # parts at least this x the tallest part's height count for the digits' height
MAX_SLANT = 0.8  # the writing's slant at most, x per y


class TooManyPartsError(ValueError):
    """The ink falls into more parts than a number of digits would (a scribble, hatching, text)."""


@dataclass(frozen=True)
class InkPixels:
    """The ink pixels of a drawing, and what the later steps measure against."""

    ys: np.ndarray  # (n,) rows
    xs: np.ndarray  # (n,) columns
    deslanted: np.ndarray  # (n,) columns with the writing's slant taken out: xs + slant * (ys - centre)
    slant: float
    centre: float
    pen: float  # the strokes' width, px


@dataclass(frozen=True)
class InkPart:
    """A connected part of the ink, or parts joined (a 5's body and its bar): its pixels (indices into InkPixels'
    arrays) and extent; x0/x1 are deslanted columns."""

    pixels: np.ndarray
    x0: float
    x1: float
    y0: int
    y1: int
    left: int  # the drawing's columns (not deslanted): [left, right)
    right: int

    @classmethod
    def of(cls, pixels: np.ndarray, ink: InkPixels) -> InkPart:
        columns, rows, xs = ink.deslanted[pixels], ink.ys[pixels], ink.xs[pixels]
        return cls(pixels, float(columns.min()), float(columns.max()) + 1, int(rows.min()), int(rows.max()) + 1,
                   int(xs.min()), int(xs.max()) + 1)  # fmt: skip

    def joined(self, other: InkPart, ink: InkPixels) -> InkPart:
        return InkPart.of(np.concatenate([self.pixels, other.pixels]), ink)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def writing_slant(ink: np.ndarray) -> float:
    """The writing's slant: the median lean (x per y) of the near-upright stroke edges, from the ink's Sobel
    gradients (an edge's gradient is normal to its stroke). Upright strokes of every digit count, so one long
    diagonal (a 7's) does not decide it alone."""
    grey = ink.astype(np.float32)
    smooth = grey[:-2] + 2 * grey[1:-1] + grey[2:]  # (H-2, W) vertical smoothing, for gx
    gx = smooth[:, 2:] - smooth[:, :-2]  # (H-2, W-2)
    smooth = grey[:, :-2] + 2 * grey[:, 1:-1] + grey[:, 2:]
    gy = smooth[2:] - smooth[:-2]
    strength = np.abs(gx) + np.abs(gy)
    upright = (np.abs(gy) <= np.abs(gx)) & (strength > 0.25 * strength.max())  # edges within 45 degrees of vertical
    if np.count_nonzero(upright) < 8:
        return 0.0
    return float(np.clip(np.median(gy[upright] / gx[upright]), -MAX_SLANT, MAX_SLANT))


def pen_width(mask: np.ndarray) -> float:
    """The strokes' width: 2 x area / perimeter (a stroke of width w and length l has area wl, perimeter ~2l)."""
    area = np.count_nonzero(mask)
    perimeter = np.count_nonzero(np.diff(mask, axis=0)) + np.count_nonzero(np.diff(mask, axis=1))
    return max(1.0, 2 * area / max(int(perimeter), 1))


def find_parts(labels: np.ndarray, ink: InkPixels) -> tuple[list[InkPart], float]:
    """Each ink pixel's connected part (labels) -> parts in reading order (specks dropped, small marks joined); and
    the digits' height."""
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.bincount(labels))[:-1]
    found = [InkPart.of(pixels, ink) for pixels in np.split(order, bounds)]
    tallest = max(p.height for p in found)
    height = float(np.median([p.height for p in found if p.height >= TALL * tallest]))
    kept = [p for p in found if max(p.width, p.height) >= SPECK * height] or found
    joined = _join_small_marks(kept, ink, height=height)
    if len(joined) > MAX_PARTS:
        raise TooManyPartsError(f"the drawing has {len(joined)} separate marks: too many to read as a number")
    return sorted(joined, key=lambda p: (p.x0 + p.x1) / 2), height


def _join_small_marks(parts: list[InkPart], ink: InkPixels, *, height: float) -> list[InkPart]:
    """A low part whose columns lie mostly within one taller part's (a 5's bar, a 7's cross, the top of a 4) joins
    it. Within two (a bar between two digits that share columns), it stays a part: the grouping decides."""
    joined = list(parts)
    for mark in sorted(parts, key=lambda p: p.height):
        if mark.height >= SMALL_MARK * height:
            break
        hosts = [index for index, host in enumerate(joined) if host.height > mark.height
                 and min(mark.x1, host.x1) - max(mark.x0, host.x0) >= WITHIN * max(mark.width, 1.0)]  # fmt: skip
        if len(hosts) == 1:
            joined[hosts[0]] = joined[hosts[0]].joined(mark, ink)
            joined = [p for p in joined if p is not mark]
    return joined


def fill_fringe(pieces: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Give the faint anti-aliased pixels around the strokes (below the ink threshold) to a neighbouring part, so
    a digit's crop keeps its edges as the single digit's preprocessing does."""
    filled = pieces.copy()
    padded = np.pad(pieces, 1, constant_values=-1)
    height, width = pieces.shape
    free = (pieces < 0) & (ink > 0)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            neighbour = padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            take = free & (filled < 0) & (neighbour >= 0)
            filled[take] = neighbour[take]
    return filled
