"""The review queue on the admin page (ui/pages/review.py), on stand-ins: suggested corrections are listed with the
drawing, the answer, the label, the browser and the network; the operator approves or rejects the selection, or
everything its browsers or networks labelled, with the buttons or the keys A, R, B, N. What an approval does to
`make retrain` is tests/training/test_screen.py and tests/integration/test_backdoor.py."""

from __future__ import annotations

import asyncio

import pytest
from nicegui import ui
from nicegui.testing import User

from tests.ui.test_admin_on_fakes import log_in
from tests.ui.test_draw_page import text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")


async def suggest(fake_app, browser: str, network: str, answer: int, label: int) -> None:
    png = b"\x89PNG\r\n\x1a\n %s %d %d" % (browser.encode(), answer, len(fake_app.store.rows))
    fake_app.predictor.digits[png] = answer
    recorded = await fake_app.app.predictions.predict(png, browser_id=browser, network=network)
    await fake_app.app.predictions.label(
        browser_id=browser, request_id=recorded.request_id, digit=label, network=network
    )


async def queue_of(user: User) -> list[dict]:
    (table,) = user.find(marker="review-queue").elements
    return table.rows


@pytest.fixture
async def suggestions(fake_app):
    """Three browsers in two networks; one label agrees with the answer and is no suggestion."""
    fake_app.store.rows.clear()
    await suggest(fake_app, "honest-writer", "198.51.100.0/24", 4, 9)
    await suggest(fake_app, "honest-writer", "198.51.100.0/24", 3, 3)
    for cookie in ("cookie-1", "cookie-2"):
        for _ in range(2):
            await suggest(fake_app, cookie, "192.0.2.0/24", 7, 1)
    return fake_app


async def test_the_queue_lists_suggestions_with_who_sent_them(suggestions, user: User):
    await log_in(user)
    await wait_for(lambda: text_of(user, "review-summary").startswith("5 suggested correction(s) from 3 browser(s)"))
    rows = await queue_of(user)
    assert [(r["answer"], r["label"]) for r in rows] == [("4 (90%)", "9")] + [("7 (90%)", "1")] * 4
    assert rows[1]["network"] == "192.0.2.0/24 (4)" and rows[1]["browser"] == "cookie-1… (2)"
    assert rows[0]["drawing"].startswith("data:image/png;base64,")
    assert rows[0]["alt"] == f"drawing #{rows[0]['id']}, answered 4 (90%), suggested 9"


async def test_approving_a_row_and_rejecting_a_network_empty_the_queue(suggestions, user: User):
    await log_in(user)
    await wait_for(lambda: len(user.find(marker="review-queue").elements.pop().rows) == 5)
    (table,) = user.find(marker="review-queue").elements
    table.selected = [table.rows[0]]
    user.find(marker="review-a").click()
    await user.should_see("Approved 1 label(s).")
    await wait_for(lambda: len(table.rows) == 4)
    table.selected = [table.rows[0]]  # one cookie's row: the whole network goes
    user.find(marker="review-n").click()
    await user.should_see("Rejected 4 label(s).")
    await wait_for(lambda: text_of(user, "review-summary") == "No suggested corrections wait for review.")
    reviews = suggestions.review.reviews
    assert sorted(decision for decision, _ in reviews.values()) == ["approved"] + ["rejected"] * 4


async def test_a_not_a_digit_suggestion_shows_as_such_and_can_be_approved(fake_app, user: User):
    """ "This is not a digit" on an answered digit waits for review; a confirmed refusal does not."""
    fake_app.store.rows.clear()
    for png, refuse in ((b"\x89PNG\r\n\x1a\n a 4", False), (b"\x89PNG\r\n\x1a\n a scribble", True)):
        fake_app.predictor.digits[png] = 4
        if refuse:
            fake_app.predictor.refuse.add(png)
        recorded = await fake_app.app.predictions.predict(png, browser_id="someone")
        await fake_app.app.predictions.label(browser_id="someone", request_id=recorded.request_id, not_a_digit=True)
    await log_in(user)
    await wait_for(lambda: len(user.find(marker="review-queue").elements.pop().rows) == 1)
    (table,) = user.find(marker="review-queue").elements
    assert (table.rows[0]["answer"], table.rows[0]["label"]) == ("4 (90%)", "not a digit")
    assert table.rows[0]["alt"].endswith("answered 4 (90%), suggested not a digit")
    table.selected = [table.rows[0]]
    user.find(marker="review-a").click()
    await user.should_see("Approved 1 label(s).")
    assert list(fake_app.review.reviews.values()) == [("approved", -1)]  # the stand-in's "not a digit"


async def test_the_keys_decide_for_the_selection_and_nothing_without_one(suggestions, user: User):
    await log_in(user)
    await wait_for(lambda: len(user.find(marker="review-queue").elements.pop().rows) == 5)
    (table,) = user.find(marker="review-queue").elements
    user.find(ui.keyboard).trigger("key", key("b"))  # with nothing selected: nothing happens but a hint
    await user.should_see("Select one or more rows first")
    assert not suggestions.review.reviews
    table.selected = [table.rows[0]]
    user.find(ui.keyboard).trigger("key", key("b", ctrl=True))  # Ctrl+B is the browser's, not ours
    await asyncio.sleep(0.3)
    assert not suggestions.review.reviews
    user.find(ui.keyboard).trigger("key", key("b"))  # everything the writer's browser labelled, the agreeing one too
    await user.should_see("Approved 2 label(s).")
    await wait_for(lambda: len(table.rows) == 4)
    assert len(suggestions.review.reviews) == 2


def key(name: str, *, ctrl: bool = False) -> dict:
    """A keydown as the browser's keyboard element sends it."""
    return {"action": "keydown", "repeat": False, "altKey": False, "ctrlKey": ctrl, "metaKey": False,
            "shiftKey": False, "key": name, "code": f"Key{name.upper()}", "location": 0}  # fmt: skip
