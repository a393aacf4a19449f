"""Number mode in a real Chromium on the whole product (tests/e2e/conftest.py): "42" written with real mouse strokes
on the wide slate, read by the live model, one digit corrected with the keyboard alone, and the number in the
history; the same on a phone with touch strokes, which must fit the screen. Screenshots: var/e2e/number-desktop.png
and number-phone.png (docs/ holds committed copies)."""

import pytest

from tests.e2e.conftest import SHOTS
from tests.e2e.test_accessibility import announced, tab_to
from tests.e2e.test_browser import FORTY_TWO, draw_with_mouse, draw_with_touch, in_slate, to_number_mode

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def from_the_top(page) -> None:
    """The whole page from the top for a screenshot, once the answer's smooth scroll into view has ended."""
    page.locator("tbody tr").first.wait_for()
    page.wait_for_timeout(1000)
    page.evaluate("() => window.scrollTo({ top: 0, behavior: 'instant' })")
    page.wait_for_timeout(500)


def read_number(page) -> str:
    """Press Predict and return the answer's big line ("Read 42")."""
    page.get_by_role("button", name="Predict").click()
    return announced(page, "Read").strip()


def test_number_mode_reads_42_and_one_digit_is_corrected_by_keyboard(page):
    to_number_mode(page)
    box = page.locator("canvas").first.bounding_box()
    assert box["width"] >= 3 * box["height"] - 1  # the wide slate, 3:1
    draw_with_mouse(page, FORTY_TWO)
    assert read_number(page) == "Read 42"
    assert page.locator(".text-5xl").inner_text().strip() == "Read 42"  # in large type
    boxes = page.locator("svg[role=img] rect[fill=none]")
    assert boxes.count() == 2  # each digit's box over the drawing
    four, two = (boxes.nth(i).bounding_box() for i in range(2))
    assert four["x"] + four["width"] <= two["x"]  # the 4 left of the 2, boxes apart
    page.mouse.move(1200, 980)  # no hover left on a control in the screenshot
    from_the_top(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "number-desktop.png"), full_page=True)
    # the keyboard alone: Tab to the 2's button, Enter opens its field (focused), type the digit, Enter saves
    tab_to(page, page.get_by_role("button", name="Digit 2: 2"))
    page.keyboard.press("Enter")
    page.get_by_label("The right digit for digit 2").wait_for()
    page.wait_for_function("() => document.activeElement && document.activeElement.tagName === 'INPUT'")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    assert announced(page, "Saved: digit 2") == "Saved: digit 2 as 3"
    page.wait_for_function(
        "() => [...document.querySelectorAll('tbody tr:first-child td')].some(td => td.innerText.trim() === '43')"
    )
    cells = [cell.strip() for cell in page.locator("tbody tr").first.locator("td").all_inner_texts()]
    assert cells[2] == "42" and cells[4] == "43" and cells[5] == "✗", cells
    assert page.locator("tbody tr").count() == 1  # the number once, not its digits
    thumbnail = page.locator("tbody tr").first.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth === 840", arg=thumbnail.element_handle())


def test_number_mode_on_a_phone_fills_the_width_without_scrolling_sideways(phone):
    to_number_mode(phone)
    box = phone.locator("canvas").first.bounding_box()
    assert box["width"] >= 340  # the width of the screen, less the page's and the card's padding
    draw_with_touch(phone, in_slate(phone, FORTY_TWO))
    assert read_number(phone) == "Read 42"
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    from_the_top(phone)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "number-phone.png"), full_page=True)
