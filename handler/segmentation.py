"""Read a number: several digits written side by side in one drawing. Pure numpy/PIL; the model is asked by the
caller, once, for every candidate digit of every drawing in a batch.

Recognition-driven segmentation, in three steps:
1. `segment(ink)`: the drawing's ink (preprocess.ink_map, at its working resolution, not 28x28) falls into connected
   parts; specks are dropped, and a low mark lying within one other part's columns (a 5's bar, a 7's cross, the
   top of a 4) joins it. A part wider than a digit may hold touching digits: it is cut along the writing's slant
   where a column crosses the fewest strokes (then the least ink). What is left are *pieces*, in reading order.
2. `layout(ink)`: every run of up to MAX_GROUP neighbouring pieces that could be one digit (not too wide, no wide
   gap inside, not two whole digits standing apart) is a *candidate*: its ink alone goes through the single digit's
   preprocessing (preprocess.fit_with_box) and then the same model. Their count is capped (MAX_CANDIDATES), so a
   request's cost is bounded.
3. `choose(layout, logits)`: the grouping of all pieces into digits with the best total score, by a dynamic
   programme over the pieces (exact and cheap): each digit brings its log probability and a bonus for the model's
   energy (logsumexp of the logits: merged pairs and fragments get a confident softmax but far lower logits), and
   pays for what writing rarely does (a digit wider than high, wider than its class usually is, a fragment read as
   a digit, a cut through several strokes).

Sizes are measured against the digits' height (the median height of the tall parts), so the rules hold for any
size of writing. The costs were tuned on numbers composed from the training writers (training/numbers.py); tried
and left out as no better: winding cut paths between the strokes, a projection-based slant, costs for columns shared
or gaps inside a digit, a logistic verifier over the same features.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        decode,
        fit_with_box,
        ink_map,
        normalise,
    )  # fmt: skip
else:  # inside the .mar, every file sits flat in the model directory
    from preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        decode,
        fit_with_box,
        ink_map,
        normalise,
    )  # fmt: skip

# Sizes are fractions of the digits' height unless they say otherwise.
MAX_MARKS = 400  # connected parts at most (specks included): beyond, hatching or a scribble, not a number
MAX_PIECES = 40  # pieces at most after joining and cutting (the cost must stay bounded)
MAX_GROUP = 4  # pieces in one digit at most (a body, a bar, pieces cut off a touching neighbour)
MAX_CANDIDATES = 72  # model inputs per drawing at most (~0.65 ms each on one core)
SPECK = 0.12  # a part smaller than this both ways is a speck; a cut-off sliver this small stays with its neighbour
SMALL_MARK = 0.5  # a part lower than this, lying within one other part's columns, belongs to it
WITHIN = 0.8  # ... "within": this share of its columns inside the other's
TALL = 0.45  # parts at least this x the tallest part's height count for the digits' height
WIDE = 0.75  # a part wider than this (slant taken out) may hold touching digits: it gets cuts
CUT_MARGIN = 0.18  # no cut closer than this to a part's ends
CUT_SPACING = 0.28  # cuts at least this far apart
LOW_PIECE = 0.5  # a piece lower than this is part of a digit, never one alone
APART_TALL = 0.75  # two parts this tall with empty columns between them are two digits, never one
MAX_DIGIT_WIDTH = 1.5  # a group of pieces wider than this is no digit
MAX_INNER_GAP = 0.3  # a group with a run of empty columns wider than this inside is no digit
MAX_SLANT = 0.8  # x per y
# 9 in 10 digits of each class, in numbers composed from the training writers, are at most this wide (slant taken
# out, pen included): a 1 is narrow, a 0 or a 2 can be wider than high.
DIGIT_WIDTHS = (1.18, 0.67, 1.23, 0.94, 0.97, 1.06, 0.85, 1.03, 0.87, 0.82)


@dataclass(frozen=True)
class Costs:
    """What a grouping gains and pays per digit, in nats, beside the digits' log probabilities. Tuned (coordinate
    search for the most numbers read exactly) on 1,000 numbers composed from the training writers."""

    per_digit: float = 2.05  # every digit pays this: with the energy bonus, it keeps fragments from beating a digit
    energy: float = 0.5  # every digit gains this per unit of the model's energy (logsumexp of its logits) ...
    energy_cap: float = 5.0  # ... up to this energy (whole digits: median 5.0; merged pairs 3.5, fragments 3.3)
    too_wide: float = 1.45  # per unit of width beyond wide_digit
    wide_digit: float = 0.95
    class_wide: float = 0.2  # per unit of width beyond what 9 in 10 digits of the class read are (DIGIT_WIDTHS)
    fragment: float = 28.2  # per unit of height below low_digit: a bar or a cut-off piece read as a digit
    low_digit: float = 0.73
    cut_stroke: float = 0.14  # ending a digit at a cut, per pen width of ink it crosses beyond the first
    apart_gap: float = 0.2  # a bonus for ending a digit at empty columns, per unit of their width ...
    gap_cap: float = 0.5  # ... up to this width


COSTS = Costs()


@dataclass(frozen=True)
class Shape:
    """A candidate digit's width, height and widest inner gap (empty columns), as fractions of the digits' height."""

    width: float
    height: float
    gap: float


@dataclass(frozen=True)
class Boundary:
    """What lies between two neighbouring pieces: a cut through `cut` pen widths of ink (about the strokes it
    crosses; 0: no cut), or the empty columns between them (a fraction of the digits' height)."""

    cut: float = 0.0
    gap: float = 0.0

    def cost(self, costs: Costs) -> float:
        """What ending a digit here costs (negative: a gain)."""
        if self.cut:
            return costs.cut_stroke * max(0.0, self.cut - 1)
        return -costs.apart_gap * min(self.gap, costs.gap_cap)


@dataclass(frozen=True)
class Candidate:
    """One possible digit: the pieces [first, stop) in reading order, its 28x28 input and its place."""

    first: int
    stop: int
    field: np.ndarray  # (28, 28) in [0, 1], as preprocess.fit_with_box makes it
    box: tuple[float, float, float, float]  # the ink's (left, top, right, bottom), in the drawing's pixels
    shape: Shape  # its size against the digits' height

    def cost(self, costs: Costs) -> float:
        """What reading these pieces as one digit costs for its shape (>= 0; its class's width: see choose)."""
        shape = self.shape
        return costs.too_wide * max(0.0, shape.width - costs.wide_digit) + costs.fragment * max(
            0.0, costs.low_digit - shape.height
        )

    def tensor(self):
        import torch

        return torch.from_numpy(normalise(self.field)).unsqueeze(0)  # (1, 28, 28)


@dataclass(frozen=True)
class Layout:
    """A drawing cut into pieces and the candidate digits over them; boundaries[i]: what lies before piece i."""

    pieces: int
    candidates: tuple[Candidate, ...]
    boundaries: tuple[Boundary, ...]
    height: float  # the digits' height, in ink pixels
    refused: str | None = None  # why no number can be read (then there are no candidates)

    def tensors(self):
        import torch

        if not self.candidates:
            return torch.zeros((0, 1, 28, 28))
        return torch.stack([candidate.tensor() for candidate in self.candidates])  # (n, 1, 28, 28)


class TooManyPartsError(ValueError):
    """The ink falls into more parts than a number of digits would (a scribble, hatching, text)."""


# ---- connected parts --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    """Horizontal runs of ink: row, [start, stop) columns, and the connected part each belongs to."""

    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    part: np.ndarray


def connected_runs(mask: np.ndarray) -> Runs:
    """8-connected parts of a boolean image, by union-find over its horizontal runs (far fewer than pixels)."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)
    parent = list(range(len(row)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    bounds = np.searchsorted(row, np.arange(mask.shape[0] + 1)).tolist()
    starts, stops = start.tolist(), stop.tolist()
    for r in range(1, mask.shape[0]):
        i, i_end, j, j_end = bounds[r - 1], bounds[r], bounds[r], bounds[r + 1]
        while i < i_end and j < j_end:
            if starts[i] <= stops[j] and starts[j] <= stops[i]:  # overlapping or diagonal neighbours
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if stops[i] < stops[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(k) for k in range(len(row))], dtype=np.int64)
    _, part = np.unique(roots, return_inverse=True)
    return Runs(row=row, start=start, stop=stop, part=part.reshape(-1))


def _paint(runs: Runs, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 image: each run's pixels set to values[run], -1 elsewhere."""
    image = np.full(shape, -1, dtype=np.int32)
    lengths = runs.stop - runs.start
    first = runs.row * shape[1] + runs.start
    offsets = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    image.reshape(-1)[offsets + np.arange(int(lengths.sum()))] = np.repeat(values, lengths)
    return image


# ---- layout -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ink:
    """The ink pixels of a drawing, and what the steps below measure against."""

    ys: np.ndarray  # (n,) rows
    xs: np.ndarray  # (n,) columns
    deslanted: np.ndarray  # (n,) columns with the writing's slant taken out: xs + slant * (ys - centre)
    slant: float
    centre: float
    pen: float  # the strokes' width, px


@dataclass(frozen=True)
class _Part:
    """A connected part, parts joined, or a piece cut off one: its pixels (indices into _Ink's arrays) and extent;
    x0/x1 are deslanted columns."""

    pixels: np.ndarray
    x0: float
    x1: float
    y0: int
    y1: int
    left: int  # the drawing's columns (not deslanted): [left, right)
    right: int
    cut: float = 0.0  # pen widths of ink crossed by the cut before this piece (0: no cut before it)

    @classmethod
    def of(cls, pixels: np.ndarray, ink: _Ink, *, cut: float = 0.0) -> _Part:
        columns, rows, xs = ink.deslanted[pixels], ink.ys[pixels], ink.xs[pixels]
        return cls(pixels, float(columns.min()), float(columns.max()) + 1, int(rows.min()), int(rows.max()) + 1,
                   int(xs.min()), int(xs.max()) + 1, cut)  # fmt: skip

    def joined(self, other: _Part, ink: _Ink) -> _Part:
        return _Part.of(np.concatenate([self.pixels, other.pixels]), ink)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def prepare_number(data: bytes) -> Layout:
    """PNG/JPEG bytes -> the drawing's layout (boxes in its own pixels); a drawing in too many parts gets a layout
    without candidates that says so. Raises PreprocessError or a subclass (not an image, blank, too large)."""
    image = decode(data)
    width, height = image.info.get("declared_size", image.size)
    ink, _ = ink_map(image)
    try:
        return layout(ink, scale=(width / ink.shape[1], height / ink.shape[0]))
    except TooManyPartsError as exc:
        return Layout(pieces=0, candidates=(), boundaries=(), height=0.0, refused=str(exc))


def layout(ink: np.ndarray, *, scale: tuple[float, float] = (1.0, 1.0)) -> Layout:
    """The pieces and candidate digits of a drawing. ink: (H, W) uint8 from preprocess.ink_map; scale: drawing
    pixels per ink pixel (x, y), for the boxes. Raises BlankImageError, TooManyPartsError."""
    map_, pieces, height = segment(ink)
    boundaries = tuple(_boundary(pieces, index, height=height) for index in range(len(pieces)))
    candidates = _candidates(pieces, map_, ink, height=height, scale=scale)
    return Layout(pieces=len(pieces), candidates=candidates, boundaries=boundaries, height=height)


def segment(ink: np.ndarray) -> tuple[np.ndarray, list[_Part], float]:
    """(H, W) piece index of every ink pixel (-1: none), the pieces in reading order, the digits' height."""
    peak = int(ink.max())
    mask = ink > INK_THRESHOLD * peak
    if peak < MIN_CONTRAST * 255 or np.count_nonzero(mask) < MIN_INK_PIXELS:
        raise BlankImageError("the drawing is blank: draw a digit first")
    runs = connected_runs(mask)
    if runs.part.max() >= MAX_MARKS:
        raise TooManyPartsError(f"the drawing has {runs.part.max() + 1} separate marks: too many to read as a number")
    labels = _paint(runs, runs.part, mask.shape)  # (H, W) part id, -1 off the ink
    ys, xs = np.nonzero(mask)
    slant = _slant(ink)
    centre = float(ys.mean())
    ink_ = _Ink(ys=ys, xs=xs, deslanted=xs + slant * (ys - centre), slant=slant, centre=centre, pen=_pen_width(mask))
    pieces, height = _pieces(labels[ys, xs], ink_)
    map_ = np.full(mask.shape, -1, dtype=np.int32)
    for index, piece in enumerate(pieces):
        map_[ys[piece.pixels], xs[piece.pixels]] = index
    return _fill_fringe(map_, ink), pieces, height


def _slant(ink: np.ndarray) -> float:
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


def _pen_width(mask: np.ndarray) -> float:
    """The strokes' width: 2 x area / perimeter (a stroke of width w and length l has area wl, perimeter ~2l)."""
    area = np.count_nonzero(mask)
    perimeter = np.count_nonzero(np.diff(mask, axis=0)) + np.count_nonzero(np.diff(mask, axis=1))
    return max(1.0, 2 * area / max(int(perimeter), 1))


def _pieces(parts: np.ndarray, ink: _Ink) -> tuple[list[_Part], float]:
    """Parts -> pieces in reading order (specks dropped, small marks joined, wide parts cut); and the height."""
    order = np.argsort(parts, kind="stable")
    bounds = np.cumsum(np.bincount(parts))[:-1]
    found = [_Part.of(pixels, ink) for pixels in np.split(order, bounds)]
    tallest = max(p.height for p in found)
    height = float(np.median([p.height for p in found if p.height >= TALL * tallest]))
    kept = [p for p in found if max(p.width, p.height) >= SPECK * height] or found
    joined = _join_small_marks(kept, ink, height=height)
    if len(joined) > MAX_PIECES:
        raise TooManyPartsError(f"the drawing has {len(joined)} separate marks: too many to read as a number")
    pieces: list[_Part] = []
    for part in sorted(joined, key=lambda p: (p.x0 + p.x1) / 2):
        pieces += _cut(part, ink, height=height) if part.width > WIDE * height else [part]
    if len(pieces) > MAX_PIECES:
        raise TooManyPartsError(f"the drawing has {len(pieces)} pieces: too many to read as a number")
    return pieces, height


def _join_small_marks(parts: list[_Part], ink: _Ink, *, height: float) -> list[_Part]:
    """A low part whose columns lie mostly within one taller part's (a 5's bar, a 7's cross, the top of a 4) joins
    it. Within two (a bar between two digits that share columns), it stays a piece: the grouping decides."""
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


def _cut(part: _Part, ink: _Ink, *, height: float) -> list[_Part]:
    """A wide part cut into pieces along the writing's slant (straight cuts in deslanted columns), at most one cut
    per CUT_SPACING; each piece remembers the ink its cut crossed."""
    columns = np.floor(ink.deslanted[part.pixels] - part.x0).astype(np.int64)
    profile = np.convolve(np.bincount(columns).astype(np.float64), np.ones(3) / 3, mode="same")
    margin, spacing = CUT_MARGIN * height, CUT_SPACING * height
    inside = range(max(1, int(np.ceil(margin))), min(len(profile) - 1, int(part.width - margin) + 1))
    lows = [x for x in inside if profile[x] <= profile[x - 1] and profile[x] <= profile[x + 1]]
    # Where a single stroke joins two (two touching 0s meet in one upright stroke) as well as where little ink is;
    # fewest strokes crossed first, then least ink.
    strokes = _runs_per_column(columns, ink.ys[part.pixels], len(profile))
    joins = [x for x in inside if strokes[x] == 1 and (strokes[x - 1] > 1 or strokes[x + 1] > 1)]
    lows = sorted(set(lows) | set(joins), key=lambda x: (strokes[x], profile[x]))
    chosen: list[int] = []
    for x in lows:
        if all(abs(x - c) >= spacing for c in chosen):
            chosen.append(x)
    chosen.sort()
    side = np.searchsorted(np.array(chosen), columns, side="right")  # (n,) how many cuts lie left of each pixel
    pieces: list[_Part] = []
    for index in range(len(chosen) + 1):
        pixels = part.pixels[side == index]
        if not pixels.size:
            continue
        piece = _Part.of(pixels, ink, cut=max(profile[chosen[index - 1]] / ink.pen, 0.01) if pieces else 0.0)
        if pieces and min(_size(piece, ink), _size(pieces[-1], ink)) < SPECK * height:
            before = pieces.pop()  # a sliver: no piece on its own
            piece = _Part.of(np.concatenate([before.pixels, pixels]), ink, cut=before.cut)
        pieces.append(piece)
    return pieces


def _runs_per_column(columns: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """(count,) how many separate runs of ink each (deslanted) column holds: the strokes a cut there crosses."""
    order = np.lexsort((rows, columns))
    columns, rows = columns[order], rows[order]
    starts = np.ones(len(columns), dtype=bool)
    starts[1:] = (np.diff(columns) != 0) | (np.diff(rows) > 1)
    return np.bincount(columns[starts], minlength=count)


def _size(piece: _Part, ink: _Ink) -> float:
    """A piece's size for the sliver test: its longer side, or its ink as a line of pen width if that is shorter."""
    return min(max(piece.width, piece.height), piece.pixels.size / ink.pen)


def _fill_fringe(pieces: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Give the faint anti-aliased pixels around the strokes (below the ink threshold) to a neighbouring piece, so
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


def _boundary(pieces: list[_Part], index: int, *, height: float) -> Boundary:
    """What lies before piece `index`."""
    if index == 0:
        return Boundary()
    piece, before = pieces[index], pieces[index - 1]
    if piece.cut:
        return Boundary(cut=piece.cut)
    return Boundary(gap=max(0.0, piece.x0 - before.x1) / height)


def _candidates(pieces: list[_Part], map_: np.ndarray, ink: np.ndarray, *, height: float,
                scale: tuple[float, float]) -> tuple[Candidate, ...]:  # fmt: skip
    """Every plausible run of neighbouring pieces, at most MAX_CANDIDATES (every single piece, then the runs with
    the least inner gap and width)."""
    spans = []
    for size in range(1, MAX_GROUP + 1):
        for first in range(len(pieces) - size + 1):
            group = pieces[first : first + size]
            shape = _shape(group, height=height)
            if size == 1 or (
                shape.width <= MAX_DIGIT_WIDTH and shape.gap <= MAX_INNER_GAP and not _two_digits_apart(group, height)
            ):
                spans.append((first, first + size, shape))
    if len(spans) > MAX_CANDIDATES:
        singles = [s for s in spans if s[1] - s[0] == 1]
        groups = sorted((s for s in spans if s[1] - s[0] > 1), key=lambda s: s[2].gap + s[2].width)
        spans = singles + groups[: max(0, MAX_CANDIDATES - len(singles))]
    # A piece lower than LOW_PIECE is never read as a digit alone (Costs.fragment): the model need not see it, as long
    # as a group holds it
    grouped = {i for first, stop, _ in spans if stop - first > 1 for i in range(first, stop)}
    spans = [s for s in spans if not (s[1] - s[0] == 1 and s[2].height < LOW_PIECE and s[0] in grouped)]
    return tuple(_candidate(pieces, first, stop, shape, map_, ink, scale=scale) for first, stop, shape in spans)


def _two_digits_apart(group: list[_Part], height: float) -> bool:
    """Whether the group holds two neighbours that are each a whole digit's height and stand apart (empty columns
    between them): written digits' strokes share columns (a 4's, an 8's) or one of them is low (a 5's bar)."""
    for before, piece in itertools.pairwise(group):
        apart = not piece.cut and piece.x0 >= before.x1
        if apart and min(before.height, piece.height) >= APART_TALL * height:
            return True
    return False


def _shape(group: list[_Part], *, height: float) -> Shape:
    x0, x1 = min(p.x0 for p in group), max(p.x1 for p in group)
    y0, y1 = min(p.y0 for p in group), max(p.y1 for p in group)
    return Shape(width=(x1 - x0) / height, height=(y1 - y0) / height, gap=_widest_gap(group) / height)


def _widest_gap(group: list[_Part]) -> float:
    spans = sorted((p.x0, p.x1) for p in group)
    widest, reach = 0.0, spans[0][1]
    for x0, x1 in spans[1:]:
        widest = max(widest, x0 - reach)
        reach = max(reach, x1)
    return widest


def _candidate(pieces: list[_Part], first: int, stop: int, shape: Shape, map_: np.ndarray, ink: np.ndarray, *,
               scale: tuple[float, float]) -> Candidate:  # fmt: skip
    """The candidate of pieces [first, stop): its ink alone (other pieces' ink blanked), through fit_with_box."""
    group = pieces[first:stop]
    top, bottom = max(0, min(p.y0 for p in group) - 1), max(p.y1 for p in group) + 1  # +-1: the fringe
    left, right = max(0, min(p.left for p in group) - 1), max(p.right for p in group) + 1
    window = map_[top:bottom, left:right]
    crop = np.where((window >= first) & (window < stop), ink[top:bottom, left:right], 0).astype(np.uint8)
    field, _ = fit_with_box(crop)
    sx, sy = scale
    box = (min(p.left for p in group) * sx, min(p.y0 for p in group) * sy,
           max(p.right for p in group) * sx, max(p.y1 for p in group) * sy)  # fmt: skip
    return Candidate(first=first, stop=stop, field=field, box=box, shape=shape)


# ---- choosing ---------------------------------------------------------------------------------------------------


def choose(plan: Layout, logits: np.ndarray, *, costs: Costs = COSTS) -> list[int]:
    """The candidates (indices into plan.candidates, left to right) that cover every piece once with the best total
    score: sum of log P(best digit) + energy bonus - shape cost - boundary cost - per digit. logits: (n_candidates,
    10) digit logits."""
    peak = logits.max(axis=1, keepdims=True)
    energy = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]  # (n,) logsumexp
    log_probs = logits - energy[:, None]
    best = np.full(plan.pieces + 1, -np.inf)
    best[0] = 0.0
    back = [-1] * (plan.pieces + 1)
    ending: dict[int, list[int]] = {}
    for index, candidate in enumerate(plan.candidates):
        ending.setdefault(candidate.stop, []).append(index)
    top = log_probs.max(axis=1)
    widths = np.array([candidate.shape.width for candidate in plan.candidates])
    top = top - costs.class_wide * np.maximum(0.0, widths - np.asarray(DIGIT_WIDTHS)[log_probs.argmax(axis=1)])
    top = top + costs.energy * np.minimum(energy, costs.energy_cap)
    for stop in range(1, plan.pieces + 1):
        for index in ending.get(stop, []):
            candidate = plan.candidates[index]
            before = best[candidate.first]
            if before == -np.inf:
                continue
            boundary = plan.boundaries[candidate.first].cost(costs) if candidate.first else 0.0
            score = before + top[index] - candidate.cost(costs) - boundary - costs.per_digit
            if score > best[stop]:
                best[stop], back[stop] = score, index
    chosen, stop = [], plan.pieces
    if best[stop] == -np.inf:  # no candidate covers some piece (cannot happen: every piece is one)
        return []
    while stop > 0:
        index = back[stop]
        chosen.append(index)
        stop = plan.candidates[index].first
    return chosen[::-1]


def reading(plan: Layout, logits: np.ndarray, *, costs: Costs = COSTS) -> dict:
    """The number read from the candidates' digit logits ((n_candidates, 10), rows as plan.candidates):
    {"number": "42", "digits": [{"digit", "confidence", "probabilities", "box", "candidate"}, ...]}, left to right
    ("candidate": the index of its candidate in plan). A refused layout reads {"number": None, "digits": [],
    "reason": ...}."""
    if plan.refused is not None:
        return {"number": None, "digits": [], "reason": plan.refused}
    chosen = choose(plan, logits, costs=costs)
    digits = []
    for index in chosen:
        z = logits[index] - logits[index].max()
        p = np.exp(z) / np.exp(z).sum()
        box = plan.candidates[index].box
        digits.append({"digit": int(p.argmax()), "confidence": float(p.max()), "probabilities": [float(v) for v in p],
                       "box": [round(float(v), 1) for v in box], "candidate": index})  # fmt: skip
    return {"number": "".join(str(d["digit"]) for d in digits), "digits": digits}
