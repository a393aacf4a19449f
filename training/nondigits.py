"""Drawings that are not one digit, as the page exports them: letters, shapes, scribbles, several digits side by side.

Training data for a "not a digit" answer (an 11th class or outlier exposure) and the held-out sets to measure it on.
Every drawing is a 280x280 slate PNG with dark strokes of one uniform pen, anti-aliased, on a transparent background
(what ui/widgets/slate.js exports) or on white; its size, place, slant and pen width are random. Each kind has two parts
made *differently*, so that a held-out score says how the refusal generalises, not how well it memorised a recipe:

    kind       part "train"                                  part "heldout"
    letters    Hershey fonts futural, rowmans, timesr,        fonts scriptc, gothiceng, timesrb, greekc (Greek
               futuram, timesi, cursive, rowmand, gothitt     letters), and the letter w only here
    shapes     triangle, star, heart, hash, arrow, circle     spiral, smiley, lightning bolt, house, crescent,
               with a cross, square, diamond, plus, tick,     hexagon
               wave, zigzag, cloud, infinity, sun, flower,
               eye, envelope, tree
    scribbles  smooth random walks (1-2 strokes), dense       coils, back-and-forth hatching, chord tangles
               knotted walks, zigzags
    pairs      two or three MNIST *training* digits,          two or three MNIST *test* digits, filled strokes
               skeleton drawn with a round pen, gap 0.1-0.8   (canvas.render's style), gap -0.05-0.6
               of a digit; and users' own drawings side by
               side (pairs_of_drawings, made by make retrain)

Letters that a reader could take for a digit are never drawn (they would teach the model to refuse real digits):
O o Q D (0), I l i j J T t L (1, 7), Z z (2), E (3 mirrored), A (4 in some hands), S s (5), G b (6), B (8),
g q a P y (9), and C c e U u (an open 0, 6 or a sloppy 0/6/4); font shapes of the remaining letters are distinct
enough from digits in every font used.

    from training import nondigits
    for drawing in nondigits.generate("letters", count=1000, seed=0, part="train"):
        drawing.png, drawing.kind, drawing.part, drawing.description

`pairs` needs MNIST images: generate("pairs", ..., mnist=data.load(...)) (train digits for "train", test digits for
"heldout"). Everything is deterministic in (kind, part, seed, count).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from training import canvas

KINDS = ("letters", "shapes", "scribbles", "pairs")
PARTS = ("train", "heldout")
STYLES = ("transparent", "black_on_white")  # the page's export, and a white slate
SIZE = 280
SUPERSAMPLE = 3  # drawn at 3x and averaged down: anti-aliased edges like a canvas's

# Letters whose shapes are far from every digit's (see the module docstring for those left out).
TRAIN_LETTERS = "FHKMNRVWXYdfhkmnprvx"
HELDOUT_LETTERS = "FHRVYdfhprwxkmn"  # w only here; k, m, n, x in both: the fonts differ
TRAIN_FONTS = ("futural", "rowmans", "timesr", "futuram", "timesi", "cursive", "rowmand", "gothitt")
HELDOUT_FONTS = ("scriptc", "gothiceng", "timesrb", "greekc")
# greekc maps Latin keys to Greek letters; these keys give letters unlike digits (no omicron, iota, zeta, ...)
GREEK_KEYS = "FGLPSWdfghlmpx"

Stroke = np.ndarray  # (n, 2) float points (x, y), y down


@dataclass(frozen=True)
class Drawing:
    """One generated drawing."""

    png: bytes
    kind: str  # one of KINDS
    part: str  # "train" or "heldout"
    description: str  # what was drawn, e.g. "letter K (futural)", "shape heart", "pair 3 7"


def generate(kind: str, *, count: int, seed: int = 0, part: str = "train", mnist=None) -> Iterator[Drawing]:
    """`count` drawings of one kind and part; mnist: {"train": Split, "test": Split} from training.data (pairs only)."""
    if kind not in KINDS or part not in PARTS:
        raise ValueError(f"kind must be one of {KINDS} and part one of {PARTS}, not {kind!r}, {part!r}")
    # the part is in the seed: the same seed never yields the same random stream for both parts
    rng = np.random.default_rng([seed, PARTS.index(part), KINDS.index(kind)])
    if kind == "pairs":
        if mnist is None:
            raise ValueError("pairs are drawn from MNIST digits: pass mnist=training.data.load(...)")
        split = mnist["train" if part == "train" else "test"]
        yield from pairs(split.images, split.labels, count=count, rng=rng, part=part)
        return
    make = {"letters": letter, "shapes": shape, "scribbles": scribble}[kind]
    for _ in range(count):
        strokes, description = make(rng=rng, part=part)
        yield Drawing(draw_strokes(strokes, rng=rng), kind, part, description)


# ---- rendering --------------------------------------------------------------------------------------------------


def draw_strokes(strokes: list[Stroke], *, rng: np.random.Generator, size: int = SIZE) -> bytes:
    """Polylines in any coordinates -> a slate PNG: slanted a little, scaled to a random height, placed at random,
    drawn with a round pen of random width."""
    angle = math.radians(rng.uniform(-15, 15))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = [stroke @ rotation.T for stroke in strokes]
    everything = np.concatenate(points)
    low, extent = everything.min(0), np.maximum(everything.max(0) - everything.min(0), 1e-6)
    height = rng.uniform(70, 250)
    scale = min(height / extent[1], (size - 30) / extent[0], (size - 30) / extent[1])
    pen = max(3.0, rng.uniform(0.04, 0.12) * math.sqrt(extent[0] * extent[1]) * scale)  # long flat things: thinner
    margin = pen / 2 + 2
    room = size - 2 * margin - extent * scale
    offset = margin + rng.uniform(0, 1, 2) * np.maximum(room, 0)
    placed = [(stroke - low) * scale + offset for stroke in points]
    return to_png(_pen_mask(placed, pen=pen, size=size), style=str(rng.choice(STYLES)))


def _pen_mask(strokes: list[Stroke], *, pen: float, size: int) -> np.ndarray:
    """(size, size) uint8 mask of the strokes drawn with a round pen, anti-aliased by supersampling."""
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    radius = pen * SUPERSAMPLE / 2
    for stroke in strokes:
        scaled = [tuple(point) for point in (stroke * SUPERSAMPLE).tolist()]
        if len(scaled) > 1:
            draw.line(scaled, fill=255, width=max(1, round(2 * radius)), joint="curve")
        for x, y in (scaled[0], scaled[-1]):  # round caps
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(big.resize((size, size), Image.Resampling.BOX))


def to_png(mask: np.ndarray, *, style: str) -> bytes:
    """An ink mask (255 = ink) as the page exports it: black strokes in alpha, or black on white."""
    if style == "transparent":
        rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
        rgba[..., 3] = mask
        image = Image.fromarray(rgba, mode="RGBA")
    elif style == "black_on_white":
        image = Image.fromarray(255 - mask, mode="L")
    else:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---- letters ------------------------------------------------------------------------------------------------------

_FONTS: dict = {}


def glyph_strokes(font: str, char: str) -> list[Stroke]:
    """The strokes of one Hershey glyph (hershey-fonts package; y down)."""
    from HersheyFonts import HersheyFonts  # training-time only: the product never draws letters

    if font not in _FONTS:
        loaded = HersheyFonts()
        loaded.load_default_font(font)
        _FONTS[font] = loaded
    return [np.array(stroke, dtype=float) for stroke in _FONTS[font].strokes_for_text(char) if len(stroke) > 0]


def letter(*, rng: np.random.Generator, part: str) -> tuple[list[Stroke], str]:
    fonts = TRAIN_FONTS if part == "train" else HELDOUT_FONTS
    font = str(rng.choice(fonts))
    chars = GREEK_KEYS if font == "greekc" else TRAIN_LETTERS if part == "train" else HELDOUT_LETTERS
    char = str(rng.choice(list(chars)))
    return glyph_strokes(font, char), f"letter {char} ({font})"


# ---- shapes -------------------------------------------------------------------------------------------------------


def _circle(cx: float, cy: float, r: float, start: float = 0.0, end: float = 2 * math.pi, n: int = 48) -> Stroke:
    t = np.linspace(start, end, n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _jitter(rng: np.random.Generator, points, amount: float = 0.06) -> Stroke:
    points = np.asarray(points, dtype=float)
    return points + rng.normal(0, amount, points.shape)


def _triangle(rng):
    return [_jitter(rng, [(0, 1), (0.5, 0), (1, 1), (0, 1)])]


def _star(rng):
    k = np.arange(11)
    radius = np.where(k % 2 == 0, 1.0, rng.uniform(0.35, 0.5))
    t = -math.pi / 2 + k * math.pi / 5
    return [_jitter(rng, np.stack([radius * np.cos(t), radius * np.sin(t)], 1), 0.03)]


def _heart(rng):
    t = np.linspace(0, 2 * math.pi, 60)
    x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [_jitter(rng, np.stack([x, y], 1) / 16, 0.01)]


def _hash(rng):
    lean = rng.uniform(-0.15, 0.15)
    lines = [[(0.35 + lean, 0), (0.35 - lean, 1)], [(0.65 + lean, 0), (0.65 - lean, 1)]]
    lines += [[(0, 0.35), (1, 0.35)], [(0, 0.65), (1, 0.65)]]
    return [_jitter(rng, line, 0.03) for line in lines]


def _arrow(rng):
    angle = rng.uniform(0, 2 * math.pi)
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    lines = [[(0, 0), (1, 0)], [(0.7, -0.25), (1, 0), (0.7, 0.25)]]
    return [_jitter(rng, line, 0.02) @ rotate.T for line in lines]


def _circle_cross(rng):
    strokes = [_jitter(rng, _circle(0, 0, 1), 0.02)]
    if rng.random() < 0.5:  # a plus inside
        return [*strokes, _jitter(rng, [(-1, 0), (1, 0)], 0.03), _jitter(rng, [(0, -1), (0, 1)], 0.03)]
    d = 0.72
    return [*strokes, _jitter(rng, [(-d, -d), (d, d)], 0.03), _jitter(rng, [(-d, d), (d, -d)], 0.03)]


def _spiral(rng):
    turns = rng.uniform(2, 3.5)
    t = np.linspace(0, turns * 2 * math.pi, 120)
    r = t / t[-1]
    return [np.stack([r * np.cos(t), r * np.sin(t)], 1)]


def _smiley(rng):
    mouth = _circle(0, 0.1, 0.5, 0.2 * math.pi, 0.8 * math.pi, 20)
    eyes = [_circle(-0.35, -0.3, 0.08, n=10), _circle(0.35, -0.3, 0.08, n=10)]
    return [_jitter(rng, _circle(0, 0, 1), 0.02), *eyes, mouth]


def _lightning(rng):
    return [_jitter(rng, [(0.6, 0), (0.2, 0.55), (0.55, 0.5), (0.3, 1.1), (0.85, 0.4), (0.5, 0.45), (0.8, 0)], 0.03)]


def _house(rng):
    return [_jitter(rng, [(0, 0.45), (0, 1), (1, 1), (1, 0.45), (0.5, 0), (0, 0.45), (1, 0.45)], 0.03)]


def _crescent(rng):
    outer = _circle(0, 0, 1, 0.5 * math.pi, 1.5 * math.pi, 30)
    inner = _circle(-0.45, 0, 0.8, 1.35 * math.pi, 0.65 * math.pi, 30)
    return [_jitter(rng, np.concatenate([outer, inner, outer[:1]]), 0.01)]


def _hexagon(rng):
    t = np.linspace(0, 2 * math.pi, 7) + rng.uniform(0, math.pi / 3)
    return [_jitter(rng, np.stack([np.cos(t), np.sin(t)], 1), 0.03)]


def _square(rng):
    width = rng.uniform(0.6, 1.4)
    return [_jitter(rng, [(0, 0), (width, 0), (width, 1), (0, 1), (0, 0)], 0.03)]


def _diamond(rng):
    return [_jitter(rng, [(0.5, 0), (1, 0.6), (0.5, 1.2), (0, 0.6), (0.5, 0)], 0.03)]


def _plus(rng):
    lines = [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]]
    if rng.random() < 0.5:  # a cross
        lines = [[(0, 0), (1, 1)], [(1, 0), (0, 1)]]
    return [_jitter(rng, line, 0.03) for line in lines]


def _tick(rng):
    return [_jitter(rng, [(0, 0.55), (0.35, 1), (1, 0)], 0.03)]


def _wave(rng):
    t = np.linspace(0, rng.uniform(2, 4) * math.pi, 60)
    return [np.stack([t / math.pi, 0.35 * np.sin(t)], 1)]


def _zigzag(rng):
    teeth = int(rng.integers(3, 7))
    points = [(i / 2, 0.0 if i % 2 == 0 else 0.8) for i in range(2 * teeth + 1)]
    return [_jitter(rng, points, 0.03)]


def _cloud(rng):
    bumps = int(rng.integers(5, 8))
    t = np.linspace(0, 2 * math.pi, bumps * 16)
    r = 1 + 0.18 * np.abs(np.sin(bumps * t / 2))
    return [_jitter(rng, np.stack([1.4 * r * np.cos(t), r * np.sin(t)], 1), 0.01)]


def _infinity(rng):
    t = np.linspace(0, 2 * math.pi, 80)
    return [_jitter(rng, np.stack([np.sin(t), np.sin(t) * np.cos(t)], 1), 0.01)]


def _sun(rng):
    rays = int(rng.integers(6, 11))
    strokes = [_jitter(rng, _circle(0, 0, 0.5), 0.02)]
    for angle in np.linspace(0, 2 * math.pi, rays, endpoint=False) + rng.uniform(0, 1):
        direction = np.array([math.cos(angle), math.sin(angle)])
        strokes.append(_jitter(rng, [0.7 * direction, 1.1 * direction], 0.02))
    return strokes


def _flower(rng):
    petals = int(rng.integers(5, 9))
    t = np.linspace(0, 2 * math.pi, petals * 20)
    r = 0.45 + 0.55 * np.abs(np.cos(petals * t / 2))
    return [_jitter(rng, np.stack([r * np.cos(t), r * np.sin(t)], 1), 0.01), _circle(0, 0, 0.15, n=16)]


def _eye(rng):
    t = np.linspace(0, math.pi, 30)
    upper, lower = np.stack([np.cos(t), -0.45 * np.sin(t)], 1), np.stack([np.cos(t), 0.45 * np.sin(t)], 1)
    return [_jitter(rng, upper, 0.01), _jitter(rng, lower, 0.01), _circle(0, 0, 0.22, n=20)]


def _envelope(rng):
    return [_jitter(rng, [(0, 0), (1.5, 0), (1.5, 1), (0, 1), (0, 0), (0.75, 0.55), (1.5, 0)], 0.02)]


def _tree(rng):
    return [_jitter(rng, [(0.5, 0), (0, 0.75), (1, 0.75), (0.5, 0)], 0.03),
            _jitter(rng, [(0.42, 0.75), (0.42, 1.1), (0.58, 1.1), (0.58, 0.75)], 0.02)]  # fmt: skip


TRAIN_SHAPES = {"triangle": _triangle, "star": _star, "heart": _heart, "hash": _hash, "arrow": _arrow,
                "circle with a cross": _circle_cross, "square": _square, "diamond": _diamond, "plus": _plus,
                "tick": _tick, "wave": _wave, "zigzag": _zigzag, "cloud": _cloud, "infinity": _infinity, "sun": _sun,
                "flower": _flower, "eye": _eye, "envelope": _envelope, "tree": _tree}  # fmt: skip
HELDOUT_SHAPES = {"spiral": _spiral, "smiley": _smiley, "lightning bolt": _lightning, "house": _house,
                  "crescent": _crescent, "hexagon": _hexagon}  # fmt: skip


def shape(*, rng: np.random.Generator, part: str) -> tuple[list[Stroke], str]:
    families = TRAIN_SHAPES if part == "train" else HELDOUT_SHAPES
    name = str(rng.choice(list(families)))
    return families[name](rng), f"shape {name}"


# ---- scribbles ----------------------------------------------------------------------------------------------------


def _random_walk(rng):
    """1-2 smooth strokes: a walk whose heading turns a little at every step."""
    strokes = []
    for _ in range(int(rng.integers(1, 3))):
        steps = int(rng.integers(30, 90))
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.45, steps))
        strokes.append(np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1), 0) + rng.normal(0, 3, 2))
    return strokes


def _coil(rng):
    """Loops along a line, like a spring or cursive 'eeee'."""
    t = np.linspace(0, rng.uniform(4, 9) * 2 * math.pi, 240)
    radius = rng.uniform(0.6, 1.2)
    return [np.stack([t / (2 * math.pi) * rng.uniform(0.6, 1.0) + radius * np.cos(t), radius * np.sin(t)], 1)]


def _hatching(rng):
    """Back-and-forth lines filling a patch."""
    rows = int(rng.integers(4, 9))
    xs = np.tile([0.0, 1.0], rows)[: rows * 2] + rng.normal(0, 0.05, rows * 2)
    ys = np.repeat(np.arange(rows) / rows, 2) + np.tile([0, 0.5 / rows], rows)
    return [np.stack([xs, ys], 1)]


def _tangle(rng):
    """Straight chords between random points of a patch, in one stroke."""
    return [rng.uniform(0, 1, (int(rng.integers(6, 14)), 2))]


def _knot(rng):
    """A dense walk turning hard at every step: a ball of ink."""
    steps = int(rng.integers(80, 200))
    heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 1.1, steps))
    return [np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1), 0)]


def _scrawl(rng):
    """Sharp back-and-forth strokes of random length: a zigzag scrawl."""
    turns = int(rng.integers(6, 14))
    points = np.cumsum(rng.normal(0, 1, (turns, 2)) * [1.0, rng.uniform(0.6, 1.5)], 0)
    extent = points.max(0) - points.min(0)
    return [points / max(extent.max(), 1e-6) * [1.0, max(1.0, 0.5 * extent.max() / max(extent[1], 1e-6))]]


TRAIN_SCRIBBLES = {"random walk": _random_walk, "knot": _knot, "scrawl": _scrawl}


def scribble(*, rng: np.random.Generator, part: str) -> tuple[list[Stroke], str]:
    if part == "train":
        name = str(rng.choice(list(TRAIN_SCRIBBLES)))
        return TRAIN_SCRIBBLES[name](rng), f"scribble {name}"
    name = str(rng.choice(["coil", "hatching", "tangle"]))
    return {"coil": _coil, "hatching": _hatching, "tangle": _tangle}[name](rng), f"scribble {name}"


# ---- several digits -----------------------------------------------------------------------------------------------


def pairs(
    images: np.ndarray, labels: np.ndarray, *, count: int, rng: np.random.Generator, part: str = "train"
) -> Iterator[Drawing]:
    """Digits side by side on one slate: "train" two or three digits drawn with a round pen along their skeleton,
    gap 0.1-0.8 of a digit's width; "heldout" two or three digits in canvas.render's filled-stroke style, gap -0.05-0.6
    (some touch or overlap a little). images: (N, 28, 28) uint8 MNIST digits."""
    for _ in range(count):
        many = 2 if rng.random() < 0.7 else 3
        picks = rng.choice(len(images), size=many, replace=False)
        gap = rng.uniform(0.1, 0.8) if part == "train" else rng.uniform(-0.05, 0.6)
        row = _side_by_side([images[i] for i in picks], gap=gap)
        mask = _pen_trace(row, rng=rng) if part == "train" else _filled(row, rng=rng)
        digits = " ".join(str(int(labels[i])) for i in picks)
        yield Drawing(to_png(mask, style=str(rng.choice(STYLES))), "pairs", part, f"pair {digits} gap {gap:.2f}")


def _side_by_side(digits: list[np.ndarray], *, gap: float) -> np.ndarray:
    """MNIST digits cropped to their ink columns and put in one row, `gap` x 20 px apart (negative: overlapping)."""
    pieces = []
    for digit in digits:
        columns = np.flatnonzero(digit.max(0) > 30)
        pieces.append(digit[:, columns[0] : columns[-1] + 1])
    space = round(gap * 20)
    width = sum(piece.shape[1] for piece in pieces) + space * (len(pieces) - 1) + 8
    row = np.zeros((28, max(width, 28)), dtype=np.uint8)
    x = 4
    for piece in pieces:
        row[:, x : x + piece.shape[1]] = np.maximum(row[:, x : x + piece.shape[1]], piece)
        x += piece.shape[1] + space
    return row


def _pen_trace(row: np.ndarray, *, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """The row's skeleton traced with a round pen (canvas.render_pen's way, for any width)."""
    upscale = 4
    big = np.asarray(Image.fromarray(row).resize((row.shape[1] * upscale, 28 * upscale), Image.Resampling.BILINEAR))
    ys, xs = np.nonzero(canvas.skeleton(big > 100))
    points = np.stack([xs, ys], 1).astype(float)
    extent = points.max(0) - points.min(0) + 1
    scale = min(rng.uniform(70, 200) / extent[1], (size - 40) / extent[0])
    pen = max(3.0, rng.uniform(0.05, 0.15) * extent[1] * scale)
    offset = pen / 2 + 2 + rng.uniform(0, 1, 2) * np.maximum(size - pen - 4 - extent * scale, 0)
    placed = (points - points.min(0)) * scale + offset
    return _pen_mask([np.array([p]) for p in placed], pen=pen, size=size)


def _filled(row: np.ndarray, *, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """The row enlarged and thresholded into filled strokes with soft edges (canvas.render's look)."""
    factor = min(rng.uniform(70, 200) / 20, (size - 10) / row.shape[1])
    big = Image.fromarray(row).resize((round(row.shape[1] * factor), round(28 * factor)), Image.Resampling.BILINEAR)
    shape_ = np.asarray(big.point(lambda v: 255 if v > 90 else 0))
    ys, xs = np.nonzero(shape_)
    crop = shape_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    slate = np.zeros((size, size), dtype=np.uint8)
    slate[top : top + h, left : left + w] = crop
    blurred = Image.fromarray(slate).resize((size // 2, size // 2), Image.Resampling.BOX)
    return np.asarray(blurred.resize((size, size), Image.Resampling.BILINEAR))


def pairs_of_drawings(pngs: list[bytes], *, count: int, seed: int) -> Iterator[Drawing]:
    """Two or three of these slate drawings (real users' digits) cropped to their ink and put side by side on one
    slate, as someone writing a number would: the "several digits" kind made from real handwriting. make retrain
    makes them from its training browsers' drawings (never the held-out ones)."""
    rng = np.random.default_rng([seed, 7])
    for _ in range(count):
        many = 2 if rng.random() < 0.7 else 3
        pieces = []
        for index in rng.choice(len(pngs), size=many, replace=len(pngs) < many):
            pieces.append(_ink_crop(pngs[int(index)]))
        # one writer's digits are about the same height, whatever size each drawing had on its own slate
        common = int(np.median([piece.shape[0] for piece in pieces]))
        pieces = [_to_height(piece, round(common * rng.uniform(0.85, 1.15))) for piece in pieces]
        height = max(piece.shape[0] for piece in pieces)
        gap = round(rng.uniform(0.0, 0.6) * height * 0.6)  # never negative: the pieces never overlap
        row = np.zeros((height, sum(piece.shape[1] for piece in pieces) + gap * (many - 1)), dtype=np.uint8)
        x = 0
        for piece in pieces:
            top = (height - piece.shape[0]) // 2
            row[top : top + piece.shape[0], x : x + piece.shape[1]] = piece
            x += piece.shape[1] + gap
        factor = min(rng.uniform(70, 200) / height, (SIZE - 10) / row.shape[1], (SIZE - 10) / height)
        small = Image.fromarray(row).resize(
            (max(1, round(row.shape[1] * factor)), max(1, round(height * factor))), Image.Resampling.BOX
        )
        slate = np.zeros((SIZE, SIZE), dtype=np.uint8)
        top = int(rng.integers(0, SIZE - small.height + 1))
        left = int(rng.integers(0, SIZE - small.width + 1))
        slate[top : top + small.height, left : left + small.width] = np.asarray(small)
        yield Drawing(to_png(slate, style=str(rng.choice(STYLES))), "pairs", "train", f"drawings x{many}")


def _ink_crop(png: bytes) -> np.ndarray:
    """A slate drawing's ink (255 = ink) cropped to its bounding box, whatever the export style."""
    image = Image.open(io.BytesIO(png))
    alpha = np.asarray(image.getchannel("A")) if image.mode in ("RGBA", "LA") else None
    if alpha is not None and alpha.min() < 255:  # the page's export: ink only in alpha
        ink = alpha
    else:  # opaque: dark ink on light, or light on dark
        gray = np.asarray(image.convert("L"))
        ink = 255 - gray if gray.mean() > 127 else gray
    ys, xs = np.nonzero(ink > 40)
    if not len(ys):
        return np.zeros((1, 1), dtype=np.uint8)
    return np.ascontiguousarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _to_height(piece: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(piece.shape[1] * height / piece.shape[0]))
    return np.asarray(Image.fromarray(piece).resize((width, max(1, height)), Image.Resampling.BILINEAR))
