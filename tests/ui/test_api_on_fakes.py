"""The page's JSON API on stand-ins (tests/support/fakes.py): what scripts see, no Java or PostgreSQL. The same
against the real servers: test_api.py."""

from __future__ import annotations

import uuid

import pytest
from nicegui.testing import User

pytestmark = pytest.mark.usefixtures("fake_app")
PNG = {"Content-Type": "image/png"}
SEVEN = b"\x89PNG\r\n\x1a\n a seven"


async def test_predict_label_history_and_the_drawing(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")  # a browser id, as the page gives one
    answer = (await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)).json()
    assert (answer["digit"], answer["saved"], answer["model_version"]) == (7, "database", "1.0")
    labelled = await user.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": 1})
    assert labelled.json() == {"request_id": answer["request_id"], "digit": 1, "saved": "database"}
    history = (await user.http_client.get("/api/history")).json()
    assert history["total"] == 1 and history["predictions"][0]["true_digit"] == 1
    thumbnail = await user.http_client.get(f"/drawings/{answer['id']}")
    assert thumbnail.status_code == 200 and thumbnail.content == SEVEN
    assert thumbnail.headers["cache-control"].startswith("private")


async def test_another_client_can_neither_label_nor_see_my_rows(fake_app, create_user):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    answer = (await alice.http_client.post("/api/predictions", content=SEVEN, headers=PNG)).json()
    refused = await mallory.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"digit": 1})
    assert refused.status_code == 404
    assert (await mallory.http_client.get(f"/drawings/{answer['id']}")).status_code == 404
    assert (await mallory.http_client.get("/api/history")).json()["total"] == 0
    assert fake_app.store.rows[0].true_digit is None


async def test_an_idempotency_key_is_one_image(fake_app, user: User):
    await user.open("/")
    key = str(uuid.uuid4())
    first = await user.http_client.post("/api/predictions", content=SEVEN, headers={**PNG, "Idempotency-Key": key})
    again = await user.http_client.post("/api/predictions", content=SEVEN, headers={**PNG, "Idempotency-Key": key})
    assert first.json()["id"] == again.json()["id"] and len(fake_app.store.rows) == 1
    other = b"\x89PNG\r\n\x1a\n another image"
    reused = await user.http_client.post("/api/predictions", content=other, headers={**PNG, "Idempotency-Key": key})
    assert reused.status_code == 409 and "another image" in reused.json()["detail"]


@pytest.mark.parametrize("body", [b'{"digit": 1e400}', b'{"digit": NaN}', b'{"digit": "7"}', b'{"digit": 7.0}'])
async def test_labels_other_than_a_json_integer_are_a_422(fake_app, user: User, body):
    await user.open("/")
    answer = (await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)).json()
    response = await user.http_client.put(
        f"/api/predictions/{answer['request_id']}/label", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "digit"]


async def test_the_model_server_down_is_a_503_with_retry_after(fake_app, user: User):
    fake_app.predictor.down = True
    await user.open("/")
    response = await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert fake_app.store.rows == []


def test_registering_the_routes_leaves_the_apps_lifespan_as_it_was():
    """FastAPI's include_router wraps the app's lifespan in the router's: once per start of the app, these tests' many
    starts of the one NiceGUI app nested the wrappers until the stack overflowed (RecursionError after ~117 tests)."""
    from nicegui import app

    from ui import api

    before, routes = app.router.lifespan_context, list(app.router.routes)
    try:
        api.register()
        assert app.router.lifespan_context is before
    finally:
        app.router.routes[:] = routes


async def test_the_history_says_why_a_single_drawing_was_refused(fake_app, user: User):
    fake_app.predictor.refuse.add(SEVEN)
    await user.open("/")
    answer = (await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)).json()
    assert answer["not_a_digit"] and answer["reason"] == "doesn't look like a digit"
    (shown,) = (await user.http_client.get("/api/history")).json()["predictions"]
    assert shown["reason"] == answer["reason"] and shown["digit"] == answer["closest_digit"]
