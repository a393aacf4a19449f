"""The JSON API's numbers on stand-ins (tests/support/fakes.py): read, label the whole number or one digit, and the
history that lists a number once. The same against the real servers: test_numbers_api.py."""

from __future__ import annotations

import uuid

import pytest
from nicegui.testing import User

from tests.handler.test_numbers import drawing, one, seven, zero

pytestmark = pytest.mark.usefixtures("fake_app")
PNG = {"Content-Type": "image/png"}
NUMBER = drawing(one(150), seven(300), zero(480))
SEVEN = b"\x89PNG\r\n\x1a\n a seven"


async def test_read_label_and_the_history(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    await user.open("/")
    answer = (await user.http_client.post("/api/numbers", content=NUMBER, headers=PNG)).json()
    assert (answer["number"], answer["saved"], answer["model_version"], answer["id"]) == ("170", "database", "1.0", 1)
    assert [(d["position"], d["digit"], d["id"]) for d in answer["digits"]] == [(0, 1, 1), (1, 7, 2), (2, 0, 3)]
    assert answer["digits"][1]["box"] == [280.0, 0.0, 560.0, 280.0] and len(answer["digits"][0]["probabilities"]) == 10
    crop = await user.http_client.get(f"/drawings/{answer['digits'][1]['id']}")  # a digit's crop is a drawing
    assert crop.status_code == 200 and crop.content.startswith(b"\x89PNG")
    labelled = await user.http_client.put(f"/api/numbers/{answer['request_id']}/label", json={"number": "171"})
    assert labelled.json() == {"request_id": answer["request_id"], "number": "171", "saved": "database",
                               "digits_labelled": 3}  # fmt: skip
    one_digit = await user.http_client.put(f"/api/numbers/{answer['request_id']}/digits/0/label", json={"digit": 4})
    assert one_digit.json() == {"request_id": answer["request_id"], "position": 0, "digit": 4, "saved": "database"}
    await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)
    history = (await user.http_client.get("/api/history")).json()
    assert history["total"] == 2 and len(history["predictions"]) == 1  # the number's digits are not listed apart
    (shown,) = history["numbers"]
    assert (shown["number"], shown["true_number"]) == ("170", "471")
    assert [(d["digit"], d["true_digit"]) for d in shown["digits"]] == [(1, 4), (7, 7), (0, 1)]


async def test_save_false_keeps_nothing_and_a_key_is_one_drawing(fake_app, user: User):
    await user.open("/")
    live = (await user.http_client.post("/api/numbers?save=false", content=NUMBER, headers=PNG)).json()
    assert live["saved"] == "not saved" and live["id"] is None and fake_app.numbers.numbers == []
    key = {**PNG, "Idempotency-Key": str(uuid.uuid4())}
    first = (await user.http_client.post("/api/numbers", content=NUMBER, headers=key)).json()
    again = (await user.http_client.post("/api/numbers", content=NUMBER, headers=key)).json()
    assert again["id"] == first["id"] and [d["id"] for d in again["digits"]] == [d["id"] for d in first["digits"]]
    other = drawing(seven(300))
    reused = await user.http_client.post("/api/numbers", content=other, headers=key)
    assert reused.status_code == 409 and len(fake_app.numbers.numbers) == 1


@pytest.mark.parametrize("body", [b'{"number": 2026}', b'{"number": ""}', b'{"number": "12345678901"}',
                                  b'{"number": "20 26"}', b'{"number": "2026\\n"}', '{"number": "٢٠٢٦"}'.encode(),
                                  b'{"number": "42", "extra": 1}', b'{"digit": 4}'])  # fmt: skip
async def test_a_number_label_other_than_a_string_of_1_to_10_digits_is_a_422(fake_app, user: User, body):
    await user.open("/")
    answer = (await user.http_client.post("/api/numbers", content=NUMBER, headers=PNG)).json()
    response = await user.http_client.put(
        f"/api/numbers/{answer['request_id']}/label", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert fake_app.numbers.numbers[0].true_number is None


DIGIT_LABELS = [("3", {"digit": 1}, 404), ("-1", {"digit": 1}, 422), ("x", {"digit": 1}, 422),
                ("0", {"digit": 10}, 422), ("0", {"digit": "1"}, 422), ("64", {"digit": 1}, 422)]  # fmt: skip


@pytest.mark.parametrize(("position", "body", "status"), DIGIT_LABELS)
async def test_a_digit_label_needs_a_digit_that_is_there(fake_app, user: User, position, body, status):
    await user.open("/")
    answer = (await user.http_client.post("/api/numbers", content=NUMBER, headers=PNG)).json()
    response = await user.http_client.put(f"/api/numbers/{answer['request_id']}/digits/{position}/label", json=body)
    assert response.status_code == status, response.text
    assert all(row.true_digit is None for row in fake_app.store.rows)


async def test_another_client_can_neither_label_nor_see_my_numbers(fake_app, create_user):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    answer = (await alice.http_client.post("/api/numbers", content=NUMBER, headers=PNG)).json()
    for path, body in ((f"/api/numbers/{answer['request_id']}/label", {"number": "1"}),
                       (f"/api/numbers/{answer['request_id']}/digits/0/label", {"digit": 1})):  # fmt: skip
        assert (await mallory.http_client.put(path, json=body)).status_code == 404
    assert (await mallory.http_client.get("/api/history")).json() == {"total": 0, "predictions": [], "numbers": []}
    assert fake_app.numbers.numbers[0].true_number is None


async def test_refusals_keep_their_status_and_nothing_is_kept(fake_app, user: User):
    await user.open("/")
    assert (await user.http_client.post("/api/numbers", content=b"", headers=PNG)).status_code == 400
    assert (await user.http_client.post("/api/numbers", content=b"GIF89a", headers=PNG)).status_code == 415
    fake_app.predictor.down = True
    down = await user.http_client.post("/api/numbers", content=NUMBER, headers=PNG)
    assert down.status_code == 503 and down.headers["retry-after"] == "2"
    assert fake_app.numbers.numbers == []


async def test_a_number_that_cannot_be_read_is_kept_and_can_be_labelled(fake_app, user: User):
    fake_app.predictor.numbers[NUMBER] = "170"
    fake_app.predictor.refuse.add(NUMBER)
    await user.open("/")
    answer = (await user.http_client.post("/api/numbers", content=NUMBER, headers=PNG)).json()
    assert answer["number"] is None and answer["not_a_digit"] and answer["reason"]
    assert all(d["not_a_digit"] for d in answer["digits"]) and answer["saved"] == "database"
    labelled = await user.http_client.put(f"/api/numbers/{answer['request_id']}/label", json={"number": "170"})
    assert labelled.json()["digits_labelled"] == 3
    assert (await user.http_client.get("/api/history")).json()["numbers"][0]["true_number"] == "170"
