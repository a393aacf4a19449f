"""Read a number: several digits written side by side in one drawing. Pure numpy/PIL; the model is asked by the
caller, once, for every candidate digit of every drawing in a batch.

Recognition-driven segmentation, in three steps:
1. *Parts and cuts* (`segment`): the drawing's ink (preprocess.ink_map, at its working resolution, not 28x28) falls
   into connected parts (parts.py); a part wider than a digit may hold touching digits, and gets *cut hypotheses*:
   paths from top to bottom that may separate two digits, several per place, for the model to choose from (cuts.py).
   The parts' gaps and the paths are the *boundaries*, in reading order.
2. *Candidates* (candidates.py): the ink between any two boundaries that could be one digit goes through the single
   digit's preprocessing (preprocess.fit_with_box) and then the same model. Their count is capped, so a request's
   cost is bounded. The work of steps 1 and 2 is counted as it is done (budget.py): a drawing that needs more than
   MAX_WORK (a dense zigzag or hatching over the slate: one wide part with a hundred cut places) is refused,
   TooComplexError (422).
3. `choose(layout, logits)`: the chain of candidates from the first boundary to the last with the best total score,
   by a dynamic programme over the boundaries (exact and cheap): each digit brings its log probability and a bonus
   for the model's energy (logsumexp of the logits: merged pairs and fragments get a confident softmax but far lower
   logits), and pays for what writing rarely does (a digit wider than high, wider than its class usually is, a
   fragment read as a digit, a cut through several strokes): `Costs`.

Sizes are measured against the digits' height (the median height of the tall parts), so the rules hold for any
size of writing. The costs were tuned on numbers composed from the training writers and on half of the real UNIPEN
numbers (by file; training/segmentation_eval.py); the other half and the held-out writers only measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .budget import MAX_WORK, TOO_COMPLEX, TooComplexError, Work
    from .candidates import Boundary, Candidate, Drawing, Node, Shape, find_boundaries, find_candidates
    from .components import connected_runs, paint
    from .cuts import CONTOUR_WIDE, cut_paths
    from .parts import InkPixels, TooManyPartsError, fill_fringe, find_parts, pen_width, writing_slant
    from .preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        decode,
        ink_map,
        normalise,
        scale_into,
    )  # fmt: skip
else:  # inside the .mar, every file sits flat in the model directory
    from budget import MAX_WORK, TOO_COMPLEX, TooComplexError, Work
    from candidates import Boundary, Candidate, Drawing, Node, Shape, find_boundaries, find_candidates
    from components import connected_runs, paint
    from cuts import CONTOUR_WIDE, cut_paths
    from parts import InkPixels, TooManyPartsError, fill_fringe, find_parts, pen_width, writing_slant
    from preprocess import (
        INK_THRESHOLD,
        MIN_CONTRAST,
        MIN_INK_PIXELS,
        BlankImageError,
        decode,
        ink_map,
        normalise,
        scale_into,
    )  # fmt: skip

# What the handler, the training tools and the tests use: the reader's entry points, the plan it hands the model and
# the chooser, and its work budget.
__all__ = [
    "COSTS",
    "MAX_WORK",
    "NOT_PAIR",
    "PAIR_FIELD",
    "TOO_COMPLEX",
    "Boundary",
    "Candidate",
    "Costs",
    "Layout",
    "Shape",
    "TooComplexError",
    "Work",
    "choose",
    "layout",
    "pair_field",
    "pair_log_probs",
    "prepare_number",
    "reading",
    "segment",
]

# The pair reader (an archive with pairs.pt; handler/model.py pair_net): its input and its "no pair" output
PAIR_FIELD = (28, 56)  # rows, columns: two digits side by side, as high as one digit's field
PAIR_BOX = (20, 52)  # the ink's height at most 20 px (as a digit's), its width at most 52
NOT_PAIR = 100  # outputs 0-99: the pair 10 * first + second

# Sizes are fractions of the digits' height unless they say otherwise.
MAX_MARKS = 400  # connected parts at most (specks included): beyond, hatching or a scribble, not a number
MAX_PATHS = 60  # cut paths per drawing at most
# 9 in 10 digits of each class, in numbers composed from the training writers, are at most this wide (slant taken
# out, pen included): a 1 is narrow, a 0 or a 2 can be wider than high.
DIGIT_WIDTHS = (1.18, 0.67, 1.23, 0.94, 0.97, 1.06, 0.85, 1.03, 0.87, 0.82)
DIGIT_NARROW = (0.58, 0.15, 0.65, 0.53, 0.51, 0.57, 0.44, 0.51, 0.51, 0.47)  # ... and 19 in 20 at least this wide


@dataclass(frozen=True)
class Costs:
    """What a grouping gains and pays per digit, in nats, beside the digits' log probabilities. Tuned for the most
    numbers read exactly (a structured perceptron, then a coordinate search;
    `python -m training.segmentation_eval tune`) on numbers composed from the training writers and half of the real
    UNIPEN numbers, with the 4.0 weights: another model's logits may want them tuned again."""

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

    def boundary_cost(self, boundary: Boundary) -> float:
        """What ending a digit at `boundary` costs (negative: a gain)."""
        if boundary.cut:
            along = self.cut_along * boundary.along - self.cut_evidence * boundary.evidence
            return self.cut_stroke * max(0.0, boundary.cut - 1) + along
        return self.stacked * boundary.stacked - self.apart_gap * min(boundary.gap, self.gap_cap)

    def shape_cost(self, shape: Shape) -> float:
        """What reading a candidate's ink as one digit costs for its shape (>= 0; its class's width: see choose)."""
        fragment = self.fragment if shape.cut else self.whole_fragment
        return (
            self.too_wide * max(0.0, shape.width - self.wide_digit)
            + fragment * max(0.0, self.low_digit - shape.height)
            + self.beside * shape.beside
            + self.short * shape.short
        )


COSTS = Costs()


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
    boundaries = find_boundaries(drawing)
    candidates = find_candidates(drawing, ink, scale=scale)
    return Layout(last=len(drawing.nodes), candidates=candidates, boundaries=boundaries, height=drawing.height)


def segment(ink: np.ndarray, *, work: Work | None = None) -> Drawing:
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
    labels = paint(runs, runs.part, mask.shape)  # (H, W) part id, -1 off the ink
    ys, xs = np.nonzero(mask)
    slant = writing_slant(ink)
    centre = float(ys.mean())
    ink_ = InkPixels(
        ys=ys, xs=xs, deslanted=xs + slant * (ys - centre), slant=slant, centre=centre, pen=pen_width(mask)
    )
    parts, height = find_parts(labels[ys, xs], ink_)
    paths = [cut_paths(part, ink_, height=height, work=work) if part.width > CONTOUR_WIDE * height else []
             for part in parts]  # fmt: skip
    if sum(len(p) for p in paths) > MAX_PATHS:
        raise TooManyPartsError("the drawing's ink is too tangled to read as a number")
    nodes = [node for index, part_paths in enumerate(paths)
             for node in [Node(index)] + [Node(index, path) for path in part_paths]]  # fmt: skip
    map_ = np.full(mask.shape, -1, dtype=np.int32)
    for index, part in enumerate(parts):
        map_[ys[part.pixels], xs[part.pixels]] = index
    return Drawing(ink=ink_, parts=parts, paths=paths, nodes=nodes, labels=fill_fringe(map_, ink), height=height,
                   work=work)  # fmt: skip


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
            boundary = costs.boundary_cost(plan.boundaries[candidate.first]) if candidate.first else 0.0
            score = before + top[index] - costs.shape_cost(candidate.shape) - boundary - costs.per_digit
            if score > best[stop]:
                best[stop], back[stop] = score, (index, None)
            if pairs is not None and is_pair[index]:
                score = before + pair_score[index] + costs.pair_bonus - boundary
                if score > best[stop]:
                    best[stop], back[stop] = score, (index, int(pair[index]))
    chosen: list[tuple[int, int | None]] = []
    stop = plan.last
    if best[stop] == -np.inf:  # no chain of candidates (cannot happen: the candidates keep one)
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
