"""What is stored of a drawing (issue #20 N6): the image cut at its end marker, a smaller copy beyond the cap; and the
Predictions use case storing that, whatever the client appended."""

import io

import numpy as np
from PIL import Image

from app.drawings import MAX_STORED_BYTES, STORED_SIDE, stored_copy
from app.predictions import Predictions
from db.journal import Journal
from tests.support.fakes import FakePredictionStore, FakePredictor


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


DRAWING = encoded(Image.new("RGBA", (280, 280), (0, 0, 0, 0)))


def test_a_png_is_cut_after_its_iend_chunk():
    assert stored_copy(DRAWING + b"\0" * 4_192_304) == DRAWING
    assert stored_copy(DRAWING) == DRAWING


def test_a_jpeg_is_cut_after_its_eoi_and_a_thumbnails_eoi_is_not_the_end():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010E] = "a photo of a digit"
    thumbnail = encoded(photo.resize((40, 30)), "JPEG")  # its own FFD8 ... FFD9, inside an APP segment
    jpeg = encoded(photo, "JPEG", exif=exif.tobytes(), quality=80)
    with_thumbnail = jpeg[:2] + b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail + jpeg[2:]
    for progressive in (False, True):
        image = encoded(photo, "JPEG", quality=80, progressive=progressive)
        assert stored_copy(image + b"junk after the end" * 1000) == image
    assert stored_copy(with_thumbnail + b"\0" * 1000) == with_thumbnail
    assert Image.open(io.BytesIO(stored_copy(with_thumbnail))).size == (400, 300)


def test_an_image_larger_than_the_cap_is_kept_as_a_smaller_copy():
    noise = np.random.default_rng(1).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    big = encoded(Image.fromarray(noise), "PNG")
    assert len(big) > MAX_STORED_BYTES
    kept = stored_copy(big)
    with Image.open(io.BytesIO(kept)) as image:
        assert max(image.size) == STORED_SIDE and image.format == "JPEG"
    transparent = encoded(Image.fromarray(np.dstack([noise, noise[..., :1]])), "PNG")
    with Image.open(io.BytesIO(stored_copy(transparent))) as image:
        assert image.format == "PNG" and image.mode == "RGBA" and max(image.size) == STORED_SIDE


async def test_the_recorder_stores_the_cut_image(tmp_path):
    fake_store = FakePredictionStore()
    recorder = Predictions(server=FakePredictor(), store=fake_store, journal=Journal(tmp_path / "j.jsonl"))
    await recorder.predict(DRAWING + b"\0" * 1_000_000, browser_id="b")
    assert fake_store.rows[0].canvas_png == DRAWING
