"""The page's JSON API against the real TorchServe and the real Postgres: predict and label like the page, idempotent
retries, clear refusals, and each client confined to its own rows (ids are not enough)."""

from __future__ import annotations

import uuid

import pytest
from nicegui.testing import User

from tests.conftest import blank_png
from tests.ui.test_draw_page import rows_for

pytestmark = [pytest.mark.integration]
PNG = {"Content-Type": "image/png"}


async def test_predict_label_and_history(user: User, canvas_pngs, database_url):
    client = user.http_client
    png, label, _ = canvas_pngs[10]
    response = await client.post("/api/predictions", content=png, headers=PNG)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["digit"] == label and answer["saved"] == "database" and answer["model_version"] == "1.0"
    assert len(answer["probabilities"]) == 10 and answer["id"] == rows_for(database_url)[-1][0]
    response = await client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": label})
    assert response.json() == {"request_id": answer["request_id"], "digit": label, "saved": "database"}
    history = (await client.get("/api/history")).json()
    assert history["total"] == 1 and history["predictions"][0]["true_digit"] == label
    assert rows_for(database_url)[-1][3] == label


async def test_a_retry_with_the_same_idempotency_key_returns_the_same_row(user: User, canvas_pngs, database_url):
    key = str(uuid.uuid4())
    png = canvas_pngs[11][0]
    first = await user.http_client.post("/api/predictions", content=png, headers={**PNG, "Idempotency-Key": key})
    before = len(rows_for(database_url))
    again = await user.http_client.post("/api/predictions", content=png, headers={**PNG, "Idempotency-Key": key})
    assert first.json()["id"] == again.json()["id"] and again.json()["request_id"] == key
    assert len(rows_for(database_url)) == before


async def test_live_predictions_are_not_saved(user: User, canvas_pngs, database_url):
    before = len(rows_for(database_url))
    answer = (
        await user.http_client.post("/api/predictions?save=false", content=canvas_pngs[12][0], headers=PNG)
    ).json()
    assert answer["saved"] == "not saved" and answer["id"] is None
    assert len(rows_for(database_url)) == before


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"", PNG, 400, "empty body"),
        (b"not an image", PNG, 400, "not an image"),
        (blank_png(), PNG, 422, "blank"),
        (b"\x89PNG", {**PNG, "Idempotency-Key": "42"}, 400, "Idempotency-Key must be a UUID"),
        (b"x" * (4 * 1024 * 1024 + 1), PNG, 413, "at most"),
    ],
)
async def test_bad_requests_get_a_clear_4xx_and_save_nothing(user: User, database_url, body, headers, status, message):
    await user.open("/")  # the app has started (some refusals come before it is needed; the test must not end first)
    before = len(rows_for(database_url))
    response = await user.http_client.post("/api/predictions", content=body, headers=headers)
    assert response.status_code == status and message in response.json()["detail"], response.text
    assert len(rows_for(database_url)) == before


@pytest.mark.parametrize(("digit", "status"), [(10, 422), (-1, 422), ("seven", 422), (None, 422)])
async def test_invalid_labels_are_refused(user: User, canvas_pngs, database_url, digit, status):
    answer = (await user.http_client.post("/api/predictions", content=canvas_pngs[13][0], headers=PNG)).json()
    response = await user.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": digit})
    assert response.status_code == status
    assert rows_for(database_url)[-1][3] is None


async def test_another_client_can_neither_label_nor_read_my_rows(create_user, canvas_pngs, database_url):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    answer = (await alice.http_client.post("/api/predictions", content=canvas_pngs[14][0], headers=PNG)).json()
    response = await mallory.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": 1})
    assert response.status_code == 404
    assert rows_for(database_url)[-1][3] is None
    key = {**PNG, "Idempotency-Key": answer["request_id"]}  # reusing alice's id does not give her row either
    response = await mallory.http_client.post("/api/predictions", content=canvas_pngs[14][0], headers=key)
    assert response.status_code == 409
    assert (await mallory.http_client.get("/api/history")).json() == {"total": 0, "predictions": []}
