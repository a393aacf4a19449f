"""Pictures people give the page instead of drawing: a phone photo of a digit written on paper, stored as the sensor
read it (on its side) with the EXIF orientation that says how to turn it, as phones do."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# The "7" of tests/e2e/test_browser.py, in a 280x280 frame
SEVEN = [[(60, 50), (210, 50), (115, 240)]]


def photo(strokes=SEVEN, *, width: int = 1200, height: int = 1600, sideways: bool = True, quality: int = 90) -> bytes:
    """A JPEG photo of `strokes` in dark blue ink on slightly uneven, off-white paper (the digit about a third of the
    picture's width), sideways with EXIF orientation 6 unless `sideways` is False."""
    yy, xx = np.mgrid[0:height, 0:width]
    light = 225 - 25 * (xx / width) - 15 * (yy / height)  # lit from the top left
    paper = np.stack([light, light, light - 8], axis=-1).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(paper)
    draw = ImageDraw.Draw(image)
    scale, left, top = width / 3 / 280 * 1.2, width / 3, height / 3
    for stroke in strokes:
        points = [(left + x * scale, top + y * scale) for x, y in stroke]
        draw.line(points, fill=(30, 40, 110), width=int(18 * scale), joint="curve")
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    exif = Image.Exif()
    if sideways:
        image = image.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote; orientation 6 turns it back
        exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def blank_paper(*, width: int = 900, height: int = 1200) -> bytes:
    """A photo of paper with nothing on it: the handler finds no digit (422)."""
    xx = np.mgrid[0:height, 0:width][1]
    light = (230 - 20 * (xx / width)).astype(np.uint8)
    image = Image.fromarray(np.stack([light] * 3, axis=-1).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
