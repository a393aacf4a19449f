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
from PIL import Image, ImageFilter

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
    return _style(mask, style)


def _place(shape: np.ndarray, *, rng: np.random.Generator, size: int) -> np.ndarray:
    ys, xs = np.nonzero(shape)
    crop = shape[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    crop = crop[:size, :size]
    h, w = crop.shape
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    canvas = np.zeros((size, size), dtype=np.uint8)
    canvas[top : top + h, left : left + w] = crop
    return canvas


def _style(mask: np.ndarray, style: str) -> Image.Image:
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
