"""While the database is down, what the journal may hold is capped per client, per network and in all (db/journal.py):
at the cap a drawing, a number or a label is answered 503 with words that say nothing was kept, by the JSON API and
on the page, and the model server is not asked for a drawing that could not be kept. On stand-ins: the journal is the
real one (tests/support/fakes.py fake_app)."""

from __future__ import annotations

import pytest
from nicegui.testing import User

from app.predictions import Predictions
from db.journal_index import ENTRY_WEIGHT
from records.errors import JOURNAL_FULL, JournalFull
from tests.handler.test_numbers import drawing, one, seven, zero
from tests.ui.test_draw_page import draw, text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")
PNG = {"Content-Type": "image/png"}
SEVEN = b"\x89PNG\r\n\x1a\n a seven"
NUMBER = drawing(one(150), seven(300), zero(480))
FULL = "this server's store for drawings waiting for it is full"


def outage_with_a_full_journal(fake_app, *, per_client: int) -> None:
    fake_app.app.predictions.database_down = True
    fake_app.journal.max_bytes_per_client = per_client


async def test_at_its_cap_a_client_is_told_its_drawing_was_not_saved_and_the_model_is_not_asked(fake_app, create_user):
    alice = create_user()
    await alice.open("/")
    outage_with_a_full_journal(fake_app, per_client=ENTRY_WEIGHT)  # room for one entry
    kept = await alice.http_client.post("/api/predictions", content=SEVEN, headers=PNG)
    assert kept.status_code == 200 and kept.json()["saved"] == "journal"  # alice's share is used up
    fake_app.predictor.down = True  # were it asked, the answer would be "the model server is unavailable"
    for route, body in (("/api/predictions", SEVEN), ("/api/numbers", NUMBER)):
        refused = await alice.http_client.post(route, content=body, headers=PNG)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert refused.json()["detail"] == JOURNAL_FULL.format(what="drawing")
        assert "your drawing was NOT saved; try again later" in refused.json()["detail"]
    assert fake_app.journal.pending == 1
    fake_app.predictor.down = False
    label = await alice.http_client.put(f"/api/predictions/{kept.json()['request_id']}/label", json={"digit": 7})
    assert label.status_code == 503 and label.json()["detail"] == JOURNAL_FULL.format(what="label")
    assert fake_app.journal.pending == 1


async def test_fresh_cookies_of_one_network_share_its_cap(fake_app, create_user):
    """The test client's address is no IP address (no network): the use case is called with one, as the page and
    the API call it."""
    fake_app.app.predictions.database_down = True
    journal = fake_app.journal
    journal.max_bytes_per_network = 3 * ENTRY_WEIGHT
    predictions: Predictions = fake_app.app.predictions
    with pytest.raises(JournalFull):
        for cookie in range(20):
            await predictions.predict(SEVEN, browser_id=f"cookie {cookie}", network="203.0.113.0/24")
    assert journal.pending == 3
    kept = await predictions.predict(SEVEN, browser_id="someone else", network="192.0.2.0/24")
    assert kept.saved.value == "journal"


async def test_the_page_says_the_drawing_was_not_saved(fake_app, user: User):
    await user.open("/")
    outage_with_a_full_journal(fake_app, per_client=0)
    await draw(user, SEVEN)
    user.find(marker="predict").click()
    await user.should_see(FULL)
    assert JOURNAL_FULL.format(what="drawing") in text_of(user, "announcer")
    assert fake_app.journal.pending == 0


async def test_the_number_page_says_the_number_was_not_saved(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/number")
    outage_with_a_full_journal(fake_app, per_client=0)
    await draw(user, NUMBER)
    user.find(marker="predict").click()
    await user.should_see(FULL)
    await wait_for(lambda: FULL in text_of(user, "announcer"))
    assert fake_app.journal.pending == 0 and fake_app.numbers.numbers == []
