"""What decoding a picture would cost, read from its headers before a pixel is decoded (pure: bytes in, figures out).

The page decodes the pictures people give it (app/uploads.py), and Pillow's own checks bound pixel counts only. What a
JPEG costs depends on more than its size: a progressive one (or one whose components come in separate scans) makes
libjpeg hold every DCT coefficient of the whole image, 2 bytes each, whatever scale it is decoded at (a progressive
CMYK 8000x8000 JPEG of 1 MB: 512 MB), and each scan is one more pass over all of them (a 1.5 MB file can repeat a
scan 125,000 times: 12 s of CPU). So the frame header (SOF: size, components and their sampling, baseline or
progressive) is read here, and the scans are counted by walking the markers to the end of the image. A PNG costs its
pixels (decoded whole) and one step of Python per chunk.

TorchServe's handler applies the same kinds of limits to what reaches it (handler/preprocess.py: the codings it
decodes, the segments before the image, the scans, the chunks; animation refused). handler/ imports nothing of ours
and app/ may not import handler/ (tests/test_layers.py), so the walk is written again here; the figures are the
page's, which takes phone photos up to 16 MB and sends the handler a small re-encoded copy.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
# Huffman-coded DCT, as libjpeg and the handler decode it: SOF0 baseline, SOF1 extended sequential, SOF2 progressive.
# The other frame markers (SOF3, SOF5-7, SOF9-11, SOF13-15) are lossless, hierarchical or arithmetic-coded.
JPEG_CODINGS = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
OTHER_CODINGS = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
SOS, EOI = 0xDA, 0xD9
# The next marker after entropy-coded data: 0xFF followed by anything but a stuffed 0x00, a restart marker (RST0-7,
# part of the scan) or another 0xFF (a fill byte: the marker is the byte after the last one).
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# Pillow reads each segment before the image in Python; encoders write about 10-20 (metadata, tables, frame).
MAX_JPEG_SEGMENTS = 64
# Encoders write 1 scan (baseline) or about 10 (libjpeg's progressive script; mozjpeg's a few more), each maybe with
# its own tables: the walk after the first scan stops at this many markers.
MAX_JPEG_SCANS = 16
MAX_JPEG_MARKERS = 4 * MAX_JPEG_SCANS
# More chunks than any encoder writes for a picture (16 MiB in 8 KB IDAT chunks is 2,048; Pillow reads each in Python).
MAX_PNG_CHUNKS = 4096
# Bytes a decoded pixel takes in Pillow, by PNG colour type and bit depth: "1", "L" and "P" 1 byte, 16-bit grey
# ("I;16") 2, every multi-band mode 4 (Pillow keeps RGB as RGBX).
PNG_PIXEL_BYTES = {(0, 16): 2, (0, None): 1, (3, None): 1}


class PictureRefused(ValueError):
    """Not a picture the page decodes (`status` 415), or one too dear to decode (413); the message says which."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Component:
    """One JPEG colour component's sampling factors (1-4 each)."""

    horizontal: int
    vertical: int


@dataclass(frozen=True)
class Header:
    """A picture's cost as its headers tell it. `scans`: JPEG scans (a PNG: 1); `components`: a JPEG's (1 grey, 3
    YCbCr or RGB, 4 CMYK or YCCK); `pixel_bytes`: what Pillow keeps per decoded pixel."""

    kind: str  # "PNG" or "JPEG"
    width: int
    height: int
    pixel_bytes: int
    progressive: bool = False
    scans: int = 1
    components: tuple[Component, ...] = ()
    alpha: bool = False  # a PNG with an alpha channel (grey or colour)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def multi_scan(self) -> bool:
        """Whether libjpeg must hold the whole image's coefficients (it then decodes scan after scan)."""
        return self.kind == "JPEG" and (self.progressive or self.scans > 1)

    def coefficient_bytes(self) -> int:
        """What libjpeg holds for a multi-scan JPEG: every 8x8 block of every component, 64 coefficients of 2 bytes,
        padded to whole MCUs as libjpeg pads them (jdcoefct.c); 0 for a single scan, which streams."""
        if not self.multi_scan:
            return 0
        h_max = max(c.horizontal for c in self.components)
        v_max = max(c.vertical for c in self.components)
        blocks = 0
        for c in self.components:
            across = math.ceil(math.ceil(self.width * c.horizontal / h_max) / 8)
            down = math.ceil(math.ceil(self.height * c.vertical / v_max) / 8)
            blocks += _round_up(across, c.horizontal) * _round_up(down, c.vertical)
        return blocks * 64 * 2

    def decoded_bytes(self, *, side: int) -> int:
        """Memory decoding takes: the pixels Pillow holds (a JPEG decoded at the scale `draft_size(side)` asks for),
        and a multi-scan JPEG's coefficients."""
        scale = draft_scale(self.width, self.height, side=side) if self.kind == "JPEG" else 1
        held = math.ceil(self.width / scale) * math.ceil(self.height / scale) * self.pixel_bytes
        return held + self.coefficient_bytes()


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def draft_size(width: int, height: int, *, side: int) -> tuple[int, int]:
    """What to ask Image.draft for so that the longer side comes out at least `side` px: Pillow picks the scale from
    the smaller ratio of the two sides, so asking (side, side) of a long, narrow picture would decode it whole."""
    longer = max(width, height)
    if longer <= side:
        return width, height
    return max(1, width * side // longer), max(1, height * side // longer)


def draft_scale(width: int, height: int, *, side: int) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow decodes at when asked for draft_size(...) (JpegImageFile.draft)."""
    wanted = draft_size(width, height, side=side)
    ratio = min(width // wanted[0], height // wanted[1])
    return next(scale for scale in (8, 4, 2, 1) if ratio >= scale or scale == 1)


def read_header(data: bytes) -> Header:
    """The header of a PNG or JPEG; PictureRefused for anything else, a coding the page does not decode, a broken
    structure, or more segments, markers or chunks than encoders write (what the header costs is the caller's to
    judge: app/uploads.py)."""
    if data.startswith(PNG_SIGNATURE):
        return _png_header(data)
    if data.startswith(JPEG_SIGNATURE):
        return _jpeg_header(data)
    raise PictureRefused("not a PNG or JPEG", status=415)


def _jpeg_header(data: bytes) -> Header:
    frame: tuple[int, bytes] | None = None
    position, segments = 2, 0
    while True:
        found = NEXT_MARKER.search(data, position, position + 64)  # (fill bytes may come before a marker)
        if found is None or found.start() + 4 > len(data):
            raise PictureRefused("a JPEG without image data", status=415)
        position, marker = found.start(), data[found.start() + 1]
        if marker == SOS:
            break
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise PictureRefused(f"more than {MAX_JPEG_SEGMENTS} JPEG segments before the image", status=413)
        if marker in OTHER_CODINGS:
            raise PictureRefused("a lossless, hierarchical or arithmetic-coded JPEG", status=415)
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in JPEG_CODINGS:
            frame = (marker, data[position + 4 : position + 2 + length])
        position += 2 + length
    if frame is None:
        raise PictureRefused("a JPEG without a frame header", status=415)
    marker, body = frame
    width, height, components = _frame(body)
    return Header(
        "JPEG", width, height, pixel_bytes=1 if len(components) == 1 else 4, progressive=marker == 0xC2,
        scans=count_scans(data, position), components=components,
    )  # fmt: skip


def _frame(body: bytes) -> tuple[int, int, tuple[Component, ...]]:
    """SOFn: precision, height, width, then per component its id, sampling factors (H << 4 | V) and table."""
    if len(body) < 6:
        raise PictureRefused("a JPEG frame header cut short", status=415)
    precision, height, width, count = struct.unpack_from(">BHHB", body)
    if precision != 8 or count not in (1, 3, 4) or len(body) < 6 + 3 * count or not width or not height:
        raise PictureRefused(f"a JPEG of {count} components at {precision} bits (or of no size)", status=415)
    factors = [body[6 + 3 * i + 1] for i in range(count)]
    components = tuple(Component(f >> 4, f & 15) for f in factors)
    if any(not 1 <= c.horizontal <= 4 or not 1 <= c.vertical <= 4 for c in components):
        raise PictureRefused("a JPEG with sampling factors outside 1-4", status=415)
    return width, height, components


def count_scans(data: bytes, position: int) -> int:
    """The scans from the first SOS at `position` to EOI (or the end), marker by marker: a segment is skipped by its
    length, a scan's entropy-coded data by searching for the next marker (in C). Counted up to MAX_JPEG_SCANS + 1."""
    scans = markers = 0
    while position + 4 <= len(data):
        marker = data[position + 1]
        if marker == EOI:
            break
        markers += 1
        scans += marker == SOS
        if scans > MAX_JPEG_SCANS:
            break  # enough to refuse it: the rest is not walked
        if markers > MAX_JPEG_MARKERS:
            raise PictureRefused(f"more than {MAX_JPEG_MARKERS} JPEG markers among its scans", status=413)
        (length,) = struct.unpack_from(">H", data, position + 2)
        found = NEXT_MARKER.search(data, position + 2 + length)
        if found is None:
            break
        position = found.start()
    return scans


def _png_header(data: bytes) -> Header:
    """IHDR's size, bit depth and colour type; the chunks counted to IEND (their bodies skipped by length)."""
    position, chunks, fields = len(PNG_SIGNATURE), 0, None
    while position + 8 <= len(data):
        (length,), kind = struct.unpack_from(">I", data, position), data[position + 4 : position + 8]
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise PictureRefused(f"more than {MAX_PNG_CHUNKS} PNG chunks", status=413)
        if kind == b"IHDR" and length >= 13 and position + 21 <= len(data):
            fields = struct.unpack_from(">IIBB", data, position + 8)
        if kind == b"acTL" and position + 12 <= len(data) and struct.unpack_from(">I", data, position + 8)[0] > 1:
            raise PictureRefused("an animated PNG", status=415)
        if kind == b"IEND":
            break
        position += 12 + length
    if fields is None or not fields[0] or not fields[1]:
        raise PictureRefused("a PNG without a readable header", status=415)
    width, height, depth, color_type = fields
    pixel_bytes = PNG_PIXEL_BYTES.get((color_type, depth)) or PNG_PIXEL_BYTES.get((color_type, None), 4)
    return Header("PNG", width, height, pixel_bytes=pixel_bytes, alpha=color_type in (4, 6))
