"""A PostgreSQL outage as a user lives it: the page keeps predicting and taking feedback, says discreetly that it
keeps them, and when the database is back exactly those rows appear, once each, with their labels."""

from __future__ import annotations

import asyncio

import pytest
from nicegui import app
from nicegui.testing import User

from db.embedded import start_private_server
from db.journal import Journal
from tests.conftest import running_server
from tests.db.test_journal import prediction as journal_prediction
from tests.support.database import fetch_all
from tests.ui.test_draw_page import draw, predict, text_of, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_database(app_env, tmp_path):
    """A private PostgreSQL for this test only (it is stopped and started again), and a journal in tmp_path."""
    with running_server() as server:
        app_env.setenv("DATABASE_URL", server.url)
        app_env.setenv("JOURNAL_FILE", str(tmp_path / "journal" / "pending.jsonl"))
        app_env.setenv("JOURNAL_REPLAY_SECONDS", "0.5")
        yield server


async def rows(url: str) -> list[tuple]:
    return await fetch_all(url, "SELECT request_id, predicted_digit, true_digit FROM predictions ORDER BY id")


def pending() -> int:
    return app.state.runtime.started.predictions.journal.pending


async def test_predictions_and_feedback_during_an_outage_are_written_exactly_once_when_it_ends(
    own_database, user: User, canvas_pngs
):
    server = own_database
    await user.open("/")
    first_png, first_label, _ = canvas_pngs[0]
    assert await predict(user, first_png, server.url) == str(first_label)  # the database is up: stored directly
    await asyncio.to_thread(server.stop)  # pg_ctl waits: off the loop the page runs on

    labels = []
    (button,) = user.find(marker="predict").elements
    for index, (png, _, _) in enumerate(canvas_pngs[1:21]):
        before = pending()
        await draw(user, png)
        user.find(marker="predict").click()
        await wait_for(lambda before=before: pending() == before + 1, timeout=30)
        # the page shows the answer right after the button stops spinning (no await in between)
        await wait_for(lambda: not button.props.get("loading"))
        shown = int(text_of(user, "digit"))
        # half confirmed as right, half given another digit (as if the model had been wrong)
        labels.append(shown if index % 2 else (shown + 1) % 10)
        if index % 2:
            user.find(marker="confirm").click()
        else:
            user.find(marker="correct").clear().type(str(labels[-1]))
            user.find("Save correction").click()
        await wait_for(lambda before=before: pending() == before + 2, timeout=30)
    assert pending() == 40
    await user.should_see("Database unavailable: 40 change(s) kept on the server, saved when it is back")
    await user.should_see("The database is unavailable: this is kept on the server")
    (note,) = user.find(marker="db-status").elements

    restarted = await asyncio.to_thread(start_private_server, home=server.home, port=server.port)
    await wait_for(lambda: pending() == 0, timeout=60)
    stored = await rows(restarted.url)
    assert len(stored) == 21 and len({row[0] for row in stored}) == 21  # exactly those 20 more, no duplicate
    assert [row[2] for row in stored[1:]] == labels
    await wait_for(lambda: not app.state.runtime.started.predictions.database_down, timeout=10)
    await wait_for(lambda: not note.visible, timeout=10)  # the note goes away by itself (3 s timer)
    # and the page is back to normal: the next prediction is stored directly
    png, label, _ = canvas_pngs[21]
    assert await predict(user, png, restarted.url) == str(label)
    assert pending() == 0 and len(await rows(restarted.url)) == 22


@pytest.fixture
def torn_journal(app_env, tmp_path):
    """What a crash mid-write leaves: a journal of 3 predictions whose last 300 bytes are cut off, plus one line of
    garbage in the middle (both set aside: 2 lines)."""
    path = tmp_path / "journal" / "torn.jsonl"
    journal = Journal(path)
    kept = [journal_prediction(digit) for digit in (1, 2, 3)]
    for prediction in kept:
        asyncio.run(journal.add_prediction(prediction))
    first, *rest = path.read_bytes().splitlines(keepends=True)
    path.write_bytes((first + b"{not json\n" + b"".join(rest))[:-300])
    app_env.setenv("JOURNAL_FILE", str(path))
    return path, kept


async def test_a_torn_journal_never_stops_the_page_from_starting(torn_journal, user: User, database_url, caplog):
    """The red-team case: a journal cut mid-line used to raise JSONDecodeError at start, and every page answered
    500. Now the page opens, the readable entries are in the database, and the note counts what was set aside."""
    path, kept = torn_journal
    await user.open("/")
    await user.should_see("2 damaged journal line(s) set aside")
    assert not path.exists()
    assert len(path.with_name(path.name + ".rejected").read_text().splitlines()) == 2
    ids = {row[0] for row in await fetch_all(database_url, "SELECT request_id FROM predictions")}
    assert kept[0].request_id in ids and kept[1].request_id in ids and kept[2].request_id not in ids
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert any("2 unreadable line(s) moved to" in message for message in errors), errors
    caplog.clear()  # the errors an operator must see were logged, as expected


@pytest.fixture
def database_down_at_start(app_env, tmp_path):
    """A private PostgreSQL that is stopped when the page starts (compose started them together; a pod started
    during an outage)."""
    with running_server() as server:
        app_env.setenv("DATABASE_URL", server.url)
        app_env.setenv("JOURNAL_FILE", str(tmp_path / "journal" / "pending.jsonl"))
        server.stop()
        yield server


async def test_the_page_starts_once_the_database_is_up(database_down_at_start, user: User, canvas_pngs):
    """It used to fail its start-up for good (every page 500 until a restart); now it keeps trying."""
    server = database_down_at_start
    await asyncio.sleep(3)  # the page's start-up has met a closed door at least once
    restarted = await asyncio.to_thread(start_private_server, home=server.home, port=server.port)
    await wait_for(lambda: app.state.runtime.started is not None, timeout=60)  # its next try (2 s, then 4 s, ...)
    await user.open("/")
    png, label, _ = canvas_pngs[5]
    assert await predict(user, png, restarted.url) == str(label)
    assert (await rows(restarted.url))[-1][1] == label


async def test_stats_and_models_with_the_database_stopped_say_so_and_never_time_out(own_database, user: User):
    """Issue #23: /stats answered a raw 500 ("took longer than the response_timeout of 3.0 seconds") while the
    database was down. Now the page is sent at once and says the database cannot be reached; once that is known, the
    next pages say it without asking the database again."""
    from ui.pages.stats import UNAVAILABLE

    await user.open("/")
    await asyncio.to_thread(own_database.stop)
    await user.open("/stats")  # a 500 page would have no header and no status line
    await user.should_see(marker="stats-status")
    await user.should_see(UNAVAILABLE, retries=150)  # the first read waits for the pool's timeout (5 s)
    assert app.state.runtime.started.history.database_known_down
    await user.open("/models")
    await user.should_see("admin login is unavailable", retries=5)  # known: no wait
    await user.open("/stats")
    await user.should_see(UNAVAILABLE, retries=5)
