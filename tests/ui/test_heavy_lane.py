"""Images far larger than a drawing take turns through one lane (app/limits.py LargeImageLane); drawings never wait.
The latency it protects is measured by `make bench-hostile` (no timing asserts here)."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from app.limits import SLATE_PIXELS, LargeImageLane, pixel_count
from records.errors import ModelUnavailable
from tools.bad_inputs import encode

DRAWING = encode(Image.new("RGBA", (280, 280)))
LARGE = encode(Image.new("L", (572, 572)))


def test_pixel_count_reads_the_header_only():
    assert pixel_count(DRAWING) == 280 * 280 <= SLATE_PIXELS < pixel_count(LARGE)
    assert pixel_count(b"not an image") == 0


async def test_large_images_take_turns_and_drawings_do_not_wait():
    lane, inside, most = LargeImageLane(lanes=1, wait=5), [0], [0]

    async def ask(data: bytes) -> None:
        async with lane.slot(data):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            await asyncio.sleep(0.05)
            inside[0] -= 1

    await asyncio.gather(*(ask(LARGE) for _ in range(4)))
    assert most[0] == 1
    holder = asyncio.create_task(ask(LARGE))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*(ask(DRAWING) for _ in range(3))), 0.5)  # beside the large one
    await holder


async def test_a_large_image_waiting_too_long_is_told_the_server_is_busy():
    lane = LargeImageLane(lanes=1, wait=0.05)
    async with lane.slot(LARGE):
        with pytest.raises(ModelUnavailable, match="busy with large images"):
            async with lane.slot(LARGE):
                pass
