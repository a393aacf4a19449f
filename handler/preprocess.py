"""Turn any drawing (PNG/JPEG bytes) into a tensor prepared the way MNIST was.

MNIST digits were size-normalised to fit a 20x20 box (keeping the aspect ratio, anti-aliased), then placed in a
28x28 field so that the centre of mass of the ink sits at the centre. Canvas drawings are nothing like that: any size,
anywhere on the canvas, dark or light ink, often on a transparent background. Reproducing MNIST's preparation is what
makes a model trained on MNIST read them.

Photos and scans of ink on paper take their own path (handler/photos.py) before that same crop, scale and
centring: an opaque picture whose border is not one flat grey, or is crossed by two rules or more on opposite sides,
is taken for one, and gives the digit's ink alone (the paper's light, its printed rules and everything but the digit
taken out). Everything else (every drawing) is read exactly as it was before that path existed.

Pure functions only (bytes/PIL/numpy in, numpy/torch out): imported by the TorchServe handler, the UI and the tests.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageChops, UnidentifiedImageError

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .errors import BlankImageError, ImageTooLargeError, PreprocessError
    from .photos import is_photo, photo_ink
else:  # inside the .mar, every file sits flat in the model directory
    from errors import BlankImageError, ImageTooLargeError, PreprocessError
    from photos import is_photo, photo_ink

# Normalisation used in training (MNIST training-set mean and std of pixel values in [0, 1]).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

FIELD = 28  # output side, px
BOX = 20  # the longer side of the digit after scaling, px (as in MNIST)

# What one request may cost is bounded before the expensive steps (docs/model-card.md "Preprocessing";
# `make bench-inputs` measures the dearest image accepted against a drawing). Everything after decoding works on at
# most WORK_SIDE px a side, so its cost is fixed; decoding is what the limits below bound.
# PNG must be decoded in full, and inflating and unfiltering cost by the byte: ~45 ms for 4 MB of RGBA noise, the
# most a 4 MiB body can carry. The slate sends 280x280 RGBA (313,600 bytes of samples; Number mode's 840x280,
# 940,800: ui/canvas.js draws its export at one pixel per CSS pixel); 1.25 MiB of samples (e.g. 572x572 RGBA,
# 1144x1144 greyscale) leaves twice a digit slate's side.
MAX_PNG_SAMPLE_BYTES = 1280 * 1024
MAX_PNG_SIDE = 2048
# JPEG is decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, `Image.draft`), so large pixel counts stay cheap; but every
# coefficient must still be entropy-decoded: ~25 ms per MiB for baseline JPEGs here. Progressive JPEGs cost ~4x
# that per byte, and each scan is another pass over every coefficient of the image (~0.4 ms per Mpx and scan).
# The limits keep the dearest JPEG near the dearest PNG; a 12 Mpx phone photo (2-4 MB) must be sent smaller (a
# 'medium' size or a crop: the digit needs 20 px). Phones and canvas exports write baseline JPEGs.
MAX_JPEG_PIXELS = 4096 * 4096
MAX_JPEG_SIDE = 8192
MAX_JPEG_BYTES = 512 * 1024
MAX_PROGRESSIVE_JPEG_BYTES = 64 * 1024
MAX_PROGRESSIVE_JPEG_PIXELS = 2 * 1024 * 1024
# A PNG is a sequence of chunks and Pillow handles each one in Python: metadata (text, ICC profiles, EXIF) is dropped
# unread, and more chunks than any encoder writes for 1 Mpx (4 MiB in 8 KB IDAT chunks is 512) are refused.
MAX_PNG_CHUNKS = 1024
PNG_CHUNKS_KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
# A JPEG's marker segments before its first scan are read in Python (metadata dropped unread); each progressive
# scan is another pass over every coefficient of the image. Encoders write 1 scan (baseline) or about 10
# (progressive, libjpeg's default script; the EXIF thumbnail's add a few).
MAX_JPEG_SEGMENTS = 64
MAX_JPEG_SCANS = 16
JPEG_CODINGS = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}  # Huffman-coded DCT: SOF0-2
WORK_SIDE = 512  # px; larger images are reduced to this (area averaging) before compositing
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A drawing whose darkest and lightest pixels differ by less than this (in 0..1) is blank.
MIN_CONTRAST = 0.1
# Pixels above this fraction of the ink maximum count as ink for the bounding box.
INK_THRESHOLD = 0.1
MIN_INK_PIXELS = 3


@dataclass(frozen=True)
class Prepared:
    """A drawing ready for the model."""

    ink: np.ndarray  # (28, 28) float32 in [0, 1], white ink on black, like an MNIST digit
    inverted: bool  # True when the input was dark ink on a light background
    # Where the 28x28 field sits over the drawing, in the drawing's pixel coordinates: (left, top, right, bottom) of
    # the field's outer edges (may reach past the drawing's edges). A map over the field drawn stretched into this
    # rectangle lies over the strokes it is about (the explanations' heatmap on the page).
    field_box: tuple[float, float, float, float] | None = None
    # The ink's longer side as a fraction of the picture's shorter side: how much of the slate or photo the drawing
    # takes (a tapped dot takes a few percent; refusal.py's "too little ink" reads it).
    extent: float = 1.0
    photo: bool = False  # a photo or scan of paper (photos.py's path), not a drawing: refusal.json may judge it apart

    def tensor(self):
        """The normalised model input, shape (1, 28, 28)."""
        import torch

        return torch.from_numpy(normalise(self.ink)).unsqueeze(0)

    def png(self) -> bytes:
        """The 28x28 image the model sees, as PNG bytes (white on black)."""
        return to_png(self.ink)


def decode(data: bytes) -> Image.Image:
    """Open PNG/JPEG bytes, refusing what is not an image, animated, too large or too costly, before decoding pixels.

    Only the chunks/segments that carry pixels reach Pillow; a JPEG is decoded at the smallest DCT scale that still
    gives WORK_SIDE px a side."""
    if not data:
        raise PreprocessError("empty image: the request body had no bytes")
    if data.startswith(PNG_SIGNATURE):
        fmt, data = "PNG", _png_essentials(data)
    elif data.startswith(b"\xff\xd8\xff"):
        fmt, data = "JPEG", _jpeg_essentials(data)
    else:
        raise _not_png_or_jpeg(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image too large: {exc}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise PreprocessError("not an image: send a PNG or JPEG file") from exc
    except (ValueError, SyntaxError) as exc:  # a recognised header with broken chunks (a short IHDR)
        raise PreprocessError(f"corrupt image: {exc}") from exc
    _check_size(image)
    image.info["declared_size"] = image.size  # draft() below shrinks .size; field_box is given in these pixels
    if fmt == "JPEG" and image.mode in ("L", "RGB", "YCbCr"):
        # YCbCr as stored, without converting to RGB: Y is the grey a drawing is read as (the same bytes as decoding
        # to grey), and the colour is there for a photo's ink
        image.draft("YCbCr" if image.mode != "L" else "L", (WORK_SIDE, WORK_SIDE))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise PreprocessError(f"corrupt image: {exc}") from exc
    return image


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    if image.format == "PNG" and max(width, height) > MAX_PNG_SIDE:
        raise ImageTooLargeError(f"image too large: {width}x{height} pixels (PNGs: at most {MAX_PNG_SIDE} per side)")
    if image.format == "JPEG" and (width * height > MAX_JPEG_PIXELS or max(width, height) > MAX_JPEG_SIDE):
        raise ImageTooLargeError(
            f"image too large: {width}x{height} pixels (JPEGs: at most {MAX_JPEG_PIXELS:,}, {MAX_JPEG_SIDE} per side)"
        )


def _check_png_header(header: bytes) -> None:
    """Refuse from IHDR a PNG whose samples would exceed MAX_PNG_SAMPLE_BYTES (a short IHDR is Pillow's to report)."""
    if len(header) < 13:
        return
    width, height, depth, color_type = struct.unpack_from(">IIBB", header)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 4)
    samples = height * ((width * channels * depth + 7) // 8)
    if samples > MAX_PNG_SAMPLE_BYTES:
        raise ImageTooLargeError(
            f"image too large: a {width}x{height} PNG of {samples:,} bytes of pixels (at most "
            f"{MAX_PNG_SAMPLE_BYTES:,}, e.g. 572x572 RGBA or 1144x1144 greyscale; the page sends 280x280, or 840x280 "
            "for a number)"
        )


def _not_png_or_jpeg(data: bytes) -> PreprocessError:
    """Name the format from its signature only (Pillow's accept checks): opening other formats costs work too."""
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        if accept is not None and accept(prefix) and name not in ("PNG", "JPEG"):
            return PreprocessError(f"unsupported image format {name}: send a PNG or JPEG file")
    return PreprocessError("not an image: send a PNG or JPEG file")


def _png_essentials(data: bytes) -> bytes:
    """The PNG with only the chunks that carry pixels; refuses animation and absurd chunk counts. Stops at IEND;
    a chunk cut short is passed on as it is, for Pillow to report."""
    kept, position, count = [PNG_SIGNATURE], len(PNG_SIGNATURE), 0
    while position + 8 <= len(data):
        (length,), kind = struct.unpack_from(">I", data, position), data[position + 4 : position + 8]
        end = position + 12 + length
        count += 1
        if count > MAX_PNG_CHUNKS:
            raise ImageTooLargeError(f"image too costly: more than {MAX_PNG_CHUNKS} PNG chunks")
        if kind == b"acTL" and length >= 4 and struct.unpack_from(">I", data, position + 8)[0] > 1:
            raise PreprocessError("animated images are not supported: send a single PNG or JPEG frame")
        if kind == b"IHDR":
            _check_png_header(data[position + 8 : min(end - 4, len(data))])
        if kind in PNG_CHUNKS_KEPT or end > len(data):
            kept.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    kept.append(data[position:])  # (nothing, unless the structure broke off: Pillow says what is wrong)
    return b"".join(kept)


def _check_jpeg_cost(marker: int, frame: bytes, *, size: int) -> None:
    """Refuse a JPEG whose bytes (or, progressive, pixels) would cost more to decode than the limits allow."""
    limit = MAX_PROGRESSIVE_JPEG_BYTES if marker == 0xC2 else MAX_JPEG_BYTES
    if size > limit:
        raise ImageTooLargeError(
            f"image too large: a {JPEG_CODINGS[marker]} JPEG of {size:,} bytes (at most {limit:,}; send a smaller "
            "photo or a crop around the digit)"
        )
    if marker == 0xC2 and len(frame) == 5:
        height, width = struct.unpack_from(">HH", frame, 1)
        if width * height > MAX_PROGRESSIVE_JPEG_PIXELS:
            raise ImageTooLargeError(
                f"image too large: a {width}x{height} progressive JPEG (at most {MAX_PROGRESSIVE_JPEG_PIXELS:,} "
                "pixels; baseline JPEGs may be larger)"
            )


def _jpeg_essentials(data: bytes) -> bytes:
    """The JPEG without metadata segments (APP1-13, APP15, comments); refuses other codings than Huffman DCT, absurd
    segment counts and more scans than encoders write."""
    kept, position, count = [b"\xff\xd8"], 2, 0
    while position + 4 <= len(data):
        while data[position + 1] == 0xFF and position + 5 <= len(data):  # fill bytes before a marker
            position += 1
        marker = data[position + 1]
        if marker == 0xDA:  # the first scan: the rest is entropy-coded data and later scans, read by libjpeg
            scans = data.count(b"\xff\xda", position)  # 0xFF in coded data is followed by 0x00: an upper bound
            if scans > MAX_JPEG_SCANS:
                raise ImageTooLargeError(f"image too costly: {scans} JPEG scans (at most {MAX_JPEG_SCANS})")
            break
        count += 1
        if count > MAX_JPEG_SEGMENTS:
            raise ImageTooLargeError(f"image too costly: more than {MAX_JPEG_SEGMENTS} JPEG segments before the image")
        if 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise PreprocessError("unsupported JPEG coding (lossless, hierarchical or arithmetic): send a baseline "
                                  "or progressive JPEG")  # fmt: skip
        if marker in JPEG_CODINGS:
            _check_jpeg_cost(marker, data[position + 4 : position + 9], size=len(data))
        (length,) = struct.unpack_from(">H", data, position + 2)
        if not (0xE1 <= marker <= 0xED or marker in (0xEF, 0xFE)):
            kept.append(data[position : position + 2 + length])
        position += 2 + length
    kept.append(data[position:])
    return b"".join(kept)


def ink_map(image: Image.Image) -> tuple[np.ndarray, bool]:
    """(H, W) uint8 ink: 0 is background, high is ink; also whether the input was inverted (dark ink). See read_ink."""
    ink, inverted, _ = read_ink(image)
    return ink, inverted


def read_ink(image: Image.Image) -> tuple[np.ndarray, bool, bool]:
    """(H, W) uint8 ink: 0 is background, high is ink; whether the input was inverted (dark ink); whether it was a
    photo or scan of paper.

    Transparency is composited onto the background that contrasts with the strokes (a canvas exported with a
    transparent background has strokes of one colour and nothing else). Polarity comes from the border: the
    background is what surrounds the drawing. Everything here stays 8-bit and in PIL/numpy C loops: only the crop
    around the digit is ever turned into floats (this is what keeps preprocessing cheap). Photos and scans of paper
    (photos.py) are handed to photo_ink instead, which gives the digit's ink alone, at most photos.PHOTO_SIDE px a
    side; their ink is dark on light paper (inverted).
    """
    grey_image, alpha_image = _working_copy(image)
    grey = _composite(grey_image, alpha_image)  # (H, W) uint8, at most WORK_SIDE px a side
    if alpha_image is None and is_photo(grey):
        return photo_ink(image, grey=grey), True, True
    border = np.concatenate([grey[0, :], grey[-1, :], grey[:, 0], grey[:, -1]])
    background = int(np.median(border))
    inverted = background > 127
    # ink = |grey - background| on the ink's side; uint8 arithmetic wraps, so clamp through the opposite side first
    ink = (
        np.subtract(background, np.minimum(grey, background), dtype=np.uint8)
        if inverted
        else (np.subtract(np.maximum(grey, background), background, dtype=np.uint8))
    )
    return ink, inverted, False


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _working_copy(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(grey, alpha or None) as L images, grey premultiplied by alpha, both reduced by an integer factor (area
    averaging) to at most WORK_SIDE px a side: what follows then costs the same whatever the input's size. The digit
    ends up 20 px high, so nothing it needs is lost. (Premultiplying by hand and reducing two L images costs a
    quarter of reducing LA, which un-premultiplies in a slow pass.)"""
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: convert("L") would clip every value above 255 to white
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8), mode="L")
    grey, alpha = image.convert("L"), None
    if _has_alpha(image):
        alpha = (image if image.mode in ("RGBA", "LA") else image.convert("RGBA")).getchannel("A")
        if alpha.getextrema()[0] == 255:  # opaque after all (a canvas with a painted background)
            alpha = None
        else:
            grey = ImageChops.multiply(grey, alpha)  # (convert("L") ignores alpha) hidden pixels' colour drops out
    factor = math.ceil(max(image.size) / WORK_SIDE)
    if factor > 1:
        grey, alpha = grey.reduce(factor), alpha and alpha.reduce(factor)
    return grey, alpha


def _composite(grey_image: Image.Image, alpha_image: Image.Image | None) -> np.ndarray:
    """(H, W) uint8 grey of the working copy, transparency composited as ink_map explains."""
    grey = np.asarray(grey_image).astype(np.uint16)  # premultiplied by alpha
    if alpha_image is None:
        return grey.astype(np.uint8)
    alpha = np.asarray(alpha_image).astype(np.uint16)
    visible = alpha > 127
    if visible.all():  # an opaque image: its own colours
        return ((grey * 255 + alpha // 2) // np.maximum(alpha, 1)).clip(0, 255).astype(np.uint8)
    if visible.any():
        # Put the strokes on the opposite background: dark strokes on white, light strokes on black.
        stroke_level = float((grey[visible] * 255 / alpha[visible]).mean())
        backdrop = 255 if stroke_level < 128 else 0
    else:
        backdrop = 0  # nothing visible: a blank slate, whatever colour its invisible pixels have
    return (grey + (backdrop * (255 - alpha) + 127) // 255).clip(0, 255).astype(np.uint8)


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
    digit = scale_into(crop, BOX, BOX)  # (h, w), max(h, w) == 20
    field, top, left = _place_by_centre_of_mass(digit)
    # field column j covers crop columns [(j - left) / sx, (j - left + 1) / sx); the same for rows
    sy, sx = digit.shape[0] / crop.shape[0], digit.shape[1] / crop.shape[1]
    box = (cols[0] - left / sx, rows[0] - top / sy, cols[0] + (FIELD - left) / sx, rows[0] + (FIELD - top) / sy)
    return field, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def scale_into(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """[0, 1] ink scaled (aspect kept) to fit a height x width box: one digit's 20x20 (fit_with_box), a pair's 20x52
    (segmentation.pair_field)."""
    rows, columns = crop.shape
    scale = min(height / rows, width / columns)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))  # PIL wants (w, h)
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
    return prepare_image(decode(data))


def prepare_image(image: Image.Image) -> Prepared:
    """Like prepare(), for an already decoded PIL image (tests, training-time evaluation)."""
    width, height = image.info.get("declared_size", image.size)
    ink, inverted, photo = read_ink(image)
    field, box = fit_with_box(ink)
    # ink may be a reduced working copy (large images, JPEG DCT scaling): give the box in the image's own pixels
    sx, sy = width / ink.shape[1], height / ink.shape[0]
    # the field's longer side is FIELD / BOX times the ink's longer side (fit_with_box)
    extent = max(box[2] - box[0], box[3] - box[1]) * BOX / FIELD / max(1, min(ink.shape))
    box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    return Prepared(ink=field, inverted=inverted, field_box=box, extent=float(extent), photo=photo)


def normalise(ink: np.ndarray) -> np.ndarray:
    """[0, 1] ink -> the model's input scale (as in training)."""
    return ((ink - MNIST_MEAN) / MNIST_STD).astype(np.float32)


def to_png(ink: np.ndarray) -> bytes:
    """A [0, 1] float image as 8-bit greyscale PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(ink, 0, 1) * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
