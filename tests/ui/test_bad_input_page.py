"""Bad input through the page (NiceGUI `user` fixture, real TorchServe, real Postgres): feedback that is not one
digit is refused with a message and leaves the row unlabelled; drawings without ink, slate events that carry no PNG
and bytes that are not an image are refused with a message and save nothing."""

import pytest
from nicegui.testing import User

from tests.conftest import blank_png
from tests.ui.test_draw_page import data_url, draw, predict, row_count, rows_for, text_of
from tools.bad_inputs import pixel_bomb_png
from ui.widgets.slate import MAX_PNG_BYTES, Slate

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize("typed", ["a", "10", "42", "-1", "", " ", "3.0", "²", "1e0"])
async def test_invalid_feedback_is_refused_with_a_message(user: User, canvas_pngs, database_url, typed):
    await user.open("/")
    await predict(user, canvas_pngs[2][0], database_url)
    user.find(marker="correct").type(typed)
    user.find("Save correction").click()
    await user.should_see("Type one digit from 0 to 9")
    assert (await rows_for(database_url))[-1][3] is None


@pytest.mark.parametrize("typed", [" 3 ", "٣"], ids=["padded", "arabic-indic"])
async def test_one_digit_with_spaces_or_in_another_script_is_that_digit(user: User, canvas_pngs, database_url, typed):
    await user.open("/")
    await predict(user, canvas_pngs[3][0], database_url)
    user.find(marker="correct").type(typed)
    user.find("Save correction").click()
    await user.should_see("Saved: true digit 3")
    assert (await rows_for(database_url))[-1][3] == 3


async def test_empty_slate_is_refused_without_a_call(user: User, database_url):
    before = await row_count(database_url)
    await user.open("/")
    user.find(marker="predict").click()
    await user.should_see("The slate is empty: draw a digit or choose a picture first")
    assert await row_count(database_url) == before


@pytest.mark.parametrize(
    "png",
    [
        blank_png(),  # the slate's own export of nothing: transparent
        blank_png(mode="RGB", color=(255, 255, 255)),
        blank_png(color=(0, 0, 0, 255)),  # all ink
        blank_png(1, mode="L", color=0),
    ],
    ids=["transparent", "all-white", "all-ink", "1x1"],
)
async def test_drawing_without_ink_is_refused_and_not_saved(user: User, database_url, png):
    before = await row_count(database_url)
    await user.open("/")
    await draw(user, png)
    user.find(marker="predict").click()
    await user.should_see("The drawing is blank: draw a digit first")  # where the answer goes, and in a toast
    assert await row_count(database_url) == before
    assert text_of(user, "digit") == ""
    assert "The drawing is blank" in text_of(user, "announcer")


@pytest.mark.parametrize(
    ("png", "message"),
    [(b"hello, not a PNG", "Not an image"), (pixel_bomb_png(5000), "Image too large: a 5000x5000 PNG")],
    ids=["not-an-image", "pixel-bomb"],
)
async def test_slate_bytes_that_are_not_a_drawing_are_refused_and_kept(user: User, database_url, png, message):
    """The browser is not trusted: whatever PNG bytes it sends, TorchServe's refusal is shown and nothing is saved."""
    before = await row_count(database_url)
    await user.open("/")
    await draw(user, png)
    user.find(marker="predict").click()
    await user.should_see(message)
    assert await row_count(database_url) == before
    (slate,) = user.find(Slate).elements
    assert slate.png == png


@pytest.mark.parametrize(
    "value",
    [
        "data:image/png;base64,@@not base64@@",
        "data:image/jpeg;base64,aGVsbG8=",  # only PNG data URLs are the slate's
        "not a data URL",
        None,
        42,
        data_url(b"\0" * (MAX_PNG_BYTES + 1024)),  # over the slate's size limit
    ],
    ids=["bad-base64", "not-png-url", "text", "null", "number", "too-large"],
)
async def test_slate_event_without_a_png_counts_as_an_empty_slate(user: User, database_url, value):
    before = await row_count(database_url)
    await user.open("/")
    user.find(Slate).trigger("change", {"png": value, "strokes": 1})
    user.find(marker="predict").click()
    await user.should_see("The slate is empty: draw a digit or choose a picture first")
    assert await row_count(database_url) == before
