"""The page's Number mode as a user sees it, on stand-ins for TorchServe and PostgreSQL (tests/support/fakes.py: the
fake server reads the number a test scripts for a drawing, each digit's box a slice of the drawing's width): the
switch, the number read with its boxes, both corrections, the history and the stats. The same on the whole product
in a real browser: tests/e2e/test_browser.py (test_number_mode_reads_42_and_one_digit_is_corrected_by_keyboard)."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User

from handler.segmentation import TOO_COMPLEX
from tests.handler.test_numbers import drawing, one, seven, zero
from tests.ui.test_draw_page import draw, text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")

NUMBER = drawing(one(150), seven(300), zero(480))  # an 840x280 PNG, like the slate's in Number mode


async def read(user: User, fake_app, png: bytes) -> None:
    """Draw, press Predict, and wait until the number is stored and shown."""
    before = len(fake_app.numbers.numbers)
    await draw(user, png)
    user.find(marker="predict").click()
    await wait_for(lambda: len(fake_app.numbers.numbers) > before)
    await wait_for(lambda: text_of(user, "number") != "")


def boxes(user: User) -> str:
    (element,) = user.find(marker="boxes").elements
    return element.content


def history_rows(user: User) -> list[dict]:
    (table,) = user.find(marker="history").elements
    return table.rows


async def test_the_switch_leads_to_number_mode_and_back(user: User):
    await user.open("/")
    await user.should_see("Draw a digit")
    user.find(kind=ui.link, content="A number").click()
    await user.should_see("Write a number")
    (slate,) = user.find(marker="slate").elements
    assert (slate.props["width"], slate.props["height"]) == (840, 280)  # 3:1
    user.find(kind=ui.link, content="One digit").click()
    await user.should_see("Draw a digit")
    (slate,) = user.find(marker="slate").elements
    assert (slate.props["width"], slate.props["height"]) == (280, 280)


async def test_a_number_is_read_shown_with_its_boxes_and_announced(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    assert text_of(user, "number") == "Read 170"
    assert text_of(user, "announcer").strip() == "Read 170"
    svg = boxes(user)
    assert svg.count('stroke="#1d4ed8"') == 3 and 'viewBox="0 -29.7 840 309.7"' in svg  # the drawing's pixels
    assert '<rect x="280.0" y="0.0" width="280.0" height="280.0"' in svg  # the second digit's box, from the server
    assert [f">{d} · 90%</text>" in svg for d in "170"] == [True] * 3
    assert [text_of(user, f"digit-{p}") for p in range(3)] == ["1 · 90%", "7 · 90%", "0 · 90%"]
    (number,) = fake_app.numbers.numbers
    assert (number.number, number.canvas_png) == ("170", NUMBER)
    digit_rows = fake_app.numbers.digit_row_ids()
    assert fake_app.store.rows and all(row.id in digit_rows for row in fake_app.store.rows)  # never the digit path


async def test_the_whole_number_is_corrected_by_typing_it_with_enter(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    user.find(marker="correct-number").type("171").trigger("keydown.enter")
    await user.should_see("Saved: 171")
    assert fake_app.numbers.numbers[0].true_number == "171"
    assert [row.true_digit for row in fake_app.store.rows] == [1, 7, 1]  # as many digits as read: each labelled


@pytest.mark.parametrize("typed", ["12345678901", "17a", "1 7", "٢٠٢٦"])
async def test_anything_but_1_to_10_digits_is_refused_with_a_message(fake_app, user: User, typed):
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    user.find(marker="correct-number").type(typed)
    user.find(marker="save-number").click()
    await user.should_see("Type the number you wrote: 1 to 10 digits 0-9")
    assert fake_app.numbers.numbers[0].true_number is None


async def test_one_digit_is_corrected_from_its_button(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    user.find(marker="digit-2").click()
    await user.should_see("The right digit for digit 3 (read 0)")
    user.find(marker="digit-input").type("6").trigger("keydown.enter")
    await user.should_see("Saved: digit 3 as 6")
    assert [row.true_digit for row in fake_app.store.rows] == [None, None, 6]
    assert fake_app.numbers.numbers[0].true_number == "176"  # the reading with that digit corrected


async def test_the_history_lists_the_number_once_with_its_label_and_thumbnail(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    user.find(marker="confirm-number").click()
    await user.should_see("Saved: 170")
    await wait_for(lambda: any(row["true"] for row in history_rows(user)))
    (row,) = history_rows(user)  # one row, not one per digit
    assert (row["kind"], row["predicted"], row["true"], row["result"]) == ("number", "170", "170", "✓")
    thumbnail = await user.http_client.get(row["thumb"])
    assert thumbnail.status_code == 200 and thumbnail.content == NUMBER  # the whole drawing
    await user.should_see("1 drawing · accuracy 3/3 = 100.0%")  # the digits' labels count as feedback


async def test_a_refused_number_says_why_and_can_still_be_labelled(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    fake_app.predictor.refuse.add(NUMBER)
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    assert text_of(user, "number") == "No number read"
    assert text_of(user, "number-status") == "No number read: doesn't look like a digit"
    assert text_of(user, "announcer").strip() == "No number read: doesn't look like a digit"
    assert boxes(user).count('stroke="#b91c1c"') == 3  # each refused part in red
    user.find(marker="correct-number").type("170").trigger("keydown.enter")
    await user.should_see("Saved: 170")
    assert fake_app.numbers.numbers[0].true_number == "170"


async def test_a_drawing_too_complex_to_read_is_said_and_nothing_is_stored(fake_app, user: User):
    """The handler's 422 for a drawing whose reading would cost more than its work budget (a dense zigzag)."""
    fake_app.predictor.unreadable[NUMBER] = TOO_COMPLEX
    await user.open("/number")
    await draw(user, NUMBER)
    user.find(marker="predict").click()
    await user.should_see("This drawing is too complex to read as a number: try writing it more simply")
    assert text_of(user, "number-status").startswith("This drawing is too complex to read as a number")
    assert fake_app.numbers.numbers == []


async def test_the_model_server_down_is_said_and_nothing_is_stored(fake_app, user: User):
    fake_app.predictor.down = True
    await user.open("/number")
    await draw(user, NUMBER)
    user.find(marker="predict").click()
    await user.should_see("the model server is unavailable, probably restarting: your drawing is kept")
    assert fake_app.numbers.numbers == []


async def test_stats_count_whole_numbers_apart(fake_app, user: User):
    other = drawing(seven(150), one(300))
    fake_app.predictor.numbers.update({NUMBER: "170", other: "71"})
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    user.find(marker="confirm-number").click()
    await user.should_see("Saved: 170")
    await read(user, fake_app, other)
    user.find(marker="correct-number").type("77").trigger("keydown.enter")
    await user.should_see("Saved: 77")
    await user.open("/stats")
    await user.should_see("2 numbers read, 2 with feedback: 1 read exactly (50.0%)")
    await user.should_see("5 predictions, 5 with feedback")  # their digits, counted as digits


async def test_a_number_in_the_history_is_relabelled_with_the_number_typed(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    await read(user, fake_app, NUMBER)
    await wait_for(lambda: len(history_rows(user)) == 1)
    await user.open("/")  # One digit mode lists numbers too
    await wait_for(lambda: len(history_rows(user)) == 1)
    (row,) = history_rows(user)
    user.find(marker="history").trigger("relabel", row)
    await user.should_see("The model read 170.")
    user.find(marker="history-number").type("176").trigger("keydown.enter")
    await user.should_see("Saved: 176")
    assert fake_app.numbers.numbers[0].true_number == "176"
    await wait_for(lambda: history_rows(user)[0]["true"] == "176")
    assert history_rows(user)[0]["result"] == "✗"
