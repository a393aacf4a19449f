"""Render MNIST digits as web-canvas drawings, to evaluate the whole path (PNG -> preprocessing -> model).

A canvas drawing is a uniform-width pen stroke, anywhere on a 280x280 slate, any size, exported in one of three
styles. We approximate one from an MNIST digit: enlarge it, threshold it into a crisp shape, thin or thicken the
stroke, anti-alias the edges, and place it at random.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = ("black_on_white", "white_on_black", "transparent")


@dataclass(frozen=True)
class CanvasSpec:
    size: int = 280
    min_height: int = 70  # digit height on the slate, px
    max_height: int = 250
    # Stroke change as a morphological filter size: negative thins (MinFilter), positive thickens (MaxFilter).
    stroke_filters: tuple[int, ...] = (-9, -5, 0, 5, 9)


def render(digit: np.ndarray, *, rng: np.random.Generator, style: str, spec: CanvasSpec = CanvasSpec()) -> Image.Image:
    """One (28, 28) uint8 MNIST digit -> a canvas image (RGB, or RGBA for 'transparent')."""
    height = int(rng.integers(spec.min_height, spec.max_height + 1))
    factor = height / 20  # MNIST digits fill a 20 px box
    side = max(28, round(28 * factor))
    big = Image.fromarray(digit, mode="L").resize((side, side), Image.Resampling.BILINEAR)
    shape = big.point(lambda v: 255 if v > 90 else 0)
    change = int(rng.choice(spec.stroke_filters)) * max(1, round(factor / 8))
    change = change + (1 - change % 2) if change else 0  # filter sizes must be odd
    if change > 0:
        shape = shape.filter(ImageFilter.MaxFilter(change))
    elif change < 0:
        thinned = shape.filter(ImageFilter.MinFilter(-change))
        kept = np.count_nonzero(np.asarray(thinned)) / max(1, np.count_nonzero(np.asarray(shape)))
        shape = thinned if kept >= 0.3 else shape  # thin the pen, never erase the digit
    shape = shape.filter(ImageFilter.GaussianBlur(0.8))  # anti-aliased edges, as a canvas draws them
    mask = _place(np.asarray(shape), rng=rng, size=spec.size)
    return styled(mask, style)


def _place(shape: np.ndarray, *, rng: np.random.Generator, size: int) -> np.ndarray:
    ys, xs = np.nonzero(shape)
    crop = shape[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    crop = crop[:size, :size]
    h, w = crop.shape
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    canvas = np.zeros((size, size), dtype=np.uint8)
    canvas[top : top + h, left : left + w] = crop
    return canvas


def styled(mask: np.ndarray, style: str) -> Image.Image:
    """(H, W) uint8 ink mask (255 = full ink) -> the image in one of the export STYLES the handler accepts."""
    if style == "black_on_white":
        return Image.fromarray(255 - mask, mode="L").convert("RGB")
    if style == "white_on_black":
        return Image.fromarray(mask, mode="L").convert("RGB")
    if style == "transparent":
        # What canvas.toDataURL() gives for dark strokes: transparent *black* background, ink only in alpha.
        rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
        rgba[..., 3] = mask
        return Image.fromarray(rgba, mode="RGBA")
    raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")


def to_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_set(
    images: np.ndarray, labels: np.ndarray, *, count: int, seed: int = 0
) -> Iterator[tuple[bytes, int, str]]:
    """(png, label, style) for `count` test digits in each of the three styles, reproducible from seed."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=count, replace=False)
    for style in STYLES:
        for index in picks:
            yield to_png(render(images[index], rng=rng, style=style)), int(labels[index]), style


# ---- pen-style drawings: the digit's skeleton redrawn with a uniform round pen, as a canvas user draws it --------


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image (vectorised; each pass peels one layer of pixels)."""
    image = mask.astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = np.pad(image, 1)
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            neighbours = sum(x.astype(np.int8) for x in n)  # P2..P9 clockwise from north
            transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(np.int8) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            south_east = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)  # the two sub-iterations of Zhang-Suen
            north_west = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            side = south_east if step == 0 else north_west
            peel = (image == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            if peel.any():
                image[peel] = 0
                changed = True
    return image.astype(bool)


def render_pen(
    digit: np.ndarray, *, rng: np.random.Generator, style: str, size: int = 280, pen_ratio: tuple = (0.05, 0.2)
) -> Image.Image:
    """One MNIST digit as a user would draw it: its skeleton traced with a round pen of uniform width."""
    upscale = 4
    big = np.asarray(Image.fromarray(digit, mode="L").resize((28 * upscale, 28 * upscale), Image.Resampling.BILINEAR))
    ys, xs = np.nonzero(skeleton(big > 100))
    height = int(rng.integers(100, 251))  # the digit's height on the slate, px
    factor = height / max(1, ys.max() - ys.min() + 1)
    pen = max(3.0, height * rng.uniform(*pen_ratio))
    radius = pen / 2
    span = max(xs.max() - xs.min(), ys.max() - ys.min(), 1)
    factor = min(factor, (size - 4 - pen) / span)  # the whole drawing, pen included, stays on the slate
    left, right, top, bottom = xs.min() * factor, xs.max() * factor, ys.min() * factor, ys.max() * factor
    dx = rng.uniform(radius + 2 - left, max(radius + 2 - left, size - radius - 2 - right))
    dy = rng.uniform(radius + 2 - top, max(radius + 2 - top, size - radius - 2 - bottom))
    slate = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(slate)
    for y, x in zip(ys * factor + dy, xs * factor + dx, strict=True):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return styled(np.asarray(slate), style)


def pen_set(images: np.ndarray, labels: np.ndarray, *, count: int, seed: int = 0) -> Iterator[tuple[bytes, int, str]]:
    """(png, label, style): `count` test digits drawn pen-style in each of the three styles."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=count, replace=False)
    for style in STYLES:
        for index in picks:
            yield to_png(render_pen(images[index], rng=rng, style=style)), int(labels[index]), style
