"""The label "not a digit" on the drawing page, on stand-ins (tests/support/fakes.py): a refusal offers "Right, not a
digit" and "It is a digit: N" (the closest digit unless another is typed), an answered digit offers "This is not a
digit"; each is saved as its label, said in the live region, shown in the history and counted in its accuracy. By
keyboard: the controls are buttons (Enter and Space press them in a browser: tests/e2e) and the digit field saves on
Enter, as the digit correction does."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing import User

from tests.ui.test_draw_page import draw, text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")

SCRIBBLE, SEVEN = b"\x89PNG\r\n\x1a\n scribble", b"\x89PNG\r\n\x1a\n seven"


async def predict(user: User, fake_app, png: bytes) -> None:
    before = len(fake_app.store.rows)
    await draw(user, png)
    user.find(marker="predict").click()
    await wait_for(lambda: len(fake_app.store.rows) > before)


async def refused(user: User, fake_app) -> None:
    """A scribble the model refuses, its closest digit 3."""
    fake_app.predictor.digits[SCRIBBLE] = 3
    fake_app.predictor.refuse.add(SCRIBBLE)
    await user.open("/")
    await predict(user, fake_app, SCRIBBLE)
    await user.should_see("That doesn't look like a digit")


async def offered(user: User, *, shown: list[str], hidden: list[str]) -> None:
    """These controls on screen, those not (the simulated user sees what a person would: visible, with its parents)."""
    for marker in shown:
        await user.should_see(marker=marker)
    for marker in hidden:
        await user.should_not_see(marker=marker)


def is_button(user: User, marker: str) -> bool:
    """A q-btn without tabindex -1: reached by Tab, pressed by Enter or Space."""
    (element,) = user.find(marker=marker).elements
    return isinstance(element, ui.button) and element.props.get("tabindex") != "-1"


async def test_a_refusal_offers_right_not_a_digit_and_it_is_a_digit_with_the_closest(fake_app, user: User):
    await refused(user, fake_app)
    await offered(user, shown=["confirm-refusal", "save-digit", "correct"], hidden=["confirm", "not-digit"])
    assert text_of(user, "save-digit") == "It is a digit: 3"
    assert is_button(user, "confirm-refusal") and is_button(user, "save-digit")
    user.find(marker="correct").type("7")
    await wait_for(lambda: text_of(user, "save-digit") == "It is a digit: 7")


async def test_it_is_a_digit_saves_the_digit_typed_on_enter(fake_app, user: User):
    await refused(user, fake_app)
    user.find(marker="correct").type("7").trigger("keydown.enter")
    await user.should_see("Saved: true digit 7")
    (row,) = fake_app.store.rows
    assert (row.true_digit, row.labelled_not_a_digit) == (7, False)
    assert text_of(user, "announcer").strip() == "Saved: true digit 7"
    await user.should_see("accuracy 0/1 = 0.0%")  # a refused digit was a wrong answer


async def test_it_is_a_digit_with_nothing_typed_saves_the_closest_digit(fake_app, user: User):
    await refused(user, fake_app)
    user.find(marker="save-digit").click()
    await user.should_see("Saved: true digit 3")
    assert fake_app.store.rows[-1].true_digit == 3
    queue = await fake_app.app.review.queue()  # it overturns the answer "not a digit": a suggestion, waiting
    assert [(item.answer, item.label) for item in queue.items] == [("not a digit (3?)", "3")]


async def test_right_not_a_digit_saves_the_confirmation_and_counts_as_right(fake_app, user: User):
    await refused(user, fake_app)
    user.find(marker="confirm-refusal").click()
    await user.should_see("Saved: not a digit")
    (row,) = fake_app.store.rows
    assert (row.true_digit, row.labelled_not_a_digit) == (None, True)
    assert text_of(user, "announcer").strip() == "Saved: not a digit"
    assert "Saved as correct: not a digit" in text_of(user, "feedback")
    await user.should_see("accuracy 1/1 = 100.0%")
    table = user.find(marker="history").elements.pop()
    await wait_for(lambda: table.rows and table.rows[0]["true"] == "not a digit" and table.rows[0]["result"] == "✓")
    assert (await fake_app.app.review.queue()).items == []  # agrees with the answer: nothing to review


async def test_this_is_not_a_digit_on_an_answered_digit_is_saved_as_wrong(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    await predict(user, fake_app, SEVEN)
    await offered(user, shown=["confirm", "not-digit", "save-digit"], hidden=["confirm-refusal"])
    assert text_of(user, "save-digit") == "Save correction"
    assert is_button(user, "not-digit")
    user.find(marker="not-digit").click()
    await user.should_see("Saved: not a digit")
    (row,) = fake_app.store.rows
    assert (row.true_digit, row.labelled_not_a_digit) == (None, True)
    assert "Saved as wrong, it is not a digit" in text_of(user, "feedback")
    await user.should_see("accuracy 0/1 = 0.0%")
    queue = await fake_app.app.review.queue()
    assert [item.label for item in queue.items] == ["not a digit"]  # a suggestion, waiting for the operator


async def test_a_history_row_can_be_labelled_not_a_digit(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    await predict(user, fake_app, SEVEN)
    table = user.find(marker="history").elements.pop()
    await wait_for(lambda: bool(table.rows))
    user.find(marker="history").trigger("relabel", table.rows[0])  # a click, or Enter or Space on the row
    user.find(marker="dialog-not-digit").click()
    await user.should_see("Saved: not a digit")
    assert fake_app.store.rows[-1].labelled_not_a_digit
