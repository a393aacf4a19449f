"""Numbers in the learning loop, against the whole product started like `make run` (5.0 the default), small enough
for CI: simulated users write numbers composed from pendigits writers' own strokes through POST /api/numbers and label
them with the true number (`make simulate SIMULATE_ARGS="--numbers N"`); a user corrects one digit of a number; a
poisoner labels every digit of its numbers wrongly. `retrain` then reads, from PostgreSQL, each labelled digit as a
drawing: its crop, which the live model reads as it read that digit in the number, with its label, browser and
network, and the same poisoning screen leaves the poisoner out. (Training on them is the learning loop's own test:
tests/integration/test_learning_loop.py.)"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.handler.test_numbers import drawing, one, seven, zero
from tools.stack import learning_stack
from training import pendigits, retrain, screen, simulate
from training.screen import ScreenConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def stack(model_store, tmp_path_factory):
    with learning_stack(model_store, tmp_path_factory) as (settings, url):
        yield settings, url


@pytest.fixture(scope="module")
def pen_digits() -> list[pendigits.PenDigit]:
    path = pendigits.default_path()  # `make test` sets PENDIGITS_FILE
    if path is None or not path.exists():
        pytest.skip(f"pendigits not found ({path}): set PENDIGITS_FILE to pendigits-orig.tra.gz")
    return [d for d in pendigits.load(path) if d.writer in (1, 2, 3)]


async def correct_one_digit(url: str) -> tuple[dict, bytes, dict]:
    """A user writes 170 and says its last digit is a 4: (the number's answer, the digit's crop as stored, what the
    live model reads in that crop alone)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        key = str(uuid.uuid4())
        png = drawing(one(150), seven(300), zero(480))
        answer = (await client.post("/api/numbers", content=png, headers={**PNG, "Idempotency-Key": key})).json()
        labelled = await client.put(f"/api/numbers/{key}/digits/2/label", json={"digit": 4})
        assert labelled.status_code == 200, labelled.text
        crop = (await client.get(f"/drawings/{answer['digits'][2]['id']}")).content
        alone = (await client.post("/api/predictions?save=false", content=crop, headers=PNG)).json()
    return answer, crop, alone


async def poison(url: str, numbers: list[simulate.NumberDrawing]) -> None:
    """One browser labels every digit it was read wrongly (a number of the same length: each digit + 1)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for number in numbers:
            key = str(uuid.uuid4())
            answer = await simulate._send(client, "POST", "/api/numbers", content=number.png,
                                          headers={**PNG, "Idempotency-Key": key})  # fmt: skip
            assert answer.status_code == 200, answer.text
            wrong = "".join(str((d["digit"] + 1) % 10) for d in answer.json()["digits"])[:10]
            labelled = await simulate._send(client, "PUT", f"/api/numbers/{key}/label", json={"number": wrong})
            assert labelled.status_code == 200, labelled.text


def test_numbers_digits_reach_retrainings_feedback_as_crops_under_the_same_screen(stack, pen_digits):
    settings, url = stack
    honest = simulate.numbers_of([d for d in pen_digits if d.writer in (1, 2)], per_writer=6, seed=5)
    tally = asyncio.run(simulate.simulate(url, honest, browsers=2, visit=simulate.number_browser))
    assert tally.errors == [] and tally.sent == tally.labelled == 12
    assert tally.versions == {"5.0": 12} and tally.digits_labelled > 0

    answer, crop, alone = asyncio.run(correct_one_digit(url))
    assert answer["number"] == "170" and answer["model_version"] == "5.0"
    assert alone["digit"] == answer["digits"][2]["digit"] == 0  # the crop reads as the digit did in the number

    poisoner = simulate.numbers_of([d for d in pen_digits if d.writer == 3], per_writer=8, seed=6)[3]
    asyncio.run(poison(url, poisoner))

    feedback, default_version = asyncio.run(retrain.read_feedback(settings))
    assert default_version == "5.0"
    (corrected,) = [f for f in feedback if f.canvas_png == crop]
    assert (corrected.true_digit, corrected.predicted_digit, corrected.model_version) == (4, 0, "5.0")
    assert corrected.network == "127.0.0.0/24"  # where the label came from, as for any drawing
    browsers = {f.browser_id for f in feedback}
    assert len(browsers) == 4  # two honest writers, the user who corrected a digit, the poisoner
    # as if the honest writers had used the page for days (their agreeing labels train), nothing reviewed, and no
    # share cap: every browser here comes from loopback, one network, whose unreviewed labels the cap would count
    # against nobody else's and leave out whole (tests/training/test_screen.py tests the caps)
    selection = screen.select(feedback, ScreenConfig(holdout_share=0.0, established_hours=0.0, max_share=1.0))
    (excluded,) = selection.excluded  # the poisoner, by its digits' labels
    assert all(f.true_digit != f.predicted_digit for f in feedback if f.browser_id == excluded)
    kept = {f.browser_id for f in selection.train_rows}
    assert excluded not in kept and len(kept) >= 2  # the honest writers' digits stay
    assert corrected not in selection.train_rows and selection.pending >= 1  # a correction waits for review
