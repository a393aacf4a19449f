"""Model versions as users and the operator see them: the page follows a switch of the default on the very next
prediction (and logs the version that answered), the admin page (login with a rate limit, versions, make default,
compare mode), and accuracy per version in the history."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from nicegui.testing import User

from db.defaults import DefaultVersions
from db.pool import open_pool
from serving.management import ModelManager
from serving.versions import promote as promote_version
from tests.support.database import fetch_all
from tests.ui.test_draw_page import newest_is_labelled, predict, rows_for, text_of, wait_for

pytestmark = [pytest.mark.integration]
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def admin_env(app_env, torchserve, database_url):
    app_env.setenv("ADMIN_PASSWORD", PASSWORD)
    app_env.setenv("ADMIN_FREE_FAILURES", "3")
    app_env.setenv("ADMIN_FIRST_DELAY_SECONDS", "3")  # long enough for the next attempt to meet it on a busy machine
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM admin_login_failures")  # every simulated user is 127.0.0.1
        conn.execute("DELETE FROM model_defaults")  # an earlier module's choice would be re-applied by the page
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM model_defaults")
        conn.execute("DELETE FROM admin_login_failures")
    headers = {"Authorization": f"Bearer {torchserve.keys()['management']}"}
    httpx.put(f"{torchserve.endpoints.management}/models/mnist/1.0/set-default", headers=headers, timeout=30)


async def promote(torchserve, database_url, version: str) -> None:
    """What `python -m app.cli set-default VERSION` does, from outside the UI."""
    pool = await open_pool(database_url, timeout=5)
    try:
        manager = ModelManager(management_url=torchserve.endpoints.management, key_file=torchserve.key_file)
        async with manager:
            await promote_version(manager, DefaultVersions(pool), version, by="test")
    finally:
        await pool.close()


async def test_the_next_prediction_after_a_switch_is_answered_and_logged_by_the_new_default(
    user: User, torchserve, database_url, canvas_pngs
):
    await user.open("/")
    png, label, _ = canvas_pngs[4]
    assert await predict(user, png, database_url) == str(label)
    assert "mnist 1.0" in text_of(user, "version")
    await promote(torchserve, database_url, "2.0")
    assert await predict(user, png, database_url) == str(label)  # no restart of the UI or of TorchServe
    # the same drawing reads the same digit: the row is written before the page shows it, so wait for the version
    await wait_for(lambda: "mnist 2.0" in text_of(user, "version"))
    assert [row[5] for row in (await rows_for(database_url))[-2:]] == ["1.0", "2.0"]
    await promote(torchserve, database_url, "1.0")
    await predict(user, png, database_url)
    assert (await rows_for(database_url))[-1][5] == "1.0"
    await wait_for(lambda: "mnist 1.0" in text_of(user, "version"))


async def test_history_shows_accuracy_per_version(user: User, torchserve, database_url, canvas_pngs):
    await user.open("/")
    for version in ("1.0", "2.0"):
        await promote(torchserve, database_url, version)
        png = canvas_pngs[5][0]
        await predict(user, png, database_url)
        user.find(marker="confirm").click()
        await wait_for(lambda: newest_is_labelled(database_url))
    await wait_for(lambda: text_of(user, "version-accuracy") == "by model: 1.0 1/1 = 100% · 2.0 1/1 = 100%")


async def test_admin_page_needs_the_password_and_slows_down_repeated_failures(user: User):
    await user.open("/models")
    await user.should_see(marker="password", retries=30)  # drawn once the page is connected
    await user.should_not_see(marker="versions")
    for expected in ("Wrong password.", "Wrong password.", "Wrong password.", "Wait 3 s before the next attempt."):
        user.find(marker="password").clear().type("guess")
        user.find(marker="login").click()
        await user.should_see(expected)
    user.find(marker="password").clear()
    user.find(marker="password").type(PASSWORD)
    user.find(marker="login").click()
    await user.should_see("Too many failed attempts: try again in")  # even the right password, while waiting
    await user.should_not_see(marker="versions")
    await asyncio.sleep(3.1)
    user.find(marker="login").click()
    await user.should_see(marker="versions")  # a wait, not a lock


async def log_in(user: User) -> None:
    await user.open("/models")
    await user.should_see(marker="password", retries=30)  # drawn once the page is connected
    user.find(marker="password").type(PASSWORD)
    user.find(marker="login").click()
    await user.should_see(marker="versions")


def same_cookies(original: User, copy: User) -> None:
    copy.http_client.cookies = httpx.Cookies(original.http_client.cookies)


async def test_a_login_makes_a_new_session_that_a_pre_login_cookie_does_not_have(create_user):
    """The red-team case: the browser-id cookie copied before the login does not open the admin page afterwards."""
    admin, intruder = create_user(), create_user()
    await admin.open("/models")
    same_cookies(admin, intruder)  # the admin's cookie as it was before the login
    await log_in(admin)
    await intruder.open("/models")
    await intruder.should_see(marker="password", retries=30)
    await intruder.should_not_see(marker="versions")


async def test_logging_out_disables_admin_pages_already_open(create_user, torchserve):
    """Make default on a tab left open after a logout in another tab is refused (and says why)."""
    tab, other_tab = create_user(), create_user()
    await log_in(tab)
    same_cookies(tab, other_tab)  # the same browser: the admin cookie too
    await other_tab.open("/models")
    await other_tab.should_see(marker="versions")
    other_tab.find(marker="logout").click()
    await other_tab.should_see(marker="password", retries=30)
    tab.find(marker="versions").trigger("make_default", "2.0")
    await tab.should_see("Your admin session has ended")
    manager = ModelManager(management_url=torchserve.endpoints.management, key_file=torchserve.key_file)
    async with manager:
        assert await manager.default_version() == "1.0"


@pytest.fixture
def short_idle(app_env):
    app_env.setenv("ADMIN_IDLE_SECONDS", "3")  # before the `user` fixture starts the app; logging in on a busy
    # machine can take a second or more, and the session must outlive it


async def test_an_idle_admin_session_expires(short_idle, user: User):
    """Without an admin action for ADMIN_IDLE_SECONDS the session has ended, although the page kept refreshing."""
    await log_in(user)
    await asyncio.sleep(3.5)
    user.find(marker="compare").click()
    await user.should_see("Your admin session has ended")
    await user.should_see(marker="password", retries=30)


async def test_admin_page_lists_versions_makes_default_and_compares(user: User, torchserve, database_url, canvas_pngs):
    # a few stored drawings (with feedback) for compare mode
    await user.open("/")
    for png, _, _ in canvas_pngs[6:9]:
        await predict(user, png, database_url)
        user.find(marker="confirm").click()
        await wait_for(lambda: newest_is_labelled(database_url))
    await user.open("/models")
    await user.should_see(marker="password", retries=30)  # drawn once the page is connected
    user.find(marker="password").type(PASSWORD)
    user.find(marker="login").click()
    await user.should_see(marker="versions")
    table = user.find(marker="versions").elements.pop()
    await wait_for(lambda: [row["version"] for row in table.rows] == ["1.0", "2.0"])
    assert [row["is_default"] for row in table.rows] == [True, False]
    assert all(row["workers"] == "1 of 1 ready" for row in table.rows)
    assert all(row["workers_detail"].startswith("READY (pid ") for row in table.rows)
    assert table.rows[0]["offline"] == "99.62%"  # model_store/v1.0/metrics.json
    user.find(marker="versions").trigger("make_default", "2.0")
    await user.should_see("2.0 is now the default")
    manager = ModelManager(management_url=torchserve.endpoints.management, key_file=torchserve.key_file)
    async with manager:
        assert await manager.default_version() == "2.0"
    assert await fetch_all(database_url, "SELECT version, updated_by FROM model_defaults") == [("2.0", "admin page")]
    await wait_for(lambda: [row["is_default"] for row in table.rows] == [False, True])
    user.find(marker="compare").click()
    await wait_for(lambda: text_of(user, "compare-summary").startswith("The versions agree on"), timeout=60)
    summary = text_of(user, "compare-summary")
    assert "drawings." in summary and "On the" in summary and "with feedback: 1.0" in summary
    user.find(marker="logout").click()
    await user.should_see(marker="password", retries=30)
    await user.should_not_see(marker="versions")
