"""Photos and scans of ink on paper (the photo path): a picture of a digit on paper -> the digit's ink alone, which
preprocess.ink_map then crops, scales and centres as it does a drawing's. Pure numpy/PIL.

Paper is never one flat grey: it has grain, its light falls off, a hand shadows it, it may be lined or squared, and
the ink is blue as often as black. An opaque picture whose border is not one flat grey (canvas exports and
MNIST-style images have a flat border, apart from where the digit touches it), or whose border is crossed by two
rules or more on opposite sides (a clean scan of ruled paper), is taken for one (is_photo); everything else (every
drawing) never comes here. For a photo, on at most PHOTO_SIDE px a side:
1. each colour channel is divided by the paper's light there (a closing on a 64 px copy: it fills the strokes in
   and keeps gradients, shadows, vignetting and the light's colour), so bare paper is 1 under any light;
2. the darkest channel is kept (blue ink is darkest in red, black ink in all);
3. printed rules are divided out: long straight thin dark lines, found by a Hough transform of the ridges of a
   small copy (any tilt up to 15 degrees, each rule on its own for perspective), each divided by its own darkness
   across its width (the median along its length, so a digit written over or along it keeps its own ink). A line
   as dark as ink, or visible along less than RULE_PRESENT of its length, is a stroke and stays;
4. the digit is chosen among the connected parts of what is still dark: the most ink, weighted towards the
   centre, among parts that are not a thin line along or across the picture's edge (the paper's edge, a shadow's,
   a rule cut by the frame) nor lying along it (the desk beyond the paper); parts near it (a 5's bar, a stroke
   broken by faint ink) join it, specks and everything else are dropped. No part dark enough (MIN_DIGIT_INK), or
   too small, is a picture without a digit: 422 "no digit found in the picture" (NoDigitFoundError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .components import components
    from .errors import NoDigitFoundError
else:  # inside the .mar, every file sits flat in the model directory
    from components import components
    from errors import NoDigitFoundError

# What tells a photo from a drawing (the module docstring): a canvas export or an MNIST-style image has a
# border of one grey level, apart from where the digit touches it; paper under a lamp or a camera does not.
FLAT_TOLERANCE = 3  # grey levels from the border's median
FLAT_SHARE = 0.9  # of the border within the tolerance: a flat border, not a photo
PHOTO_SIDE = 256  # px; the photo path works on at most this a side (a digit filling a fifth of it keeps 51 px)
LIGHT_SIDE = 64  # the paper's light is estimated on a copy this small, by a closing LIGHT_SPAN of its side wide:
LIGHT_SPAN = 0.27  # wider than the thickest stroke (a felt pen close up), narrower than a shadow's soft edge
RULE_SIDE = 160  # printed rules are looked for on a copy this small
RULE_SLOPES = np.tan(np.deg2rad(np.arange(-15, 16)))  # a rule's tilt from the axis (rotation and perspective)
RULE_SPAN = 0.6  # a rule's straight run covers at least this share of the picture's width (or height)
RULE_PRESENT = 0.65  # and is visible along at least this share of it: a digit's bar is not that long (the paper's
# edge may hide the rest)
MIN_RULE_DARKNESS = 0.03  # (1 - its transmittance) below this, a "rule" is only the paper's grain
# A line at least this dark (1 - transmittance in its darkest channel) is ink, not a printed rule (a 1 across a
# close crop, a 7's bar along a rule): ink (black 0.9, blue 0.85) is darker than rules (light blue 0.45, a red
# margin 0.55).
INK_DARKNESS = 0.7
RULE_QUANTILE = 0.5  # a rule's transmittance: this quantile along its length (a digit may cover the rest)
MAX_RULES = 40  # rules looked for in each direction (squared paper in a wide shot shows about 20)
COMPONENT_SIDE = 128  # ink is split into connected parts on a copy this small
MIN_PHOTO_INK = 0.15  # darkness (1 - pixel / paper) a pixel needs to count as ink ...
# ... and the digit's strongest ink (its 90th percentile) at least this: measured on training/photos.py's pictures,
# digits' 0.44-0.98 (1st percentile 0.57), what is left of rules, shadows and the paper's edge on pictures without
# a digit mostly 0.16-0.3
MIN_DIGIT_INK = 0.4
# Fainter ink (pencil, light-blue ballpoint, a washed-out or enlarged small scan: 0.16-0.4) is a digit when there is
# enough of it: its darkness above the paper's, summed over the digit, at least this share of the picture. What is
# left of faint shadows, coarse grain and rules on pictures without a digit stays below 0.0017 (training/photos.py,
# its tuning half); a faint digit's median is 0.002.
FAINT_DIGIT_INK = 0.18
FAINT_DIGIT_MASS = 0.002
MIN_DIGIT_SIZE = 0.04  # the digit's longer side, as a share of the picture's longer side
DIGIT_REACH = 0.35  # parts this close to the main one (a share of its longer side) belong to the digit (a 5's bar)
NO_DIGIT = "no digit found in the picture: photograph one digit written in dark ink, large and in even light"


def is_photo(grey: np.ndarray) -> bool:
    """Light paper whose border is not one flat grey (texture, noise, uneven light), or is crossed by two rules or
    more on opposite sides (a clean scan of lined or squared paper): a photo or a scan."""
    sides = [grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]]
    border = np.concatenate(sides).astype(np.int16)
    median = int(np.median(border))
    if float(np.percentile(border, 75)) < 96:  # not light paper (a drawing in light ink on black, a dark picture)
        return False
    if np.count_nonzero(np.abs(border - median) <= FLAT_TOLERANCE) < FLAT_SHARE * border.size:
        return True
    top, bottom, left, right = (_dark_runs(side, paper=median) for side in sides)
    return min(left, right) >= 2 or min(top, bottom) >= 2


def _dark_runs(line: np.ndarray, *, paper: int) -> int:
    """How many separate runs of pixels along a border are clearly darker than the paper (rules crossing it)."""
    dark = line.astype(np.int16) < paper - max(10, paper // 10)
    return int(np.count_nonzero(dark[1:] & ~dark[:-1]) + dark[0])


def photo_ink(image: Image.Image, *, grey: np.ndarray) -> np.ndarray:
    """(h, w) uint8 ink of the digit in a photo or scan of paper, at most PHOTO_SIDE px a side: the paper's light
    divided out, printed rules divided out, the darkest channel, and only the digit's parts kept.
    grey: ink_map's working copy (used for greyscale images). Raises NoDigitFoundError."""
    pixels = np.asarray(_photo_copy(image, grey=grey), dtype=np.float32)
    channels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # (C, h, w)
    # Each channel over its paper's light (1 on bare paper, whatever the light's colour), then the darkest channel:
    # blue ink is darkest in red, black ink in all. (The light of the darkest channel alone: 0.4 points worse.) A
    # rule divided out of it takes the ink crossing it back to the ink's own darkness there, whatever the colours.
    darkest = np.min([channel / np.maximum(_paper_light(channel), 1.0) for channel in channels], axis=0)
    transmittance = np.clip(darkest, 0.0, 1.0)[None]  # (1, h, w)
    _divide_out_rules(transmittance)
    return _digit_ink(1.0 - transmittance[0])


def _photo_copy(image: Image.Image, *, grey: np.ndarray) -> Image.Image:
    """The picture at most PHOTO_SIDE a side (area averaging): RGB, or L for greyscale images."""
    greyscale = image.mode.startswith(("1", "L", "I", "F"))
    picture = Image.fromarray(grey) if greyscale else image
    factor = math.ceil(max(picture.size) / PHOTO_SIDE)
    picture = picture.reduce(factor) if factor > 1 and picture.mode in ("L", "RGB", "YCbCr") else picture
    return picture if greyscale else picture.convert("RGB")  # (a JPEG's YCbCr, palette, opaque RGBA)


def _paper_light(channel: np.ndarray) -> np.ndarray:
    """(h, w) the paper's brightness under its light at every pixel (0-255): a closing (max, then min filter) on a
    small copy fills the ink in and keeps the slow changes (gradients, shadows, vignetting); smoothed and enlarged
    back."""
    height, width = channel.shape
    small = _reduce_mean(channel, math.ceil(max(height, width) / LIGHT_SIDE))
    size = max(3, round(max(small.shape) * LIGHT_SPAN) // 2 * 2 + 1)  # odd
    closed = _rank_filter(_rank_filter(small, size, np.maximum), size, np.minimum)
    # smoothed, but never above the closing: a blur across a sharp step (the paper's edge, a hard shadow) would make
    # the dark side's light too bright there, and a band along the step would look like ink
    light = np.minimum(_box_mean(closed, size // 2 | 1), closed)
    return np.asarray(Image.fromarray(light, mode="F").resize((width, height), Image.Resampling.BILINEAR))


def _rank_filter(values: np.ndarray, size: int, extreme: np.ufunc) -> np.ndarray:
    """The max (extreme=np.maximum) or min (np.minimum) over a size x size square around each pixel, edges repeated.
    Separable (a square's max is the max of its rows' maxes), and each 1-D pass doubles the window it covers, so it
    takes log2(size) array operations rather than size."""
    half = size // 2
    for axis in (0, 1):
        lines = np.moveaxis(values, axis, 0)  # the pass runs along the first axis
        covered, span = np.pad(lines, ((half, half), (0, 0)), mode="edge"), 1
        while span * 2 <= size:  # covered[i]: the extreme of the padded lines i .. i + 2 * span - 1
            covered, span = extreme(covered[:-span], covered[span:]), span * 2
        count = lines.shape[0]  # a window of `size` is two overlapping windows of `span`
        values = np.moveaxis(extreme(covered[:count], covered[size - span : size - span + count]), 0, axis)
    return values


def _box_mean(values: np.ndarray, size: int) -> np.ndarray:
    """The mean over a size x size square around each pixel, edges repeated (running sums)."""
    half = size // 2
    for axis in (0, 1):
        lines = np.moveaxis(values, axis, 0)
        sums = np.cumsum(np.pad(lines, ((half + 1, half), (0, 0)), mode="edge"), axis=0, dtype=np.float64)
        values = np.moveaxis((sums[size:] - sums[:-size]) / size, 0, axis)
    return values.astype(np.float32)


@dataclass(frozen=True)
class Rules:
    """The printed rules found across a picture, in its pixels: rule i runs along
    row = intercept[i] + slope[i] * (column - width / 2), half_width[i] rows either side."""

    slope: np.ndarray  # (R,) float
    intercept: np.ndarray  # (R,) float
    half_width: np.ndarray  # (R,) int


def _divide_out_rules(transmittance: np.ndarray) -> int:
    """Find the printed rules (lined or squared paper, a margin line) and divide each one's transmittance out, in
    place: what crosses a rule (the digit) keeps its own darkness. Rows first, then columns. Returns how many."""
    divided = 0
    for vertical in (False, True):
        # columns are handled as the rows of a transposed copy (contiguous: gathers along a view cost 5x)
        lines = np.ascontiguousarray(transmittance.transpose(0, 2, 1)) if vertical else transmittance
        darkness = 1.0 - lines.min(axis=0)
        rules = _find_rules(darkness)
        if rules is not None:
            divided += _divide_out(lines, rules, darkness=darkness)
            if vertical:
                transmittance[...] = lines.transpose(0, 2, 1)
    return divided


def _find_rules(darkness: np.ndarray) -> Rules | None:
    """Near-horizontal straight rules across (h, w) darkness: a Hough transform over RULE_SLOPES of the thin dark
    lines (_ridges) of a small copy, strongest first, each a run of at least RULE_SPAN of the width."""
    factor = math.ceil(max(darkness.shape) / RULE_SIDE)
    small = _reduce_mean(darkness, factor)
    height, width = small.shape
    ridge = _ridges(small)
    ys, xs = np.nonzero(ridge > max(_noise_floor(ridge), MIN_RULE_DARKNESS / 2))
    if len(ys) < RULE_SPAN * width:
        return None
    margin = math.ceil(abs(RULE_SLOPES).max() * width / 2) + 1
    rows = height + 2 * margin
    intercepts = np.rint(ys[None, :] - RULE_SLOPES[:, None] * (xs[None, :] - width / 2)).astype(np.intp) + margin
    cells = (np.arange(len(RULE_SLOPES))[:, None] * rows + intercepts).ravel()
    votes = np.bincount(cells, minlength=len(RULE_SLOPES) * rows).reshape(len(RULE_SLOPES), rows)
    votes[:, 1:-1] += (votes[:, :-2] + votes[:, 2:]) // 2  # a rule between two rows votes in both
    found: list = []
    while len(found) < MAX_RULES:
        slope_index, row = np.unravel_index(int(votes.argmax()), votes.shape)
        peak = int(votes[slope_index, row])
        if peak < RULE_SPAN * width:
            break
        weak = np.flatnonzero(votes[slope_index] < peak / 2)  # the rule's width: up to where its votes get weak
        top = weak[weak < row].max(initial=-1) + 1
        bottom = weak[weak > row].min(initial=rows) - 1
        votes[:, max(0, top - 2) : bottom + 3] = 0  # one rule, whatever its width
        half = math.ceil((bottom - top + 1) * factor / 2) + factor
        found.append((RULE_SLOPES[slope_index], (row - margin + 0.5) * factor - 0.5, half))
    if not found:
        return None
    slope, intercept, half = (np.array(column) for column in zip(*found, strict=True))
    return Rules(slope=slope.astype(np.float32), intercept=intercept.astype(np.float32), half_width=half)


def _ridges(darkness: np.ndarray) -> np.ndarray:
    """How much darker each pixel is than both pixels a few rows above and below it: high along thin horizontal
    lines (rules, thin or thick), low on slow changes (a shadow) and on one-sided steps (the paper's edge)."""
    best = np.zeros_like(darkness)
    for gap in (2, 5):
        padded = np.pad(darkness, ((gap, gap), (0, 0)), mode="reflect")
        np.maximum(best, darkness - np.maximum(padded[: -2 * gap], padded[2 * gap :]), out=best)
    return best


def _reduce_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """(h, w) -> (ceil(h / factor), ceil(w / factor)) float32: block means (Pillow's reduce: 6x numpy's reshape)."""
    if factor == 1:
        return values
    return np.asarray(Image.fromarray(values.astype(np.float32, copy=False), mode="F").reduce(factor))


def _noise_floor(darkness: np.ndarray) -> float:
    """The darkness bare paper reaches: its median plus 6 robust standard deviations (most pixels are paper),
    estimated on every 7th pixel."""
    sample = darkness.ravel()[::7]
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    return median + 6 * spread


def _divide_out(transmittance: np.ndarray, rules: Rules, *, darkness: np.ndarray) -> int:
    """Divide rules out of (C, h, w) transmittance in place (darkness: 1 - its darkest channel): across its width, a
    rule's transmittance is the median along its length (robust to the digit crossing it), sampled along its centre
    line to a fraction of a pixel. A "rule" that is too faint, not visible along most of its length (a digit's long
    bar crosses only part of the picture) or as dark as ink (a 1 across a close crop, a 7's bar along a rule) is
    left. Returns how many were divided out."""
    height = darkness.shape[0]
    reach = int(rules.half_width.max())
    offsets = np.arange(-reach, reach + 1, dtype=np.float32)  # (O,)
    centre = _rule_centres(darkness[None], rules, offsets)  # (R, W)
    on = (centre >= 0) & (centre <= height - 1)
    every = slice(None, None, 2)  # every other column is plenty for medians along a rule
    straight = _sample_rows(transmittance[:, :, every], centre[:, None, every] + offsets[None, :, None])
    # (C, R, O): each rule's transmittance across its width, the median along its length: a digit written along a
    # rule for up to half its length does not make it look darker (0.4 or 0.6 instead: a little worse, measured)
    profile = _quantile_where(straight, on[None, :, None, every], RULE_QUANTILE)
    profile[:, np.abs(offsets)[None, :] > rules.half_width[:, None]] = 1.0
    across = 1.0 - profile.min(axis=0)  # (R, O)
    core = across.argmax(axis=1)
    peak = across[np.arange(len(core)), core]
    # visible: the darkest within a row of the core, at least half the rule's darkness, in most of its columns
    rows = centre[:, None, :] + offsets[core][:, None, None] + np.arange(-1.0, 2.0)[:, None]  # (R, 3, W)
    near = _sample_rows(darkness[None], rows)[0].max(axis=1)
    present = ((near >= peak[:, None] / 2) & on).sum(axis=1) / np.maximum(on.sum(axis=1), 1)
    kept = (on.mean(axis=1) >= RULE_PRESENT) & (peak >= MIN_RULE_DARKNESS) & (present >= RULE_PRESENT)
    kept &= peak < INK_DARKNESS  # printed, not written
    if kept.any():
        _divide_bands(transmittance, centre=centre[kept], half_width=rules.half_width[kept], profile=profile[:, kept])
    return int(kept.sum())


def _divide_bands(transmittance: np.ndarray, *, centre: np.ndarray, half_width: np.ndarray, profile: np.ndarray):
    """Divide every pixel within half_width[i] of rule i's centre line (centre: (R, W) rows) by the rule's
    transmittance at its offset from that line (profile: (C, R, O) at offsets -reach..reach, interpolated)."""
    height, width = transmittance.shape[1:]
    reach = (profile.shape[2] - 1) // 2
    steps = np.arange(-reach, reach + 2)
    rows = np.floor(centre).astype(np.intp)[:, None, :] + steps[None, :, None]  # (R, K, W)
    offset = rows - centre[:, None, :]
    band = (np.abs(offset) <= half_width[:, None, None]) & (rows >= 0) & (rows < height)
    rule = np.broadcast_to(np.arange(len(centre))[:, None, None], band.shape)[band]
    columns = np.broadcast_to(np.arange(width), band.shape)[band]
    rows, offset = rows[band], offset[band] + reach
    low = np.minimum(np.floor(offset).astype(np.intp), 2 * reach - 1)
    fraction = (offset - low).astype(np.float32)
    flat = profile.reshape(len(profile), -1)  # (C, R * O): one gather rather than two index arrays
    index = rule * profile.shape[2] + low
    divisor = np.take(flat, index, axis=1) * (1 - fraction) + np.take(flat, index + 1, axis=1) * fraction  # (C, N)
    # where two rules' bands overlap (close rules, a grid's crossings) a pixel is divided by both: summed as logs
    pixels = rows * width + columns
    for channel, divide in zip(transmittance, np.log(np.maximum(divisor, 1e-3)), strict=True):
        total = np.bincount(pixels, weights=divide, minlength=height * width).reshape(height, width)
        np.minimum(channel * np.exp(-total), 1.0, out=channel)


def _rule_centres(darkness: np.ndarray, rules: Rules, offsets: np.ndarray) -> np.ndarray:
    """(R, W) float: each rule's centre row in each column, refined from the Hough transform's coarse line by the
    darkness-weighted centre across it, and a robust straight fit (the median on each half of the picture).
    darkness: (1, h, w)."""
    width = darkness.shape[2]
    columns = np.arange(width, dtype=np.float32)
    centre = rules.intercept[:, None] + rules.slope[:, None] * (columns[None, :] - width / 2)  # (R, W)
    every = slice(None, None, 2)  # every other column is plenty for the fit
    samples = _sample_rows(darkness[:, :, every], centre[:, None, every] + offsets[None, :, None])[0]  # (R, O, W/2)
    weight = samples.sum(axis=1)  # (R, W/2)
    shift = (samples * offsets[None, :, None]).sum(axis=1) / np.maximum(weight, 1e-6)
    seen = weight >= np.median(weight, axis=1, keepdims=True) / 2
    sampled = columns[None, every]
    left, right = seen & (sampled < width / 2), seen & (sampled >= width / 2)
    x_left, x_right = _quantile_where(sampled, left), _quantile_where(sampled, right)
    y_left, y_right = _quantile_where(shift, left), _quantile_where(shift, right)
    fit = y_left[:, None] + (y_right - y_left)[:, None] * (columns[None, :] - x_left[:, None])
    fit /= np.maximum(x_right - x_left, 1.0)[:, None]
    usable = (left.sum(axis=1) >= 3) & (right.sum(axis=1) >= 3)
    return centre + np.where(usable[:, None], fit, 0.0)


def _quantile_where(values: np.ndarray, where: np.ndarray, q: float = 0.5) -> np.ndarray:
    """The q-quantile (lower) over the last axis of the values where `where` holds (broadcast), for every row at
    once: the others sort last. NaN where nothing holds."""
    values, where = np.broadcast_arrays(values, where)
    ordered = np.sort(np.where(where, values, np.inf), axis=-1)
    count = where.sum(axis=-1)
    rank = np.floor(q * np.maximum(count - 1, 0)).astype(np.intp)
    picked = np.take_along_axis(ordered, rank[..., None], axis=-1)[..., 0]
    return np.where(count > 0, picked, np.nan)


def _sample_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values (C, h, w) at fractional rows (..., w), one per column: linear between rows, clamped at the edges;
    returns (C, ..., w)."""
    height, width = values.shape[1:]
    rows = np.clip(rows, 0, height - 1)
    low = np.floor(rows).astype(np.intp)
    fraction = (rows - low).astype(np.float32)
    flat = values.reshape(len(values), -1)
    index = low * width + np.arange(width)  # (..., w) into the flattened picture
    below = np.take(flat, np.minimum(index + width, flat.shape[1] - 1), axis=1)
    return np.take(flat, index, axis=1) * (1 - fraction) + below * fraction


def _digit_ink(darkness: np.ndarray) -> np.ndarray:
    """(h, w) float darkness -> uint8 ink of the digit only: the connected parts of the ink that make up the digit
    (_pick_digit), scaled so that the stroke's core is full ink and bare paper 0. Raises NoDigitFoundError."""
    floor = max(_noise_floor(darkness), MIN_PHOTO_INK / 2)
    mask = darkness > max(floor, MIN_PHOTO_INK)
    keep, around = _pick_digit(mask, darkness)
    level = float(np.percentile(darkness[keep], 90))
    if level < MIN_DIGIT_INK and not _enough_faint_ink(darkness[keep], level=level, floor=floor, pixels=darkness.size):
        raise NoDigitFoundError(NO_DIGIT)
    ink = np.clip((darkness - floor) / (level - floor), 0.0, 1.0) * around
    return np.round(ink * 255).astype(np.uint8)


def _enough_faint_ink(kept: np.ndarray, *, level: float, floor: float, pixels: int) -> bool:
    """Whether ink fainter than MIN_DIGIT_INK (the chosen parts' darkness, kept) is still a digit: not too faint,
    and enough of it above the paper (a digit's strokes, not a speck or a shadow's fringe)."""
    if level < FAINT_DIGIT_INK:
        return False
    return float(np.clip(kept - floor, 0.0, None).sum()) / pixels >= FAINT_DIGIT_MASS


def _pick_digit(mask: np.ndarray, darkness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) bool: the parts of mask that make up the digit, and the blocks around them (where the stroke's soft
    edge, below the mask's threshold, still belongs to it). The parts are found on a small copy; the main part is
    the one with the most ink, weighted towards the centre, among those that are not a long thin line along the
    picture's edge (the paper's edge, a shadow's, a rule that was not divided out); parts near it join it."""
    factor = math.ceil(max(mask.shape) / COMPONENT_SIDE)
    small = _reduce_mean(mask.astype(np.float32), factor) > 0  # any ink in the block: strokes stay connected
    labels, count = components(small)
    if count == 0:
        raise NoDigitFoundError(NO_DIGIT)
    parts = _part_stats(labels, count, weights=_reduce_mean(darkness * mask, factor))
    main = int(np.argmax(parts.score))
    if parts.score[main] <= 0 or max(parts.box_height[main], parts.box_width[main]) < MIN_DIGIT_SIZE * max(small.shape):
        raise NoDigitFoundError(NO_DIGIT)
    chosen = _near_parts(parts, main)
    keep_small = np.isin(labels, np.asarray(chosen) + 1)
    around = _rank_filter(keep_small, 3, np.maximum) if factor == 1 else keep_small

    def enlarged(blocks: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(blocks, factor, axis=0), factor, axis=1)[: mask.shape[0], : mask.shape[1]]

    return enlarged(keep_small) & mask, enlarged(around)


@dataclass(frozen=True)
class _PartStats:
    """Per connected part (index = label - 1): box and how digit-like it is (score <= 0: not the digit)."""

    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray
    mass: np.ndarray
    score: np.ndarray

    @property
    def box_height(self) -> np.ndarray:
        return self.bottom - self.top + 1

    @property
    def box_width(self) -> np.ndarray:
        return self.right - self.left + 1


def _part_stats(labels: np.ndarray, count: int, *, weights: np.ndarray) -> _PartStats:
    height, width = labels.shape
    ys, xs = np.nonzero(labels)
    index = labels[ys, xs] - 1
    top, left = np.full(count, height), np.full(count, width)
    bottom, right = np.full(count, -1), np.full(count, -1)
    np.minimum.at(top, index, ys)
    np.minimum.at(left, index, xs)
    np.maximum.at(bottom, index, ys)
    np.maximum.at(right, index, xs)
    mass = np.bincount(index, weights=weights[ys, xs], minlength=count)
    area = np.bincount(index, minlength=count)
    peak = np.zeros(count)
    np.maximum.at(peak, index, weights[ys, xs])
    strength = (peak / peak.max()) ** 2  # faint parts (what is left of a shadow's edge, of a rule) count less
    centre_y, centre_x = (top + bottom) / 2 / height - 0.5, (left + right) / 2 / width - 0.5
    centrality = 1.0 - (centre_y**2 + centre_x**2)  # 1 at the centre, 0.5 in a corner
    edge = (top == 0) | (left == 0) | (bottom == height - 1) | (right == width - 1)
    length = np.maximum(bottom - top + 1, right - left + 1)
    # along most of a side, and thin (its mean width, area / length, a few percent of the picture)
    line = (length > 0.6 * min(height, width)) & (area / length < 0.04 * min(height, width))
    # lying along an edge of the picture (the desk beyond the paper's edge): a digit's strokes only end there
    sides = [(labels[0], width), (labels[-1], width), (labels[:, 0], height), (labels[:, -1], height)]
    along = np.max([np.bincount(side, minlength=count + 1)[1:] / size for side, size in sides], axis=0) > 0.5
    # from one edge of the picture to the opposite one, and not wide: the paper's edge, a shadow's
    across = ((top == 0) & (bottom == height - 1)) | ((left == 0) & (right == width - 1))
    across &= area / length < 0.08 * min(height, width)
    score = mass * strength * centrality * np.where(edge, 0.3, 1.0) * ~((edge & line) | along | across)
    return _PartStats(top=top, bottom=bottom, left=left, right=right, mass=mass, score=score)


def _near_parts(parts: _PartStats, main: int) -> list[int]:
    """The main part and the parts near its box (a 5's bar, a 4 in two strokes, a stroke broken by faint ink)."""
    reach = DIGIT_REACH * max(parts.box_height[main], parts.box_width[main])
    near = (
        (parts.bottom >= parts.top[main] - reach)
        & (parts.top <= parts.bottom[main] + reach)
        & (parts.right >= parts.left[main] - reach)
        & (parts.left <= parts.right[main] + reach)
        & (parts.score > 0)
        & (parts.mass >= 0.02 * parts.mass[main])
    )
    return [int(i) for i in np.flatnonzero(near)]
