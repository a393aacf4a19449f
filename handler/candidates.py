"""The number reader's candidate digits (segmentation.py): the ink between any two boundaries that could be one digit,
each through the single digit's preprocessing (preprocess.fit_with_box), for the same model. Pure numpy/PIL.

A boundary is the gap before a part or a cut path through it (cuts.py), in reading order. A candidate is the ink
between two of them: paths of one part that do not cross; not too wide, no wide gap inside, not two whole digits
standing apart, not a sliver; a digit-width prior prunes the rest before the model, and their count is capped
(MAX_CANDIDATES), so a request's cost is bounded. What each one is measured to be (Shape, Boundary) is what the
chooser's costs price (segmentation.Costs).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .budget import Work
    from .cuts import CutPath, narrowest
    from .parts import SPECK, InkPart, InkPixels
    from .preprocess import fit_with_box, normalise
else:  # inside the .mar, every file sits flat in the model directory
    from budget import Work
    from cuts import CutPath, narrowest
    from parts import SPECK, InkPart, InkPixels
    from preprocess import fit_with_box, normalise

# Sizes are fractions of the digits' height unless they say otherwise.
MAX_GROUP = 4  # parts (or parts' pieces) in one digit at most (a body, a bar, pieces cut off a touching neighbour)
MAX_CANDIDATES = 72  # model inputs per drawing at most (~0.65 ms each on one core)
LOW_PIECE = 0.5  # a piece cut off or a flat mark lower than this is part of a digit, never one alone ...
FLAT = 1.6  # ... (flat: this much wider than high)
MAX_SHORT = 0.4  # a piece cut out of parts lacking this much of their height is never a digit either
APART_TALL = 0.75  # two parts this tall with empty columns between them are two digits, never one
MAX_DIGIT_WIDTH = 1.5  # a candidate wider than this is no digit, unless it is one whole part (a long 0)
MAX_INNER_GAP = 0.3  # a candidate with a run of empty columns wider than this inside is no digit
STACKED = 0.5  # two parts sharing more than this of the narrower one's columns ...
STACKED_ROWS = 0.1  # ... and fewer rows than this stand one above the other


@dataclass(frozen=True)
class Shape:
    """A candidate digit's width, height and widest inner gap (empty columns), as fractions of the digits' height;
    whether it was cut out of a part."""

    width: float
    height: float
    gap: float
    cut: bool = False
    beside: int = 0  # pairs of neighbouring parts in it, each of a digit's height, overlapping less than half
    short: float = 0.0  # cut out of parts: how much less high it is than they are (a 4's arm, a 1's flag)


@dataclass(frozen=True)
class Boundary:
    """What a boundary between two digits goes through: a cut crossing `cut` strokes (0: no cut), or the empty
    columns between two parts (a fraction of the digits' height)."""

    cut: float = 0.0
    gap: float = 0.0
    along: float = 0.0  # how far the cut runs inside the ink (a fraction of the digits' height)
    evidence: float = 0.0  # how deep the contours dip where it enters and leaves the ink (the same)
    stacked: bool = False  # between two parts one above the other, sharing most of the narrower one's columns


@dataclass(frozen=True)
class Candidate:
    """One possible digit: the ink between boundaries `first` and `stop`, its 28x28 input and its place."""

    first: int
    stop: int
    field: np.ndarray  # (28, 28) in [0, 1], as preprocess.fit_with_box makes it
    box: tuple[float, float, float, float]  # the ink's (left, top, right, bottom), in the drawing's pixels
    shape: Shape  # its size against the digits' height
    crop: np.ndarray | None = dataclass_field(
        default=None, repr=False, compare=False
    )  # its own ink (uint8), the field's source

    def tensor(self):
        import torch

        return torch.from_numpy(normalise(self.field)).unsqueeze(0)  # (1, 28, 28)


@dataclass(frozen=True)
class Node:
    """A boundary: before part `part` (path None), or a cut path through it."""

    part: int
    path: CutPath | None = None


@dataclass(frozen=True)
class Drawing:
    """Everything a candidate is made from: the ink, its parts (reading order), each part's paths (reading order),
    the boundaries, the part of every pixel (-1: none; faint fringe pixels given to their neighbour)."""

    ink: InkPixels
    parts: list[InkPart]
    paths: list[list[CutPath]]
    nodes: list[Node]
    labels: np.ndarray  # (H, W) int32
    height: float
    work: Work = dataclass_field(default_factory=Work, compare=False)


def find_boundaries(drawing: Drawing) -> tuple[Boundary, ...]:
    """What each of the drawing's boundaries goes through, in order."""
    return tuple(_boundary(drawing, node) for node in drawing.nodes)


def _boundary(drawing: Drawing, node: Node) -> Boundary:
    """What a boundary goes through."""
    if node.path is not None:
        path = node.path
        return Boundary(cut=max(path.strokes, 0.01), along=path.inside / drawing.height, evidence=path.evidence)
    if node.part == 0:
        return Boundary()
    part, before = drawing.parts[node.part], drawing.parts[node.part - 1]
    return Boundary(gap=max(0.0, part.x0 - before.x1) / drawing.height, stacked=_stacked(before, part, drawing))


def _stacked(a: InkPart, b: InkPart, drawing: Drawing) -> bool:
    """Whether two parts stand one above the other (rows apart but for STACKED_ROWS, sharing more than STACKED of
    the narrower one's columns): digits of a number stand side by side, so these are one digit's strokes (an 8's
    or a 9's loop drawn apart from the rest, a 5's long bar)."""
    columns = min(a.x1, b.x1) - max(a.x0, b.x0)
    rows = min(a.y1, b.y1) - max(a.y0, b.y0)
    return columns > STACKED * min(a.width, b.width) and rows < STACKED_ROWS * drawing.height


@dataclass(frozen=True)
class _Segment:
    """A candidate's share of one part: the part's pixels between two of its paths (None: its edge)."""

    part: int
    after: CutPath | None
    before: CutPath | None

    def pixels(self, drawing: Drawing) -> np.ndarray:
        part = drawing.parts[self.part]
        pixels = part.pixels
        drawing.work.spend(25 + len(pixels) / 80)  # a few numpy passes over the part's pixels
        if self.after is None and self.before is None:
            return pixels
        rows, xs = drawing.ink.ys[pixels] - part.y0, drawing.ink.xs[pixels]
        keep = np.ones(len(pixels), dtype=bool)
        if self.after is not None:
            keep &= xs >= self.after.columns[rows]
        if self.before is not None:
            keep &= xs < self.before.columns[rows]
        return pixels[keep]

    def owns(self, labels: np.ndarray, rows: np.ndarray, columns: np.ndarray, y0: int) -> np.ndarray:
        """Which pixels of a window (labels: its part ids; rows, columns: the drawing's, broadcastable) are this
        segment's."""
        owned = labels == self.part
        for path, right_of in ((self.after, True), (self.before, False)):
            if path is not None:
                at = path.columns[np.clip(rows - y0, 0, len(path.columns) - 1)]
                owned &= (columns >= at) if right_of else (columns < at)
        return owned


def _segments(drawing: Drawing, first: int, stop: int) -> list[_Segment] | None:
    """The parts' shares between boundaries first and stop (stop == len(nodes): the end); None when two paths of
    one part cross or leave nothing between them."""
    start = drawing.nodes[first]
    end = drawing.nodes[stop] if stop < len(drawing.nodes) else Node(len(drawing.parts))
    last_part = end.part if end.path is not None else end.part - 1
    if (
        start.path is not None
        and end.path is not None
        and start.part == end.part
        and np.any(start.path.columns > end.path.columns + 1)
    ):
        return None  # two paths of one part cross
    return [_Segment(part=k, after=start.path if k == start.part else None, before=end.path if k == end.part else None)
            for k in range(start.part, last_part + 1)]  # fmt: skip


def find_candidates(drawing: Drawing, ink: np.ndarray, *, scale: tuple[float, float]) -> tuple[Candidate, ...]:
    """Every plausible stretch between two boundaries, at most MAX_CANDIDATES (the most digit-like first)."""
    spans = []
    last = len(drawing.nodes)
    reach = MAX_DIGIT_WIDTH * drawing.height
    for first in range(last):
        start = _place(drawing, first)
        for stop in range(first + 1, last + 1):
            # the ink up to boundary stop - 1 is in the span: beyond reach, so is every later stop's. (Not stop's own
            # place: a whole part followed by a wide space ends far before the next part starts.)
            if _place(drawing, stop - 1) - start > reach + drawing.ink.pen:
                break
            segments = _segments(drawing, first, stop)
            if segments is None or len(segments) > MAX_GROUP:
                continue
            span = _span(drawing, segments)
            if span is not None:
                spans.append((first, stop, segments, span))
    spans = _pruned(spans, last=last)
    return tuple(_candidate(drawing, first, stop, segments, span, ink, scale=scale)
                 for first, stop, segments, span in spans)  # fmt: skip


def _place(drawing: Drawing, index: int) -> float:
    node = drawing.nodes[index]
    return node.path.place if node.path is not None else drawing.parts[node.part].x0


@dataclass(frozen=True)
class _Span:
    """A candidate's pixels and shape."""

    pixels: np.ndarray
    shape: Shape


def _span(drawing: Drawing, segments: list[_Segment]) -> _Span | None:
    """The pixels and shape of the ink in `segments`; None when it cannot be one digit (too wide, a wide gap inside,
    two whole digits standing apart, a sliver, a piece cut off a part beside another tall part)."""
    drawing.work.spend(40)
    shares = [segment.pixels(drawing) for segment in segments]
    ink, height = drawing.ink, drawing.height
    cut = [s.after is not None or s.before is not None for s in segments]
    if any(
        len(share) == 0 or (is_cut and _sliver(share, ink, height=height))
        for share, is_cut in zip(shares, cut, strict=True)
    ):
        return None
    heights = [int(np.ptp(ink.ys[share])) + 1 for share in shares]
    if any(cut) and sum(h >= LOW_PIECE * height for h in heights) > 1:
        return None
    pixels = np.concatenate(shares)
    if len(pixels) < SPECK * height * ink.pen:
        return None
    columns, rows = ink.deslanted[pixels], ink.ys[pixels]
    x0, x1 = float(columns.min()), float(columns.max()) + 1
    width = (x1 - x0) / height
    if width > MAX_DIGIT_WIDTH and (any(cut) or len(segments) > 1):
        return None  # a whole part alone may be wide (a long 0, a 2's long tail): the costs weigh it
    occupied = np.bincount(np.floor(columns - x0).astype(np.int64)) > 0
    gap = _longest_false(occupied) / height
    beside = _beside(drawing, shares) if len(shares) > 1 else 0
    if gap > MAX_INNER_GAP or beside is None:
        return None
    short = 0.0
    if any(cut):
        parts = [drawing.parts[s.part] for s in segments]
        short = (int(rows.min()) - min(p.y0 for p in parts) + max(p.y1 for p in parts) - int(rows.max()) - 1) / height
    rise = (int(rows.max()) + 1 - int(rows.min())) / height
    shape = Shape(width=width, height=rise, gap=gap, cut=any(cut), beside=beside, short=short)
    return _Span(pixels=pixels, shape=shape)


def _sliver(share: np.ndarray, ink: InkPixels, *, height: float) -> bool:
    """Whether a piece cut off a part is too thin to be a digit or a digit's part (narrower than a 1 can be), or
    has less ink than a stroke SPECK long."""
    columns = ink.deslanted[share]
    narrow = float(columns.max() + 1 - columns.min()) < narrowest(ink, height=height)
    return narrow or len(share) < SPECK * height * ink.pen


def _longest_false(values: np.ndarray) -> int:
    """The longest run of False in a boolean array."""
    padded = np.concatenate([[True], values, [True]])
    trues = np.flatnonzero(padded)
    return int(np.max(np.diff(trues)) - 1) if len(trues) > 1 else 0


def _beside(drawing: Drawing, shares: list[np.ndarray]) -> int | None:
    """How many neighbouring shares are each a whole digit's height and overlap less than half the narrower's
    width; None when two such stand apart (empty columns between them): one digit's strokes share columns (a 4's,
    an 8's) or one of them is low (a 5's bar)."""
    ink, tall = drawing.ink, APART_TALL * drawing.height
    extents = [(ink.deslanted[s].min(), ink.deslanted[s].max() + 1, np.ptp(ink.ys[s]) + 1) for s in shares]
    beside = 0
    for (left_a, right_a, height_a), (left_b, right_b, height_b) in itertools.pairwise(extents):
        if min(height_a, height_b) < tall:
            continue
        if left_b >= right_a:
            return None
        beside += right_a - left_b < 0.5 * min(right_a - left_a, right_b - left_b)
    return beside


def _pruned(spans: list, *, last: int) -> list:
    """At most MAX_CANDIDATES spans, the most digit-like first, keeping a chain from the first boundary to the
    last; implausible spans (_plausible) only where nothing else covers their ink."""
    spans = sorted(spans, key=lambda s: _unlikeliness(s[3].shape))
    kept = [s for s in spans if _plausible(s[3].shape)][:MAX_CANDIDATES]
    if not _covers(kept, last=last):
        kept = spans[:MAX_CANDIDATES]
        if not _covers(kept, last=last):  # cannot be with single parts and paths left in; keep the chain that is
            chain = _chain(spans, last=last)
            kept = (chain + [s for s in kept if s not in chain])[:MAX_CANDIDATES]
    return sorted(kept, key=lambda s: (s[0], s[1]))


def _plausible(shape: Shape) -> bool:
    """Whether a span could be a digit before the model sees it: not a low piece cut off a part or a low flat mark
    (a bar; a small whole digit is kept: real writers' 0s can be half as high as their 1s), nor a piece cut out of
    parts that lacks much of their height (a 4's arm)."""
    low = shape.height < LOW_PIECE and (shape.cut or shape.width > FLAT * shape.height)
    return not low and shape.short <= MAX_SHORT


def _unlikeliness(shape: Shape) -> float:
    """How far a shape is from a digit's, in units of the digits' height (0: a plausible digit)."""
    return max(0.0, shape.width - 1.0) + max(0.0, 0.75 - shape.height) + shape.gap


def _covers(spans: list, *, last: int) -> bool:
    """Whether the spans chain from boundary 0 to `last`."""
    reached = {0}
    for first, stop, _, _ in sorted(spans, key=lambda s: s[0]):
        if first in reached:
            reached.add(stop)
    return last in reached


def _chain(spans: list, *, last: int) -> list:
    """Some chain of spans from boundary 0 to `last` (the shortest steps first), [] if none."""
    by_first: dict[int, list] = {}
    for span in sorted(spans, key=lambda s: s[1] - s[0]):
        by_first.setdefault(span[0], []).append(span)
    came: dict[int, tuple] = {}
    frontier = [0]
    while frontier:
        node = frontier.pop(0)
        for span in by_first.get(node, []):
            if span[1] not in came:
                came[span[1]] = span
                frontier.append(span[1])
    if last not in came:
        return []
    chain, node = [], last
    while node:
        chain.append(came[node])
        node = came[node][0]
    return chain[::-1]


def _candidate(drawing: Drawing, first: int, stop: int, segments: list[_Segment], span: _Span, ink: np.ndarray, *,
               scale: tuple[float, float]) -> Candidate:  # fmt: skip
    """The candidate between boundaries first and stop: its ink alone (others' blanked), through fit_with_box."""
    drawing.work.spend(300 + len(span.pixels) / 20)
    rows, columns = drawing.ink.ys[span.pixels], drawing.ink.xs[span.pixels]
    y0, y1, x0, x1 = int(rows.min()), int(rows.max()) + 1, int(columns.min()), int(columns.max()) + 1
    top, left = max(0, y0 - 1), max(0, x0 - 1)  # +-1: the fringe
    labels = drawing.labels[top : y1 + 1, left : x1 + 1]
    window_rows = np.arange(top, top + labels.shape[0])[:, None]
    window_columns = np.arange(left, left + labels.shape[1])[None, :]
    owned = np.zeros(labels.shape, dtype=bool)
    for segment in segments:
        owned |= segment.owns(labels, window_rows, window_columns, drawing.parts[segment.part].y0)
    crop = np.where(owned, ink[top : y1 + 1, left : x1 + 1], 0).astype(np.uint8)
    field, _ = fit_with_box(crop)
    sx, sy = scale
    return Candidate(first=first, stop=stop, field=field, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy), shape=span.shape,
                     crop=crop)  # fmt: skip
