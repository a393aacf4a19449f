"""Turn any drawing (PNG/JPEG bytes) into a tensor prepared the way MNIST was.

MNIST digits were size-normalised to fit a 20x20 box (keeping the aspect ratio, anti-aliased), then placed in a
28x28 field so that the centre of mass of the ink sits at the centre. Canvas drawings are nothing like that: any size,
anywhere on the canvas, dark or light ink, often on a transparent background. Reproducing MNIST's preparation is what
makes a model trained on MNIST read them.

Pure functions only (bytes/PIL/numpy in, numpy/torch out): imported by the TorchServe handler, the UI and the tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

# Normalisation used in training (MNIST training-set mean and std of pixel values in [0, 1]).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

FIELD = 28  # output side, px
BOX = 20  # the longer side of the digit after scaling, px (as in MNIST)
MAX_PIXELS = 4096 * 4096  # refuse anything larger before decoding it (decompression bombs)
MAX_SIDE = 8192
ALLOWED_FORMATS = {"PNG", "JPEG"}
# A drawing whose darkest and lightest pixels differ by less than this (in 0..1) is blank.
MIN_CONTRAST = 0.1
# Pixels above this fraction of the ink maximum count as ink for the bounding box.
INK_THRESHOLD = 0.1
MIN_INK_PIXELS = 3


class PreprocessError(ValueError):
    """The image cannot be turned into a digit; the message is meant for the user."""

    status = 400


class BlankImageError(PreprocessError):
    """The image has no ink (an empty or uniformly filled canvas)."""

    status = 422


class ImageTooLargeError(PreprocessError):
    """The image has too many pixels to decode safely."""

    status = 413


@dataclass(frozen=True)
class Prepared:
    """A drawing ready for the model."""

    ink: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like an MNIST digit
    inverted: bool  # True when the input was dark ink on a light background
    # Where the 28x28 field sits over the drawing, in the drawing's pixel coordinates: (left, top, right, bottom) of
    # the field's outer edges (may reach past the drawing's edges). A map over the field drawn stretched into this
    # rectangle lies over the strokes it is about (the explanations' heatmap on the page).
    field_box: tuple[float, float, float, float] | None = None

    def tensor(self):
        """The normalised model input, shape (1, 28, 28)."""
        import torch

        return torch.from_numpy(normalise(self.ink)).unsqueeze(0)

    def png(self) -> bytes:
        """The 28x28 image the model sees, as PNG bytes (white on black)."""
        return to_png(self.ink)


def decode(data: bytes) -> Image.Image:
    """Open PNG/JPEG bytes, refusing what is not an image, animated, or too large, before decoding pixels."""
    if not data:
        raise PreprocessError("empty image: the request body had no bytes")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise PreprocessError("not an image: send a PNG or JPEG file") from exc
    except ValueError as exc:  # a recognised header with broken chunks (a short IHDR, a zTXt bomb)
        raise PreprocessError(f"corrupt image: {exc}") from exc
    if image.format not in ALLOWED_FORMATS:
        raise PreprocessError(f"unsupported image format {image.format}: send a PNG or JPEG file")
    width, height = image.size
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(
            f"image too large: {width}x{height} pixels (at most {MAX_PIXELS:,} pixels and {MAX_SIDE} per side)"
        )
    if getattr(image, "is_animated", False):
        raise PreprocessError("animated images are not supported: send a single PNG or JPEG frame")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise PreprocessError(f"corrupt image: {exc}") from exc
    return image


def ink_map(image: Image.Image) -> tuple[np.ndarray, bool]:
    """(H, W) uint8 ink: 0 is background, high is ink; also whether the input was inverted (dark ink).

    Transparency is composited onto the background that contrasts with the strokes (a canvas exported with a
    transparent background has strokes of one colour and nothing else). Polarity comes from the border: the
    background is what surrounds the drawing. Everything here stays 8-bit and in PIL/numpy C loops: only the crop
    around the digit is ever turned into floats (this is what keeps preprocessing cheap).
    """
    grey = _composite(image)  # (H, W) uint8
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    background = int(np.median(border))
    inverted = background > 127
    # ink = |grey - background| on the ink's side; uint8 arithmetic wraps, so clamp through the opposite side first
    ink = (
        np.subtract(background, np.minimum(grey, background), dtype=np.uint8)
        if inverted
        else (np.subtract(np.maximum(grey, background), background, dtype=np.uint8))
    )
    return ink, inverted


def _composite(image: Image.Image) -> np.ndarray:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return np.asarray(image.convert("L"))
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    visible = alpha > 127
    if visible.all():
        return np.asarray(rgba.convert("L"))
    if visible.any():
        # Put the strokes on the opposite background: dark strokes on white, light strokes on black.
        stroke_level = float(np.asarray(rgba.convert("L"))[visible].mean())
        backdrop = 255 if stroke_level < 128 else 0
    else:
        backdrop = 0  # nothing visible: a blank slate, whatever colour its invisible pixels have
    background = Image.new("RGBA", rgba.size, (backdrop, backdrop, backdrop, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert("L"))


def fit_to_field(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, scale the longer side to 20 px, centre the centre of mass in a 28x28 field.

    ink: (H, W) uint8 from ink_map. Returns (28, 28) float32 in [0, 1].
    """
    return fit_with_box(ink)[0]


def fit_with_box(ink: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """fit_to_field, and where the field sits in ink's pixel coordinates (Prepared.field_box)."""
    peak = int(ink.max())
    if peak < MIN_CONTRAST * 255:
        raise BlankImageError("the drawing is blank: draw a digit first")
    mask = ink > INK_THRESHOLD * peak
    if np.count_nonzero(mask) < MIN_INK_PIXELS:
        raise BlankImageError("the drawing is blank: draw a digit first")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / peak
    digit = _scale_longer_side(crop, BOX)  # (h, w), max(h, w) == 20
    field, top, left = _place_by_centre_of_mass(digit)
    # field column j covers crop columns [(j - left) / sx, (j - left + 1) / sx); the same for rows
    sy, sx = digit.shape[0] / crop.shape[0], digit.shape[1] / crop.shape[1]
    box = (cols[0] - left / sx, rows[0] - top / sy, cols[0] + (FIELD - left) / sx, rows[0] + (FIELD - top) / sy)
    return field, tuple(float(v) for v in box)


def _scale_longer_side(crop: np.ndarray, side: int) -> np.ndarray:
    height, width = crop.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # PIL wants (w, h)
    # Area averaging when shrinking is what anti-aliasing a bilevel image does; bilinear when enlarging.
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, resample)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)


def _place_by_centre_of_mass(digit: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The (28, 28) field with digit placed in it; the row and column of digit's top-left corner."""
    height, width = digit.shape
    total = float(digit.sum())
    ys, xs = np.indices(digit.shape)
    com_y, com_x = float((ys * digit).sum()) / total, float((xs * digit).sum()) / total
    # MNIST's centre of mass sits at index 14 (measured on the test set: 13.99, 14.01).
    top = int(np.clip(round(FIELD / 2 - com_y), 0, FIELD - height))
    left = int(np.clip(round(FIELD / 2 - com_x), 0, FIELD - width))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field, top, left


def prepare(data: bytes) -> Prepared:
    """PNG/JPEG bytes -> the 28x28 MNIST-style digit. Raises PreprocessError (or a subclass) with a user message."""
    ink, inverted = ink_map(decode(data))
    field, box = fit_with_box(ink)
    return Prepared(ink=field, inverted=inverted, field_box=box)


def prepare_image(image: Image.Image) -> Prepared:
    """Like prepare(), for an already decoded PIL image (tests, training-time evaluation)."""
    ink, inverted = ink_map(image)
    field, box = fit_with_box(ink)
    return Prepared(ink=field, inverted=inverted, field_box=box)


def normalise(ink: np.ndarray) -> np.ndarray:
    """[0, 1] ink -> the model's input scale (as in training)."""
    return ((ink - MNIST_MEAN) / MNIST_STD).astype(np.float32)


def to_png(ink: np.ndarray) -> bytes:
    """A [0, 1] float image as 8-bit greyscale PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(ink, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
