"""A picture given instead of a drawing (app/uploads.py): turned upright as its EXIF says, made small enough for the
handler, sent unchanged when it needs neither; what the handler would refuse is refused here with a message a person
understands. The handler's own decoder (handler/preprocess.py) checks that what is sent is accepted."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.uploads import (
    MAX_PICTURE_BYTES,
    PICTURE_SIDE,
    SENT_JPEG_BYTES,
    SENT_PNG_SAMPLES,
    png_samples,
    upright,
)
from handler.preprocess import ImageTooLargeError, decode, prepare
from serving.inference import PredictionRejected


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def paper_with_a_one(width: int, height: int) -> Image.Image:
    """White paper with a tall dark stroke in the middle: a "1", far taller than wide when upright."""
    image = Image.new("RGB", (width, height), (235, 235, 230))
    draw = ImageDraw.Draw(image)
    draw.line([(width // 2, height // 5), (width // 2, height * 4 // 5)], fill=(20, 20, 60), width=max(4, width // 40))
    return image


def noisy_photo(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A photo's worth of detail (noise compresses worst), with the digit drawn on it."""
    rng = np.random.default_rng(seed)
    base = np.asarray(paper_with_a_one(width, height), dtype=np.int16)
    noise = rng.integers(-25, 25, (height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def ink_box(data: bytes) -> tuple[int, int]:
    """(width, height) of the ink the handler finds, in its 28x28 field."""
    ink = prepare(data).ink
    rows, cols = np.nonzero(ink > 0.3)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


def test_a_phone_photo_stored_sideways_is_turned_upright_before_the_handler_reads_it():
    """The sensor's picture lies on its side and EXIF orientation 6 says "turn 90° clockwise to view"; the handler
    drops EXIF, so without this the "1" would reach the model lying down."""
    upright_photo = paper_with_a_one(600, 800)
    as_stored = upright_photo.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote: 800 x 600
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = encoded(as_stored, "JPEG", quality=92, exif=exif.tobytes())
    width, height = ink_box(photo)
    assert width > 3 * height  # as sent by the phone, the handler reads a lying stroke

    sent = upright(photo)
    assert Image.open(io.BytesIO(sent)).size == (600, 800)
    width, height = ink_box(sent)
    assert height > 3 * width  # the "1" stands


def test_a_large_photo_is_sent_as_a_baseline_jpeg_the_handler_accepts():
    photo = encoded(noisy_photo(4000, 3000), "JPEG", quality=95)
    assert len(photo) > 512 * 1024
    with pytest.raises(ImageTooLargeError):
        decode(photo)  # as it came, the handler refuses it (413)
    sent = upright(photo)
    image = Image.open(io.BytesIO(sent))
    assert image.format == "JPEG" and max(image.size) == PICTURE_SIDE and not image.info.get("progressive")
    assert len(sent) <= SENT_JPEG_BYTES
    decode(sent)
    width, height = ink_box(sent)
    assert height > 3 * width


def test_a_large_scan_saved_as_png_is_sent_small_enough():
    scan = encoded(paper_with_a_one(2000, 2600), "PNG")
    with pytest.raises(ImageTooLargeError):
        decode(scan)
    sent = upright(scan)
    assert Image.open(io.BytesIO(sent)).format == "JPEG"
    decode(sent)


def test_transparency_is_kept_so_light_ink_on_a_transparent_background_stays_readable():
    image = Image.new("RGBA", (1500, 1500), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(750, 300), (750, 1200)], fill=(255, 255, 255, 255), width=60)
    picture = encoded(image, "PNG")
    sent = upright(picture)
    assert Image.open(io.BytesIO(sent)).mode == "RGBA"
    assert png_samples(sent) <= SENT_PNG_SAMPLES
    width, height = ink_box(sent)
    assert height > 3 * width


def test_a_drawing_or_a_small_upright_picture_is_sent_byte_for_byte():
    drawing = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(drawing).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=18)
    png = encoded(drawing, "PNG")
    assert upright(png) is png
    photo = encoded(paper_with_a_one(600, 800), "JPEG", quality=85)
    assert upright(photo) is photo


def test_a_progressive_jpeg_is_sent_as_a_baseline_one():
    """The handler takes progressive JPEGs up to 64 KiB only (each scan is a pass over the image)."""
    photo = encoded(noisy_photo(900, 700), "JPEG", quality=90, progressive=True)
    assert len(photo) > 64 * 1024
    sent = upright(photo)
    assert not Image.open(io.BytesIO(sent)).info.get("progressive")
    decode(sent)


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + b"\0" * 100,
        b"just some text",
        b"",
        encoded(paper_with_a_one(300, 300), "JPEG")[:400],  # cut off
    ],
    ids=["gif", "text", "empty", "truncated jpeg"],
)
def test_what_is_not_a_readable_png_or_jpeg_is_refused_with_a_message(data):
    with pytest.raises(PredictionRejected) as refused:
        upright(data)
    assert refused.value.status == 415 and "PNG or JPEG" in str(refused.value)


def test_pictures_too_large_to_work_on_are_refused():
    huge = encoded(Image.new("1", (5000, 4000), 1), "PNG")  # 20 Mpx of white: small to send, dear to decode
    with pytest.raises(PredictionRejected) as refused:
        upright(huge)
    assert refused.value.status == 413 and "megapixels" in str(refused.value)
    with pytest.raises(PredictionRejected) as refused:
        upright(b"\xff\xd8\xff" + b"\0" * MAX_PICTURE_BYTES)
    assert refused.value.status == 413 and "MB" in str(refused.value)
