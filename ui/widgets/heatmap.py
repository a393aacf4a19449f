"""An explanation's 28x28 attribution map as pictures (numpy + PIL, no torch): over the 28x28 image the model saw,
and over the drawing itself, stretched into the field box the handler reported.

Colours diverge around 0: red is evidence for the digit explained, blue evidence against it, and the more a pixel
counts, the more opaque its colour. Both signs share one scale (the map's largest magnitude), so red and blue of the
same strength mean the same amount. Integrated Gradients maps are speckled pixel to pixel: a light 3x3 blur makes
the strokes that matter readable (the caption says so).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from records.explanations import FieldBox

RED = np.array([220, 38, 38], dtype=np.float32)  # for the digit
BLUE = np.array([37, 99, 235], dtype=np.float32)  # against it
MAX_ALPHA = 0.85  # the ink under the strongest pixels stays visible
GAMMA = 0.6  # lifts weak pixels a little, so that the map is more than its three strongest pixels
PREVIEW_SIDE = 224  # px: the 28x28 field at 8x
# The map over the drawing is drawn at most this many px a side (an uploaded picture can be 2048 px): its cost, and
# what one Why? costs the page's process, stays that of a slate drawing
DRAWING_SIDE = 320
INK_GREY = 150  # the drawing and the field are shown as grey ink on white under the colours


@dataclass(frozen=True)
class Legend:
    """What the colours mean for one map (for the caption)."""

    scale: float  # the magnitude drawn fully opaque
    positive: float  # sum of the positive attributions (evidence for)
    negative: float  # sum of the negative ones (evidence against, <= 0)


def smooth(attributions: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur ([1 2 1] / 4 each way), edges padded with 0: (28, 28) -> (28, 28)."""
    padded = np.pad(np.asarray(attributions, dtype=np.float32), 1)
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def colorize(attributions: np.ndarray) -> tuple[Image.Image, Legend]:
    """A (28, 28) map -> a 28x28 RGBA image (red +, blue -, alpha by magnitude, symmetric around 0) and its legend."""
    values = np.asarray(attributions, dtype=np.float32)
    scale = float(np.abs(values).max())
    strength = np.abs(values) / scale if scale > 0 else np.zeros_like(values)
    rgba = np.zeros((*values.shape, 4), dtype=np.float32)
    rgba[..., :3] = np.where((values >= 0)[..., None], RED, BLUE)
    rgba[..., 3] = MAX_ALPHA * 255 * strength**GAMMA
    legend = Legend(scale=scale, positive=float(values[values > 0].sum()), negative=float(values[values < 0].sum()))
    return Image.fromarray(rgba.round().astype(np.uint8), "RGBA"), legend


def over_field(colours: Image.Image, preview_png: bytes | None) -> bytes:
    """The colours over the 28x28 image the model saw (grey ink on white), PREVIEW_SIDE px square, crisp pixels."""
    if preview_png is None:
        field = Image.new("L", (28, 28), 0)
    else:
        field = Image.open(io.BytesIO(preview_png)).convert("L").resize((28, 28))
    base = _grey_ink(np.asarray(field, dtype=np.float32) / 255)  # the preview is white ink on black
    size = (PREVIEW_SIDE, PREVIEW_SIDE)
    crisp = Image.Resampling.NEAREST
    picture = Image.alpha_composite(base.resize(size, crisp), colours.resize(size, crisp))
    return _png(picture)


def over_drawing(colours: Image.Image, drawing_png: bytes, box: FieldBox) -> bytes:
    """The colours over the drawing (grey ink on white), stretched into box (the drawing's pixels; it may reach past
    the drawing's edges, which crops it). The result has the drawing's size, or at most DRAWING_SIDE px a side."""
    drawing: Image.Image = Image.open(io.BytesIO(drawing_png))
    drawing.load()
    factor = min(1.0, DRAWING_SIDE / max(drawing.size))
    if factor < 1:
        drawing = drawing.convert("RGBA").resize(
            (max(1, round(drawing.width * factor)), max(1, round(drawing.height * factor))), Image.Resampling.BOX
        )
        box = FieldBox(box.left * factor, box.top * factor, box.right * factor, box.bottom * factor)
    ink = _ink(drawing)
    picture = _grey_ink(ink)
    width, height = round(box.right - box.left), round(box.bottom - box.top)
    if width > 0 and height > 0:
        stretched = colours.resize((width, height), Image.Resampling.BILINEAR)
        layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        layer.paste(stretched, (round(box.left), round(box.top)))
        picture = Image.alpha_composite(picture, layer)
    return _png(picture)


def _ink(drawing: Image.Image) -> np.ndarray:
    """How much ink each pixel holds, 0..1, for the slate's dark-on-white or transparent drawings."""
    rgba = np.asarray(drawing.convert("RGBA"), dtype=np.float32) / 255
    alpha = rgba[..., 3]
    if alpha.min() < 1:  # a transparent background: the alpha is the ink
        return alpha
    return 1 - rgba[..., :3].mean(axis=-1)


def _grey_ink(ink: np.ndarray) -> Image.Image:
    """ink (H, W) in 0..1 -> RGBA, grey ink on white."""
    grey = 255 - (255 - INK_GREY) * np.clip(ink, 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgba = np.concatenate([rgb, np.full((*ink.shape, 1), 255, dtype=np.float32)], axis=-1)
    return Image.fromarray(rgba.round().astype(np.uint8), "RGBA")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # fast zlib: optimize=True made a picture ~6x dearer to draw (150 ms against 26 ms, 2026-12-04) for ~15% fewer bytes
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
