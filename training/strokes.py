"""Stroke-level augmentation of pen trajectories, and the writing styles the real data lacks.

    python -m training.strokes --pendigits FILE --unipen FILE --out var/sheets   # contact sheets to look at

Why on strokes and not on images: a person varies the *trajectory* (slant, size, proportions, speed, a shaky or a
sweeping hand) and the slate draws whatever trajectory with a uniform round pen. Distorting the trajectory and then
drawing it (training/pendigits.py's renderer) keeps the pen width uniform and the caps round, which an image warp of
a drawn digit does not. The image-level augmentation of training/train.py runs on top, as for every source.

- `augment(strokes, rng=..., cfg=...)`: slant (shear), rotation, scale of x against y (aspect), elastic distortion
  (a smooth random displacement field), resampling along the path (a fast pen leaves coarse polylines, a slow one
  dense curves) and jitter (tremor, correlated along the stroke). The pen width and the size on the slate are the
  renderer's (pendigits.SlateSpec).
- Styles (issue 24): the data has few slashed zeros, crossed 7s and ones with a flag and a base, so they are made
  from *real* strokes: a slash through a real 0, a bar across a real 7's stem, a flag (and sometimes a base) on a
  real 1 that is a plain bar. Open and closed 4s and 9s with a straight or a curved tail are drawn from small
  templates (`template`) whose points move at random and then get the whole augmentation, so no two are alike.

All strokes: tuples of (n, 2) float arrays, x right and y *down*, in any unit (the renderer normalises by the bounding
box). Everything draws from the generator it is given: deterministic in the seed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Strokes = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class StrokeAugment:
    """Ranges of the trajectory's variations; each is drawn uniformly per digit. Fractions are of the digit's height.
    Chosen by looking at contact sheets (how far a digit can move and still be read as itself by a person)."""

    slant: float = 0.35  # shear x += s * y, s in +-slant (about +-19 degrees of lean)
    rotation_deg: float = 10.0
    aspect: tuple[float, float] = (0.7, 1.35)  # x scaled against y: narrow to wide hands
    elastic: float = 0.07  # largest displacement of the smooth field
    elastic_bumps: int = 4  # Gaussian bumps summed into the field
    elastic_width: tuple[float, float] = (0.25, 0.5)  # each bump's radius: low-frequency, never a kink
    resample_p: float = 0.6  # how often the path is resampled at a new spacing
    spacing: tuple[float, float] = (0.015, 0.12)  # the new distance between points (0.12: coarse, like pendigits)
    jitter: float = 0.004  # tremor, smoothed along the stroke (more crinkles dense strokes into a scrawl)


DEFAULT = StrokeAugment()


# ---- geometry -----------------------------------------------------------------------------------------------------


def bounds(strokes: Strokes) -> tuple[np.ndarray, np.ndarray]:
    """(low, span): the bounding box's corner and its (width, height), the span at least 1e-6."""
    points = np.concatenate(strokes)
    low = points.min(0)
    return low, np.maximum(points.max(0) - low, 1e-6)


def normalised(strokes: Strokes) -> Strokes:
    """The strokes scaled to height 1 (aspect kept; a flat one, a dash or a dot, to width 4 at most), the bounding
    box's top-left corner at (0, 0)."""
    low, span = bounds(strokes)
    scale = max(float(span[1]), float(span[0]) / 4)  # a dash has no height to scale by
    return tuple(((s - low) / scale).astype(np.float64) for s in strokes)


def linear(strokes: Strokes, matrix: np.ndarray) -> Strokes:
    """The strokes mapped by a 2x2 matrix around their bounding box's centre."""
    low, span = bounds(strokes)
    centre = low + span / 2
    return tuple((s - centre) @ matrix.T + centre for s in strokes)


def resample(stroke: np.ndarray, *, spacing: float) -> np.ndarray:
    """Points every `spacing` along the polyline (its ends kept): what a pen moving at another speed records."""
    if len(stroke) < 2:
        return stroke
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] <= spacing:
        return stroke[[0, -1]]
    targets = np.append(np.arange(0.0, along[-1], spacing), along[-1])
    return np.stack([np.interp(targets, along, stroke[:, k]) for k in (0, 1)], 1)


def _smooth(noise: np.ndarray, width: int = 5) -> np.ndarray:
    """A moving average along the stroke: a hand's tremor is correlated from one point to the next."""
    if len(noise) <= width:
        return noise
    kernel = np.ones(width) / width
    return np.stack([np.convolve(noise[:, k], kernel, mode="same") for k in (0, 1)], 1)


def elastic(strokes: Strokes, *, rng: np.random.Generator, amplitude: float, bumps: int, width) -> Strokes:
    """Each point moved by a smooth random field: a sum of Gaussian bumps with random centres in the digit's box and
    random directions. Strokes are expected at height 1."""
    low, span = bounds(strokes)
    centres = low + rng.uniform(0, 1, (bumps, 2)) * span  # (bumps, 2)
    shifts = rng.normal(0, amplitude, (bumps, 2))
    radii = rng.uniform(*width, bumps)

    def field(points: np.ndarray) -> np.ndarray:
        distance2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1)  # (n, bumps)
        return np.exp(-distance2 / (2 * radii**2)) @ shifts

    return tuple(s + field(s) for s in strokes)


def augment(strokes: Strokes, *, rng: np.random.Generator, cfg: StrokeAugment = DEFAULT) -> Strokes:
    """One random variation of a digit's trajectory (height 1 on return; the renderer places and sizes it)."""
    out = normalised(strokes)
    if cfg.resample_p and rng.random() < cfg.resample_p:
        spacing = float(rng.uniform(*cfg.spacing))
        out = tuple(resample(s, spacing=spacing) for s in out)
    out = elastic(out, rng=rng, amplitude=cfg.elastic, bumps=cfg.elastic_bumps, width=cfg.elastic_width)
    angle = math.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-cfg.slant, cfg.slant)], [0.0, 1.0]])
    aspect = np.diag([rng.uniform(*cfg.aspect), 1.0])
    out = linear(out, aspect @ shear @ rotation)
    out = tuple(s + _smooth(rng.normal(0, cfg.jitter, s.shape)) for s in out)
    return normalised(out)


# ---- styles made from real strokes ----------------------------------------------------------------------------------


def _line(start, end, *, n: int = 12) -> np.ndarray:
    return np.linspace(np.asarray(start, float), np.asarray(end, float), n)


def slashed_zero(strokes: Strokes, *, rng: np.random.Generator) -> Strokes:
    """Ø: a real 0 with a slash through it, from below left to above right (or, in some hands, nearly upright),
    reaching a little past the loop."""
    out = normalised(strokes)
    low, span = bounds(out)
    centre = low + span / 2
    angle = math.radians(rng.uniform(50, 80))  # from the horizontal
    half = 0.5 * span[1] / math.sin(angle) * rng.uniform(0.9, 1.3)  # reaches the loop's top and bottom, or past
    direction = np.array([math.cos(angle), -math.sin(angle)])  # up and to the right (y down)
    start, end = centre - half * direction, centre + half * direction
    slash = _line(start, end) + rng.normal(0, 0.01, (12, 2))
    return (*out, slash) if rng.random() < 0.7 else (slash, *out)  # drawn after the loop, mostly


def crossed_seven(strokes: Strokes, *, rng: np.random.Generator) -> Strokes:
    """A real 7 with a short bar across its stem, about halfway down."""
    out = normalised(strokes)
    low, span = bounds(out)
    points = np.concatenate([resample(s, spacing=0.02) for s in out])  # pendigits' polylines are coarse
    target = low[1] + span[1] * rng.uniform(0.45, 0.62)
    stem = points[points[:, 1] > low[1] + 0.25 * span[1]]  # below the top bar
    if not len(stem):
        return out
    x = float(stem[np.argmin(np.abs(stem[:, 1] - target)), 0])
    half = max(span[0], 0.5) * rng.uniform(0.18, 0.32)
    tilt = rng.uniform(-0.05, 0.05)
    bar = _line((x - half, target + tilt), (x + half * rng.uniform(0.8, 1.2), target - tilt), n=8)
    return (*out, bar + rng.normal(0, 0.008, bar.shape))


def is_plain_one(strokes: Strokes) -> bool:
    """A 1 drawn as a bar (narrow), which can take a flag and a base."""
    _, span = bounds(strokes)
    return span[0] / span[1] < 0.3


def flagged_one(strokes: Strokes, *, rng: np.random.Generator) -> Strokes:
    """A real plain 1 with a flag from its top down to the left (short to long: long flags are what 1.0-3.0 read as
    7) and, half the time, a base."""
    out = normalised(strokes)
    points = np.concatenate(out)
    top, bottom = points[np.argmin(points[:, 1])], points[np.argmax(points[:, 1])]
    length, angle = rng.uniform(0.15, 0.5), math.radians(rng.uniform(30, 65))  # flatter and longer is a 7
    flag = _line(top + length * np.array([-math.cos(angle), math.sin(angle)]), top, n=8)
    first = out[0]
    # drawn from the top: the flag leads into the stroke, as people write it
    from_top = np.linalg.norm(first[0] - top) < 0.05
    out = (np.concatenate([flag, first]), *out[1:]) if from_top else (flag, *out)
    if rng.random() < 0.5:
        half = rng.uniform(0.15, 0.3)
        base = _line(bottom - np.array([half, 0]), bottom + np.array([half * rng.uniform(0.8, 1.2), 0]), n=8)
        out = (*out, base + rng.normal(0, 0.006, base.shape))
    return out


# ---- styles drawn from templates -----------------------------------------------------------------------------------


def _arc(cx, cy, rx, ry, start_deg, end_deg, n=24) -> np.ndarray:
    t = np.radians(np.linspace(start_deg, end_deg, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _closed_four(rng) -> Strokes:
    stem_x, bar_y = rng.uniform(0.55, 0.7), rng.uniform(0.55, 0.7)
    if rng.random() < 0.5:  # one stroke: up the stem, down the diagonal, across
        return (np.array([[stem_x, 1.0], [stem_x, 0.0], [0.0, bar_y], [0.85, bar_y]]),)
    return (np.array([[stem_x, 0.0], [0.0, bar_y], [0.85, bar_y]]), np.array([[stem_x, 0.05], [stem_x, 1.0]]))


def _open_four(rng) -> Strokes:
    stem_x, bar_y, lean = rng.uniform(0.55, 0.7), rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.15)
    left = np.array([[0.05 + lean, 0.0], [0.0, bar_y], [0.85, bar_y]])
    return (left, np.array([[stem_x, rng.uniform(0.0, 0.2)], [stem_x, 1.0]]))


def _nine_loop(rng) -> tuple[np.ndarray, float, float]:
    """The 9's head, drawn from its right side counter-clockwise (y down: through the top first) and back."""
    rx, ry = rng.uniform(0.25, 0.35), rng.uniform(0.18, 0.26)
    cx, cy = 0.35, ry
    loop = _arc(cx, cy, rx, ry, 0, -360, n=32)
    return loop, cx + rx, cy


def _straight_nine(rng) -> Strokes:
    loop, x, y = _nine_loop(rng)
    tail = _line((x, y), (x - rng.uniform(0.0, 0.12), 1.0), n=10)
    return (np.concatenate([loop, tail]),)


def _curved_nine(rng) -> Strokes:
    loop, x, y = _nine_loop(rng)
    hook = rng.uniform(0.15, 0.35)
    down = _line((x, y), (x - 0.02, 0.8), n=8)
    curl = _arc(x - 0.02 - hook, 0.8, hook, 0.2, 0, 160, n=12)
    return (np.concatenate([loop, down, curl]),)


TEMPLATES: dict[str, tuple[int, Callable[[np.random.Generator], Strokes]]] = {
    "closed 4": (4, _closed_four),
    "open 4": (4, _open_four),
    "9, straight tail": (9, _straight_nine),
    "9, curved tail": (9, _curved_nine),
}


def template(name: str, *, rng: np.random.Generator, wobble: float = 0.05) -> Strokes:
    """A templated digit, resampled densely and bent by a smooth field (never point by point: a crinkled line)."""
    _, make = TEMPLATES[name]
    dense = tuple(resample(s, spacing=0.02) for s in make(rng))
    return elastic(dense, rng=rng, amplitude=wobble, bumps=4, width=(0.2, 0.4))


# ---- sets of styled digits -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyledDigit:
    """A digit made in a style (the fields the slate renderer reads from a PenDigit)."""

    label: int
    writer: str  # where it came from: "style <name>"
    strokes: Strokes


def styled_digits(digits: Sequence, *, count: int, seed: int) -> list[StyledDigit]:
    """`count` digits in the styles above, about as many of each: the slashed zeros, crossed 7s and flagged 1s made
    from these real digits (any objects with label and strokes; training writers only), the 4s and 9s from
    templates."""
    rng = np.random.default_rng([seed, 24])
    zeros = [d for d in digits if d.label == 0]
    sevens = [d for d in digits if d.label == 7]
    ones = [d for d in digits if d.label == 1 and is_plain_one(d.strokes)]
    from_real = [
        ("slashed 0", 0, zeros, slashed_zero),
        ("crossed 7", 7, sevens, crossed_seven),
        ("flagged 1", 1, ones, flagged_one),
    ]
    makers = [m for m in from_real if m[2]] + [(name, None, None, None) for name in TEMPLATES]
    out = []
    for index in range(count):
        name, label, pool, make = makers[index % len(makers)]
        if pool is None:
            label = TEMPLATES[name][0]
            strokes = template(name, rng=rng)
        else:
            strokes = make(pool[int(rng.integers(len(pool)))].strokes, rng=rng)
        out.append(StyledDigit(label=label, writer=f"style {name}", strokes=strokes))
    return out


@dataclass(frozen=True)
class Augmented:
    """A digit with an augmented trajectory (what the slate renderer reads)."""

    label: int
    writer: object
    strokes: Strokes


def augmented(digits: Sequence, *, copies: int, seed: int, cfg: StrokeAugment = DEFAULT) -> list[Augmented]:
    """`copies` augmented trajectories of each digit; digit i draws from its own generator (seed, i)."""
    out = []
    for index, digit in enumerate(digits):
        rng = np.random.default_rng([seed, index])
        out.extend(
            Augmented(digit.label, digit.writer, augment(digit.strokes, rng=rng, cfg=cfg)) for _ in range(copies)
        )
    return out


# ---- contact sheets -------------------------------------------------------------------------------------------


def contact_sheet(rows: Sequence[Sequence[bytes]], path: Path, *, cell: int = 56) -> None:
    """Slate PNGs laid out in rows, each as the model sees it (the handler's 28x28 view, enlarged): to look at."""
    from PIL import Image

    from handler.preprocess import prepare

    width = max(len(row) for row in rows)
    sheet = Image.new("L", (width * (cell + 2), len(rows) * (cell + 2)), 96)
    for r, row in enumerate(rows):
        for c, png in enumerate(row):
            view = Image.fromarray(np.round(prepare(png).ink * 255).astype(np.uint8)).resize((cell, cell))
            sheet.paste(view, (c * (cell + 2), r * (cell + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str] | None = None) -> None:
    from training import pendigits, unipen

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pendigits", type=Path, default=None, help="the UNIPEN-format file ($PENDIGITS_FILE)")
    parser.add_argument("--unipen", type=Path, default=None, help="the UNIPEN JSON-lines file ($UNIPEN_FILE)")
    parser.add_argument("--out", type=Path, default=Path("var") / "sheets")
    args = parser.parse_args(argv)
    pen_train, _ = pendigits.split_by_writer(pendigits.load(args.pendigits))
    uni_train, _ = unipen.split_by_file(unipen.load(args.unipen))
    real = pen_train + uni_train
    rng = np.random.default_rng(0)
    rows = []
    for label in range(10):  # one real digit per row, then 11 augmentations of it
        pool = [d for d in real if d.label == label]
        digit = pool[int(rng.integers(len(pool)))]
        variants = [digit, *augmented([digit] * 11, copies=1, seed=label)]
        rows.append([png for png, *_ in pendigits.renderings(variants, all_styles=False, seed=label)])
    contact_sheet(rows, args.out / "augmented.png")
    styled = sorted(styled_digits(real, count=7 * 12, seed=0), key=lambda d: d.writer)  # a row per style
    drawn = pendigits.renderings(augmented(styled, copies=1, seed=1), all_styles=False)
    contact_sheet([[png for png, *_ in drawn[i : i + 12]] for i in range(0, len(drawn), 12)], args.out / "styles.png")
    print(f"wrote {args.out / 'augmented.png'} and {args.out / 'styles.png'}")


if __name__ == "__main__":
    main()
