"""A picture a person gives the page instead of drawing (a file, a photo from the phone's camera, an image dropped on
the slate or pasted), made ready for the model: upright, and within what TorchServe's handler accepts.

Phones store a photo as the sensor read it and say in its EXIF how to turn it for viewing; the handler drops JPEG
metadata unread (handler/preprocess.py), so a digit photographed upright would be read lying on its side. Here the
picture is turned as its EXIF says and sent without it. A large picture is reduced to at most PICTURE_SIDE px a side
first: the handler refuses PNGs over 1.25 MiB of samples and baseline JPEGs over 512 KiB (413), and works on 512 px
anyway (its WORK_SIDE), the digit on 20. A picture that needs neither is sent as it came, byte for byte (a PNG drawn
elsewhere reads exactly as through the JSON API).

Decoding is the page process's own work, so what it may cost is judged first, from the headers alone
(app/picture_headers.py: size, components, progressive or not, scans, chunks): at most MAX_DECODED_BYTES of memory for
one picture, a bounded number of scans and bytes. `Pictures` then bounds the sum: a few decodes at once, in threads
off the event loop and at a lower CPU priority, one per client, a few pictures held in all. Refusals are
PredictionRejected with the status the JSON API would answer: 415 (not a PNG or JPEG, or a kind the page does not
decode), 413 (too large or too costly), 429 (this client's previous picture is still in hand), 503 (busy).

The handler's limits are its own (handler/ imports nothing of ours, and nothing here imports it); the figures below
stay inside them, and tests/app/test_uploads.py sends what `upright` makes through the handler's decoder.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from PIL import Image

from app.picture_headers import (
    JPEG_SIGNATURE,
    MAX_JPEG_SCANS,
    PNG_SIGNATURE,
    Header,
    PictureRefused,
    draft_size,
    read_header,
)
from records.errors import PredictionRejected

logger = logging.getLogger(__name__)

# What the page takes: a phone's 12-50 Mpx photo is 2-10 MB. The HTTP body limit of the picture route says the same
# (ui/widgets/slate.py).
MAX_PICTURE_BYTES = 16 * 1024 * 1024
# Decoding cost, from the headers before anything is decoded (app/picture_headers.py). A JPEG is decoded at 1/2..1/8
# scale (Image.draft), so a baseline one costs little memory whatever its size; a progressive one (or one in several
# scans) makes libjpeg hold all its coefficients (2 bytes per sample: a 12 Mpx colour photo 36 MB, a progressive
# CMYK 8000x8000 512 MB). A PNG is decoded whole (up to 4 bytes a pixel). MAX_DECODED_BYTES bounds both, so a decode
# holds at most that much besides the file, and the decodes at once (Pictures) bound the sum.
MAX_JPEG_PIXELS = 64_000_000
MAX_PNG_PIXELS = 16_000_000
MAX_DECODED_BYTES = 64 * 1024 * 1024
# Entropy decoding costs by the byte, ~4x more for progressive data; every scan is another pass over every
# coefficient (the handler's figures: handler/preprocess.py). A progressive photo is refused above this many bytes.
MAX_MULTI_SCAN_BYTES = 8 * 1024 * 1024

PICTURE_SIDE = 1024  # px, the longest side sent
JPEG_QUALITIES = (90, 80, 70)  # tried in turn until the file fits SENT_JPEG_BYTES
# Below the handler's limits (MAX_JPEG_BYTES 512 KiB for baseline JPEGs, 64 KiB progressive; MAX_PNG_SAMPLE_BYTES
# 1.25 MiB), with room to spare.
SENT_JPEG_BYTES = 448 * 1024
SENT_PNG_SAMPLES = 1280 * 1024

CHOOSE = "choose a PNG or JPEG image (a photo or a scan)"
NOT_A_PICTURE = f"That is not a picture the page can read: {CHOOSE}"
SAVE_AGAIN = "choose a smaller picture, or save it again as an ordinary (baseline) JPEG"
ONE_AT_A_TIME = "One picture at a time: wait for the answer to the last one, then give the next"
BUSY = "The page is busy reading other people's pictures: try again in a moment"
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> what turns the stored picture upright (ImageOps.exif_transpose's table)
TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(data: bytes) -> bytes:
    """The picture to predict: `data` itself when it is upright and small enough, else a re-encoded copy, turned as
    its EXIF says, at most PICTURE_SIDE px a side (JPEG, or PNG when it has transparency).

    PredictionRejected: 415 for anything but a readable PNG or JPEG, 413 for one too large or too costly to work on
    (judged from its headers, before a pixel is decoded)."""
    return _upright(data, checked(data))


def checked(data: bytes) -> Header:
    """The picture's header, if decoding it stays within the limits above; else PredictionRejected (413, 415)."""
    if len(data) > MAX_PICTURE_BYTES:
        raise PredictionRejected(
            f"That picture is too large ({len(data) / 2**20:.1f} MB): choose one under {MAX_PICTURE_BYTES // 2**20} MB",
            status=413,
        )
    _kind(data)
    try:
        header = read_header(data)
    except PictureRefused as exc:
        if exc.status == 415:
            raise PredictionRejected(f"That picture cannot be read here ({exc}): {CHOOSE}", status=415) from exc
        raise PredictionRejected(f"That picture is too costly to read ({exc}): {SAVE_AGAIN}", status=413) from exc
    _check_cost(header, size=len(data))
    return header


def _check_cost(header: Header, *, size: int) -> None:
    limit = MAX_PNG_PIXELS if header.kind == "PNG" else MAX_JPEG_PIXELS
    if header.pixels > limit:
        raise PredictionRejected(
            f"That picture is too large to work on ({header.width}x{header.height} pixels): at most "
            f"{limit / 1e6:.0f} megapixels",
            status=413,
        )
    needed = decoding_bytes(header)
    if needed > MAX_DECODED_BYTES:
        what = "a progressive JPEG" if header.multi_scan else f"a {header.kind}"
        raise PredictionRejected(
            f"That picture would take too much memory to read ({what} of {header.width}x{header.height} pixels: "
            f"{needed / 2**20:.0f} MB, at most {MAX_DECODED_BYTES // 2**20} MB): "
            + (SAVE_AGAIN if header.multi_scan else "choose a smaller picture"),
            status=413,
        )
    if header.scans > MAX_JPEG_SCANS:
        raise PredictionRejected(
            f"That picture is too costly to read (more than {MAX_JPEG_SCANS} JPEG scans): {SAVE_AGAIN}", status=413
        )
    if header.multi_scan and size > MAX_MULTI_SCAN_BYTES:
        raise PredictionRejected(
            f"That picture is too costly to read (a progressive JPEG of {size / 2**20:.1f} MB, at most "
            f"{MAX_MULTI_SCAN_BYTES // 2**20} MB): {SAVE_AGAIN}",
            status=413,
        )


def decoding_bytes(header: Header) -> int:
    """Memory reading the picture takes at its peak: what decoding holds, and for a picture with alpha the
    premultiplied copy Pillow makes to resize it (RGBA -> RGBa, LA -> La: 4 bytes a pixel)."""
    return header.decoded_bytes(side=PICTURE_SIDE) + (4 * header.pixels if header.alpha else 0)


def _upright(data: bytes, header: Header) -> bytes:
    kind = header.kind
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            if _sendable(data, image, kind):
                return data
            return _reencoded(image, header)
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


def _reencoded(image: Image.Image, header: Header) -> bytes:
    """Reduced first (a JPEG already while decoding: Image.draft), turned after: only the small copy is turned."""
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    if header.kind == "JPEG":
        image.draft(image.mode, draft_size(header.width, header.height, side=PICTURE_SIDE))
    image.thumbnail((PICTURE_SIDE, PICTURE_SIDE), Image.Resampling.LANCZOS)  # loads it
    if orientation in TURNS:
        image = image.transpose(TURNS[orientation])  # the copy carries no orientation
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return _png(image)
    return _jpeg(image)


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


# Decodes at once, server-wide: half the cores (at least one), so that people drawing keep a core while pictures are
# read. Each decode thread also runs at a lower CPU priority (DECODE_NICENESS): when the machine is busy, a picture
# waits rather than the people drawing.
DECODES = max(1, (os.cpu_count() or 2) // 2)
DECODE_NICENESS = 10
# Pictures the page holds at once (received, waiting for a decode, being decoded), each at most MAX_PICTURE_BYTES;
# one more is answered "busy" at once. A picture that cannot start decoding within WAIT_SECONDS is answered "busy".
HELD = 6
WAIT_SECONDS = 15.0


def _lower_priority() -> None:
    """In each decode thread: a higher niceness for this thread alone (Linux: setpriority on a thread id)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (OSError, AttributeError) as exc:  # not Linux, or not allowed: decodes then run at the page's priority
        logger.info("picture decodes keep the page's CPU priority: %s", exc)


class Pictures:
    """The pictures the page reads: at most `decodes` decoded at once server-wide (in threads of their own, off the
    event loop), at most one per client (its key: ui/http.py client_key), at most `held` in hand in all; each judged
    from its headers before it waits for a turn (`checked`)."""

    def __init__(self, *, decodes: int = DECODES, held: int = HELD, wait: float = WAIT_SECONDS):
        self._decodes = asyncio.Semaphore(decodes)
        self._threads = ThreadPoolExecutor(decodes, thread_name_prefix="picture", initializer=_lower_priority)
        self._clients: set[str] = set()
        self.held = held
        self.wait = wait

    def busy(self, client: str) -> PredictionRejected | None:
        """Why a picture from `client` would be refused now (429: it has one in hand; 503: the page holds `held`)."""
        if client in self._clients:
            return PredictionRejected(ONE_AT_A_TIME, status=429)
        if len(self._clients) >= self.held:
            return PredictionRejected(BUSY, status=503)
        return None

    @contextmanager
    def turn(self, client: str) -> Iterator[None]:
        """While `client`'s picture is in hand (received: the picture route; decoded: `upright`), else refused."""
        if (refusal := self.busy(client)) is not None:
            raise refusal
        self._clients.add(client)
        try:
            yield
        finally:
            self._clients.discard(client)

    async def upright(self, data: bytes, *, client: str) -> bytes:
        """app.uploads.upright, in turn: refused from the headers at once, else decoded in a decode thread when one is
        free (503 after `wait` seconds). A decode that has started runs to its end and holds its turns till then,
        even when the caller stops waiting."""
        if (refusal := self.busy(client)) is not None:
            raise refusal
        header = checked(data)
        self._clients.add(client)
        try:
            await asyncio.wait_for(self._decodes.acquire(), self.wait)
        except TimeoutError as exc:
            self._clients.discard(client)
            raise PredictionRejected(BUSY, status=503) from exc
        except BaseException:
            self._clients.discard(client)
            raise
        future = self._threads.submit(_upright, data, header)
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._done, client))
        return await asyncio.wrap_future(future)

    def _done(self, client: str) -> None:
        self._clients.discard(client)
        self._decodes.release()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
