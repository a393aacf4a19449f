"""Read a number: several digits written side by side in one drawing. Pure numpy/PIL; the model is asked by the
caller, once, for every candidate digit of every drawing in a batch.

Recognition-driven segmentation, in three steps:
1. *Parts and cuts* (`layout`): the drawing's ink (preprocess.ink_map, at its working resolution, not 28x28) falls
   into connected parts; specks are dropped, and a low mark lying within one other part's columns (a 5's bar, a 7's
   cross, the top of a 4) joins it. A part wider than a digit may hold touching digits, and gets *cut hypotheses*:
   paths from top to bottom that may separate two digits, several per place, for the model to choose from:
   - lines from a valley of the upper contour to a peak of the lower one (two 0s or a 1 and a 0 touching along an
     upright stroke: the line runs down that stroke and gives each digit half of it), or from one of them along the
     writing's slant;
   - drop-fall paths, top-down from the upper valleys and bottom-up from the lower peaks, leaning left or right: a
     drop slides along the ink and cuts through it only where it is stuck (strokes touching at a point, a 7's bar
     running into a 1);
   - straight cuts along the writing's slant where a column crosses the fewest strokes (then the least ink).
   Nearly identical paths are kept once. The parts' gaps and the paths are the *boundaries*, in reading order.
2. *Candidates*: the ink between any two boundaries that could be one digit (paths of one part that do not cross;
   not too wide, no wide gap inside, not two whole digits standing apart, not a sliver; a digit-width prior prunes
   the rest before the model) goes through the single digit's preprocessing (preprocess.fit_with_box) and then the
   same model. Their count is capped (MAX_CANDIDATES), so a request's cost is bounded.
   The work of steps 1 and 2 is counted as it is done (`Work`): a drawing that needs more than MAX_WORK (a dense
   zigzag or hatching over the slate: one wide part with a hundred cut places) is refused, TooComplexError (422).
3. `choose(layout, logits)`: the chain of candidates from the first boundary to the last with the best total score,
   by a dynamic programme over the boundaries (exact and cheap): each digit brings its log probability and a bonus
   for the model's energy (logsumexp of the logits: merged pairs and fragments get a confident softmax but far lower
   logits), and pays for what writing rarely does (a digit wider than high, wider than its class usually is, a
   fragment read as a digit, a cut through several strokes).

Sizes are measured against the digits' height (the median height of the tall parts), so the rules hold for any
size of writing. The costs were tuned on numbers composed from the training writers and on half of the real UNIPEN
numbers (by file; training/numbers.py); the other half and the held-out writers only measure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .components import linked_roots
    from .preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        PreprocessError,
        decode,
        fit_with_box,
        ink_map,
        normalise,
        scale_into,
    )  # fmt: skip
else:  # inside the .mar, every file sits flat in the model directory
    from components import linked_roots
    from preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        PreprocessError,
        decode,
        fit_with_box,
        ink_map,
        normalise,
        scale_into,
    )  # fmt: skip

# The pair reader (an archive with pairs.pt; handler/model.py pair_net): its input and its "no pair" output
PAIR_FIELD = (28, 56)  # rows, columns: two digits side by side, as high as one digit's field
PAIR_BOX = (20, 52)  # the ink's height at most 20 px (as a digit's), its width at most 52
NOT_PAIR = 100  # outputs 0-99: the pair 10 * first + second

# Sizes are fractions of the digits' height unless they say otherwise.
MAX_MARKS = 400  # connected parts at most (specks included): beyond, hatching or a scribble, not a number
MAX_PARTS = 40  # parts at most after joining (the cost must stay bounded)
MAX_PATHS = 60  # cut paths per drawing at most
MAX_GROUP = 4  # parts (or parts' pieces) in one digit at most (a body, a bar, pieces cut off a touching neighbour)
MAX_CANDIDATES = 72  # model inputs per drawing at most (~0.65 ms each on one core)
SPECK = 0.12  # a part smaller than this both ways is a speck; a candidate with less ink than a stroke this long too
SMALL_MARK = 0.5  # a part lower than this, lying within one other part's columns, belongs to it
WITHIN = 0.8  # ... "within": this share of its columns inside the other's
TALL = 0.45  # parts at least this x the tallest part's height count for the digits' height
CONTOUR_WIDE = 0.45  # a part wider than this (slant taken out; two 1s, a 1 and a 4) gets cuts from its contours ...
WIDE = 1.1  # ... and, if they have no dip and it is wider than this, straight cuts
CUT_MARGIN = 0.18  # no straight cut closer than this to a part's ends
NARROWEST = 0.06  # no piece cut off narrower than this (and a pen's width): a 1 can be this narrow
CUT_SPACING = 0.28  # straight cuts at least this far apart
VALLEY = 0.08  # a contour valley (peak) at least this deep on both sides, within VALLEY_REACH, starts cut paths
VALLEY_REACH = 0.5
DIP = 0.3  # a dip of the contour deeper than this counts as this deep (a cut's evidence)
SAME_PATH = 0.05  # two paths of a part this close on average (and never a pen apart) are one
LOW_PIECE = 0.5  # a piece cut off or a flat mark lower than this is part of a digit, never one alone ...
FLAT = 1.6  # ... (flat: this much wider than high)
MAX_SHORT = 0.4  # a piece cut out of parts lacking this much of their height is never a digit either
APART_TALL = 0.75  # two parts this tall with empty columns between them are two digits, never one
MAX_DIGIT_WIDTH = 1.5  # a candidate wider than this is no digit, unless it is one whole part (a long 0)
MAX_INNER_GAP = 0.3  # a candidate with a run of empty columns wider than this inside is no digit
MAX_SLANT = 0.8  # x per y
STACKED = 0.5  # two parts sharing more than this of the narrower one's columns ...
STACKED_ROWS = 0.1  # ... and fewer rows than this stand one above the other
# 9 in 10 digits of each class, in numbers composed from the training writers, are at most this wide (slant taken
# out, pen included): a 1 is narrow, a 0 or a 2 can be wider than high.
DIGIT_WIDTHS = (1.18, 0.67, 1.23, 0.94, 0.97, 1.06, 0.85, 1.03, 0.87, 0.82)
DIGIT_NARROW = (0.58, 0.15, 0.65, 0.53, 0.51, 0.57, 0.44, 0.51, 0.51, 0.47)  # ... and 19 in 20 at least this wide

# What finding the cuts and candidates of one drawing may cost, counted rather than timed so that whether a drawing is
# read never depends on how busy the machine is. A unit is about a microsecond of one core: each step charges what
# its numpy calls cost, fitted to CPU time over real numbers and zigzags (`python -m tests.bench_inputs --numbers`).
# Real numbers take at most ~34,000 (UNIPEN's, composed ones of 2-10 digits with touching pairs); a dense zigzag over
# the slate took 90,000-290,000 (120-460 ms) before it was stopped here, after ~60 ms.
MAX_WORK = 50_000
TOO_COMPLEX = "This drawing is too complex to read as a number: try writing it more simply or in fewer strokes"


class TooComplexError(PreprocessError):
    """Reading the drawing as a number would take more work than one request may have (MAX_WORK)."""

    status = 422


@dataclass
class Work:
    """The work spent on one drawing so far (units: see MAX_WORK); TooComplexError once it passes `limit` (None: no
    limit, for tools that measure)."""

    limit: float | None = MAX_WORK
    done: float = 0.0

    def spend(self, units: float) -> None:
        self.done += units
        if self.limit is not None and self.done > self.limit:
            raise TooComplexError(TOO_COMPLEX)


@dataclass(frozen=True)
class Costs:
    """What a grouping gains and pays per digit, in nats, beside the digits' log probabilities. Tuned for the most
    numbers read exactly (a structured perceptron, then a coordinate search; `python -m training.numbers tune`) on
    numbers composed from the training writers and half of the real UNIPEN numbers, with the 4.0 weights: another
    model's logits may want them tuned again."""

    per_digit: float = 2.45  # every digit pays this: with the energy bonus, it keeps fragments from beating a digit
    energy: float = 0.58  # every digit gains this per unit of the model's energy (logsumexp of its logits) ...
    energy_cap: float = 4.86  # ... up to this energy (whole digits: median 5.0; merged pairs 3.5, fragments 3.3)
    too_wide: float = 1.66  # per unit of width beyond wide_digit
    wide_digit: float = 0.69
    class_wide: float = 2.0  # per unit of width beyond what 9 in 10 digits of the class read are (DIGIT_WIDTHS)
    class_narrow: float = 0.0  # per unit of width below what 19 in 20 digits of the class read are (DIGIT_NARROW)
    fragment: float = 19.6  # per unit of height below low_digit: a bar or a piece cut off read as a digit ...
    low_digit: float = 0.73
    whole_fragment: float = 10.0  # ... or a whole part (no cut at either side): a small 0 after a tall 3 is real
    short: float = 2.27  # per unit of height a piece cut out of parts lacks of theirs (above and below)
    beside: float = 0.91  # per pair of a digit's parts that are each a digit's height and side by side (a 1 and a 9)
    cut_stroke: float = 0.18  # ending a digit at a cut, per stroke it crosses beyond the first ...
    cut_along: float = 1.34  # ... and per unit of length it runs inside the ink (a stroke split lengthwise) ...
    cut_evidence: float = 1.82  # ... and gains per unit of the contours' dips where it cuts (two digits meeting)
    apart_gap: float = 0.63  # a bonus for ending a digit at empty columns, per unit of their width ...
    gap_cap: float = 0.5  # ... up to this width
    stacked: float = 6.0  # ending a digit between two parts one above the other (an 8's loops drawn apart)
    # With a pair reader (an archive with pairs.pt, training/pairs.py): a candidate at least pair_width wide may be
    # read as two touching digits when the reader's likeliest pair has at least probability pair_min; it then scores
    # log P(pair) + pair_bonus, against the one-digit reading's score above.
    pair_width: float = 1.0
    pair_min: float = 0.5
    pair_bonus: float = 0.0


COSTS = Costs()


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

    def cost(self, costs: Costs) -> float:
        """What ending a digit here costs (negative: a gain)."""
        if self.cut:
            along = costs.cut_along * self.along - costs.cut_evidence * self.evidence
            return costs.cut_stroke * max(0.0, self.cut - 1) + along
        return costs.stacked * self.stacked - costs.apart_gap * min(self.gap, costs.gap_cap)


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

    def cost(self, costs: Costs) -> float:
        """What reading this ink as one digit costs for its shape (>= 0; its class's width: see choose)."""
        shape = self.shape
        fragment = costs.fragment if shape.cut else costs.whole_fragment
        return (
            costs.too_wide * max(0.0, shape.width - costs.wide_digit)
            + fragment * max(0.0, costs.low_digit - shape.height)
            + costs.beside * shape.beside
            + costs.short * shape.short
        )

    def tensor(self):
        import torch

        return torch.from_numpy(normalise(self.field)).unsqueeze(0)  # (1, 28, 28)


@dataclass(frozen=True)
class Layout:
    """A drawing's boundaries (0: before everything, `last`: after everything) and the candidate digits between
    them; boundaries[i]: what boundary i goes through."""

    last: int
    candidates: tuple[Candidate, ...]
    boundaries: tuple[Boundary, ...]
    height: float  # the digits' height, in ink pixels
    refused: str | None = None  # why no number can be read (then there are no candidates)

    def tensors(self):
        import torch

        if not self.candidates:
            return torch.zeros((0, 1, 28, 28))
        return torch.stack([candidate.tensor() for candidate in self.candidates])  # (n, 1, 28, 28)

    def pair_inputs(self, width: float = COSTS.pair_width) -> tuple[list[int], Any]:
        """The candidates at least `width` wide, which may be a pair of touching digits (indices), and their pair
        fields for the pair reader, (k, 1, 28, 56). (A candidate made without its ink, in a test, is never asked.)"""
        import torch

        wide, fields = [], []
        for index, candidate in enumerate(self.candidates):
            if candidate.shape.width >= width and candidate.crop is not None:
                wide.append(index)
                fields.append(normalise(pair_field(candidate.crop)))
        if not wide:
            return [], torch.zeros((0, 1, *PAIR_FIELD))
        return wide, torch.from_numpy(np.stack(fields)).unsqueeze(1)


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
    """8-connected parts of a boolean image, by union-find over its horizontal runs (far fewer than pixels;
    components.linked_roots). A part's number is the order of its first run (top to bottom, left to right)."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    row, start = np.nonzero(edges == 1)
    _, stop = np.nonzero(edges == -1)
    # The runs of the next row that touch run i (8-connected: start_j <= stop_i and start_i <= stop_j) are a range of
    # run numbers: runs are sorted by row, then column, and a row's runs do not overlap.
    line = mask.shape[1] + 2
    low = np.searchsorted(row * line + stop, (row + 1) * line + start, side="left")
    high = np.searchsorted(row * line + start, (row + 1) * line + stop, side="right")
    count = np.maximum(high - low, 0)
    first = np.repeat(np.arange(len(row)), count)
    second = np.repeat(low - np.concatenate([[0], np.cumsum(count)[:-1]]), count) + np.arange(int(count.sum()))
    _, part = np.unique(linked_roots(len(row), first, second), return_inverse=True)
    return Runs(row=row, start=start, stop=stop, part=part.reshape(-1))


def _paint(runs: Runs, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 image: each run's pixels set to values[run], -1 elsewhere."""
    image = np.full(shape, -1, dtype=np.int32)
    lengths = runs.stop - runs.start
    first = runs.row * shape[1] + runs.start
    offsets = np.repeat(first - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    image.reshape(-1)[offsets + np.arange(int(lengths.sum()))] = np.repeat(values, lengths)
    return image


# ---- parts ------------------------------------------------------------------------------------------------------


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
    """A connected part, or parts joined: its pixels (indices into _Ink's arrays) and extent; x0/x1 are deslanted
    columns."""

    pixels: np.ndarray
    x0: float
    x1: float
    y0: int
    y1: int
    left: int  # the drawing's columns (not deslanted): [left, right)
    right: int

    @classmethod
    def of(cls, pixels: np.ndarray, ink: _Ink) -> _Part:
        columns, rows, xs = ink.deslanted[pixels], ink.ys[pixels], ink.xs[pixels]
        return cls(pixels, float(columns.min()), float(columns.max()) + 1, int(rows.min()), int(rows.max()) + 1,
                   int(xs.min()), int(xs.max()) + 1)  # fmt: skip

    def joined(self, other: _Part, ink: _Ink) -> _Part:
        return _Part.of(np.concatenate([self.pixels, other.pixels]), ink)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class _Path:
    """A cut through one part from its top to its bottom: for each of the part's rows, the column it passes there
    (a pixel left of it, x < column, falls on its left); the strokes it crosses; where it lies on average
    (deslanted), for the reading order."""

    columns: np.ndarray  # (part height,) float
    strokes: float
    inside: int  # rows where it runs inside the ink
    evidence: float  # how deep the contours dip where it enters and leaves the ink (fraction of the digits' height)
    place: float


@dataclass(frozen=True)
class _Node:
    """A boundary: before part `part` (path None), or a cut path through it."""

    part: int
    path: _Path | None = None


@dataclass(frozen=True)
class _Drawing:
    """Everything a candidate is made from: the ink, its parts (reading order), each part's paths (reading order),
    the boundaries, the part of every pixel (-1: none; faint fringe pixels given to their neighbour)."""

    ink: _Ink
    parts: list[_Part]
    paths: list[list[_Path]]
    nodes: list[_Node]
    labels: np.ndarray  # (H, W) int32
    height: float
    work: Work = dataclass_field(default_factory=Work, compare=False)


def prepare_number(data: bytes, *, work: Work | None = None) -> Layout:
    """PNG/JPEG bytes -> the drawing's layout (boxes in its own pixels); a drawing in too many parts gets a layout
    without candidates that says so. Raises PreprocessError or a subclass (not an image, blank, too large, too
    complex: `work`, by default a budget of MAX_WORK)."""
    image = decode(data)
    width, height = image.info.get("declared_size", image.size)
    ink, _ = ink_map(image)
    try:
        return layout(ink, scale=(width / ink.shape[1], height / ink.shape[0]), work=work)
    except TooManyPartsError as exc:
        return Layout(last=0, candidates=(), boundaries=(), height=0.0, refused=str(exc))


def layout(ink: np.ndarray, *, scale: tuple[float, float] = (1.0, 1.0), work: Work | None = None) -> Layout:
    """The boundaries and candidate digits of a drawing. ink: (H, W) uint8 from preprocess.ink_map; scale: drawing
    pixels per ink pixel (x, y), for the boxes. Raises BlankImageError, TooManyPartsError, TooComplexError."""
    drawing = segment(ink, work=work)
    boundaries = tuple(_boundary(drawing, node) for node in drawing.nodes)
    candidates = _candidates(drawing, ink, scale=scale)
    return Layout(last=len(drawing.nodes), candidates=candidates, boundaries=boundaries, height=drawing.height)


def segment(ink: np.ndarray, *, work: Work | None = None) -> _Drawing:
    """The drawing's parts in reading order, their cut paths and the boundaries (`work`: what this may cost,
    TooComplexError beyond; MAX_WORK by default)."""
    work = work if work is not None else Work()
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
    parts, height = _parts(labels[ys, xs], ink_)
    paths = [_cut_paths(part, ink_, height=height, work=work) if part.width > CONTOUR_WIDE * height else []
             for part in parts]  # fmt: skip
    if sum(len(p) for p in paths) > MAX_PATHS:
        raise TooManyPartsError("the drawing's ink is too tangled to read as a number")
    nodes = [node for index, part_paths in enumerate(paths)
             for node in [_Node(index)] + [_Node(index, path) for path in part_paths]]  # fmt: skip
    map_ = np.full(mask.shape, -1, dtype=np.int32)
    for index, part in enumerate(parts):
        map_[ys[part.pixels], xs[part.pixels]] = index
    return _Drawing(ink=ink_, parts=parts, paths=paths, nodes=nodes, labels=_fill_fringe(map_, ink), height=height,
                    work=work)  # fmt: skip


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


def _parts(parts: np.ndarray, ink: _Ink) -> tuple[list[_Part], float]:
    """Connected parts -> parts in reading order (specks dropped, small marks joined); and the digits' height."""
    order = np.argsort(parts, kind="stable")
    bounds = np.cumsum(np.bincount(parts))[:-1]
    found = [_Part.of(pixels, ink) for pixels in np.split(order, bounds)]
    tallest = max(p.height for p in found)
    height = float(np.median([p.height for p in found if p.height >= TALL * tallest]))
    kept = [p for p in found if max(p.width, p.height) >= SPECK * height] or found
    joined = _join_small_marks(kept, ink, height=height)
    if len(joined) > MAX_PARTS:
        raise TooManyPartsError(f"the drawing has {len(joined)} separate marks: too many to read as a number")
    return sorted(joined, key=lambda p: (p.x0 + p.x1) / 2), height


def _join_small_marks(parts: list[_Part], ink: _Ink, *, height: float) -> list[_Part]:
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


def _fill_fringe(pieces: np.ndarray, ink: np.ndarray) -> np.ndarray:
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


# ---- cut paths --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """A part's own ink in its bounding box: mask[y, x] for rows y0.. and columns left.."""

    mask: np.ndarray  # (part height, part width) bool
    y0: int
    left: int
    slant: float
    centre: float  # the row the slant turns around (the drawing's), in window rows

    @classmethod
    def of(cls, part: _Part, ink: _Ink) -> _Window:
        mask = np.zeros((part.height, part.right - part.left), dtype=bool)
        mask[ink.ys[part.pixels] - part.y0, ink.xs[part.pixels] - part.left] = True
        return cls(mask, part.y0, part.left, ink.slant, ink.centre - part.y0)

    def line(self, x: float, y: float, lean: float) -> np.ndarray:
        """A straight path through (x, y) (window coordinates) leaning `lean` columns per row, as columns per row."""
        return x + lean * (np.arange(self.mask.shape[0]) - y)


def _cut_paths(part: _Part, ink: _Ink, *, height: float, work: Work) -> list[_Path]:
    """The cut hypotheses of a wide part (module docstring), in reading order, near-duplicates dropped. Each line
    costs `work` ~100 units, a drop-fall 1.5 a row (a Python loop)."""
    window = _Window.of(part, ink)
    contours = _Contours.of(window.mask, reach=max(1, round(VALLEY_REACH * height)))
    top, bottom = contours.top, contours.bottom
    margin = _narrowest(ink, height=height)
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


def _straight_cuts(part: _Part, ink: _Ink, *, height: float) -> list[float]:
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


def _path(columns: np.ndarray, window: _Window, contours: _Contours, ink: _Ink, *, height: float) -> _Path:
    """Window columns per row -> a _Path in the drawing's columns, with the strokes it crosses (runs of ink along
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
    return _Path(columns=columns + window.left, strokes=strokes, inside=int(np.count_nonzero(along)),
                 evidence=evidence, place=place + window.left)  # fmt: skip


def _distinct(paths: list[_Path], *, pen: float, height: float, work: Work) -> list[_Path]:
    """Paths in reading order without near-duplicates (the first of a kind kept: lines, drop-falls, straight
    cuts); each comparison costs `work` ~13 units."""
    kept: list[_Path] = []
    for path in paths:
        work.spend(13 * len(kept))
        if not any(_same(path, other, pen=pen, height=height) for other in kept):
            kept.append(path)
    return sorted(kept, key=lambda p: p.place)


def _same(a: _Path, b: _Path, *, pen: float, height: float) -> bool:
    difference = np.abs(a.columns - b.columns)
    return float(difference.mean()) <= SAME_PATH * height and float(difference.max()) <= max(pen, SAME_PATH * height)


# ---- candidates -------------------------------------------------------------------------------------------------


def _boundary(drawing: _Drawing, node: _Node) -> Boundary:
    """What a boundary goes through."""
    if node.path is not None:
        path = node.path
        return Boundary(cut=max(path.strokes, 0.01), along=path.inside / drawing.height, evidence=path.evidence)
    if node.part == 0:
        return Boundary()
    part, before = drawing.parts[node.part], drawing.parts[node.part - 1]
    return Boundary(gap=max(0.0, part.x0 - before.x1) / drawing.height, stacked=_stacked(before, part, drawing))


def _stacked(a: _Part, b: _Part, drawing: _Drawing) -> bool:
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
    after: _Path | None
    before: _Path | None

    def pixels(self, drawing: _Drawing) -> np.ndarray:
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


def _segments(drawing: _Drawing, first: int, stop: int) -> list[_Segment] | None:
    """The parts' shares between boundaries first and stop (stop == len(nodes): the end); None when two paths of
    one part cross or leave nothing between them."""
    start = drawing.nodes[first]
    end = drawing.nodes[stop] if stop < len(drawing.nodes) else _Node(len(drawing.parts))
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


def _candidates(drawing: _Drawing, ink: np.ndarray, *, scale: tuple[float, float]) -> tuple[Candidate, ...]:
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


def _place(drawing: _Drawing, index: int) -> float:
    node = drawing.nodes[index]
    return node.path.place if node.path is not None else drawing.parts[node.part].x0


@dataclass(frozen=True)
class _Span:
    """A candidate's pixels and shape."""

    pixels: np.ndarray
    shape: Shape


def _span(drawing: _Drawing, segments: list[_Segment]) -> _Span | None:
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


def _sliver(share: np.ndarray, ink: _Ink, *, height: float) -> bool:
    """Whether a piece cut off a part is too thin to be a digit or a digit's part (narrower than a 1 can be), or
    has less ink than a stroke SPECK long."""
    columns = ink.deslanted[share]
    narrow = float(columns.max() + 1 - columns.min()) < _narrowest(ink, height=height)
    return narrow or len(share) < SPECK * height * ink.pen


def _narrowest(ink: _Ink, *, height: float) -> float:
    """How narrow a digit can be (a 1): a pen's width and a little."""
    return max(ink.pen, NARROWEST * height)


def _longest_false(values: np.ndarray) -> int:
    """The longest run of False in a boolean array."""
    padded = np.concatenate([[True], values, [True]])
    trues = np.flatnonzero(padded)
    return int(np.max(np.diff(trues)) - 1) if len(trues) > 1 else 0


def _beside(drawing: _Drawing, shares: list[np.ndarray]) -> int | None:
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


def _candidate(drawing: _Drawing, first: int, stop: int, segments: list[_Segment], span: _Span, ink: np.ndarray, *,
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


# ---- choosing ---------------------------------------------------------------------------------------------------


def pair_field(crop: np.ndarray) -> np.ndarray:
    """A candidate's ink (uint8, any size, some ink) -> the pair reader's (28, 56) input in [0, 1]: the ink's box
    scaled to 20 px high (at most 52 wide), its centre of mass at the field's centre."""
    peak = max(int(crop.max()), 1)
    mask = crop > INK_THRESHOLD * peak
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        raise BlankImageError("no ink to read as a pair")
    scaled = scale_into(crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / peak, *PAIR_BOX)
    total = float(scaled.sum()) or 1.0
    cy = float((scaled.sum(axis=1) * np.arange(scaled.shape[0])).sum()) / total
    cx = float((scaled.sum(axis=0) * np.arange(scaled.shape[1])).sum()) / total
    rows_, cols_ = PAIR_FIELD
    top = int(np.clip(round(rows_ / 2 - 0.5 - cy), 0, rows_ - scaled.shape[0]))
    left = int(np.clip(round(cols_ / 2 - 0.5 - cx), 0, cols_ - scaled.shape[1]))
    field = np.zeros(PAIR_FIELD, dtype=np.float32)
    field[top : top + scaled.shape[0], left : left + scaled.shape[1]] = scaled
    return field


def pair_log_probs(plan: Layout, wide: list[int], pair_logits: np.ndarray) -> np.ndarray:
    """(n_candidates, 101) the pair reader's log probabilities: rows `wide` from pair_logits ((len(wide), 101)),
    -inf for the other candidates (never a pair)."""
    out = np.full((len(plan.candidates), NOT_PAIR + 1), -np.inf)
    if len(wide):
        z = pair_logits - pair_logits.max(axis=1, keepdims=True)
        out[wide] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def choose(plan: Layout, logits: np.ndarray, *, pairs: np.ndarray | None = None,
           costs: Costs = COSTS) -> list[tuple[int, int | None]]:  # fmt: skip
    """The candidates that chain from the first boundary to the last with the best total score, left to right, each
    as (index into plan.candidates, None) when read as one digit or (index, pair 0-99) when read as two touching
    digits. One digit scores log P(best digit) + energy bonus - shape cost - per digit; a pair (pairs: (n_candidates,
    101) log probabilities from pair_log_probs, or None: no pair reader) log P(pair) + pair_bonus; each pays the cost
    of the boundary it starts at. logits: (n_candidates, 10) digit logits."""
    peak = logits.max(axis=1, keepdims=True)
    energy = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]  # (n,) logsumexp
    log_probs = logits - energy[:, None]
    best = np.full(plan.last + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int | None]] = [(-1, None)] * (plan.last + 1)
    ending: dict[int, list[int]] = {}
    for index, candidate in enumerate(plan.candidates):
        ending.setdefault(candidate.stop, []).append(index)
    top = log_probs.max(axis=1)
    widths = np.array([candidate.shape.width for candidate in plan.candidates])
    read = log_probs.argmax(axis=1)
    top = top - costs.class_wide * np.maximum(0.0, widths - np.asarray(DIGIT_WIDTHS)[read])
    top = top - costs.class_narrow * np.maximum(0.0, np.asarray(DIGIT_NARROW)[read] - widths)
    top = top + costs.energy * np.minimum(energy, costs.energy_cap)
    if pairs is not None:
        pair, pair_score = pairs[:, :NOT_PAIR].argmax(axis=1), pairs[:, :NOT_PAIR].max(axis=1)
        is_pair = (widths >= costs.pair_width) & (np.exp(pair_score) >= costs.pair_min)
    for stop in range(1, plan.last + 1):
        for index in ending.get(stop, []):
            candidate = plan.candidates[index]
            before = best[candidate.first]
            if before == -np.inf:
                continue
            boundary = plan.boundaries[candidate.first].cost(costs) if candidate.first else 0.0
            score = before + top[index] - candidate.cost(costs) - boundary - costs.per_digit
            if score > best[stop]:
                best[stop], back[stop] = score, (index, None)
            if pairs is not None and is_pair[index]:
                score = before + pair_score[index] + costs.pair_bonus - boundary
                if score > best[stop]:
                    best[stop], back[stop] = score, (index, int(pair[index]))
    chosen: list[tuple[int, int | None]] = []
    stop = plan.last
    if best[stop] == -np.inf:  # no chain of candidates (cannot happen: _pruned keeps one)
        return []
    while stop > 0:
        chosen.append(back[stop])
        stop = plan.candidates[back[stop][0]].first
    return chosen[::-1]


def reading(plan: Layout, logits: np.ndarray, *, pairs: np.ndarray | None = None, costs: Costs = COSTS) -> dict:
    """The number read from the candidates' digit logits ((n_candidates, 10), rows as plan.candidates) and, with a
    pair reader, their pair log probabilities (pair_log_probs): {"number": "42", "digits": [{"digit", "confidence",
    "probabilities", "box", "candidate", "pair"}, ...]}, left to right ("candidate": the index of its candidate in
    plan; "pair": whether it was read as one of two touching digits, whose boxes are then the two halves of the
    candidate's and whose probabilities are the pair's marginals). A refused layout reads {"number": None, "digits":
    [], "reason": ...}."""
    if plan.refused is not None:
        return {"number": None, "digits": [], "reason": plan.refused}
    digits = []
    for index, pair in choose(plan, logits, pairs=pairs, costs=costs):
        box = plan.candidates[index].box
        if pair is None:
            z = logits[index] - logits[index].max()
            p = np.exp(z) / np.exp(z).sum()
            readings = [(int(p.argmax()), p, box)]
        else:
            assert pairs is not None
            joint = np.exp(pairs[index, :NOT_PAIR] - pairs[index, :NOT_PAIR].max()).reshape(10, 10)
            joint /= joint.sum()  # P(first, second), given a pair
            middle = (box[0] + box[2]) / 2
            readings = [(pair // 10, joint.sum(axis=1), (box[0], box[1], middle, box[3])),
                        (pair % 10, joint.sum(axis=0), (middle, box[1], box[2], box[3]))]  # fmt: skip
        for digit, p, where in readings:
            digits.append({"digit": digit, "confidence": float(p[digit]), "probabilities": [float(v) for v in p],
                           "box": [round(float(v), 1) for v in where], "candidate": index,
                           "pair": pair is not None})  # fmt: skip
    return {"number": "".join(str(d["digit"]) for d in digits), "digits": digits}
