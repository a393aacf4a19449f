"""Refusal as shipped (5.0, the default, refuses with a head on 4.0's network), in a real Chromium: a letter drawn on
the slate is answered "not a digit" and said so; "It is a digit: 7" saves a correction of that refusal, and "This is
not a digit" under an answered 7 saves that label; both are in the history and on /stats. Every press is a key press
(drawing is the mouse's), and axe finds nothing critical or serious with a refusal on screen."""

import re

import pytest

from tests.e2e.conftest import DESKTOP, SHOTS, opened
from tests.e2e.test_accessibility import announced, serious, tab_to
from tests.e2e.test_browser import SEVEN, draw_with_mouse, wait_for_ink

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

H = [[(70, 40), (70, 240)], [(210, 40), (210, 240)], [(70, 140), (210, 140)]]  # the letter, three strokes


def press(page, name: str, key: str = "Enter") -> None:
    """Tab to the button called `name` and press `key` on it."""
    tab_to(page, page.get_by_role("button", name=name, exact=True), presses=40)
    page.keyboard.press(key)


def history_row(page, index: int) -> list[str]:
    return [cell.strip() for cell in page.locator("tbody tr").nth(index).locator("td").all_inner_texts()]


def test_a_letter_is_refused_and_both_not_a_digit_labels_are_saved_by_keyboard(browser, app_url):
    page = opened(browser, app_url, **DESKTOP)
    try:
        draw_with_mouse(page, H)
        press(page, "Predict")
        said = announced(page, "Not a digit")
        assert said.startswith("Not a digit, the model says; the closest digit is"), said
        page.get_by_text("That doesn't look like a digit").wait_for()
        assert serious(page) == []
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "refusal.png"), full_page=True)

        tab_to(page, page.get_by_label("The right digit"), presses=40)
        page.keyboard.type("7")
        press(page, "It is a digit: 7")  # the button names the digit it saves
        announced(page, "Saved: true digit 7")
        page.wait_for_function("() => document.querySelector('tbody tr td') !== null")
        page.get_by_role("cell", name="7", exact=True).first.wait_for()
        letter = history_row(page, 0)
        assert any(cell.startswith("not a digit (") for cell in letter) and "7" in letter and "✗" in letter, letter

        press(page, "Clear the slate", "Space")  # (Enter predicts from the slate's buttons)
        wait_for_ink(page, "n === 0")
        draw_with_mouse(page, SEVEN)
        press(page, "Predict")
        assert announced(page, "Predicted 7").startswith("Predicted 7,")
        press(page, "This is not a digit")
        announced(page, "Saved: not a digit")
        page.get_by_text("2 drawings").wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('tbody tr:first-child td')].some(td => td.innerText.trim() === "
            "'not a digit')"
        )
        seven = history_row(page, 0)
        assert "7" in seven and "not a digit" in seven and "✗" in seven, seven

        page.goto(f"{app_url}/stats")
        refusals = page.get_by_text("answered \u201cnot a digit\u201d")
        refusals.wait_for()
        text = refusals.inner_text()
        # the whole product's figures: other tests' drawings count too, this one's at least once each
        assert re.search(r"[1-9]\d* overturned", text) and "answered as a digit were not a digit" in text, text
        assert serious(page) == []
    finally:
        page.context.close()
