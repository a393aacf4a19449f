"""Real-browser end-to-end tests: the whole product (PostgreSQL, TorchServe, the page) started like `make run` on
free ports (once for all of tests/e2e: conftest.py), driven by Debian's Chromium through Playwright with real mouse
and touch strokes on the slate.

Screenshots of the desktop and phone layouts are written to var/e2e/ (docs/ holds committed copies).
"""

import itertools

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, SHOTS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# Strokes in slate coordinates (the slate is 280x280 CSS px)
ONE = [[(140, 40), (140, 240)]]
SEVEN = [[(60, 50), (210, 50), (115, 240)]]
FOUR = [[(170, 30), (50, 170), (220, 170)], [(170, 30), (170, 250)]]
NUMBER_SLATE_WIDTH = 840  # Number mode's slate, CSS px on a desktop (ui/pages/draw.py NUMBER); a phone scales it
# A 4 (open at the top, in two strokes) and a 2, well apart, in the slate's coordinates (840x280)
FORTY_TWO = [
    [(300, 35), (215, 175), (370, 175)],
    [(330, 80), (330, 250)],
    [(480, 90), (505, 50), (550, 38), (595, 60), (600, 110), (570, 160), (485, 245), (625, 245)],
]


def in_slate(page, strokes) -> list:
    """The strokes at the slate's size on this screen (full width on a phone)."""
    scale = page.locator("canvas").first.bounding_box()["width"] / NUMBER_SLATE_WIDTH
    return [[(x * scale, y * scale) for x, y in stroke] for stroke in strokes]


def to_number_mode(page) -> None:
    page.get_by_role("link", name="A number").click()
    page.get_by_role("heading", name="Write a number").wait_for()
    page.locator("canvas").first.wait_for()


def slate_origin(page) -> tuple[float, float]:
    box = page.locator("canvas").first.bounding_box()
    return box["x"], box["y"]


def draw_with_mouse(page, strokes) -> None:
    x0, y0 = slate_origin(page)
    for stroke in strokes:
        page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x0 + x, y0 + y, steps=12)
        page.mouse.up()


def draw_with_touch(page, strokes) -> None:
    """Real touch events (Chrome DevTools Protocol), which the browser turns into pointer events of type touch."""
    cdp = page.context.new_cdp_session(page)
    x0, y0 = slate_origin(page)
    for stroke in strokes:
        points = _interpolate(stroke, steps=12)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [_touch(x0, y0, points[0])]})
        for point in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [_touch(x0, y0, point)]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _touch(x0: float, y0: float, point: tuple[float, float]) -> dict:
    return {"x": x0 + point[0], "y": y0 + point[1]}


def _interpolate(stroke, *, steps: int) -> list[tuple[float, float]]:
    points = [stroke[0]]
    for (xa, ya), (xb, yb) in itertools.pairwise(stroke):
        points += [(xa + (xb - xa) * i / steps, ya + (yb - ya) * i / steps) for i in range(1, steps + 1)]
    return points


def ink_pixels(page) -> int:
    """Dark pixels on the visible slate."""
    return page.evaluate(INK_JS)


INK_JS = """() => { const c = document.querySelector('canvas'); const d = c.getContext('2d')
              .getImageData(0, 0, c.width, c.height).data; let n = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""


def wait_for_ink(page, condition: str) -> int:
    """Wait until the slate's ink count satisfies condition (a JS expression in n), return the count."""
    page.wait_for_function(f"() => {{ const n = ({INK_JS})(); return {condition}; }}", timeout=10000)
    return ink_pixels(page)


def click_icon(page, icon: str) -> None:
    page.locator(f"button:has(i:text-is('{icon}'))").first.click()


def predicted_digit(page) -> str:
    page.get_by_role("button", name="Predict").click()
    page.get_by_text("model mnist").wait_for()
    return page.locator(".text-8xl").inner_text().strip()


def test_mouse_drawn_one_and_seven_are_read_with_bars_and_preview(page):
    draw_with_mouse(page, ONE)
    assert predicted_digit(page) == "1"
    click_icon(page, "delete")
    wait_for_ink(page, "n === 0")
    draw_with_mouse(page, SEVEN)
    page.get_by_role("button", name="Predict").click()
    page.wait_for_function("() => document.querySelector('.text-8xl').innerText.trim() === '7'", timeout=15000)
    assert page.locator("[_echarts_instance_] canvas").count() >= 1  # the ten probability bars
    preview = page.locator("img[src^='data:image/png;base64']").first
    preview.wait_for()
    assert preview.evaluate("img => img.naturalWidth") == 28
    page.get_by_text("2 drawings").wait_for()  # both in the history
    page.mouse.move(1200, 980)  # no hover (nor the click's ripple, below) left on Predict in the screenshot
    page.wait_for_timeout(800)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "desktop.png"), full_page=True)


def test_correction_then_reload_finds_the_history(page, app_url):
    draw_with_mouse(page, FOUR)
    predicted = predicted_digit(page)
    truth = "4" if predicted != "4" else "9"  # a correction the user disagrees with the model on
    page.get_by_label("The right digit").fill(truth)
    page.get_by_role("button", name="Save correction").click()
    page.get_by_text(f"Saved: true digit {truth}").first.wait_for()
    page.reload()
    row = page.locator("tbody tr").first
    row.wait_for()
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert predicted in cells and truth in cells and "✗" in cells
    assert "accuracy 0/1" in page.get_by_text("accuracy").first.inner_text()


def test_clear_and_undo(page):
    draw_with_mouse(page, SEVEN)
    one_stroke = wait_for_ink(page, "n > 0")
    draw_with_mouse(page, ONE)
    two_strokes = wait_for_ink(page, f"n > {one_stroke}")
    click_icon(page, "undo")
    assert wait_for_ink(page, f"n < {two_strokes}") == one_stroke  # exactly the first stroke again
    click_icon(page, "delete")
    wait_for_ink(page, "n === 0")
    page.get_by_role("button", name="Predict").click()
    # the server forgot the drawing too
    page.get_by_text("The slate is empty: draw a digit or choose a picture first").first.wait_for()


def test_blank_slate_predict_shows_the_friendly_message(page):
    page.get_by_role("button", name="Predict").click()
    page.get_by_text("The slate is empty: draw a digit or choose a picture first").first.wait_for()
    assert page.locator(".text-8xl").inner_text().strip() == ""


def test_phone_layout_draws_with_touch_without_scrolling(phone):
    scroll_before = phone.evaluate("() => window.scrollY")
    draw_with_touch(phone, SEVEN)
    assert phone.evaluate("() => window.scrollY") == scroll_before
    assert ink_pixels(phone) > 0
    phone.get_by_role("button", name="Predict").click()
    phone.wait_for_function("() => document.querySelector('.text-8xl').innerText.trim() === '7'", timeout=15000)
    phone.get_by_text("1 drawing").wait_for()
    phone.evaluate("() => window.scrollTo(0, 0)")  # (the answer scrolled into view) the whole page, from the top
    phone.wait_for_timeout(800)
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "phone.png"), full_page=True)


def test_admin_makes_four_the_default_and_the_next_drawing_is_read_by_it(browser, app_url):
    """The acceptance path of model versions in a real browser: log in on /models, press Make default on 4.0, and
    the very next drawing on the page is answered by 4.0 (no restart); then back to 5.0 (the shipped default) the
    same way."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    admin, page = context.new_page(), context.new_page()

    def make_default(version: str) -> None:
        admin.get_by_role("button", name=f"Make {version} the default").click()

    try:
        admin.goto(f"{app_url}/models")
        admin.get_by_label("Admin password").fill(ADMIN_PASSWORD)
        admin.get_by_role("button", name="Log in").click()
        admin.get_by_text("3 version(s) loaded; the page's predictions use 5.0").wait_for()
        make_default("4.0")
        admin.get_by_text("3 version(s) loaded; the page's predictions use 4.0").wait_for()
        SHOTS.mkdir(parents=True, exist_ok=True)
        admin.screenshot(path=str(SHOTS / "models.png"), full_page=True)
        page.goto(app_url)
        page.locator("canvas").first.wait_for()
        draw_with_mouse(page, SEVEN)
        assert predicted_digit(page) == "7"
        assert "model mnist 4.0" in page.get_by_text("model mnist").inner_text()
        make_default("5.0")
        admin.get_by_text("3 version(s) loaded; the page's predictions use 5.0").wait_for()
    finally:
        context.close()


RED_AND_BLUE_JS = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
    c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data; let red = 0, blue = 0;
    for (let i = 0; i < d.length; i += 4) { if (d[i] - d[i + 2] > 60) red++; if (d[i + 2] - d[i] > 60) blue++; }
    return [red, blue]; }"""


def why_view(page, *, shot: str, full_page: bool = True) -> None:
    """Press Why?, check the two pictures and the runner-up, and leave the answer's map on screen for a screenshot
    (on a phone: the screen with the Why? card at its top)."""
    page.get_by_role("button", name="Why?").click()
    drawing = page.get_by_alt_text("the map over your drawing")
    page.wait_for_function(
        "() => { const i = document.querySelector('img[alt=\"the map over your drawing\"]');"
        " return i && i.complete && i.naturalWidth === 280; }",
        timeout=15000,
    )
    red, _ = drawing.evaluate(RED_AND_BLUE_JS)
    assert red > 500  # evidence for the 7 lies on its strokes
    field = page.get_by_alt_text("the map over what the model saw")
    assert field.evaluate("img => img.naturalWidth") == 224
    answer = drawing.get_attribute("src")
    switch = page.get_by_role("button", name="Why not")
    runner_up = switch.inner_text().strip()
    switch.click()
    page.get_by_text(f"{runner_up} (").first.wait_for()  # the title: "Why not 3? (2%)"
    page.wait_for_function(
        "(before) => document.querySelector('img[alt=\"the map over your drawing\"]').src !== before", arg=answer
    )
    page.get_by_role("button", name="Why 7?").click()  # back to the answer for the screenshot
    page.wait_for_function(
        "(before) => document.querySelector('img[alt=\"the map over your drawing\"]').src === before", arg=answer
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_text("Explain digit:").click()  # no hover, focus or ripple left on a button in the screenshot
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(800)
    if not full_page:
        page.get_by_text("Why 7?", exact=True).evaluate("e => e.closest('.q-card').scrollIntoView()")
    page.screenshot(path=str(SHOTS / shot), full_page=full_page)


def test_why_view_shows_the_map_and_the_runner_up(page):
    draw_with_mouse(page, SEVEN)
    assert predicted_digit(page) == "7"
    why_view(page, shot="why.png")


def test_why_view_on_a_phone_fits_the_screen(phone):
    draw_with_touch(phone, SEVEN)
    phone.get_by_role("button", name="Predict").click()
    phone.wait_for_function("() => document.querySelector('.text-8xl').innerText.trim() === '7'", timeout=15000)
    why_view(phone, shot="why-phone.png", full_page=False)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling


def test_before_the_first_prediction_nothing_looks_ready(page):
    """No dark box where the preview will be, no feedback button that looks pressable."""
    assert page.locator("img").count() == 0 or not page.locator("img").first.is_visible()
    dark = page.evaluate(
        """() => [...document.querySelectorAll('*')].filter(e => { const r = e.getBoundingClientRect();
             const s = getComputedStyle(e); return r.width > 20 && r.height > 20 && s.display !== 'none'
             && s.backgroundColor === 'rgb(0, 0, 0)'; }).length"""
    )
    assert dark == 0
    assert not page.get_by_role("button", name="Yes, that's right").is_visible()
    assert not page.get_by_role("button", name="Save correction").is_visible()
    page.get_by_text("After Predict: confirm the answer or type the right digit here.").wait_for()


def test_history_times_are_in_the_browsers_time_zone(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, timezone_id="Asia/Kolkata")  # UTC+05:30
    page = context.new_page()
    try:
        page.goto(app_url)
        page.locator("canvas").first.wait_for()
        draw_with_mouse(page, ONE)
        predicted_digit(page)
        cell = page.locator("tbody tr").first.locator("td").first
        cell.wait_for()
        shown = cell.inner_text().strip()  # 2026-12-02 03:33:19
        local_now = page.evaluate("() => Date.now()")
        shown_ms = page.evaluate(
            "(s) => Date.UTC(+s.slice(0,4), +s.slice(5,7) - 1, +s.slice(8,10), +s.slice(11,13), +s.slice(14,16),"
            " +s.slice(17,19)) - 330 * 60000",
            shown,
        )  # read as Kolkata's wall clock, back to UTC
        assert abs(local_now - shown_ms) < 120_000, (shown, cell.get_attribute("title"))
        assert page.get_by_role("columnheader", name="Time").inner_text().strip() == "Time"
    finally:
        context.close()
