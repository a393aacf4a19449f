"""The drawing and stats pages as a user sees them, on stand-ins for TorchServe and PostgreSQL
(tests/support/fakes.py): no Java, no database, so these run in a second. The same flows against the real servers
are in test_draw_page.py."""

from __future__ import annotations

import asyncio

import pytest
from nicegui.testing import User

from tests.ui.test_draw_page import draw, text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")

SEVEN, ONE = b"\x89PNG\r\n\x1a\n seven", b"\x89PNG\r\n\x1a\n one"  # the page sends whatever the slate gave


async def predict(user: User, fake_app, png: bytes) -> None:
    before = len(fake_app.store.rows)
    await draw(user, png)
    user.find(marker="predict").click()
    await wait_for(lambda: len(fake_app.store.rows) > before)


async def test_a_prediction_shows_the_digit_its_confidence_and_version_and_is_stored(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    await predict(user, fake_app, SEVEN)
    await wait_for(lambda: text_of(user, "digit") == "7")
    assert "90.0% sure" in text_of(user, "confidence")
    assert "mnist 1.0" in text_of(user, "version")
    (row,) = fake_app.store.rows
    assert (row.predicted_digit, row.canvas_png, row.true_digit) == (7, SEVEN, None)
    await user.should_see("1 drawing · no feedback yet")


async def test_feedback_labels_the_row_and_updates_the_accuracy(fake_app, user: User):
    fake_app.predictor.digits[ONE] = 7  # the model is wrong
    await user.open("/")
    await predict(user, fake_app, ONE)
    user.find(marker="correct").type("1")
    user.find("Save correction").click()
    await user.should_see("Saved: true digit 1")
    assert fake_app.store.rows[-1].true_digit == 1
    await user.should_see("accuracy 0/1 = 0.0%")


async def test_typing_something_else_than_one_digit_is_refused(fake_app, user: User):
    await user.open("/")
    await predict(user, fake_app, SEVEN)
    user.find(marker="correct").type("12")
    user.find("Save correction").click()
    await user.should_see("Type one digit from 0 to 9")
    assert fake_app.store.rows[-1].true_digit is None


async def test_the_model_server_down_is_said_and_nothing_is_stored(fake_app, user: User):
    fake_app.predictor.down = True
    await user.open("/")
    await draw(user, SEVEN)
    user.find(marker="predict").click()
    await user.should_see("the model server is unavailable, probably restarting: your drawing is kept")
    assert fake_app.store.rows == []


async def test_a_drawing_refused_as_not_a_digit_is_said_stored_and_can_be_labelled(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    fake_app.predictor.refuse.add(SEVEN)
    await user.open("/")
    await predict(user, fake_app, SEVEN)
    await user.should_see("That doesn't look like a digit")
    (row,) = fake_app.store.rows
    assert (row.predicted_digit, row.answer.not_a_digit) == (7, True)
    user.find(marker="correct").type("7")
    user.find("It is a digit: 7").click()
    await user.should_see("Saved: true digit 7")


async def test_the_stats_page_counts_every_browser(fake_app, user: User):
    fake_app.predictor.digits.update({SEVEN: 7, ONE: 1})
    await user.open("/")
    for png in (SEVEN, ONE):
        await predict(user, fake_app, png)
        user.find(marker="confirm").click()
        await wait_for(lambda: fake_app.store.rows[-1].true_digit is not None)
    await user.open("/stats")
    await user.should_see("Accuracy 100.0%")
    await user.should_see("2 predictions, 2 with feedback")


async def test_the_stats_page_counts_refusals_answered_confirmed_and_overturned(fake_app, user: User):
    scribbles = [b"\x89PNG\r\n\x1a\n scribble %d" % n for n in range(3)]
    fake_app.predictor.refuse.update(scribbles)
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    for png in (*scribbles, SEVEN):
        await predict(user, fake_app, png)
    labels = {1: {"not_a_digit": True}, 2: {"digit": 5}, 4: {"not_a_digit": True}}  # by row id
    for row in list(fake_app.store.rows):
        if row.id in labels:
            await fake_app.app.predictions.label(browser_id=row.browser_id, request_id=row.request_id, **labels[row.id])
    await user.open("/stats")
    await user.should_see("3 drawings answered \u201cnot a digit\u201d: 1 confirmed, 1 overturned (a digit after all); "
                          "1 answered as a digit were not a digit")  # fmt: skip
    await user.should_see("Accuracy 33.3%")  # the confirmation is right; the overturned and the flagged 7 are wrong


def spinning(user: User) -> bool:
    try:
        return bool(user.find(marker="why-spinner").elements)
    except AssertionError:  # not visible
        return False


def title(user: User) -> str:
    """The title of the Why? view, "" while it is hidden."""
    try:
        return text_of(user, "why-title")
    except AssertionError:  # not shown yet
        return ""


async def test_why_asks_one_pass_per_drawing_and_keeps_it_across_predictions(fake_app, user: User):
    """Why? fetches all ten maps at once (docs/security.md N1): other digits cost no pass, nor does the same drawing
    again after another one was predicted and explained."""
    from tests.ui.test_why_page import element
    from tools.bench_hostile import scribbles

    first, second = scribbles(2, seed=5)
    await user.open("/")
    for png, passes in ((first, 1), (second, 2), (first, 2)):
        await predict(user, fake_app, png)
        await asyncio.sleep(0.1)  # the page shows the answer right after storing it
        user.find(marker="why").click()
        await wait_for(lambda: title(user) == "Why 0?")  # the stand-in answers 0
        element(user, "why-digits").set_value(3)
        await wait_for(lambda: text_of(user, "why-title").startswith("Why not 3?"))
        await wait_for(lambda: not spinning(user))
        assert fake_app.predictor.explanations == passes
