"""What is kept of a drawing: the image itself, never what a client appends to it (docs/security.md N6).

A PNG ends with its IEND chunk and a JPEG with its EOI marker; bytes after them are no part of the image (TorchServe's
handler ignores them), but they were stored with the prediction, shown back as a thumbnail and re-sent by Compare: a
4 MB tail made a row 400x a drawing. The stored copy is the image cut at its end, and when it is still larger than
`MAX_STORED_BYTES` (a photo), a re-encoded copy at most `STORED_SIDE` px a side: the model works on 512 px at most
(handler/preprocess.py WORK_SIDE) and the digit on 20, so nothing the model or a retraining uses is lost.

A digit of a number is kept as a drawing of its own too (`digit_crop`): the pixels inside its box, on a blank margin.
"""

from __future__ import annotations

import io
import math
import struct

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_STORED_BYTES = 512 * 1024
STORED_SIDE = 1024
CROP_MARGIN = 0.2  # blank margin around a digit's crop, as a share of its box's longer side


class CropError(ValueError):
    """A digit cannot be cut out of the drawing (not an image Pillow reads, or a box outside it)."""


def stored_copy(data: bytes, *, max_bytes: int = MAX_STORED_BYTES) -> bytes:
    """The bytes to keep of an accepted PNG or JPEG: cut at its end marker; re-encoded smaller beyond max_bytes."""
    image = _cut_at_end(data)
    if len(image) <= max_bytes:
        return image
    return _reencoded(image)


def media_type(data: bytes) -> str:
    """The MIME type of a stored drawing."""
    return "image/png" if data.startswith(PNG_SIGNATURE) else "image/jpeg"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG from its header (the page scales a number's boxes over it); None when Pillow
    cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.size
    except (OSError, SyntaxError, Image.DecompressionBombError):
        return None


def _cut_at_end(data: bytes) -> bytes:
    if data.startswith(PNG_SIGNATURE):
        return _png_until_iend(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_until_eoi(data)
    return data


def _png_until_iend(data: bytes) -> bytes:
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 12 + length
        if data[position + 4 : position + 8] == b"IEND":
            return data[: min(end, len(data))]
        position = end
    return data  # no IEND (the handler read it anyway): kept as it came, within the size cap below


def _jpeg_until_eoi(data: bytes) -> bytes:
    """Walk the segments; after each scan, skip its entropy-coded data (0xFF is stuffed as FF00 there, restart
    markers FFD0-FFD7 belong to it) to the next marker; the image ends at the first EOI (FFD9) found that way, so an
    EXIF thumbnail's own EOI (inside an APP1 segment) is never taken for it."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return data
        marker = data[position + 1]
        if marker == 0xD9:
            return data[: position + 2]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while position + 1 < len(data) and not (data[position] == 0xFF and data[position + 1] not in _IN_SCAN):
                position += 1
    return data


_IN_SCAN = {0x00, *range(0xD0, 0xD8)}  # stuffed 0xFF, restart markers


def _reencoded(data: bytes) -> bytes:
    """A smaller copy: at most STORED_SIDE px a side, PNG when it has transparency, else JPEG (quality 90)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (STORED_SIDE, STORED_SIDE))  # JPEG: decode at a reduced scale already
        image.thumbnail((STORED_SIDE, STORED_SIDE))
        keeps_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        buffer = io.BytesIO()
        if keeps_alpha:
            image.convert("RGBA").save(buffer, format="PNG")
        else:
            image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def digit_crop(data: bytes, box: tuple[float, float, float, float], *, margin: float = CROP_MARGIN) -> bytes:
    """One digit of a number as a drawing of its own, PNG: the drawing's pixels inside `box` ([left, top, right,
    bottom] in its pixels, as the model server answered) on a margin of the drawing's background (`margin` times the
    box's longer side, at least 2 px). The margin is blank rather than more of the drawing so that no neighbour's ink
    comes in: the crop is what a retraining learns this digit from, and the single-digit preprocessing frames all
    the ink it finds. CropError when it cannot be cut."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened if opened.mode in ("L", "LA", "RGB", "RGBA") else opened.convert("RGBA")
            left, top = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
            right, bottom = min(image.width, math.ceil(box[2])), min(image.height, math.ceil(box[3]))
            if right <= left or bottom <= top:
                raise CropError(f"the digit's box {box} lies outside the {image.width}x{image.height} drawing")
            piece = image.crop((left, top, right, bottom))
            pad = max(2, round(margin * max(right - left, bottom - top)))
            framed = Image.new(image.mode, (piece.width + 2 * pad, piece.height + 2 * pad), _background(image))
            framed.paste(piece, (pad, pad))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:  # Pillow's errors for unreadable images
        raise CropError(f"cannot cut the digits out of this image: {exc}") from exc
    buffer = io.BytesIO()
    framed.save(buffer, format="PNG")
    return buffer.getvalue()


def _background(image: Image.Image) -> int | tuple[int, ...]:
    """The drawing's background: the median of its border pixels, per band (transparent for a canvas export)."""
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])  # (n,) or (n, bands)
    median = np.median(border, axis=0).astype(int)
    return int(median) if median.ndim == 0 else tuple(int(v) for v in median)
