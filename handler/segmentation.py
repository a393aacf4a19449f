"""Read a number: several digits written side by side in one drawing. Pure numpy/PIL; the model is asked through the
caller, once, for every candidate digit of every drawing in a batch.

Recognition-driven segmentation, in three steps:
1. `layout(ink)`: the drawing's ink (preprocess.ink_map, at its working resolution) falls into connected parts;
   specks are dropped and small marks lying within another part's columns (a 5's bar, the cross of a 7) are joined
   to it. Parts wider than a digit (touching digits) are cut where little ink crosses, along the writing's slant.
   What is left are *pieces*, in reading order.
2. Every run of up to MAX_GROUP neighbouring pieces that could be one digit (not too wide, no wide gap inside) is a
   *candidate*: its ink goes through the single digit's preprocessing (preprocess.fit_with_box) and the model
   scores it. Their count is capped (MAX_CANDIDATES), so a request's cost is bounded.
3. `choose(layout, log_probs)`: the grouping of all pieces into digits that maximises the sum of the digits' log
   probabilities, minus costs for what writing rarely does (a digit far wider than high, a fragment as a digit,
   a cut through several strokes, a gap inside a digit). A dynamic programme over the pieces, exact and cheap.

Sizes are measured against the digits' height (the median height of the tall parts), so the rules hold for any
size of writing. The costs were tuned on numbers composed from the training writers (training/numbers.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

if __package__:  # the repository layout (tests, UI); see handler/mnist_handler.py for why not try/except
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

MAX_MARKS = 400  # connected parts at most (specks included): beyond, a scribble or hatching, not a number
MAX_PIECES = 40  # more than this after joining: not a number we try to read (the cost would not be bounded)
MAX_GROUP = 4  # pieces in one digit at most (a body, a bar, a piece cut off a touching neighbour)
MAX_CANDIDATES = 72  # model inputs per drawing at most (~0.65 ms each on one core)
SPECK = 0.12  # a part smaller than this in both directions, x the digits' height, is a speck
SMALL_MARK = 0.5  # a part lower than this x height, lying within another's columns, belongs to it
WITHIN = 0.8  # ... "within": this share of its columns inside the other's
TALL = 0.45  # parts at least this x the tallest part's height count for the digits' height
WIDE = 0.5  # a part wider than this x height may hold touching digits: it gets candidate cuts
CUT_MARGIN = 0.18  # no cut closer than this x height to a part's ends
CUT_SPACING = 0.28  # cuts at least this x height apart
CUT_BAND = 0.1  # a cut's path strays at most this x height from its slanted line
SIDESTEP = 0.15  # what a path's step sideways costs, against 1 per ink pixel crossed
MAX_DIGIT_WIDTH = 1.5  # a candidate wider than this x height is no digit
MAX_INNER_GAP = 0.3  # a candidate with an empty run of columns wider than this x height inside is no digit
# 9 in 10 digits of each class, read in numbers composed from the training writers, are at most this wide (x the
# digits' height, slant taken out, pen included): a 1 is narrow, a 0 or a 2 can be wider than high.
DIGIT_WIDTHS = (1.18, 0.67, 1.23, 0.94, 0.97, 1.06, 0.85, 1.03, 0.87, 0.82)
SLANTS = np.linspace(-0.8, 0.8, 17)  # shears tried to find the writing's slant (x shift per px of height)


@dataclass(frozen=True)
class Costs:
    """What the grouping pays (in nats, against the digits' log probabilities) for unlikely shapes."""

    per_digit: float = 0.7  # every digit: keeps confident fragments from beating one whole digit
    too_wide: float = 6.0  # per x height of width beyond WIDE_DIGIT
    wide_digit: float = 0.95
    fragment: float = 6.0  # per x height below LOW_DIGIT: a bar or a cut-off piece read as a digit
    low_digit: float = 0.55
    cut: float = 1.0  # splitting at a cut (inside a connected part)
    cut_stroke: float = 2.0  # ... for every stroke the cut crosses beyond the first
    apart_overlap: float = 3.0  # splitting two parts that share columns, per share of the narrower one's
    overlap_free: float = 0.5  # ... beyond this share (slanted neighbours share a few columns)
    apart_gap: float = 4.0  # a bonus for splitting two parts with empty columns between them, per x height
    gap_cap: float = 0.5  # ... up to this gap
    inner_gap: float = 8.0  # per x height of empty columns inside one digit
    class_wide: float = 0.0  # per x height of width beyond what the digit read usually takes (DIGIT_WIDTHS)
    # A bonus per unit of the model's energy (logsumexp of the logits) up to energy_cap: merged pairs and fragments
    # are read with confident softmax but far lower logits than whole digits (median 3.5 and 3.3 against 5.0).
    energy: float = 0.0
    energy_cap: float = 6.0


COSTS = Costs(
    per_digit=1.85, too_wide=1.25, wide_digit=0.95, fragment=21.2, low_digit=0.73, cut=0.0, cut_stroke=0.14,
    apart_overlap=0.0, apart_gap=0.2, gap_cap=0.5, inner_gap=10.6, class_wide=0.0, energy=0.5, energy_cap=5.0,
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """A candidate digit's width, height and widest inner gap (empty columns), as fractions of the digits' height."""

    width: float
    height: float
    gap: float


@dataclass(frozen=True)
class Boundary:
    """What lies between two neighbouring pieces: a cut through `cut` pen widths of ink (about the strokes it
    crosses; 0: no cut), the share of the narrower one's columns they share, and the empty columns between them
    (fraction of the digits' height)."""

    cut: float = 0.0
    overlap: float = 0.0
    gap: float = 0.0

    def cost(self, costs: Costs) -> float:
        """What ending a digit here costs."""
        if self.cut:
            return costs.cut + costs.cut_stroke * max(0.0, self.cut - 1)
        overlap = max(0.0, self.overlap - costs.overlap_free)
        return costs.apart_overlap * overlap - costs.apart_gap * min(self.gap, costs.gap_cap)


@dataclass(frozen=True)
class Candidate:
    """One possible digit: the pieces [first, stop) in reading order, its 28x28 input and its place."""

    first: int
    stop: int
    field: np.ndarray  # (28, 28) in [0, 1], as preprocess.fit_with_box makes it
    box: tuple[float, float, float, float]  # the ink's (left, top, right, bottom), in the drawing's pixels
    shape: Shape  # its size against the digits' height

    def cost(self, costs: Costs) -> float:
        """What reading these pieces as one digit costs for its shape (>= 0)."""
        shape = self.shape
        return (
            costs.too_wide * max(0.0, shape.width - costs.wide_digit)
            + costs.fragment * max(0.0, costs.low_digit - shape.height)
            + costs.inner_gap * shape.gap
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
    cut: float = 0.0  # pen widths of ink crossed by the cut before this piece (0: no cut before it)

    @classmethod
    def of(cls, pixels: np.ndarray, ink: _Ink, *, cut: float = 0.0) -> _Part:
        columns, rows = ink.deslanted[pixels], ink.ys[pixels]
        return cls(pixels, float(columns.min()), float(columns.max()) + 1, int(rows.min()), int(rows.max()) + 1, cut)

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
    slant = _slant(xs, ys)
    centre = float(ys.mean())
    ink_ = _Ink(ys=ys, xs=xs, deslanted=xs + slant * (ys - centre), slant=slant, centre=centre, pen=_pen_width(mask))
    pieces, height = _pieces(labels[ys, xs], ink_)
    map_ = np.full(mask.shape, -1, dtype=np.int32)
    for index, piece in enumerate(pieces):
        map_[ys[piece.pixels], xs[piece.pixels]] = index
    return _fill_fringe(map_, ink), pieces, height


def _slant(xs: np.ndarray, ys: np.ndarray) -> float:
    """The shear that makes the strokes most upright: the one whose column histogram is most peaked."""
    if xs.size > 20000:  # a sample is as good and keeps this step's cost fixed
        step = xs.size // 20000 + 1
        xs, ys = xs[::step], ys[::step]
    centred = ys - ys.mean()
    best, best_score = 0.0, -1.0
    for shear in SLANTS:
        columns = np.round(xs + shear * centred).astype(np.int64)
        counts = np.bincount(columns - columns.min())
        score = float(np.dot(counts, counts))
        if score > best_score * 1.0001:  # a near tie keeps the first found
            best, best_score = float(shear), score
    return best


def _pen_width(mask: np.ndarray) -> float:
    """The strokes' width: 2 x area / perimeter (a stroke of width w and length l has area wl, perimeter ~2l)."""
    area = np.count_nonzero(mask)
    perimeter = np.count_nonzero(np.diff(mask, axis=0)) + np.count_nonzero(np.diff(mask, axis=1))
    return max(1.0, 2 * area / max(perimeter, 1))


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
    """A wide part cut into pieces along valleys: paths from top to bottom that cross the least ink, each near a
    column (deslanted) where little ink is, at most one per CUT_SPACING x height."""
    columns = np.floor(ink.deslanted[part.pixels] - part.x0).astype(np.int64)
    profile = np.convolve(np.bincount(columns).astype(np.float64), np.ones(3) / 3, mode="same")
    margin, spacing = CUT_MARGIN * height, CUT_SPACING * height
    inside = range(max(1, int(np.ceil(margin))), min(len(profile) - 1, int(part.width - margin) + 1))
    lows = [x for x in inside if profile[x] <= profile[x - 1] and profile[x] <= profile[x + 1]]
    chosen: list[int] = []
    for x in sorted(lows, key=lambda x: profile[x]):
        if all(abs(x - c) >= spacing for c in chosen):
            chosen.append(x)
    if not chosen:
        return [part]
    ys, xs = ink.ys[part.pixels] - part.y0, ink.xs[part.pixels]
    left = int(xs.min())
    local = np.zeros((part.height, int(xs.max()) + 1 - left), dtype=bool)
    local[ys, xs - left] = True
    rows = np.arange(part.y0, part.y1)
    lines = [part.x0 + c - ink.slant * (rows - ink.centre) - left for c in sorted(chosen)]  # x of each cut per row
    paths, crossed = _valleys(local, np.array(lines), radius=CUT_BAND * height)
    side = (xs[None, :] - left >= paths[:, ys]).sum(axis=0)  # (n,) how many cuts lie left of each pixel
    pieces: list[_Part] = []
    for index in range(len(paths) + 1):
        pixels = part.pixels[side == index]
        if not pixels.size:
            continue
        piece = _Part.of(pixels, ink, cut=max(float(crossed[index - 1]) / ink.pen, 0.01) if pieces else 0.0)
        if pieces and min(_size(piece, ink), _size(pieces[-1], ink)) < SPECK * height:
            before = pieces.pop()  # a sliver: no piece on its own
            piece = _Part.of(np.concatenate([before.pixels, pixels]), ink, cut=before.cut)
        pieces.append(piece)
    return pieces


def _size(piece: _Part, ink: _Ink) -> float:
    """A piece's size for the sliver test: its longer side, or its ink as a line of pen width if that is shorter."""
    return min(max(piece.width, piece.height), piece.pixels.size / ink.pen)


def _valleys(local: np.ndarray, lines: np.ndarray, *, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """For each line (row -> column, (k, rows)), the top-to-bottom path within `radius` of it that crosses the
    least ink of `local` (a step sideways costs a little): (k, rows) columns, left to right and never crossing, and
    (k,) ink pixels crossed. A dynamic programme over rows, all paths at once."""
    rows, width = local.shape
    x = np.arange(width)
    lines = np.clip(lines, 0, width - 1)  # a slanted line may leave the part's box: follow its edge there
    radius = max(radius, 1.0)  # a band a path can always follow, whatever the slant
    cost = local.astype(np.float64)
    far = 1e9
    moves = np.zeros((len(lines), rows, width), dtype=np.int8)
    total = np.where(np.abs(x - lines[:, :1]) <= radius, cost[0], far)  # (k, width)
    for row in range(1, rows):
        from_left = np.concatenate([np.full((len(lines), 1), far), total[:, :-1]], axis=1) + SIDESTEP
        from_right = np.concatenate([total[:, 1:], np.full((len(lines), 1), far)], axis=1) + SIDESTEP
        best, move = total.copy(), moves[:, row]
        np.copyto(move, -1, where=from_left < best)
        best = np.minimum(best, from_left)
        np.copyto(move, 1, where=from_right < best)
        best = np.minimum(best, from_right)
        inside = np.abs(x - lines[:, row : row + 1]) <= radius
        total = np.where(inside, best + cost[row], far)
    paths = np.zeros((len(lines), rows), dtype=np.int64)
    paths[:, -1] = total.argmin(axis=1)
    for row in range(rows - 1, 0, -1):
        paths[:, row - 1] = np.clip(paths[:, row] + moves[np.arange(len(lines)), row, paths[:, row]], 0, width - 1)
    paths = np.maximum.accumulate(paths, axis=0)  # left to right, never crossing
    crossed = local[np.arange(rows)[None, :], paths].sum(axis=1)
    return paths, crossed


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
    shared = min(piece.x1, before.x1) - max(piece.x0, before.x0)
    narrower = max(min(piece.width, before.width), 1.0)
    return Boundary(overlap=max(0.0, shared) / narrower, gap=max(0.0, -shared) / height)


def _candidates(pieces: list[_Part], map_: np.ndarray, ink: np.ndarray, *, height: float,
                scale: tuple[float, float]) -> tuple[Candidate, ...]:  # fmt: skip
    """Every plausible run of neighbouring pieces, at most MAX_CANDIDATES (every single piece, then the runs with
    the least inner gap and width)."""
    spans = []
    for size in range(1, MAX_GROUP + 1):
        for first in range(len(pieces) - size + 1):
            shape = _shape(pieces[first : first + size], height=height)
            if size == 1 or (shape.width <= MAX_DIGIT_WIDTH and shape.gap <= MAX_INNER_GAP):
                spans.append((first, first + size, shape))
    if len(spans) > MAX_CANDIDATES:
        singles = [s for s in spans if s[1] - s[0] == 1]
        groups = sorted((s for s in spans if s[1] - s[0] > 1), key=lambda s: s[2].gap + s[2].width)
        spans = singles + groups[: max(0, MAX_CANDIDATES - len(singles))]
    return tuple(_candidate(first, stop, shape, map_, ink, scale=scale) for first, stop, shape in spans)


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


def _candidate(first: int, stop: int, shape: Shape, map_: np.ndarray, ink: np.ndarray, *,
               scale: tuple[float, float]) -> Candidate:  # fmt: skip
    member = (map_ >= first) & (map_ < stop)
    rows, cols = np.flatnonzero(member.any(axis=1)), np.flatnonzero(member.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = np.where(member[top:bottom, left:right], ink[top:bottom, left:right], 0).astype(np.uint8)
    field, _ = fit_with_box(crop)
    sx, sy = scale
    box = (left * sx, top * sy, right * sx, bottom * sy)
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
