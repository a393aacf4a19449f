"""The label "not a digit" through the JSON API, on stand-ins: PUT /api/predictions/{id}/label takes {"digit": N} or
{"not_a_digit": true}, exactly one (else a 422 that says so); GET /api/history gives it back."""

from __future__ import annotations

import pytest
from nicegui.testing import User

pytestmark = pytest.mark.usefixtures("fake_app")
PNG = {"Content-Type": "image/png"}
SEVEN, SCRIBBLE = b"\x89PNG\r\n\x1a\n a seven", b"\x89PNG\r\n\x1a\n a scribble"


async def predicted(user: User, png: bytes) -> dict:
    await user.open("/")
    return (await user.http_client.post("/api/predictions", content=png, headers=PNG)).json()


async def test_a_refusal_confirmed_through_the_api_is_stored_and_in_the_history(fake_app, user: User):
    fake_app.predictor.refuse.add(SCRIBBLE)
    answer = await predicted(user, SCRIBBLE)
    assert answer["not_a_digit"]
    labelled = await user.http_client.put(f"/api/predictions/{answer['request_id']}/label", json={"not_a_digit": True})
    assert labelled.status_code == 200
    assert labelled.json() == {"request_id": answer["request_id"], "digit": None, "not_a_digit": True,
                               "saved": "database"}  # fmt: skip
    (row,) = fake_app.store.rows
    assert (row.true_digit, row.labelled_not_a_digit, row.right) == (None, True, True)
    (item,) = (await user.http_client.get("/api/history")).json()["predictions"]
    assert (item["true_digit"], item["labelled_not_a_digit"], item["not_a_digit"]) == (None, True, True)


async def test_a_digit_label_replaces_a_not_a_digit_label(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    answer = await predicted(user, SEVEN)
    url = f"/api/predictions/{answer['request_id']}/label"
    assert (await user.http_client.put(url, json={"not_a_digit": True})).status_code == 200
    assert (await user.http_client.put(url, json={"digit": 7})).status_code == 200
    (row,) = fake_app.store.rows
    assert (row.true_digit, row.labelled_not_a_digit) == (7, False)


@pytest.mark.parametrize(
    "body",
    [{"digit": 7, "not_a_digit": True}, {}, {"not_a_digit": False}, {"digit": None}, {"not_a_digit": 1}],
    ids=["both", "neither", "false", "null digit", "not a boolean"],
)
async def test_anything_but_exactly_one_label_is_a_422_that_says_so(fake_app, user: User, body):
    answer = await predicted(user, SEVEN)
    response = await user.http_client.put(f"/api/predictions/{answer['request_id']}/label", json=body)
    assert response.status_code == 422
    messages = " ".join(error["msg"] for error in response.json()["detail"])
    if body != {"not_a_digit": 1}:
        assert 'exactly one of "digit" (0-9) and "not_a_digit": true' in messages
    assert fake_app.store.rows[0].true_digit is None and not fake_app.store.rows[0].labelled_not_a_digit
