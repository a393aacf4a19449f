"""The number reader's cut hypotheses (segmentation.py): paths from top to bottom through a part wider than a digit,
which may separate two touching digits, several per place, for the model to choose from. Pure numpy.

- lines from a valley of the upper contour to a peak of the lower one (two 0s or a 1 and a 0 touching along an
  upright stroke: the line runs down that stroke and gives each digit half of it), or from one of them along the
  writing's slant;
- drop-fall paths, top-down from the upper valleys and bottom-up from the lower peaks, leaning left or right: a drop
  slides along the ink and cuts through it only where it is stuck (strokes touching at a point, a 7's bar running
  into a 1);
- straight cuts along the writing's slant where a column crosses the fewest strokes (then the least ink).
Nearly identical paths are kept once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .budget import Work
    from .parts import MAX_SLANT, InkPart, InkPixels
else:  # inside the .mar, every file sits flat in the model directory
    from budget import Work
    from parts import MAX_SLANT, InkPart, InkPixels

# Sizes are fractions of the digits' height unless they say otherwise.
CONTOUR_WIDE = 0.45  # a part wider than this (slant taken out; two 1s, a 1 and a 4) gets cuts from its contours ...
WIDE = 1.1  # ... and, if they have no dip and it is wider than this, straight cuts
CUT_MARGIN = 0.18  # no straight cut closer than this to a part's ends
NARROWEST = 0.06  # no piece cut off narrower than this (and a pen's width): a 1 can be this narrow
CUT_SPACING = 0.28  # straight cuts at least this far apart
VALLEY = 0.08  # a contour valley (peak) at least this deep on both sides, within VALLEY_REACH, starts cut paths
VALLEY_REACH = 0.5
DIP = 0.3  # a dip of the contour deeper than this counts as this deep (a cut's evidence)
SAME_PATH = 0.05  # two paths of a part this close on average (and never a pen apart) are one


@dataclass(frozen=True)
class CutPath:
    """A cut through one part from its top to its bottom: for each of the part's rows, the column it passes there
    (a pixel left of it, x < column, falls on its left); the strokes it crosses; where it lies on average
    (deslanted), for the reading order."""

    columns: np.ndarray  # (part height,) float
    strokes: float
    inside: int  # rows where it runs inside the ink
    evidence: float  # how deep the contours dip where it enters and leaves the ink (fraction of the digits' height)
    place: float


@dataclass(frozen=True)
class _Window:
    """A part's own ink in its bounding box: mask[y, x] for rows y0.. and columns left.."""

    mask: np.ndarray  # (part height, part width) bool
    y0: int
    left: int
    slant: float
    centre: float  # the row the slant turns around (the drawing's), in window rows

    @classmethod
    def of(cls, part: InkPart, ink: InkPixels) -> _Window:
        mask = np.zeros((part.height, part.right - part.left), dtype=bool)
        mask[ink.ys[part.pixels] - part.y0, ink.xs[part.pixels] - part.left] = True
        return cls(mask, part.y0, part.left, ink.slant, ink.centre - part.y0)

    def line(self, x: float, y: float, lean: float) -> np.ndarray:
        """A straight path through (x, y) (window coordinates) leaning `lean` columns per row, as columns per row."""
        return x + lean * (np.arange(self.mask.shape[0]) - y)


def cut_paths(part: InkPart, ink: InkPixels, *, height: float, work: Work) -> list[CutPath]:
    """The cut hypotheses of a wide part (module docstring), in reading order, near-duplicates dropped. Each line
    costs `work` ~100 units, a drop-fall 1.5 a row (a Python loop)."""
    window = _Window.of(part, ink)
    contours = _Contours.of(window.mask, reach=max(1, round(VALLEY_REACH * height)))
    top, bottom = contours.top, contours.bottom
    margin = narrowest(ink, height=height)
    valleys = _valleys(top, contours.top_depth, height=height, margin=margin, pen=ink.pen)
    peaks = _valleys(-bottom, contours.bottom_depth, height=height, margin=margin, pen=ink.pen)
    upright = -window.slant  # columns per row of a stroke upright in the writing
    work.spend(2 * 1.5 * window.mask.shape[0] * (len(valleys) + len(peaks)))  # the drop-falls below
    lines = []
    for xv in valleys:
        for xp in peaks:
            dy = bottom[xp] - top[xv]
            if dy > 0 and abs((xp - xv) / dy - upright) <= MAX_SLANT / 2:
                lines.append(window.line(xv + 0.5, top[xv], (xp - xv) / dy))
    lines += [window.line(x + 0.5, top[x], upright) for x in valleys]
    lines += [window.line(x + 0.5, bottom[x], upright) for x in peaks]
    for downwards in (True, False):
        for lean in (-1, 1):
            lines += [_drop_fall(window.mask, x, downwards=downwards, lean=lean, reach=VALLEY_REACH * height)
                      for x in (valleys if downwards else peaks)]  # fmt: skip
    if not lines and part.width > WIDE * height:  # no dip in its contours: where fewest strokes cross
        lines += [window.line(x, window.centre, upright) for x in _straight_cuts(part, ink, height=height)]
    work.spend(100 * len(lines))
    paths = [_path(columns, window, contours, ink, height=height) for columns in lines]
    return _distinct(paths, pen=ink.pen, height=height, work=work)


@dataclass(frozen=True)
class _Contours:
    """A part's upper and lower contours (the first and last ink row of each column of its window, as floats) and
    how deep each column lies below (above) the contour's highest (lowest) point within reach on both sides."""

    top: np.ndarray
    bottom: np.ndarray
    top_depth: np.ndarray
    bottom_depth: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray, *, reach: int) -> _Contours:
        rows = mask.shape[0]
        top = mask.argmax(0).astype(np.float64)  # every column of a connected part holds ink
        bottom = rows - 1 - mask[::-1].argmax(0).astype(np.float64)
        return cls(top, bottom, _depth(top, reach), _depth(-bottom, reach))


def _depth(contour: np.ndarray, reach: int) -> np.ndarray:
    """(W,) how far each column of `contour` (larger is lower) lies below its highest point within reach, on the
    shallower side."""
    padded = np.pad(contour, reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)  # (W, 2 reach + 1)
    return np.minimum(contour - windows[:, :reach].min(1), contour - windows[:, reach + 1 :].min(1))


def _valleys(contour: np.ndarray, depth: np.ndarray, *, height: float, margin: float, pen: float) -> list[int]:
    """Columns where `contour` (rows, larger is lower) is lowest within a pen's width and at least VALLEY deep on
    both sides (`depth`), `margin` away from the ends; plateaus give their middle; deepest first, CUT_SPACING
    apart."""
    width, near = len(contour), max(1, round(pen))
    local = np.lib.stride_tricks.sliding_window_view(np.pad(contour, near, mode="edge"), 2 * near + 1).max(1)
    found = []
    x = int(np.ceil(margin))
    while x < width - margin:
        if depth[x] >= VALLEY * height and contour[x] >= local[x]:
            end = x
            while end + 1 < width and contour[end + 1] == contour[x]:
                end += 1
            found.append(((x + end) // 2, float(depth[x])))
            x = end
        x += 1
    chosen: list[int] = []
    for x, _ in sorted(found, key=lambda f: -f[1]):
        if all(abs(x - c) >= CUT_SPACING * height for c in chosen):
            chosen.append(x)
    return chosen


def _drop_fall(mask: np.ndarray, start: int, *, downwards: bool, lean: int, reach: float) -> np.ndarray:
    """A drop-fall path through a part's window from column `start`, top-down (or bottom-up): the drop moves on,
    or diagonally (first towards `lean`: -1 left, 1 right), or slides sideways along the ink to where it can fall,
    and cuts through the ink only where it is stuck; it stays within `reach` columns of its start. Columns per row
    (top to bottom)."""
    grid = mask if downwards else mask[::-1]
    rows, width = grid.shape
    low, high = max(0, int(start - reach)), min(width - 1, int(start + reach))
    x, columns = start, np.empty(rows)
    for y in range(rows):
        if y and grid[y, x] and not grid[y - 1, x]:  # blocked from the row above: go round before cutting through
            x = _go_round(grid[y - 1], grid[y], x, lean=lean, low=low, high=high)
        columns[y] = x + 0.5
    return columns if downwards else columns[::-1]


def _go_round(above: np.ndarray, below: np.ndarray, x: int, *, lean: int, low: int, high: int) -> int:
    """Where a drop blocked at column x goes on: diagonally if it can (towards `lean` first), else sideways along
    the free row it is on to the first column it can fall from; x itself (to cut through) when walled in."""
    for step in (lean, -lean):
        if low <= x + step <= high and not below[x + step]:
            return x + step
    for step in (lean, -lean):
        at = x
        while low <= at + step <= high and not above[at + step]:
            at += step
            if not below[at]:
                return at
    return x


def _straight_cuts(part: InkPart, ink: InkPixels, *, height: float) -> list[float]:
    """Window columns (at the slant's turning row) of straight cuts along the slant where a deslanted column
    crosses the fewest strokes, then holds the least ink; CUT_SPACING apart."""
    columns = np.floor(ink.deslanted[part.pixels] - part.x0).astype(np.int64)
    profile = np.convolve(np.bincount(columns).astype(np.float64), np.ones(3) / 3, mode="same")
    margin, spacing = CUT_MARGIN * height, CUT_SPACING * height
    inside = range(max(1, int(np.ceil(margin))), min(len(profile) - 1, int(part.width - margin) + 1))
    lows = [x for x in inside if profile[x] <= profile[x - 1] and profile[x] <= profile[x + 1]]
    # Where a single stroke joins two (two touching 0s meet in one upright stroke) as well as where little ink is;
    # fewest strokes crossed first, then least ink.
    strokes = _runs_per_column(columns, ink.ys[part.pixels], len(profile))
    joins = [x for x in inside if strokes[x] == 1 and (strokes[x - 1] > 1 or strokes[x + 1] > 1)]
    chosen: list[int] = []
    for x in sorted(set(lows) | set(joins), key=lambda x: (strokes[x], profile[x])):
        if all(abs(x - c) >= spacing for c in chosen):
            chosen.append(x)
    # deslanted column x0 + c is image column x0 + c - slant * (y - centre); at the centre row, x0 + c - left
    return [part.x0 + c - part.left for c in chosen]


def _runs_per_column(columns: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """(count,) how many separate runs of ink each (deslanted) column holds: the strokes a cut there crosses."""
    order = np.lexsort((rows, columns))
    columns, rows = columns[order], rows[order]
    starts = np.ones(len(columns), dtype=bool)
    starts[1:] = (np.diff(columns) != 0) | (np.diff(rows) > 1)
    return np.bincount(columns[starts], minlength=count)


def _path(columns: np.ndarray, window: _Window, contours: _Contours, ink: InkPixels, *, height: float) -> CutPath:
    """Window columns per row -> a CutPath in the drawing's columns, with the strokes it crosses (runs of ink along
    it), how deep the contours dip where it meets the ink from above and from below, and its place."""
    rows, width = window.mask.shape
    at = np.clip(np.floor(columns).astype(np.int64), 0, width - 1)
    along = window.mask[np.arange(rows), at] & (columns >= 0) & (columns < width)
    strokes = float(np.count_nonzero(along[1:] & ~along[:-1]) + along[0])
    evidence = 0.0
    if along.any():
        first, last = int(along.argmax()), rows - 1 - int(along[::-1].argmax())
        dips = min(contours.top_depth[at[first]], DIP * height) + min(contours.bottom_depth[at[last]], DIP * height)
        evidence = float(dips) / height
    occupied = window.mask.any(1)
    place = float(np.mean(columns[occupied] + ink.slant * (np.arange(rows)[occupied] - window.centre)))
    return CutPath(columns=columns + window.left, strokes=strokes, inside=int(np.count_nonzero(along)),
                   evidence=evidence, place=place + window.left)  # fmt: skip


def _distinct(paths: list[CutPath], *, pen: float, height: float, work: Work) -> list[CutPath]:
    """Paths in reading order without near-duplicates (the first of a kind kept: lines, drop-falls, straight
    cuts); each comparison costs `work` ~13 units."""
    kept: list[CutPath] = []
    for path in paths:
        work.spend(13 * len(kept))
        if not any(_same(path, other, pen=pen, height=height) for other in kept):
            kept.append(path)
    return sorted(kept, key=lambda p: p.place)


def _same(a: CutPath, b: CutPath, *, pen: float, height: float) -> bool:
    difference = np.abs(a.columns - b.columns)
    return float(difference.mean()) <= SAME_PATH * height and float(difference.max()) <= max(pen, SAME_PATH * height)


def narrowest(ink: InkPixels, *, height: float) -> float:
    """How narrow a digit can be (a 1): a pen's width and a little."""
    return max(ink.pen, NARROWEST * height)
