"""The admin page /models on stand-ins (tests/support/fakes.py): login, the versions table, make default, compare,
logout; no Java or PostgreSQL. The same against the real servers: test_versions_page.py."""

from __future__ import annotations

import pytest
from nicegui.testing import User

from tests.ui.conftest import FAKE_ADMIN_PASSWORD
from tests.ui.test_draw_page import text_of, wait_for

pytestmark = pytest.mark.usefixtures("fake_app")


async def log_in(user: User) -> None:
    await user.open("/models")
    await user.should_see(marker="password", retries=30)  # drawn once the page is connected
    user.find(marker="password").type(FAKE_ADMIN_PASSWORD)
    user.find(marker="login").click()
    await user.should_see(marker="versions")


async def test_a_wrong_password_shows_no_versions_and_the_right_one_does(fake_app, user: User):
    await user.open("/models")
    await user.should_see(marker="password", retries=30)  # drawn once the page is connected
    user.find(marker="password").type("a guess")
    user.find(marker="login").click()
    await user.should_see("Wrong password.")
    await user.should_not_see(marker="versions")
    assert fake_app.admin.failures  # counted (before the check)
    user.find(marker="password").clear().type(FAKE_ADMIN_PASSWORD)
    user.find(marker="login").click()
    await user.should_see(marker="versions")


async def test_the_table_lists_the_loaded_versions_and_make_default_promotes_one(fake_app, user: User):
    fake_app.store.rows.clear()
    await log_in(user)
    await wait_for(lambda: "2 version(s) loaded; the page's predictions use 1.0" in text_of(user, "status"))
    (table,) = user.find(marker="versions").elements
    assert [row["version"] for row in table.rows] == ["1.0", "2.0"]
    assert [row["default"] for row in table.rows] == ["★ default", ""]
    await fake_app.app.versions.make_default("2.0", by="test")  # what the table's button calls
    assert fake_app.control.default == "2.0" and fake_app.defaults.remembered == {"mnist": "2.0"}
    user.find(marker="refresh").click()
    await wait_for(lambda: "predictions use 2.0" in text_of(user, "status"))


async def test_compare_lists_the_drawings_the_versions_disagree_on(fake_app, user: User):
    for digit in (3, 4):
        png = b"\x89PNG\r\n\x1a\n drawing %d" % digit
        fake_app.predictor.digits[png] = digit
        recorded = await fake_app.app.predictions.predict(png, browser_id="someone")
        await fake_app.app.predictions.label(browser_id="someone", request_id=recorded.request_id, digit=digit)
    await log_in(user)
    user.find(marker="compare").click()
    # the stand-in answers every version alike: no disagreement, both right
    await wait_for(lambda: text_of(user, "compare-summary").startswith("The versions agree on 2 of 2 drawings."))
    assert "1.0 2/2" in text_of(user, "compare-summary") and "2.0 2/2" in text_of(user, "compare-summary")


async def test_logging_out_ends_the_session(fake_app, user: User):
    await log_in(user)
    user.find(marker="logout").click()
    await user.should_see(marker="password", retries=30)
    assert not [t for t in fake_app.admin.tokens.values() if t["kind"] == "session"]
