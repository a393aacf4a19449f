"""What is kept of a drawing: the image itself, never what a client appends to it (issue #20 N6).

A PNG ends with its IEND chunk and a JPEG with its EOI marker; bytes after them are no part of the image (TorchServe's
handler ignores them), but they were stored with the prediction, shown back as a thumbnail and re-sent by Compare: a
4 MB tail made a row 400x a drawing. The stored copy is the image cut at its end, and when it is still larger than
`MAX_STORED_BYTES` (a photo), a re-encoded copy at most `STORED_SIDE` px a side: the model works on 512 px at most
(handler/preprocess.py WORK_SIDE) and the digit on 20, so nothing the model or a retraining uses is lost.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_STORED_BYTES = 512 * 1024
STORED_SIDE = 1024


def stored_copy(data: bytes, *, max_bytes: int = MAX_STORED_BYTES) -> bytes:
    """The bytes to keep of an accepted PNG or JPEG: cut at its end marker; re-encoded smaller beyond max_bytes."""
    image = _cut_at_end(data)
    if len(image) <= max_bytes:
        return image
    return _reencoded(image)


def media_type(data: bytes) -> str:
    """The MIME type of a stored drawing."""
    return "image/png" if data.startswith(PNG_SIGNATURE) else "image/jpeg"


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
