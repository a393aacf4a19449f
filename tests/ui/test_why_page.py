"""Issue 15 on the page, as a user sees it (NiceGUI `user` fixture, the real TorchServe and Postgres of the session):
Why? draws the explanation of the predicted digit and of the runner-up; a "not a digit" answer is said as such, stored
marked with its closest digit, and can be labelled; the result card before the first prediction; local history times.

The shipped versions never refuse (no refusal.json), so the refusal test answers through the real predictor and turns
its answer into a refusal, exactly as serving/inference.py parses one (tests/serving/test_inference.py)."""

from dataclasses import replace

import pytest
from nicegui import app
from nicegui.testing import User

from tests.support.database import fetch_one
from tests.ui.test_draw_page import draw, more_rows_than, predict, row_count, rows_for, text_of, wait_for

pytestmark = [pytest.mark.integration]


def element(user: User, marker: str):
    (found,) = user.find(marker=marker).elements
    return found


def source(user: User, marker: str) -> str:
    """An image's source; "" while it is not shown (user.find sees only visible elements)."""
    try:
        return element(user, marker).source
    except AssertionError:
        return ""


async def test_why_shows_the_map_over_the_drawing_and_the_field_and_the_runner_up_changes_it(
    user: User, canvas_pngs, database_url
):
    await user.open("/")
    png, label, _ = canvas_pngs[9]
    assert await predict(user, png, database_url) == str(label)
    await user.should_not_see(marker="why-title")  # nothing is asked before the user presses Why?
    user.find(marker="why").click()
    await wait_for(lambda: source(user, "why-drawing").startswith("data:image/png;base64,"))
    assert text_of(user, "why-title") == f"Why {label}?"
    assert source(user, "why-field").startswith("data:image/png;base64,")
    assert text_of(user, "why-for") == f"for {label}" and text_of(user, "why-against") == f"against {label}"
    assert "smoothed" in text_of(user, "why-caption")
    assert element(user, "why-digits").value == label
    answer_map = source(user, "why-drawing")

    switch = element(user, "why-switch")
    runner_up = int(switch.text.removeprefix("Why not ").rstrip("?"))
    assert runner_up != label
    user.find(marker="why-switch").click()
    await wait_for(lambda: source(user, "why-drawing") != answer_map)
    assert text_of(user, "why-title").startswith(f"Why not {runner_up}? (")
    assert text_of(user, "why-for") == f"for {runner_up}" and element(user, "why-digits").value == runner_up
    assert element(user, "why-switch").text == f"Why {label}?"

    user.find(marker="why-switch").click()  # back to the answer: kept, the same picture
    await wait_for(lambda: source(user, "why-drawing") == answer_map)
    other = next(d for d in range(10) if d not in (label, runner_up))
    element(user, "why-digits").set_value(other)  # any other digit from the row of digits
    await wait_for(lambda: text_of(user, "why-title").startswith(f"Why not {other}?"))
    await wait_for(lambda: source(user, "why-drawing") not in (answer_map, ""))

    await predict(user, canvas_pngs[10][0], database_url)  # a new prediction hides the old explanation
    await user.should_not_see(marker="why-title")


async def test_before_the_first_prediction_no_black_preview_and_no_pressable_feedback(user: User, canvas_pngs,
                                                                                   database_url):  # fmt: skip
    await user.open("/")
    # the preview and Why? keep their place (nothing moves when they appear) but are invisible
    (preview,) = user.find(marker="preview").elements
    box = preview.parent_slot.parent.parent_slot.parent
    assert "invisible" in box.classes
    for marker in ("confirm", "correct"):
        await user.should_not_see(marker=marker)
    await user.should_see(marker="feedback-hint")
    await predict(user, canvas_pngs[11][0], database_url)
    assert "invisible" not in box.classes
    for marker in ("preview", "why", "confirm", "correct"):
        await user.should_see(marker=marker)
    await user.should_not_see(marker="feedback-hint")


async def test_history_times_carry_their_offset_and_are_shown_in_the_browsers_time_zone(
    user: User, canvas_pngs, database_url
):
    await user.open("/")
    await predict(user, canvas_pngs[12][0], database_url)
    table = element(user, "history")
    await wait_for(lambda: bool(table.rows))
    time = table.rows[0]["time"]
    assert time[10] == "T" and time[-6] in "+-" and time[-3] == ":"  # ISO 8601 with its UTC offset
    assert all(column["label"] != "Time (UTC)" for column in table.columns)
    assert "toLocaleString" in str(table.slots["body"].template)  # formatted by the browser


async def test_not_a_digit_is_said_stored_marked_and_can_be_labelled(user: User, canvas_pngs, database_url,
                                                                    monkeypatch):  # fmt: skip
    await user.open("/")
    predictor = app.state.runtime.started.predictions.server
    real_predict = predictor.predict

    async def refusing(png, *, version=None):
        answer = await real_predict(png, version=version)
        return replace(answer, digit=None, not_a_digit=True, reason="looks like several digits")

    monkeypatch.setattr(predictor, "predict", refusing)
    png, label, _ = canvas_pngs[13]
    rows_before = await row_count(database_url)
    await draw(user, png)
    user.find(marker="predict").click()
    await user.should_see("That doesn't look like a digit — draw one digit")
    assert text_of(user, "digit") == "?"
    assert text_of(user, "refusal").startswith(f"looks like several digits · closest digit: {label} (")
    await wait_for(lambda: more_rows_than(database_url, rows_before))
    row_id = (await rows_for(database_url))[-1][0]
    query = "SELECT predicted_digit, not_a_digit FROM predictions WHERE id = %s"
    stored = await fetch_one(database_url, query, (row_id,))
    assert stored == (label, True)

    await user.should_not_see(marker="confirm")  # a refusal cannot be confirmed as a digit: "Right, not a digit"
    await user.should_see(marker="confirm-refusal")
    user.find(marker="correct").type(str(label))  # a real digit refused by mistake: labelled all the same
    user.find(f"It is a digit: {label}").click()
    await user.should_see(f"Saved: true digit {label}")
    assert (await rows_for(database_url))[-1][3] == label
    table = element(user, "history")
    await wait_for(lambda: any(row["id"] == row_id and row["true"] == label for row in table.rows))
    (row,) = [row for row in table.rows if row["id"] == row_id]
    assert row["predicted"] == f"not a digit ({label})" and row["result"] == "✗"

    user.find(marker="why").click()  # Why? explains the closest digit
    await wait_for(lambda: source(user, "why-drawing").startswith("data:image/png;base64,"))
    assert text_of(user, "why-title") == f"Why is it closest to {label}?"
