"""Every way in, on stand-ins (tests/support/fakes.py): a picture instead of a drawing, through the slate's picture
route, predicted and stored like a drawing; what cannot be read said where the answer goes; Enter's prediction; the
live region; /stats and /models during a database outage. The browser's side of these (file chooser, drop, paste,
keys, focus) is in tests/e2e/test_accessibility.py and test_every_way_in.py."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from nicegui.events import GenericEventArguments
from nicegui.testing import User
from PIL import Image

from records.errors import StoreUnavailable
from tests.support.pictures import photo
from tests.ui.test_draw_page import draw, text_of, wait_for
from ui.http import browser_key
from ui.pages.stats import UNAVAILABLE
from ui.widgets.slate import MAX_PICTURE_BYTES, PICTURE_PATH, Slate

pytestmark = pytest.mark.usefixtures("fake_app")

SEVEN = b"\x89PNG\r\n\x1a\n seven"


def the_slate(user: User) -> Slate:
    (slate,) = user.find(Slate).elements
    return slate


async def test_a_sideways_phone_photo_is_stored_upright_and_predicted_like_a_drawing(fake_app, user: User):
    await user.open("/")
    the_slate(user).receive_picture(photo())
    await wait_for(lambda: len(fake_app.store.rows) == 1)
    (row,) = fake_app.store.rows
    stored = Image.open(io.BytesIO(row.canvas_png))
    assert stored.format == "JPEG" and stored.width < stored.height  # upright: the photo was taken standing
    assert the_slate(user).png == row.canvas_png  # Predict again sends the same picture
    await wait_for(lambda: text_of(user, "announcer").startswith("Predicted 0, 90% sure"))
    await user.should_see("1 drawing · no feedback yet")


async def test_a_file_that_is_not_a_picture_is_refused_where_the_answer_goes(fake_app, user: User):
    await user.open("/")
    the_slate(user).receive_picture(b"GIF89a not what the page reads")
    await wait_for(lambda: "choose a PNG or JPEG image" in text_of(user, "confidence"))
    assert "choose a PNG or JPEG image" in text_of(user, "announcer")
    assert fake_app.store.rows == []


async def test_the_picture_route_takes_the_pages_own_browser_only(fake_app, user: User, create_user):
    await user.open("/")
    slate = the_slate(user)
    url = f"{PICTURE_PATH}/{slate.client.id}/{slate.id}"
    response = await user.http_client.post(url, content=photo(sideways=False))
    assert response.status_code == 202
    await wait_for(lambda: len(fake_app.store.rows) == 1)

    stranger = create_user()  # another browser that learnt the page's address: its cookie is not the page's
    await stranger.open("/")
    assert (await stranger.http_client.post(url, content=photo())).status_code == 404
    assert (await user.http_client.post(f"{PICTURE_PATH}/{slate.client.id}/99999", content=photo())).status_code == 404
    too_large = await user.http_client.post(url, content=b"\xff\xd8\xff" + b"\0" * MAX_PICTURE_BYTES)
    assert too_large.status_code == 413
    assert len(fake_app.store.rows) == 1


async def test_a_picture_too_costly_to_decode_is_refused_where_the_answer_goes(fake_app, user: User):
    """A progressive CMYK 8000x8000 JPEG (its header says so: 512 MB of coefficients) is refused before decoding."""
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 64)).save(cmyk, format="JPEG", progressive=True)
    bomb = cmyk.getvalue().replace(b"\xff\xc2\x00\x14\x08\x00\x40\x00\x40", b"\xff\xc2\x00\x14\x08\x1f\x40\x1f\x40")
    await user.open("/")
    the_slate(user).receive_picture(bomb)
    await wait_for(lambda: "too much memory" in text_of(user, "confidence"))
    assert "8000x8000" in text_of(user, "announcer") and fake_app.store.rows == []


async def test_a_browser_has_one_picture_in_hand_at_a_time(fake_app, user: User):
    """While its picture is in the page's hand (received or decoded), the route refuses the browser's next one before
    keeping its body (429, said on the page); other browsers go on."""
    await user.open("/")
    slate = the_slate(user)
    url = f"{PICTURE_PATH}/{slate.client.id}/{slate.id}"
    with fake_app.app.pictures.turn(browser_key(slate.owner)):  # as while its last picture is decoded
        refused = await user.http_client.post(url, content=photo(sideways=False))
    assert refused.status_code == 429 and "One picture at a time" in refused.json()["detail"]
    assert fake_app.store.rows == []
    slate._handle_refused(GenericEventArguments(sender=slate, client=slate.client, args={"status": 429}))
    await user.should_see("One picture at a time")
    assert (await user.http_client.post(url, content=photo(sideways=False))).status_code == 202
    await wait_for(lambda: len(fake_app.store.rows) == 1)


async def test_a_second_picture_while_the_first_is_read_is_refused_with_a_word(fake_app, user: User, monkeypatch):
    decodes = []

    def slow_upright(data, header):
        decodes.append(len(data))
        time.sleep(0.5)
        return data

    monkeypatch.setattr("app.uploads._upright", slow_upright)
    await user.open("/")
    the_slate(user).receive_picture(photo(sideways=False))
    await asyncio.sleep(0.1)
    the_slate(user).receive_picture(photo(sideways=False))
    await user.should_see("Wait for the answer to the last one")
    await wait_for(lambda: len(fake_app.store.rows) == 1)
    assert len(decodes) == 1


async def test_enter_predicts_and_the_answer_is_announced(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    await draw(user, SEVEN)
    user.find(Slate).trigger("submit")  # what the browser sends for Enter (slate.js)
    await wait_for(lambda: len(fake_app.store.rows) == 1)
    await wait_for(lambda: text_of(user, "announcer") == "Predicted 7, 90% sure")
    assert text_of(user, "digit") == "7"


async def test_the_history_names_the_result_column_and_keeps_the_drawings_time(fake_app, user: User):
    await user.open("/")
    await draw(user, SEVEN)
    user.find(marker="predict").click()
    await wait_for(lambda: len(fake_app.store.rows) == 1)
    (table,) = user.find(marker="history").elements
    await wait_for(lambda: bool(table.rows))
    assert [c["label"] for c in table.columns if c["name"] == "result"] == ["Right?"]
    assert table.rows[0]["time"] == fake_app.store.rows[0].created_at.isoformat(timespec="seconds")


async def test_stats_says_the_database_is_unavailable_at_once_during_a_known_outage(fake_app, user: User):
    fake_app.app.predictions.outage.seen()  # a read or write met the outage a moment ago

    async def must_not_be_asked():
        raise AssertionError("the database was asked during a known outage")

    fake_app.store.stats = must_not_be_asked
    await user.open("/stats")
    await user.should_see(UNAVAILABLE)


async def test_stats_says_the_database_is_unavailable_when_a_read_fails_and_remembers_it(fake_app, user: User):
    async def down():
        raise StoreUnavailable("database unavailable: connection refused")

    fake_app.store.stats = down
    await user.open("/stats")
    await user.should_see(UNAVAILABLE)
    assert fake_app.app.history.database_known_down  # the next page does not wait for it


async def test_the_admin_page_says_the_database_is_unavailable_during_a_known_outage(fake_app, user: User):
    fake_app.app.predictions.outage.seen()
    await user.open("/models")
    await user.should_see("The database cannot be reached, so admin login is unavailable for now")


def test_a_digit_without_feedback_has_no_bar_on_stats():
    """A 0 bar read as "always wrong"; no feedback is no bar, and the count under each digit says why."""
    from records.stats import Stats
    from ui.pages.stats import per_digit_chart

    stats = Stats.from_counts([(7, 7, 3), (7, 1, 1), (1, 7, 2)], [("1.0", 3, 6, 6)])
    options = per_digit_chart(stats)
    values = [bar["value"] for bar in options["series"][0]["data"]]
    assert values[7] == 0.75 and values[1] == 0.0  # two 1s, both read as 7: a real 0%
    assert [values[d] for d in (0, 2, 3, 4, 5, 6, 8, 9)] == [None] * 8
    assert options["xAxis"]["data"][7] == "7\n4×" and options["xAxis"]["data"][0] == "0\n0×"
