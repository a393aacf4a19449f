"""Numbers written by hand (several digits in one drawing), for developing and measuring the Number mode: the sets the
segmentation is evaluated and tuned on, the evaluation, and the tuner.

    python -m training.segmentation_eval sample --out var/numbers-sample    # composed and real numbers to look at
    python -m training.segmentation_eval eval [--set heldout|training|unipen|unipen-heldout] [--half a|b]
                                                                            # read exactly? in-process
    python -m training.segmentation_eval tune                               # the segmentation's costs for a model

Two kinds of number, both drawn on the Number mode's wide slate (840x280, 3:1) the way training/pendigits.py draws
a digit (round pen, the page's pen widths, the three export styles):
- **composed**: digits of one writer (pendigits; UNIPEN's training digits) set side by side with the spacing people
  leave, some pairs touching, a slant and a wavering baseline. Their true boxes are known, so segmentation and
  reading errors can be told apart. Composed from the training writers to tune; from the pendigits validation writers
  (5, 10, ..., 30) to measure; from the digits of the 30 UNIPEN validation files that 4.0's gate held out
  (`unipen-heldout`: writers no network here trained on, to choose between trained networks whose tuning sets tie).
- **real**: UNIPEN's handwritten numbers (training half: 354 numbers of 2-10 digits), with the writers' own spacing
  and touching digits, split by session file into two halves (`--half a`: the files at even places in sorted
  order, 184 numbers; `b`: the others, 170): the segmentation's costs are tuned on half a, half b only measures.

`crops()` cuts the digits out of composed numbers the way the handler's segmentation does (touching neighbours'
bits, cuts along strokes, a piece's centring), labelled, for training a model on what Number mode shows it.

Data (never shipped, never read by the running product): pendigits from --pendigits or $PENDIGITS_FILE; UNIPEN from
--unipen-digits / $UNIPEN_FILE and --unipen-numbers / $UNIPEN_NUMBERS_FILE, read by training/unipen.py (the Makefile
and the tests pass the paths).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training import canvas, finetune, pendigits, unipen

ROOT = Path(__file__).resolve().parent.parent
SLATE = (840, 280)  # the Number mode's slate, (width, height): 3:1


@dataclass(frozen=True)
class NumberSpec:
    """How numbers are composed: the ranges each drawing's parameters are drawn from."""

    slate: tuple[int, int] = SLATE
    lengths: tuple[int, int] = (2, 6)  # digits per number, both ends included
    # Touching digits (their strokes run into each other): `touching` of the numbers have one pair of neighbours
    # touch (the acceptance's "15% of them touching"); with per_pair, every pair touches with that probability.
    touching: float = 0.15
    per_pair: bool = False
    heights: tuple[int, int] = (60, 220)  # the digits' height on the slate, px (less when the number must fit)
    # The room between neighbours' ink (nearest points), as a fraction of the digits' height: slanted or curved
    # neighbours may share columns without touching.
    gaps: tuple[float, float] = (0.04, 0.5)
    overlap: tuple[float, float] = (0.1, 0.5)  # how far touching strokes run into each other, fraction of the pen
    slant: float = 0.25  # shear added to the whole number (the writer's own comes on top), +-
    size_jitter: float = 0.1  # each digit's height varies by this fraction, +-
    baseline_jitter: float = 0.05  # each digit's baseline moves by up to this fraction of the height
    drift: float = 0.04  # the baseline climbs or falls by up to this fraction of the height per digit
    max_pen_ratio: float = 0.3  # the pen at most this fraction of the digits' height
    margin: int = 4  # px kept free at the slate's edge


SPEC = NumberSpec()
# The sets `eval` reads: numbers composed from the pendigits validation writers ("heldout"), from the training writers
# ("training"), from the UNIPEN validation files' digits ("unipen-heldout"), and the real UNIPEN numbers ("unipen").
SETS = ("heldout", "training", "unipen", "unipen-heldout")
# 4.0's learning loop fine-tuned on 30 of the 60 UNIPEN validation files and was gated on the other 30: the
# unipen-heldout set is composed from those 30 alone (training/evaluate.py --unipen-files reads the same list).
GATE_HELD_OUT = ROOT / "model_store" / "v4.0" / "unipen_files.json"


@dataclass(frozen=True)
class Number:
    """A number drawn on the slate: its strokes per digit in slate px, the pen, and the truth."""

    label: str
    digits: tuple[tuple[np.ndarray, ...], ...]  # per digit, its strokes ((n, 2) x, y; y down); one entry for a real one
    pen: float
    slate: tuple[int, int]
    touching: int = 0  # neighbours whose strokes overlap
    source: str = ""  # writer or file

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """Each digit's ink box (left, top, right, bottom), pen included; composed numbers only."""
        radius = self.pen / 2
        return [_box(np.concatenate(strokes), radius) for strokes in self.digits]

    def mask(self, index: int | None = None) -> np.ndarray:
        """(H, W) uint8 ink coverage of the whole number, or of one digit alone (the oracle segmentation)."""
        strokes = [s for digit in self.digits for s in digit] if index is None else list(self.digits[index])
        return pendigits.draw_strokes(strokes, width=self.pen, size=self.slate)

    def image(self, style: str) -> Image.Image:
        image = canvas.styled(self.mask(), style)
        return image.convert("RGBA") if style == "black_on_white" else image  # as pendigits.render exports


def _box(xy: np.ndarray, radius: float) -> tuple[float, float, float, float]:
    low, high = xy.min(0), xy.max(0)
    return (float(low[0] - radius), float(low[1] - radius), float(high[0] + radius), float(high[1] + radius))


# ---- data -------------------------------------------------------------------------------------------------------


def load_unipen_digits(path: Path | None = None, *, files: Collection[str] | None = None) -> list[pendigits.PenDigit]:
    """UNIPEN's digits of the training files (training/unipen.py's fixed split: the validation files stay unseen), or
    of the validation files named in `files`, as PenDigits; writer: the session file's index from 1000 up (one file ~
    one writer; ints, like pendigits' writers)."""
    training, validation = unipen.split_by_file(unipen.load(path))
    chosen = training if files is None else [digit for digit in validation if digit.writer in set(files)]
    if files is not None and not chosen:
        raise unipen.UnipenError("none of the files named is among the UNIPEN validation files")
    files = {name: index for index, name in enumerate(sorted({d.writer for d in chosen}), start=1000)}
    return [pendigits.PenDigit(label=d.label, writer=files[d.writer], strokes=d.strokes) for d in chosen]


def load_unipen_numbers(path: Path | None = None) -> list[tuple[str, tuple, str]]:
    """UNIPEN's handwritten numbers (training/unipen.py reads them): (label, strokes with y down, session file)."""
    return [(n.label, n.strokes, n.writer) for n in unipen.load(path, numbers=True)]


def in_half(cases: Sequence[Case], half: str) -> list[Case]:
    """The real numbers of half "a" or "b": the session files at even or odd places in sorted order (whole files: a
    writer is on one side only). The cases are rendered from all the numbers first, so that a number looks the same
    in its half as in the whole set."""
    files = sorted({case.number.source for case in cases})
    first = set(files[0::2])
    return [case for case in cases if (case.number.source in first) == (half == "a")]


# ---- composing --------------------------------------------------------------------------------------------------


def compose(pool: Sequence[pendigits.PenDigit], *, rng: np.random.Generator, spec: NumberSpec = SPEC) -> Number:
    """A number of one writer's digits from pool, laid out as spec says (see NumberSpec)."""
    by_writer = defaultdict(list)
    for digit in pool:
        by_writer[digit.writer].append(digit)
    writers = sorted(by_writer)
    writer = writers[int(rng.integers(len(writers)))]
    count = int(rng.integers(spec.lengths[0], spec.lengths[1] + 1))
    chosen = [by_writer[writer][int(i)] for i in rng.integers(len(by_writer[writer]), size=count)]
    height = float(rng.uniform(*spec.heights))
    pen_ratio = min(pendigits.pen_width(rng), spec.max_pen_ratio * height) / height
    slant = float(rng.uniform(-spec.slant, spec.slant))
    drift = float(rng.uniform(-spec.drift, spec.drift))
    digits, touching = [], 0
    pair = int(rng.integers(1, count)) if rng.random() < spec.touching else 0  # the digit touching its left one
    for index, digit in enumerate(chosen):
        size = 1 + float(rng.uniform(-spec.size_jitter, spec.size_jitter))
        baseline = index * drift + float(rng.uniform(-spec.baseline_jitter, spec.baseline_jitter))
        strokes = _unit(digit.strokes, height=size, slant=slant, baseline=baseline)
        if digits:
            touches = rng.random() < spec.touching if spec.per_pair else index == pair
            room = -float(rng.uniform(*spec.overlap)) * pen_ratio if touches else float(rng.uniform(*spec.gaps))
            strokes = _beside(digits[-1], strokes, room=room, pen=pen_ratio)
            touching += touches
        digits.append(strokes)
    return _on_slate(digits, label="".join(str(d.label) for d in chosen), pen_ratio=pen_ratio, height=height,
                     rng=rng, spec=spec, touching=touching, source=f"writer {writer}")  # fmt: skip


def _unit(strokes: Sequence[np.ndarray], *, height: float, slant: float, baseline: float) -> list[np.ndarray]:
    """A digit scaled to `height` (the number's digits are 1 high), sheared by slant (positive leans right), its
    bottom at 1 + baseline, its left edge at 0."""
    xy = np.concatenate(strokes)
    low, span = xy.min(0), max(float(np.ptp(xy[:, 1])), 1.0)
    scaled = [(s - low) * (height / span) for s in strokes]  # top-left at 0, y down, height `height`
    sheared = [np.stack([s[:, 0] + slant * (height - s[:, 1]), s[:, 1] + 1 + baseline - height], 1) for s in scaled]
    left = min(float(s[:, 0].min()) for s in sheared)
    return [(s - [left, 0]).astype(np.float32) for s in sheared]


def _densify(strokes: Sequence[np.ndarray], step: float) -> np.ndarray:
    """Points along the strokes at most `step` apart (the strokes' vertices are 100 ms apart)."""
    points = []
    for stroke in strokes:
        points.append(stroke[:1])
        for a, b in itertools.pairwise(stroke):
            n = max(1, int(np.ceil(np.hypot(*(b - a)) / step)))
            points.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(points)


def _beside(previous: Sequence[np.ndarray], strokes: list[np.ndarray], *, room: float, pen: float) -> list[np.ndarray]:
    """strokes moved along x so that the nearest points of the two inks are `room` apart (negative: the strokes run
    that far into each other, so the digits touch): slid in from the right until they first come that close."""
    left, right = _densify(previous, pen / 4), _densify(strokes, pen / 4)
    target = room + pen  # between centre lines: `pen` apart, the inks just touch

    def nearest(shift: float) -> float:
        moved = right + np.array([shift, 0.0])
        return float(np.sqrt(((left[:, None, :] - moved[None, :, :]) ** 2).sum(-1)).min())

    far = float(left[:, 0].max() - right[:, 0].min()) + target + 1.0  # boxes apart: the nearest distance >= target
    step, start = max(pen / 2, 0.02), far
    near = far
    while nearest(near) >= target and near > start - 3.0:  # slide in until the inks come within target
        far, near = near, near - step
    for _ in range(12):  # then bisect the last step
        middle = (near + far) / 2
        if nearest(middle) >= target:
            far = middle
        else:
            near = middle
    return [s + np.array([far, 0.0], dtype=np.float32) for s in strokes]


def _on_slate(digits: list[list[np.ndarray]], *, label: str, pen_ratio: float, height: float,
              rng: np.random.Generator, spec: NumberSpec, touching: int, source: str) -> Number:  # fmt: skip
    """Unit-height digits scaled to `height` px (less if the number would not fit) and placed at random."""
    xy = np.concatenate([s for digit in digits for s in digit])
    low, span = xy.min(0) - pen_ratio / 2, np.ptp(xy, 0) + pen_ratio  # pen included
    width, rows = spec.slate
    scale = min(height, (width - 2 * spec.margin) / span[0], (rows - 2 * spec.margin) / span[1])
    free = np.maximum(np.array(spec.slate) - 2 * spec.margin - span * scale, 0)
    offset = spec.margin + rng.uniform(0, free + 1e-9)
    placed = tuple(tuple((s - low) * scale + offset for s in digit) for digit in digits)
    return Number(label=label, digits=placed, pen=max(2.0, pen_ratio * scale), slate=spec.slate, touching=touching,
                  source=source)  # fmt: skip


def real(label: str, strokes: Sequence[np.ndarray], *, rng: np.random.Generator, source: str = "",
         spec: NumberSpec = SPEC) -> Number:  # fmt: skip
    """A real handwritten number drawn on the slate at a random size, pen width and place (one 'digit' entry: its
    digits' strokes are not told apart)."""
    xy = np.concatenate(strokes)
    span = max(float(np.ptp(xy[:, 1])), 1.0)
    unit = [(s - xy.min(0)) / span for s in strokes]  # the whole number 1 high
    height = float(rng.uniform(*spec.heights))
    pen_ratio = min(pendigits.pen_width(rng), spec.max_pen_ratio * height) / height
    return _on_slate([unit], label=label, pen_ratio=pen_ratio, height=height, rng=rng, spec=spec, touching=0,
                     source=source)  # fmt: skip


# ---- evaluation sets --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    number: Number
    png: bytes
    style: str


def composed_set(pool: Sequence[pendigits.PenDigit], *, count: int, seed: int, spec: NumberSpec = SPEC) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        number = compose(pool, rng=rng, spec=spec)
        style = str(rng.choice(canvas.STYLES))
        cases.append(Case(number, canvas.to_png(number.image(style)), style))
    return cases


def real_set(numbers: Sequence[tuple[str, tuple, str]], *, seed: int, spec: NumberSpec = SPEC) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for label, strokes, source in numbers:
        number = real(label, strokes, rng=rng, source=source, spec=spec)
        style = str(rng.choice(canvas.STYLES))
        cases.append(Case(number, canvas.to_png(number.image(style)), style))
    return cases


def _iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def segmented_right(case: Case, boxes: Sequence[Sequence[float]]) -> bool | None:
    """Whether the digits found are the true ones (one box per true digit, overlapping it most: IoU >= 0.5);
    None for a real number (its digits' boxes are not known)."""
    if len(case.number.digits) == 1 and len(case.number.label) > 1:
        return None
    truth = case.number.boxes()
    return len(boxes) == len(truth) and all(_iou(a, b) >= 0.5 for a, b in zip(boxes, truth, strict=True))


# ---- crops for training -----------------------------------------------------------------------------------------

NOT_A_DIGIT = 10  # the label crops() gives a candidate that is no true digit (a merged pair, a fragment)


def crops(pool: Sequence[pendigits.PenDigit], *, count: int, seed: int, spec: NumberSpec = SPEC,
          negatives: bool = False) -> Iterator[tuple[np.ndarray, int]]:  # fmt: skip
    """(28x28 field in [0, 1], as handler.preprocess.fit_with_box makes it; label) for the digits of `count`
    numbers composed from pool (give it training writers only), each cut out the way the handler's segmentation
    cuts it: the candidate whose box matches the digit's true box best (IoU >= 0.5). Digits no candidate matches
    are left out. With negatives, also every candidate that matches no digit (IoU < 0.3 with each: two digits in
    one, a piece of one), labelled NOT_A_DIGIT."""
    from handler import segmentation

    for case in composed_set(pool, count=count, seed=seed, spec=spec):
        plan = segmentation.prepare_number(case.png)
        truth = case.number.boxes()
        overlaps = np.array([[_iou(c.box, box) for box in truth] for c in plan.candidates]).reshape(-1, len(truth))
        for digit, label in enumerate(case.number.label):
            best = int(overlaps[:, digit].argmax()) if len(overlaps) else -1
            if best >= 0 and overlaps[best, digit] >= 0.5:
                yield plan.candidates[best].field, int(label)
        if negatives:
            for index in np.flatnonzero(overlaps.max(axis=1, initial=0.0) < 0.3):
                yield plan.candidates[index].field, NOT_A_DIGIT


# ---- measuring --------------------------------------------------------------------------------------------------


def evaluate(cases: Sequence[Case], read: Callable[[bytes], dict], *, oracle: Callable | None = None,
             ideal: Callable[[bytes, str], bool] | None = None) -> dict:  # fmt: skip
    """Exact-number accuracy of `read` (png -> the handler's answer) on cases, errors split into segmentation (wrong
    digit count, or for composed numbers the wrong boxes) and reading (right segmentation, a digit misread); with
    `oracle` (a list of (H, W) masks -> digits), the same numbers read with the true segmentation; with `ideal`
    (png, label -> whether some chain of the candidates reads it), what a perfect chooser would read."""
    tally, examples = Counter(), []
    started = time.perf_counter()
    for case in cases:
        answer = read(case.png)
        number, label = answer.get("number"), case.number.label
        boxes = [d["box"] for d in answer.get("digits", [])]
        segmentation = segmented_right(case, boxes)
        tally["numbers"] += 1
        tally["digits"] += len(label)
        tally["exact"] += number == label
        if number != label:
            right_count = len(boxes) == len(label)
            kind = "segmentation" if not right_count or segmentation is False else "reading"
            tally[f"{kind}_errors"] += 1
            if len(examples) < 40:
                examples.append({"label": label, "read": number, "kind": kind, "source": case.number.source,
                                 "touching": case.number.touching})  # fmt: skip
        if number == label or (segmentation is not False and len(boxes) == len(label)):
            tally["digit_errors"] += sum(d["digit"] != int(t) for d, t in zip(answer["digits"], label, strict=True))
        tally[f"length_{len(label)}"] += 1
        tally[f"length_{len(label)}_exact"] += number == label
        if case.number.touching:
            tally["touching"] += 1
            tally["touching_exact"] += number == label
        if ideal is not None:
            tally["ideal_exact"] += ideal(case.png, label)
        if oracle is not None:
            read_alone = oracle([case.number.mask(i) for i in range(len(case.number.digits))])
            tally["oracle_exact"] += read_alone == label
            tally["oracle_digit_errors"] += sum(a != b for a, b in zip(read_alone, label, strict=True))
    seconds = time.perf_counter() - started
    result = dict(tally) | {"exact_rate": tally["exact"] / max(1, tally["numbers"]), "seconds": seconds}
    if oracle is not None:
        result["oracle_exact_rate"] = tally["oracle_exact"] / max(1, tally["numbers"])
    if ideal is not None:
        result["ideal_exact_rate"] = tally["ideal_exact"] / max(1, tally["numbers"])
    return result | {"examples": examples}


@dataclass(frozen=True)
class InProcessReader:
    """Numbers read as the handler reads them (handler/segmentation.py and one forward pass), without a server."""

    forward: Callable  # handler.model.for_inference(the weights' DigitNet): the forward pass the handler runs
    pairs: Callable | None = None  # the same for the pair reader beside the weights (pairs.pt), if there is one
    spent: Counter = dataclasses.field(default_factory=Counter)  # numbers read, model inputs, seconds (read_png)
    last: dict = dataclasses.field(default_factory=dict)  # the drawing read_png read last -> (plan, logits)

    @classmethod
    def load(cls, weights: Path) -> InProcessReader:

        from handler.model import PAIRS_FILE, for_inference, load_pair_net

        model = finetune.load_model(weights.parent, weights=weights)  # with its refusal head, if it has one
        pairs = load_pair_net(weights.parent / PAIRS_FILE)
        return cls(for_inference(model), for_inference(pairs) if pairs is not None else None)

    def logits(self, tensors) -> np.ndarray:
        """(n, 10) digit logits."""
        import torch

        with torch.inference_mode():
            return self.forward(tensors)[:, :10].float().numpy()

    def pair_log_probs(self, plan, *, width: float | None = None) -> np.ndarray | None:
        """(n_candidates, 101) the pair reader's log probabilities for plan's candidates at least `width` wide (the
        costs' pair_width by default; -inf for the others), None without a pair reader."""
        import torch

        from handler import segmentation

        if self.pairs is None:
            return None
        wide, inputs = plan.pair_inputs(segmentation.COSTS.pair_width if width is None else width)
        if not wide:
            return segmentation.pair_log_probs(plan, [], np.zeros((0, segmentation.NOT_PAIR + 1)))
        with torch.inference_mode():
            pair_logits = self.pairs(inputs).float().numpy()
        return segmentation.pair_log_probs(plan, wide, pair_logits)

    def read_png(self, png: bytes) -> dict:
        from handler import segmentation

        started = time.perf_counter()
        plan = segmentation.prepare_number(png)
        logits = self.logits(plan.tensors())
        answer = segmentation.reading(plan, logits, pairs=self.pair_log_probs(plan))
        self.spent.update(numbers=1, inputs=len(plan.candidates), seconds=time.perf_counter() - started)
        self.last.clear()
        self.last[png] = (plan, logits)
        return answer

    def chain_reads(self, png: bytes, label: str) -> bool:
        """Whether some chain of the drawing's candidates reads `label` (see chain_reads); the drawing just read by
        read_png is not segmented again."""
        plan, logits = self.last.get(png) or _plan_and_logits(png, self)[:2]
        return chain_reads(plan, logits, label)

    def read_masks(self, masks: Sequence[np.ndarray]) -> str:
        """The digits read from each one's own ink (the true segmentation)."""
        import torch

        from handler.preprocess import fit_with_box, normalise

        fields = [torch.from_numpy(normalise(fit_with_box(mask)[0])).unsqueeze(0) for mask in masks]
        return "".join(str(int(z.argmax())) for z in self.logits(torch.stack(fields)))


def chain_reads(plan, logits: np.ndarray, label: str) -> bool:
    """Whether some chain of plan's candidates (a handler.segmentation.Layout), from its first boundary to its last,
    reads `label`, each candidate as its most likely digit (logits: (n_candidates, 10)): what a perfect chooser among
    these candidates would read. When it is False, only other candidates or another reading can help."""
    read = logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)
    starting: dict[int, list[int]] = defaultdict(list)
    for index, candidate in enumerate(plan.candidates):
        starting[candidate.first].append(index)
    reached: list[set[int]] = [set() for _ in range(plan.last + 1)]  # boundary -> digits of label read up to it
    reached[0].add(0)
    for boundary in range(plan.last + 1):  # a candidate ends after it starts: each set is whole when reached
        for index in starting[boundary]:
            for count in reached[boundary]:
                if count < len(label) and int(read[index]) == int(label[count]):
                    reached[plan.candidates[index].stop].add(count + 1)
    return len(label) in reached[plan.last]


# ---- tuning the segmentation's costs ---------------------------------------------------------------------------

TUNING_SEEDS = {"training": 5, "training-2": 8, "training-touching": 6}  # composed from the training writers
STEPS = (0.0, 0.5, 0.7, 0.85, 0.93, 1.07, 1.15, 1.4, 2.0)  # a cost's trial values, as multiples of its value
PAIR_TUNING_WIDTH = 0.4  # tuning reads every candidate at least this wide with the pair reader


def tune(sets: dict[str, tuple[Sequence[Case], float]], reader: InProcessReader, *, start=None, rounds: int = 6,
         log: Callable[[str], None] = print):  # fmt: skip
    """handler.segmentation.Costs with the most numbers read exactly (each set's count times its weight): a
    coordinate search from `start` (the shipped costs), each cost in turn tried at STEPS times its value and kept
    when the weighted count rises, until a round changes nothing. Candidates and logits are computed once."""
    from handler import segmentation

    plans = {name: ([(case.number.label, *_plan_and_logits(case.png, reader)) for case in cases], weight)
             for name, (cases, weight) in sets.items()}  # fmt: skip

    def counts(costs) -> dict[str, int]:
        return {name: sum(segmentation.reading(plan, logits, pairs=pairs, costs=costs)["number"] == label
                          for label, plan, logits, pairs in read) for name, (read, _) in plans.items()}  # fmt: skip

    def total(found: dict[str, int]) -> float:
        return sum(plans[name][1] * value for name, value in found.items())

    best = start or segmentation.COSTS
    score = total(counts(best))
    log(f"start: {counts(best)}")
    for _ in range(rounds):
        improved = False
        for name in (field.name for field in dataclasses.fields(best)):
            value = getattr(best, name)
            for trial in (round(value * step, 4) for step in STEPS):
                costs = dataclasses.replace(best, **{name: trial})
                found = total(counts(costs))
                if found > score:
                    best, score, improved = costs, found, True
                    log(f"{name} = {trial}: {score}")
        if not improved:
            break
    log(f"tuned: {counts(best)}")
    return best


def _plan_and_logits(png: bytes, reader: InProcessReader) -> tuple:
    """A drawing's layout, its candidates' logits and (with a pair reader) pair log probabilities for every candidate
    at least PAIR_TUNING_WIDTH wide, so that the costs' pair_width can be tuned."""
    from handler import segmentation

    plan = segmentation.prepare_number(png)
    return plan, reader.logits(plan.tensors()), reader.pair_log_probs(plan, width=PAIR_TUNING_WIDTH)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("sample", "eval", "tune"))
    parser.add_argument("--set", default="heldout", choices=SETS)
    parser.add_argument("--half", choices=("a", "b"), default=None, help="unipen: one half of the files (a: tuning)")
    parser.add_argument("--pendigits", type=Path, default=None)
    parser.add_argument("--unipen-digits", type=Path, default=None)
    parser.add_argument("--unipen-numbers", type=Path, default=None)
    parser.add_argument("--weights", type=Path, default=ROOT / "model_store" / "v4.0" / "weights.pt")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--touching", type=float, default=SPEC.touching, help="share of numbers with a touching pair")
    parser.add_argument("--per-pair", action="store_true", help="--touching is each neighbour pair's probability")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "numbers-sample")
    args = parser.parse_args(argv)
    if args.command == "tune":
        print(tune(_tuning_sets(args), InProcessReader.load(args.weights)))
        return
    spec = NumberSpec(touching=args.touching, per_pair=args.per_pair)
    cases = _cases(args, spec=spec)
    if args.command == "sample":
        args.out.mkdir(parents=True, exist_ok=True)
        for index, case in enumerate(cases[: args.count]):
            (args.out / f"{index:03d}-{case.number.label}-{case.style}.png").write_bytes(case.png)
        print(f"wrote {min(len(cases), args.count)} drawings to {args.out}")
        return
    reader = InProcessReader.load(args.weights)
    oracle = reader.read_masks if args.set != "unipen" else None
    result = evaluate(cases, reader.read_png, oracle=oracle, ideal=reader.chain_reads)
    print(json.dumps(result, indent=1))
    lengths = sorted(int(key.split("_")[1]) for key in result if key.startswith("length_") and key.count("_") == 1)
    print(
        f"read exactly: {result['exact']}/{result['numbers']} = {100 * result['exact_rate']:.1f}%; by digits: "
        + ", ".join(f"{n}: {result.get(f'length_{n}_exact', 0)}/{result[f'length_{n}']}" for n in lengths)
    )
    print(f"an ideal chooser among these candidates: {result['ideal_exact']}/{result['numbers']} = "
          f"{100 * result['ideal_exact_rate']:.1f}%")  # fmt: skip
    spent = reader.spent
    per_number = 1000 * spent["seconds"] / spent["numbers"]
    print(f"model inputs per digit {spent['inputs'] / result['digits']:.2f}, {per_number:.1f} ms per number")


def _cases(args, *, spec: NumberSpec) -> list[Case]:
    if args.set == "unipen":
        cases = real_set(load_unipen_numbers(args.unipen_numbers), seed=args.seed, spec=spec)
        return in_half(cases, args.half) if args.half else cases
    if args.set == "unipen-heldout":
        pool = load_unipen_digits(args.unipen_digits, files=json.loads(GATE_HELD_OUT.read_text())["heldout"])
        return composed_set(pool, count=args.count, seed=args.seed, spec=spec)
    training, heldout = pendigits.split_by_writer(pendigits.load(args.pendigits))
    if args.set == "heldout":
        return composed_set(heldout, count=args.count, seed=args.seed, spec=spec)
    pool = training + load_unipen_digits(args.unipen_digits)
    return composed_set(pool, count=args.count, seed=args.seed, spec=spec)


def _tuning_sets(args) -> dict[str, tuple[list[Case], float]]:
    """What the costs are tuned on: numbers composed from the training writers (15% with a touching pair, twice;
    every pair touching with p = 0.15) and UNIPEN's real numbers, half a, which count three times."""
    training, _ = pendigits.split_by_writer(pendigits.load(args.pendigits))
    pool = training + load_unipen_digits(args.unipen_digits)
    sets = {name: (composed_set(pool, count=args.count, seed=seed, spec=NumberSpec(per_pair="touching" in name)), 1.0)
            for name, seed in TUNING_SEEDS.items()}  # fmt: skip
    real = in_half(real_set(load_unipen_numbers(args.unipen_numbers), seed=args.seed), "a")
    return sets | {"unipen-a": (real, 3.0)}


if __name__ == "__main__":
    main()
