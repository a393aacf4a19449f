"""Hostile and malformed images for the bad-input tests (handler unit tests and the live API): each function builds
the bytes, small enough to send, whatever the picture claims to be."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageDraw

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def short_header_png() -> bytes:
    """A PNG whose IHDR chunk is cut to 5 of its 13 bytes (Pillow raises ValueError, not OSError)."""
    return PNG_SIGNATURE + png_chunk(b"IHDR", b"\0" * 5)


def text_bomb_png(png: bytes, *, size: int = 20_000_000) -> bytes:
    """A valid PNG with a zTXt chunk that inflates to `size` bytes, placed right after IHDR."""
    header_end = len(PNG_SIGNATURE) + 8 + 13 + 4  # signature, then IHDR: length, type, 13 bytes, CRC
    text = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"a" * size))
    return png[:header_end] + text + png[header_end:]


def pixel_bomb_png(side: int) -> bytes:
    """A real 1-bit side x side PNG of zeros: a few KB that would decode into side**2 pixels."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale, no interlace
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def animated(fmt: str) -> bytes:
    """Two frames as an animated GIF or PNG."""
    frames = [Image.new("L", (28, 28), 0), Image.new("L", (28, 28), 255)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:])


def png_with(png: bytes, chunks: list[bytes]) -> bytes:
    """The PNG with extra chunks placed right after IHDR."""
    header_end = len(PNG_SIGNATURE) + 8 + 13 + 4
    return png[:header_end] + b"".join(chunks) + png[header_end:]


def chunk_flood_png(png: bytes, *, count: int = 300_000) -> bytes:
    """A valid PNG with `count` empty ancillary chunks: ~3.5 MB that Pillow read one chunk at a time in Python."""
    return png_with(png, [png_chunk(b"abCd", b"")] * count)


def metadata_bomb_png(png: bytes, *, count: int = 60) -> bytes:
    """A valid PNG with `count` zTXt and `count` iCCP chunks that each inflate to 1 MB (Pillow's limit per chunk)."""
    inflating = zlib.compress(b"a" * 1_000_000)
    text, profile = png_chunk(b"zTXt", b"c\0\0" + inflating), png_chunk(b"iCCP", b"p\0\0" + inflating)
    return png_with(png, [text, profile] * count)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def noise_png(width: int, height: int, *, bit_depth: int = 8, color_type: int = 6, interlace: bool = False) -> bytes:
    """A PNG of random samples, every row Paeth-filtered (the dearest filter to undo), stored with little
    compression: the most a PNG of this size can cost to decode. color_type 6 is RGBA, 0 greyscale."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row_bytes = lambda w: 1 + (w * channels * bit_depth + 7) // 8  # noqa: E731
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    rows = []
    generator = random.Random(0)
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            rows += [b"\x04" + generator.randbytes(row_bytes(w) - 1) for _ in range(h)]
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    idat = zlib.compress(b"".join(rows), 1)
    chunks = [png_chunk(b"IDAT", idat[i : i + 8192]) for i in range(0, len(idat), 8192)]
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + b"".join(chunks) + png_chunk(b"IEND", b"")


def jpeg_segments(jpeg: bytes) -> list[bytes]:
    """A JPEG split into its marker segments before the first scan, then the rest (scans) as one piece."""
    parts, position = [jpeg[:2]], 2
    while jpeg[position + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", jpeg, position + 2)
        parts.append(jpeg[position : position + 2 + length])
        position += 2 + length
    return [*parts, jpeg[position:]]


def comment_flood_jpeg(jpeg: bytes, *, count: int = 100_000) -> bytes:
    """A valid JPEG with `count` empty comment segments before its image."""
    parts = jpeg_segments(jpeg)
    return parts[0] + b"\xff\xfe\x00\x02" * count + b"".join(parts[1:])


def scan_flood_jpeg(progressive: bytes, *, extra: int = 2000) -> bytes:
    """A progressive JPEG whose last scan is repeated `extra` times: libjpeg warns and makes another pass over every
    coefficient for each one."""
    body = progressive[:-2]  # without EOI
    scan = body[body.rindex(b"\xff\xda") :]
    return body + scan * extra + b"\xff\xd9"


def with_coding(jpeg: bytes, marker: int) -> bytes:
    """The JPEG with its frame marker changed (0xC3: lossless, 0xC9: arithmetic): the headers of other codings."""
    index = jpeg.index(b"\xff\xc0")
    return jpeg[: index + 1] + bytes([marker]) + jpeg[index + 2 :]


def zigzag_number(*, step: int = 12, amplitude: int = 120, pen: int = 14, size: tuple[int, int] = (840, 280)) -> bytes:
    """The dearest drawing for the Number mode's reader: one stroke zigzagging across the Number slate (transparent,
    as the slate exports it), every `step` px from top to bottom. One wide connected part with a cut place at each
    turn: before the work budget (handler/segmentation.py MAX_WORK) it cost the reader 120-460 ms, a number 10-20.
    (step 12, amplitude 120, pen 14 had the most work of a grid of steps 6-80, amplitudes 80-250 and pens 3-14.)"""
    width, height = size
    top, bottom = (height - amplitude) / 2, (height + amplitude) / 2
    points = [(x, top if turn % 2 == 0 else bottom) for turn, x in enumerate(range(10, width - 10, step))]
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(image).line(points, fill=(0, 0, 0, 255), width=pen, joint="curve")
    return encode(image)
