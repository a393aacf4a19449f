"""Page flows as a user sees them (NiceGUI `user` fixture, no browser): a drawn PNG is injected through the slate's
own `change` event; predictions come from the real TorchServe and land in the real Postgres. Refusals (bad
feedback, blank or garbled drawings): test_bad_input_page.py."""

import asyncio
import base64
import inspect
from collections.abc import Awaitable, Callable

import pytest
from nicegui import ui
from nicegui.testing import User

from tests.support.database import fetch_all
from ui.widgets.slate import Slate

pytestmark = [pytest.mark.integration]


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def text_of(user: User, marker: str) -> str:
    (element,) = user.find(marker=marker).elements
    return element.text


async def draw(user: User, png: bytes) -> None:
    user.find(Slate).trigger("change", {"png": data_url(png), "strokes": 3})


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 15.0) -> None:
    """Poll until condition() holds (predictions go over the network to TorchServe); an async condition (a database
    read) is awaited, so that the page, which runs on this loop, keeps running meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _holds(condition):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = condition()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


async def predict(user: User, png: bytes, database_url: str) -> str:
    """Draw, press Predict, and wait until the prediction is saved and shown (its row is the newest one)."""
    rows_before = await row_count(database_url)
    await draw(user, png)
    user.find(marker="predict").click()
    await wait_for(lambda: more_rows_than(database_url, rows_before))
    newest = (await rows_for(database_url))[-1]
    await wait_for(lambda: text_of(user, "digit") == str(newest[2]))
    return text_of(user, "digit")


async def rows_for(database_url: str) -> list[tuple]:
    """Every stored prediction, oldest first (id, browser, digit, true digit, model, version, drawing's size)."""
    return await fetch_all(
        database_url,
        "SELECT id, browser_id, predicted_digit, true_digit, model_name, model_version, length(canvas_png)"
        " FROM predictions ORDER BY id",
    )


async def row_count(database_url: str) -> int:
    return len(await rows_for(database_url))


async def more_rows_than(database_url: str, count: int) -> bool:
    return await row_count(database_url) > count


async def newest_is_labelled(database_url: str) -> bool:
    return (await rows_for(database_url))[-1][3] is not None


async def test_predict_shows_digit_confidence_bars_preview_and_version(user: User, canvas_pngs, database_url):
    await user.open("/")
    png, label, _ = canvas_pngs[0]
    assert await predict(user, png, database_url) == str(label)
    assert "sure" in text_of(user, "confidence")
    assert "mnist 1.0" in text_of(user, "version")
    (preview,) = user.find(marker="preview").elements
    assert preview.source.startswith("data:image/png;base64,")
    await user.should_see("drawings")


async def test_feedback_labels_that_row_can_be_changed_and_survives_reload(user: User, canvas_pngs, database_url):
    await user.open("/")
    png, label, _ = canvas_pngs[1]
    await predict(user, png, database_url)
    row_id = (await rows_for(database_url))[-1][0]
    wrong = (label + 1) % 10
    user.find(marker="correct").type(str(wrong))
    user.find("Save correction").click()
    await user.should_see(f"Saved: true digit {wrong}")
    newest = (await rows_for(database_url))[-1]
    assert newest[0] == row_id and newest[3] == wrong
    user.find(marker="confirm").click()  # changed my mind: the prediction was right
    await user.should_see(f"Saved: true digit {label}")
    last = (await rows_for(database_url))[-1]
    assert last[0] == row_id and last[3] == label and last[2] == label and last[6] > 0

    await user.open("/")  # reload: the history comes from Postgres, for this browser (read once the page is shown)
    (table,) = user.find(marker="history").elements
    await wait_for(lambda: any(row["id"] == row_id for row in table.rows))
    assert any(row["id"] == row_id and row["true"] == label and row["result"] == "✓" for row in table.rows)


async def test_history_belongs_to_the_browser(create_user, canvas_pngs, database_url):
    alice, bob = create_user(), create_user()
    await alice.open("/")
    await predict(alice, canvas_pngs[3][0], database_url)
    await bob.open("/")
    await wait_for(lambda: "drawing" in text_of(bob, "accuracy"))  # bob's history has been read
    (table,) = bob.find(marker="history").elements
    (alice_table,) = alice.find(marker="history").elements
    await wait_for(lambda: bool(alice_table.rows))
    alice_ids = {row["id"] for row in alice_table.rows}
    assert alice_ids and not alice_ids & {row["id"] for row in table.rows}


@pytest.mark.model_server_down
async def test_model_server_down_keeps_the_drawing(user: User, canvas_pngs):
    await user.open("/")
    await draw(user, canvas_pngs[4][0])
    user.find(marker="predict").click()
    await user.should_see("model server is unavailable")
    (slate,) = user.find(Slate).elements
    assert slate.png == canvas_pngs[4][0]


async def test_stats_page_shows_accuracy_per_version(user: User, canvas_pngs, database_url):
    await user.open("/")
    await predict(user, canvas_pngs[5][0], database_url)
    user.find(marker="confirm").click()
    await user.should_see("Saved: true digit")
    await user.open("/stats")
    await user.should_see("Per model version")
    (table,) = user.find(marker="versions").elements
    (row,) = [row for row in table.rows if row["version"] == "1.0"]
    assert row["labelled"] >= 1 and row["predictions"] >= row["labelled"]


async def test_live_mode_predicts_after_a_stroke_without_saving(user: User, canvas_pngs, database_url):
    before = await row_count(database_url)
    await user.open("/")
    user.find("Live: predict as you draw").click()
    png, label, _ = canvas_pngs[6]
    await draw(user, png)  # the stroke's end is what triggers a live prediction
    await wait_for(lambda: text_of(user, "digit") != "")
    assert text_of(user, "digit") == str(label)
    await user.should_see("Live prediction (not saved)")
    assert await row_count(database_url) == before


async def test_clicking_a_history_row_relabels_that_row(user: User, canvas_pngs, database_url):
    await user.open("/")
    await predict(user, canvas_pngs[7][0], database_url)
    await predict(user, canvas_pngs[8][0], database_url)
    older_id, newer_id = (row[0] for row in (await rows_for(database_url))[-2:])
    await wait_for(lambda: any(row["id"] == newer_id for row in user.find(marker="history").elements.pop().rows))
    (table,) = user.find(marker="history").elements
    (older,) = [row for row in table.rows if row["id"] == older_id]
    user.find(marker="history").trigger("relabel", older)  # a click on the row, or Enter or Space on it
    await user.should_see(f"True digit for drawing #{older_id}")
    user.find(kind=ui.button, content="5").click()
    await user.should_see("Saved: true digit 5", retries=30)
    labels = {row[0]: row[3] for row in await rows_for(database_url)}
    assert labels[older_id] == 5 and labels[newer_id] is None  # that row, not the latest one
