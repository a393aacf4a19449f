"""The page's JSON API against the real TorchServe and the real Postgres: predict and label like the page, idempotent
retries, clear refusals, and each client confined to its own rows (ids are not enough)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from fastapi.openapi.utils import get_openapi
from nicegui import app
from nicegui.testing import User

from tests.conftest import blank_png
from tests.support.database import fetch_one
from tests.ui.test_draw_page import row_count, rows_for

pytestmark = [pytest.mark.integration]
PNG = {"Content-Type": "image/png"}


async def test_predict_label_and_history(user: User, canvas_pngs, database_url):
    client = user.http_client
    png, label, _ = canvas_pngs[10]
    response = await client.post("/api/predictions", content=png, headers=PNG)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["digit"] == label and answer["saved"] == "database" and answer["model_version"] == "1.0"
    assert len(answer["probabilities"]) == 10 and answer["id"] == (await rows_for(database_url))[-1][0]
    response = await client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": label})
    assert response.json() == {"request_id": answer["request_id"], "digit": label, "saved": "database"}
    history = (await client.get("/api/history")).json()
    assert history["total"] == 1 and history["predictions"][0]["true_digit"] == label
    assert (await rows_for(database_url))[-1][3] == label


async def test_a_retry_with_the_same_idempotency_key_returns_the_same_row(user: User, canvas_pngs, database_url):
    key = str(uuid.uuid4())
    png = canvas_pngs[11][0]
    first = await user.http_client.post("/api/predictions", content=png, headers={**PNG, "Idempotency-Key": key})
    before = await row_count(database_url)
    again = await user.http_client.post("/api/predictions", content=png, headers={**PNG, "Idempotency-Key": key})
    assert first.json()["id"] == again.json()["id"] and again.json()["request_id"] == key
    assert await row_count(database_url) == before


async def test_live_predictions_are_not_saved(user: User, canvas_pngs, database_url):
    before = await row_count(database_url)
    answer = (
        await user.http_client.post("/api/predictions?save=false", content=canvas_pngs[12][0], headers=PNG)
    ).json()
    assert answer["saved"] == "not saved" and answer["id"] is None
    assert await row_count(database_url) == before


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"", PNG, 400, "empty body"),
        (b"not an image", PNG, 415, "PNG or JPEG file"),
        (blank_png(), PNG, 422, "blank"),
        (b"\x89PNG", {**PNG, "Idempotency-Key": "42"}, 400, "Idempotency-Key must be a UUID"),
        (b"x" * (4 * 1024 * 1024 + 1), PNG, 413, "at most"),
    ],
)
async def test_bad_requests_get_a_clear_4xx_and_save_nothing(user: User, database_url, body, headers, status, message):
    await user.open("/")  # the app has started (some refusals come before it is needed; the test must not end first)
    before = await row_count(database_url)
    response = await user.http_client.post("/api/predictions", content=body, headers=headers)
    assert response.status_code == status and message in response.json()["detail"], response.text
    assert await row_count(database_url) == before


@pytest.mark.parametrize(
    ("digit", "status"),
    # JSON integers 0-9 only: no booleans (True would be stored as 1), numeric strings, floats or lists
    [(10, 422), (-1, 422), ("seven", 422), (None, 422), (True, 422), ("7", 422), (" 7 ", 422), (7.0, 422), ([7], 422)],
)
async def test_invalid_labels_are_refused(user: User, canvas_pngs, database_url, digit, status):
    answer = (await user.http_client.post("/api/predictions", content=canvas_pngs[13][0], headers=PNG)).json()
    response = await user.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": digit})
    assert response.status_code == status
    assert (await rows_for(database_url))[-1][3] is None


@pytest.mark.parametrize("digit", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"-0.0", b"1e-400"])
async def test_numbers_json_cannot_hold_are_a_422_with_a_json_body(user: User, canvas_pngs, database_url, digit):
    """Issue #20 N5: an overflowing or non-finite number used to answer 500 (the error echoed it, and a 100-line
    traceback went to the log): any label but a JSON integer 0-9 is a 422 with a JSON body."""
    answer = (await user.http_client.post("/api/predictions", content=canvas_pngs[13][0], headers=PNG)).json()
    response = await user.http_client.put(
        f"/api/predictions/{answer['request_id']}/label", content=b'{"digit": ' + digit + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "digit"]
    assert (await rows_for(database_url))[-1][3] is None


async def test_another_client_can_neither_label_nor_read_my_rows(create_user, canvas_pngs, database_url):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    answer = (await alice.http_client.post("/api/predictions", content=canvas_pngs[14][0], headers=PNG)).json()
    response = await mallory.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": 1})
    assert response.status_code == 404
    assert (await rows_for(database_url))[-1][3] is None
    key = {**PNG, "Idempotency-Key": answer["request_id"]}  # reusing alice's id does not give her row either
    response = await mallory.http_client.post("/api/predictions", content=canvas_pngs[14][0], headers=key)
    assert response.status_code == 409
    assert (await mallory.http_client.get("/api/history")).json() == {"total": 0, "predictions": [], "numbers": []}


async def test_an_idempotency_key_reused_with_another_image_is_refused(user: User, canvas_pngs, database_url):
    """A key names one drawing: reusing it for another image answers 409 (not the new digit with the old row's id)."""
    key = {**PNG, "Idempotency-Key": str(uuid.uuid4())}
    first = await user.http_client.post("/api/predictions", content=canvas_pngs[15][0], headers=key)
    assert first.status_code == 200, first.text
    before = await rows_for(database_url)
    again = await user.http_client.post("/api/predictions", content=canvas_pngs[16][0], headers=key)
    assert again.status_code == 409 and "another image" in again.json()["detail"], again.text
    assert await rows_for(database_url) == before
    (stored,) = await fetch_one(database_url, "SELECT canvas_png FROM predictions WHERE id = %s", (first.json()["id"],))
    assert bytes(stored) == canvas_pngs[15][0]


def _json_body(png: bytes) -> bytes:
    return json.dumps({"image": base64.b64encode(png).decode()}).encode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("json", "application/json"),  # TorchServe's handler would decode it; the row would keep the JSON text
        ("base64", "text/plain"),
        ("multipart", "multipart/form-data; boundary=xyz"),
        ("data-url", "text/plain"),
    ],
)
async def test_only_png_or_jpeg_bytes_are_predicted_and_stored(
    user: User, canvas_pngs, database_url, body, content_type
):
    png = canvas_pngs[17][0]
    content = {
        "json": _json_body(png),
        "base64": base64.b64encode(png),
        "multipart": b'--xyz\r\nContent-Disposition: form-data; name="data"\r\n\r\n' + png + b"\r\n--xyz--\r\n",
        "data-url": b"data:image/png;base64," + base64.b64encode(png),
    }[body]
    await user.open("/")
    before = await row_count(database_url)
    response = await user.http_client.post("/api/predictions", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 415 and "PNG or JPEG file" in response.json()["detail"], response.text
    assert await row_count(database_url) == before


@pytest.mark.parametrize(
    "query", ["offset=99999999999999999999", "limit=99999999999999999999", "offset=-1", "limit=0", "offset=1e3"]
)
async def test_history_paging_outside_its_bounds_is_a_4xx(user: User, query):
    await user.open("/")
    response = await user.http_client.get(f"/api/history?{query}")
    assert response.status_code == 422, response.text


async def test_the_three_routes_declare_typed_responses(user: User):
    """The OpenAPI schema names a response model for each route (what clients and the docs rely on)."""
    await user.open("/")  # the routes are registered
    schema = get_openapi(title="digits", version="test", routes=app.routes)  # NiceGUI serves no /openapi.json
    routes = {
        ("/api/predictions", "post"): "PredictionOut",
        ("/api/predictions/{request_id}/label", "put"): "LabelOut",
        ("/api/history", "get"): "HistoryOut",
    }
    for (path, method), model in routes.items():
        ok = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}, (path, ok)
