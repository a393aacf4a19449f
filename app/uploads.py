"""A picture a person gives the page instead of drawing (a file, a photo from the phone's camera, an image dropped on
the slate or pasted), made ready for the model: upright, and within what TorchServe's handler accepts.

Phones store a photo as the sensor read it and say in its EXIF how to turn it for viewing; the handler drops JPEG
metadata unread (handler/preprocess.py), so a digit photographed upright would be read lying on its side. Here the
picture is turned as its EXIF says (Pillow's `ImageOps.exif_transpose`) and sent without it. A large picture is
reduced to at most PICTURE_SIDE px a side first: the handler refuses PNGs over 1.25 MiB of samples and baseline JPEGs
over 512 KiB (413), and works on 512 px anyway (its WORK_SIDE), the digit on 20. A picture that needs neither is sent
as it came, byte for byte (a PNG drawn elsewhere reads exactly as through the JSON API).

The handler's limits are its own (handler/ imports nothing of ours, and nothing here imports it); the figures below
stay inside them, and tests/app/test_uploads.py sends what `upright` makes through the handler's decoder.
"""

from __future__ import annotations

import io
import math
import struct

from PIL import Image, ImageOps

from serving.inference import PredictionRejected

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# What the page takes: a phone's 12-50 Mpx photo is 2-10 MB. The HTTP body limit of the picture route says the same
# (ui/widgets/slate.py).
MAX_PICTURE_BYTES = 16 * 1024 * 1024
# Decoding cost before anything is reduced: a JPEG is decoded at 1/2..1/8 scale (Image.draft), so only its header's
# size is bounded; a PNG is decoded whole (4 bytes a pixel), so it is bounded by what that costs in memory.
MAX_JPEG_PIXELS = 64_000_000
MAX_PNG_PIXELS = 16_000_000

PICTURE_SIDE = 1024  # px, the longest side sent
JPEG_QUALITIES = (90, 80, 70)  # tried in turn until the file fits SENT_JPEG_BYTES
# Below the handler's limits (MAX_JPEG_BYTES 512 KiB for baseline JPEGs, 64 KiB progressive; MAX_PNG_SAMPLE_BYTES
# 1.25 MiB), with room to spare.
SENT_JPEG_BYTES = 448 * 1024
SENT_PNG_SAMPLES = 1280 * 1024

NOT_A_PICTURE = "That is not a picture the page can read: choose a PNG or JPEG image (a photo or a scan)"
EXIF_ORIENTATION = 0x0112


def upright(data: bytes) -> bytes:
    """The picture to predict: `data` itself when it is upright and small enough, else a re-encoded copy, turned as
    its EXIF says, at most PICTURE_SIDE px a side (JPEG, or PNG when it has transparency).

    PredictionRejected: 415 for anything but a readable PNG or JPEG, 413 for one too large to work on."""
    kind = _kind(data)
    if len(data) > MAX_PICTURE_BYTES:
        raise PredictionRejected(
            f"That picture is too large ({len(data) / 2**20:.1f} MB): choose one under {MAX_PICTURE_BYTES // 2**20} MB",
            status=413,
        )
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            _check_pixels(image, kind)
            if _sendable(data, image, kind):
                return data
            return _reencoded(image, kind)
    except Image.DecompressionBombError as exc:
        raise PredictionRejected(f"That picture is too large to work on: {exc}", status=413) from exc
    except (OSError, SyntaxError, ValueError) as exc:  # not decodable, truncated, a broken chunk
        raise PredictionRejected(NOT_A_PICTURE, status=415) from exc


def _kind(data: bytes) -> str:
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(JPEG_SIGNATURE):
        return "JPEG"
    raise PredictionRejected(NOT_A_PICTURE, status=415)


def _check_pixels(image: Image.Image, kind: str) -> None:
    width, height = image.size
    limit = MAX_PNG_PIXELS if kind == "PNG" else MAX_JPEG_PIXELS
    if width * height > limit:
        raise PredictionRejected(
            f"That picture is too large to work on ({width}x{height} pixels): at most {limit / 1e6:.0f} megapixels",
            status=413,
        )


def _sendable(data: bytes, image: Image.Image, kind: str) -> bool:
    """Whether the handler can take `data` as it is: upright, not larger than PICTURE_SIDE, within its limits."""
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1 or max(image.size) > PICTURE_SIDE:
        return False
    if kind == "JPEG":
        return len(data) <= SENT_JPEG_BYTES and not image.info.get("progressive")  # progressive: 64 KiB at most
    return png_samples(data) <= SENT_PNG_SAMPLES


def png_samples(data: bytes) -> int:
    """Bytes of pixels a PNG decodes to, from its IHDR chunk (as the handler counts them)."""
    width, height, depth, color_type = struct.unpack_from(">IIBB", data, len(PNG_SIGNATURE) + 8)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 4)
    return height * ((width * channels * depth + 7) // 8)


def _reencoded(image: Image.Image, kind: str) -> bytes:
    if kind == "JPEG":
        image.draft(image.mode, (PICTURE_SIDE, PICTURE_SIDE))  # decode at a reduced scale already (before load)
    turned = ImageOps.exif_transpose(image)  # loads it; the copy carries no orientation any more
    if turned.mode in ("RGBA", "LA", "PA") or "transparency" in turned.info:
        return _png(turned)
    return _jpeg(turned)


def _png(image: Image.Image) -> bytes:
    """With transparency kept (light ink on a transparent background must stay readable), as large as the handler's
    sample limit allows, at most PICTURE_SIDE."""
    grey = image.mode in ("LA", "L") or (image.mode == "P" and image.palette and image.palette.mode == "L")
    image = image.convert("LA" if grey else "RGBA")
    per_pixel = 2 if grey else 4
    width, height = image.size
    scale = min(1.0, PICTURE_SIDE / max(width, height), math.sqrt(SENT_PNG_SAMPLES / (width * height * per_pixel)))
    image = image.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    """Baseline JPEG, the largest quality and side that fit SENT_JPEG_BYTES (a photo at q90 is usually far under)."""
    image = image.convert("L" if image.mode in ("L", "1", "I", "I;16") else "RGB")
    side = PICTURE_SIDE
    while True:
        copy = image.copy()
        copy.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            copy.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= SENT_JPEG_BYTES or side <= 256:
                return buffer.getvalue()
        side = side * 3 // 4
