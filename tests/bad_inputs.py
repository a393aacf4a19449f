"""Hostile and malformed images for the bad-input tests (handler unit tests and the live API): each function builds
the bytes, small enough to send, whatever the picture claims to be."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

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
