"""A PostgreSQL outage as a user lives it: the page keeps predicting and taking feedback, says discreetly that it
keeps them, and when the database is back exactly those rows appear, once each, with their labels."""

from __future__ import annotations

import psycopg
import pytest
from nicegui.testing import User

from db.embedded import start_private_server
from tests.conftest import running_server
from tests.ui.test_draw_page import draw, predict, text_of, wait_for
from ui import services

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_database(app_env, tmp_path):
    """A private PostgreSQL for this test only (it is stopped and started again), and a journal in tmp_path."""
    with running_server() as server:
        app_env.setenv("DATABASE_URL", server.url)
        app_env.setenv("JOURNAL_FILE", str(tmp_path / "journal" / "pending.jsonl"))
        app_env.setenv("JOURNAL_REPLAY_SECONDS", "0.5")
        yield server


def rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT request_id, predicted_digit, true_digit FROM predictions ORDER BY id").fetchall()


def pending() -> int:
    return services._services.journal.pending


async def test_predictions_and_feedback_during_an_outage_are_written_exactly_once_when_it_ends(
    own_database, user: User, canvas_pngs
):
    server = own_database
    await user.open("/")
    first_png, first_label, _ = canvas_pngs[0]
    assert await predict(user, first_png, server.url) == str(first_label)  # the database is up: stored directly
    server.stop()

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
            user.find("Submit feedback").click()
        await wait_for(lambda before=before: pending() == before + 2, timeout=30)
    assert pending() == 40
    await user.should_see("Database unavailable: 40 change(s) kept on the server, saved when it is back")
    await user.should_see("The database is unavailable: this is kept on the server")
    (note,) = user.find(marker="db-status").elements

    restarted = start_private_server(home=server.home, port=server.port)
    await wait_for(lambda: pending() == 0, timeout=60)
    stored = rows(restarted.url)
    assert len(stored) == 21 and len({row[0] for row in stored}) == 21  # exactly those 20 more, no duplicate
    assert [row[2] for row in stored[1:]] == labels
    await wait_for(lambda: not services._services.database_down, timeout=10)
    await wait_for(lambda: not note.visible, timeout=10)  # the note goes away by itself (3 s timer)
    # and the page is back to normal: the next prediction is stored directly
    png, label, _ = canvas_pngs[21]
    assert await predict(user, png, restarted.url) == str(label)
    assert pending() == 0 and len(rows(restarted.url)) == 22
