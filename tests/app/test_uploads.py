"""A picture given instead of a drawing (app/uploads.py): turned upright as its EXIF says, made small enough for the
handler, sent unchanged when it needs neither; what the handler would refuse is refused here with a message a person
understands. The handler's own decoder (handler/preprocess.py) checks that what is sent is accepted."""

import asyncio
import io
import os
import struct
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.limits import pixel_count
from app.picture_headers import MAX_JPEG_SCANS, PNG_SIGNATURE, draft_scale, draft_size, read_header
from app.uploads import (
    DECODE_NICENESS,
    MAX_DECODED_BYTES,
    MAX_PICTURE_BYTES,
    PICTURE_SIDE,
    SENT_JPEG_BYTES,
    SENT_PNG_SAMPLES,
    Pictures,
    decoding_bytes,
    png_samples,
    upright,
)
from handler.preprocess import ImageTooLargeError, decode, prepare
from records.errors import PredictionRejected
from tools.bad_inputs import animated, chunk_flood_png, comment_flood_jpeg, png_chunk, scan_flood_jpeg, with_coding


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


# ---- what a picture may cost, judged from its headers before a pixel is decoded -------------------------------------


def with_frame_size(jpeg: bytes, *, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0/SOF2) saying another size: what decoding would cost, without the bytes."""
    index = next(i for i in (jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2")) if i >= 0)
    return jpeg[: index + 5] + struct.pack(">HH", height, width) + jpeg[index + 9 :]


@pytest.fixture
def nothing_decoded(monkeypatch):
    """Fails the test if Pillow opens the picture: a refusal must come from the headers alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("the picture was opened")

    monkeypatch.setattr("app.uploads.Image.open", refuse)


@pytest.fixture(scope="module")
def cmyk_bomb() -> bytes:
    """The red team's: a progressive CMYK 8000x8000 JPEG (1 MB; 512 MB of coefficients to decode)."""
    return encoded(Image.new("CMYK", (8000, 8000), (10, 200, 30, 0)), "JPEG", quality=5, progressive=True)


def refusal(data: bytes) -> PredictionRejected:
    with pytest.raises(PredictionRejected) as refused:
        upright(data)
    return refused.value


def test_a_progressive_cmyk_8000_square_is_refused_for_its_memory_from_its_header(cmyk_bomb, nothing_decoded):
    header = read_header(cmyk_bomb)
    assert (header.width, header.height, len(header.components), header.progressive) == (8000, 8000, 4, True)
    assert header.coefficient_bytes() == 8000 * 8000 * 4 * 2  # every sample's coefficient, 2 bytes
    refused = refusal(cmyk_bomb)
    assert refused.status == 413 and "too much memory to read (a progressive JPEG of 8000x8000" in str(refused)


def test_a_baseline_cmyk_of_the_same_size_is_decoded_at_a_reduced_scale():
    """Baseline streams: no coefficients held, and Image.draft decodes 8000x8000 at 1/4."""
    baseline = with_frame_size(encoded(Image.new("CMYK", (64, 64), (0, 0, 0, 0)), "JPEG"), width=8000, height=8000)
    header = read_header(baseline)
    assert not header.multi_scan and header.coefficient_bytes() == 0
    assert decoding_bytes(header) == 2000 * 2000 * 4 <= MAX_DECODED_BYTES


def test_a_progressive_colour_photo_is_judged_by_its_coefficients():
    """YCbCr 4:2:0: luma at full resolution, two chroma planes at a quarter: 1.5 samples a pixel, 2 bytes each."""
    small = encoded(noisy_photo(64, 48), "JPEG", quality=80, progressive=True)
    assert [(c.horizontal, c.vertical) for c in read_header(small).components] == [(2, 2), (1, 1), (1, 1)]
    ok = read_header(with_frame_size(small, width=4000, height=3000))  # a 12 Mpx phone photo
    assert ok.coefficient_bytes() == pytest.approx(4000 * 3000 * 3 // 2 * 2, rel=0.01)  # (+ padding to whole MCUs)
    assert decoding_bytes(ok) <= MAX_DECODED_BYTES
    refused = refusal(with_frame_size(small, width=6000, height=5000))
    assert (
        refused.status == 413 and "too much memory" in str(refused) and "progressive JPEG of 6000x5000" in str(refused)
    )


def test_a_jpeg_whose_scans_are_repeated_is_refused_without_decoding(nothing_decoded):
    """The red team's: a progressive 256x256 JPEG whose last scan repeats to 1.5 MB (125,000 passes: ~12 s of CPU)."""
    progressive = encoded(Image.new("L", (256, 256), 170), "JPEG", quality=50, progressive=True)
    flood = scan_flood_jpeg(progressive, extra=125_000)
    assert len(flood) > 1_000_000
    refused = refusal(flood)
    assert refused.status == 413 and f"more than {MAX_JPEG_SCANS} JPEG scans" in str(refused)


def test_scans_are_counted_by_walking_the_markers():
    """As libjpeg reads them: 0xFF 0xDA inside a segment (an EXIF thumbnail) or stuffed in the coded data is no scan."""
    progressive = encoded(Image.new("L", (64, 64), 170), "JPEG", quality=50, progressive=True)
    own = progressive.count(b"\xff\xda")
    assert read_header(progressive).scans == own == 6  # libjpeg's script for grey
    at_limit = scan_flood_jpeg(progressive, extra=MAX_JPEG_SCANS - own)
    assert read_header(at_limit).scans == MAX_JPEG_SCANS
    decode(upright(at_limit))  # accepted, and what is sent the handler accepts
    assert refusal(scan_flood_jpeg(progressive, extra=MAX_JPEG_SCANS - own + 1)).status == 413

    thumbnail = encoded(Image.new("L", (16, 16)), "JPEG", progressive=True)  # 6 scans of its own, inside APP1
    baseline = encoded(paper_with_a_one(300, 400), "JPEG", quality=90)
    with_thumbnail = baseline[:2] + b"\xff\xe1" + struct.pack(">H", len(thumbnail) + 2) + thumbnail + baseline[2:]
    assert read_header(with_thumbnail).scans == 1
    noise = encoded(noisy_photo(300, 300), "JPEG", quality=95, restart_marker_rows=2)  # stuffed 0xFF 0x00, RSTn
    assert noise.count(b"\xff\x00") > 10 and b"\xff\xd3" in noise and read_header(noise).scans == 1


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (comment_flood_jpeg(encoded(paper_with_a_one(280, 280), "JPEG")), 413, "more than 64 JPEG segments"),
        (chunk_flood_png(encoded(Image.new("L", (280, 280), 255), "PNG")), 413, "more than 4096 PNG chunks"),
        (with_coding(encoded(paper_with_a_one(280, 280), "JPEG"), 0xC9), 415, "arithmetic-coded JPEG"),
        (with_coding(encoded(paper_with_a_one(280, 280), "JPEG"), 0xC3), 415, "lossless"),
        (animated("PNG"), 415, "an animated PNG"),
    ],
    ids=["jpeg-comments", "png-chunks", "jpeg-arithmetic", "jpeg-lossless", "png-animated"],
)
def test_floods_and_kinds_the_page_does_not_decode_are_refused_from_the_headers(data, status, words, nothing_decoded):
    refused = refusal(data)
    assert refused.status == status and words in str(refused)
    if status == 415:
        assert "PNG or JPEG" in str(refused)


def test_a_png_is_judged_by_the_memory_its_pixels_take(nothing_decoded):
    """Decoded whole, 4 bytes a pixel in colour, and a premultiplied copy to reduce one with alpha. A header and
    an IDAT of nothing: a decode would fail (415), so a 413 is the header's."""

    def png(width: int, height: int, color_type: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
        return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")

    assert decoding_bytes(read_header(png(3000, 3000, 0))) == 3000 * 3000  # grey: 1 byte a pixel
    assert decoding_bytes(read_header(png(3000, 3000, 6))) == 3000 * 3000 * 8
    refused = refusal(png(3000, 3000, 6))
    assert refused.status == 413 and "a PNG of 3000x3000 pixels: 69 MB" in str(refused)


def test_a_long_narrow_jpeg_is_decoded_at_the_scale_its_longer_side_allows():
    """Pillow picks the DCT scale from the smaller ratio: asked for (1024, 1024), an 8192x1024 picture would be
    decoded whole; asked for draft_size, at 1/8."""
    assert draft_size(8192, 1024, side=1024) == (1024, 128) and draft_scale(8192, 1024, side=1024) == 8
    assert draft_scale(8000, 8000, side=1024) == 4 and draft_scale(900, 700, side=1024) == 1
    narrow = encoded(Image.new("L", (4096, 512), 200), "JPEG")
    image = Image.open(io.BytesIO(narrow))
    image.draft("L", draft_size(4096, 512, side=1024))
    assert image.size == (1024, 128)


def test_the_json_apis_pixel_count_reads_a_bounded_header():
    """The heavy lane's pixel count (app/limits.py) reads the same headers: a comment flood is no work there."""
    assert pixel_count(comment_flood_jpeg(encoded(paper_with_a_one(280, 280), "JPEG"))) == 0
    assert pixel_count(encoded(paper_with_a_one(600, 400), "JPEG")) == 600 * 400


# ---- decodes at once: one per client, a few server-wide, off the event loop -------------------------------------


class SlowDecodes:
    """Stands in for the decode (app.uploads._upright): each takes `seconds` in its thread; counts how many at once."""

    def __init__(self, seconds: float = 0.3):
        self.seconds = seconds
        self.running = self.most = 0
        self.niceness: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, data: bytes, header) -> bytes:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return data


@pytest.fixture
def slow(monkeypatch) -> SlowDecodes:
    decodes = SlowDecodes()
    monkeypatch.setattr("app.uploads._upright", decodes)
    return decodes


PHOTO = encoded(paper_with_a_one(600, 800), "JPEG", quality=85)
PROGRESSIVE = encoded(Image.new("L", (256, 256), 170), "JPEG", quality=50, progressive=True)


async def test_a_client_has_one_picture_decoded_at_a_time(slow):
    pictures = Pictures(decodes=2)
    first = asyncio.create_task(pictures.upright(PHOTO, client="browser a"))
    await asyncio.sleep(0.05)
    with pytest.raises(PredictionRejected) as refused:
        await pictures.upright(PHOTO, client="browser a")
    assert refused.value.status == 429 and "One picture at a time" in str(refused.value)
    assert await pictures.upright(PHOTO, client="browser b") == PHOTO  # another client is not held up
    assert await first == PHOTO
    assert await pictures.upright(PHOTO, client="browser a") == PHOTO  # and the first may give the next one


async def test_decodes_at_once_are_bounded_server_wide_and_run_at_a_lower_priority(slow):
    pictures = Pictures(decodes=2)
    results = await asyncio.gather(*(pictures.upright(PHOTO, client=f"browser {i}") for i in range(5)))
    assert results == [PHOTO] * 5 and slow.most == 2
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert slow.niceness and all(nice == min(19, own + DECODE_NICENESS) for nice in slow.niceness)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the event loop's thread keeps its own


async def test_a_picture_that_cannot_start_in_time_is_answered_busy(slow):
    pictures = Pictures(decodes=1, wait=0.1)
    first = asyncio.create_task(pictures.upright(PHOTO, client="browser a"))
    await asyncio.sleep(0.05)
    with pytest.raises(PredictionRejected) as refused:
        await pictures.upright(PHOTO, client="browser b")
    assert refused.value.status == 503 and "busy" in str(refused.value)
    await first


async def test_a_bomb_is_refused_at_once_while_others_decode(slow):
    """Judged from its headers before it waits for a decode."""
    pictures = Pictures(decodes=1, wait=5)
    first = asyncio.create_task(pictures.upright(PHOTO, client="browser a"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(PredictionRejected) as refused:
        await pictures.upright(scan_flood_jpeg(PROGRESSIVE, extra=1000), client="browser b")
    assert refused.value.status == 413 and time.monotonic() - started < slow.seconds
    await first


async def test_the_page_holds_at_most_so_many_pictures(slow):
    pictures = Pictures(decodes=1, held=2)
    with pictures.turn("browser a"), pictures.turn("browser b"):  # two bodies being received
        with pytest.raises(PredictionRejected) as refused:
            await pictures.upright(PHOTO, client="browser c")
        assert refused.value.status == 503
        with pytest.raises(PredictionRejected) as refused, pictures.turn("browser a"):
            pass
        assert refused.value.status == 429
    assert await pictures.upright(PHOTO, client="browser c") == PHOTO


async def test_a_decode_holds_its_turns_until_it_ends_even_when_the_caller_stops_waiting(slow):
    pictures = Pictures(decodes=1)
    first = asyncio.create_task(pictures.upright(PHOTO, client="browser a"))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(PredictionRejected) as refused:
        await pictures.upright(PHOTO, client="browser a")
    assert refused.value.status == 429  # its decode still runs
    assert await pictures.upright(PHOTO, client="browser b") == PHOTO  # waits for the slot, then runs alone
    assert slow.most == 1
