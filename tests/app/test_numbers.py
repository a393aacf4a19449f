"""The Numbers use case (app/numbers.py) on the stand-ins: a number read, kept whole with each digit's crop as a
prediction row, labelled whole or digit by digit, and journaled while the database is down; and the crop itself
(app/drawings.py digit_crop), which a retraining reads like any drawing: through the handler's own preprocessing and
the shipped model it reads as the digit it was cut from."""

from __future__ import annotations

import io
import uuid
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from app.drawings import CropError, digit_crop
from app.history import History
from app.numbers import Numbers
from app.predictions import NotYours, Predictions, SavedIn
from db.journal import Journal
from handler.model import DigitNet
from handler.preprocess import prepare
from records.errors import PredictionRejected, StoreUnavailable
from records.numbers import NumberReading
from tests.conftest import SHIPPED_V3_WEIGHTS
from tests.handler.test_numbers import drawing, one, seven, zero
from tests.support.fakes import FakeNumberStore, FakePredictionStore, FakePredictor

ONE_SEVEN_ZERO = drawing(one(150), seven(300), zero(480))  # 840x280, transparent, as the slate exports


@pytest.fixture
def numbers(tmp_path) -> Numbers:
    store = FakePredictionStore()
    number_store = FakeNumberStore(store)
    server = FakePredictor(numbers={ONE_SEVEN_ZERO: "170"})
    journal = Journal(tmp_path / "pending.jsonl")
    predictions = Predictions(server=server, store=store, journal=journal, number_store=number_store)
    return Numbers(server=server, store=number_store, predictions=predictions)


class Down:
    """A number store whose database is unreachable."""

    async def insert(self, row):
        raise StoreUnavailable("database unavailable: connection refused")

    set_feedback_by_request_id = set_digit_feedback_by_request_id = insert


def image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


# ---- the crop ---------------------------------------------------------------------------------------------------


def test_a_crop_is_the_box_on_a_blank_margin_of_the_drawings_background():
    png = drawing(one(150), seven(300))
    crop = image(digit_crop(png, (290.0, 50.0, 400.0, 230.0), margin=0.2))
    pad = round(0.2 * 180)
    assert crop.size == (110 + 2 * pad, 180 + 2 * pad) and crop.mode == "RGBA"
    alpha = np.asarray(crop)[..., 3]
    assert alpha[:pad].max() == 0 and alpha[:, :pad].max() == 0  # the margin: transparent, as the canvas is
    assert alpha[pad:-pad, pad:-pad].max() == 255  # the 7's ink
    white = drawing(one(150), style="black_on_white")
    corner = np.asarray(image(digit_crop(white, (130.0, 40.0, 170.0, 240.0))).convert("RGBA"))[0, 0]
    assert tuple(corner) == tuple(np.asarray(image(white).convert("RGBA"))[0, 0])  # a white page stays white


def test_a_crop_keeps_the_neighbours_ink_out_and_reads_as_its_digit():
    """Boxes as the handler gives them; each crop through the handler's preprocessing and the shipped 3.0 reads as
    the digit, and none holds ink of its neighbour (the margin is blank, not more of the drawing)."""
    net = DigitNet()
    net.load_state_dict(torch.load(SHIPPED_V3_WEIGHTS, map_location="cpu", weights_only=True))
    net.eval()  # in training mode dropout made the thin 1 read as 7 now and then
    boxes = [(130.0, 54.0, 156.0, 226.0), (294.0, 54.0, 396.0, 226.0), (474.0, 54.0, 576.0, 226.0)]
    read = []
    for box in boxes:
        crop = digit_crop(ONE_SEVEN_ZERO, box, margin=0.5)  # a margin wide enough to reach a neighbour's strokes
        with torch.inference_mode():
            read.append(int(net(prepare(crop).tensor().unsqueeze(0)).argmax()))
        alpha = np.asarray(image(crop))[..., 3]
        pad = round(0.5 * (box[3] - box[1]))
        assert alpha[:, :pad].max() == 0 and alpha[:, -pad:].max() == 0
    assert read == [1, 7, 0]


@pytest.mark.parametrize(
    ("data", "box"), [(b"\x89PNG\r\n\x1a\n not really", (0, 0, 10, 10)), (ONE_SEVEN_ZERO, (900, 0, 950, 10))]
)
def test_a_digit_that_cannot_be_cut_is_a_crop_error(data, box):
    with pytest.raises(CropError):
        digit_crop(data, box)


# ---- the use case -----------------------------------------------------------------------------------------------


async def test_a_number_is_kept_whole_and_each_digit_as_a_drawing_of_its_own(numbers):
    recorded = await numbers.read(ONE_SEVEN_ZERO, browser_id="b", network="192.0.2.0/24")
    assert recorded.saved is SavedIn.DATABASE and recorded.reading.number == "170"
    assert recorded.row_id == 1 and recorded.digit_ids == [1, 2, 3]
    store = numbers.predictions.store
    assert [row.predicted_digit for row in store.rows] == [1, 7, 0]
    assert numbers.store.digit_ids[1] == [1, 2, 3] and numbers.store.boxes[1][0] == (0.0, 0.0, 280.0, 280.0)
    assert all(image(row.canvas_png).size == (280 + 2 * 56, 280 + 2 * 56) for row in store.rows)  # the crops
    assert {row.client_network for row in store.rows} == {"192.0.2.0/24"}
    assert numbers.store.numbers[0].canvas_png == ONE_SEVEN_ZERO
    again = await numbers.read(ONE_SEVEN_ZERO, browser_id="b", request_id=recorded.request_id)
    assert again.digit_ids == recorded.digit_ids and len(store.rows) == 3  # a retry: the same rows


async def test_a_live_reading_keeps_nothing_and_cuts_nothing(numbers):
    recorded = await numbers.read(ONE_SEVEN_ZERO, browser_id="b", save=False)
    assert recorded.saved is SavedIn.NOT_SAVED and recorded.digit_ids == [None] * 3
    assert numbers.store.numbers == [] and all(d.prediction.canvas_png is None for d in recorded.row.digits)


async def test_not_an_image_and_a_box_that_cannot_be_cut_are_refused_and_nothing_is_kept(numbers, monkeypatch):
    with pytest.raises(PredictionRejected) as refused:
        await numbers.read(b"GIF89a", browser_id="b")
    assert refused.value.status == 415
    reading = await numbers.server.read_number(ONE_SEVEN_ZERO)
    beyond = replace(reading, digits=[replace(reading.digits[0], box=(900.0, 0.0, 950.0, 10.0))])

    async def answer_beyond(png: bytes, *, version: str | None = None) -> NumberReading:
        return beyond

    monkeypatch.setattr(numbers.server, "read_number", answer_beyond)
    with pytest.raises(PredictionRejected, match="lies outside") as refused:
        await numbers.read(ONE_SEVEN_ZERO, browser_id="b")
    assert refused.value.status == 422 and numbers.store.numbers == []


async def test_labels_whole_and_by_digit_and_only_for_the_browsers_own_number(numbers):
    recorded = await numbers.read(ONE_SEVEN_ZERO, browser_id="b")
    labelled = await numbers.label_number(browser_id="b", request_id=recorded.request_id, number="171")
    assert labelled.saved is SavedIn.DATABASE and labelled.digits_labelled == 3
    assert [row.true_digit for row in numbers.predictions.store.rows] == [1, 7, 1]
    assert (
        await numbers.label_number(browser_id="b", request_id=recorded.request_id, number="17")
    ).digits_labelled == 0
    assert await numbers.label_digit(browser_id="b", request_id=recorded.request_id, position=2, digit=4) is (
        SavedIn.DATABASE
    )
    with pytest.raises(NotYours):
        await numbers.label_number(browser_id="mallory", request_id=recorded.request_id, number="1")
    for position in (3, -1):
        with pytest.raises(NotYours):
            await numbers.label_digit(browser_id="b", request_id=recorded.request_id, position=position, digit=1)
    for bad in ("", "1a", "12345678901", 171):
        with pytest.raises(ValueError):
            await numbers.label_number(browser_id="b", request_id=recorded.request_id, number=bad)  # type: ignore[arg-type]


async def test_while_the_database_is_down_numbers_and_labels_wait_in_the_journal(numbers):
    number_store = numbers.store
    numbers.store = Down()
    recorded = await numbers.read(ONE_SEVEN_ZERO, browser_id="b")
    assert recorded.saved is SavedIn.JOURNAL and numbers.predictions.database_down
    labelled = await numbers.label_number(browser_id="b", request_id=recorded.request_id, number="171")
    assert (labelled.saved, labelled.digits_labelled) == (SavedIn.JOURNAL, None)
    assert await numbers.label_digit(browser_id="b", request_id=recorded.request_id, position=0, digit=7) is (
        SavedIn.JOURNAL
    )
    assert numbers.predictions.journal.pending == 3
    await numbers.predictions.replay()  # the database is back: the journal goes to the stores the app was wired on
    assert not numbers.predictions.database_down and numbers.predictions.journal.pending == 0
    (number,) = number_store.numbers
    assert (number.request_id, number.true_number) == (recorded.request_id, "771")
    assert [row.true_digit for row in numbers.predictions.store.rows] == [7, 7, 1]


async def test_the_model_server_down_keeps_nothing(numbers):
    numbers.server.down = True
    with pytest.raises(Exception, match="unavailable"):
        await numbers.read(ONE_SEVEN_ZERO, browser_id="b", request_id=uuid.uuid4())
    assert numbers.store.numbers == []


async def test_the_history_shows_a_number_once_and_the_stats_count_digits_and_numbers_apart(numbers):
    history = History(store=numbers.predictions.store, numbers=numbers.store, predictions=numbers.predictions)
    single = drawing(seven(300), slate=(280, 280))
    await numbers.predictions.predict(single, browser_id="b")
    recorded = await numbers.read(ONE_SEVEN_ZERO, browser_id="b")
    await numbers.label_number(browser_id="b", request_id=recorded.request_id, number="170")
    page = await history.page(browser_id="b", page=1, size=10)
    assert page.total == 2 and [type(e).__name__ for e in page.entries] == ["StoredNumber", "StoredPrediction"]
    assert page.numbers[0].number == "170" and [d.prediction.predicted_digit for d in page.numbers[0].digits] == [
        1,
        7,
        0,
    ]
    assert len(page.rows) == 1 and page.accuracy == (3, 3)  # the single drawing is unlabelled; the digits are
    stats = await history.stats()
    assert stats.total == 4 and stats.overall == (3, 3)  # digits: one drawing and three digits of a number
    assert stats.numbers == (1, 1, 1) and stats.numbers.rate == 1.0
    assert await history.number_drawing(browser_id="b", number_id=recorded.row_id) == ONE_SEVEN_ZERO
    assert await history.number_drawing(browser_id="mallory", number_id=recorded.row_id) is None
