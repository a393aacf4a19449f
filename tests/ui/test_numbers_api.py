"""The JSON API's numbers against the real TorchServe (the handler's X-Read: number) and the real PostgreSQL: a number
read and kept whole, each digit a prediction row with its crop, labels on both, retries, and refusals."""

from __future__ import annotations

import asyncio
import io
import uuid

import pytest
from nicegui.testing import User
from PIL import Image

from db.pool import open_pool
from db.predictions import PredictionStore
from tests.conftest import blank_png
from tests.handler.test_numbers import drawing, one, seven, zero
from tests.support.database import fetch_all, fetch_one

pytestmark = [pytest.mark.integration]
PNG = {"Content-Type": "image/png"}
ONE_SEVEN_ZERO = drawing(one(150), seven(300), zero(480))


async def stored(database_url: str, request_id: str) -> tuple[tuple, list[tuple]]:
    """A number's row (number, true_number, drawing) and its digit rows (position, digit, true digit, crop, box)."""
    number = await fetch_one(
        database_url, "SELECT id, number, true_number, canvas_png FROM numbers WHERE request_id = %s", (request_id,)
    )
    assert number is not None, f"no number stored for {request_id}"
    digits = await fetch_all(
        database_url,
        "SELECT position, predicted_digit, true_digit, canvas_png, box, browser_id FROM predictions"
        " WHERE number_id = %s ORDER BY position",
        (number[0],),
    )
    return number, digits


async def test_a_number_is_read_kept_whole_and_its_digits_as_drawings(user: User, database_url):
    await user.open("/")
    response = await user.http_client.post("/api/numbers", content=ONE_SEVEN_ZERO, headers=PNG)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["number"], answer["saved"], answer["model_version"]) == ("170", "database", "1.0")
    assert [d["digit"] for d in answer["digits"]] == [1, 7, 0]
    (_, number, true_number, canvas), digits = await stored(database_url, answer["request_id"])
    assert (number, true_number, bytes(canvas)) == ("170", None, ONE_SEVEN_ZERO)
    assert [(p, d) for p, d, *_ in digits] == [(0, 1), (1, 7), (2, 0)]
    for (_, _, _, crop, box, _), shown in zip(digits, answer["digits"], strict=True):
        assert box == pytest.approx(shown["box"]) and Image.open(io.BytesIO(bytes(crop))).width > box[2] - box[0]
    thumbnail = await user.http_client.get(f"/drawings/{answer['digits'][2]['id']}")
    assert thumbnail.status_code == 200 and thumbnail.content == bytes(digits[2][3])


async def test_labels_reach_the_digits_and_retrainings_feedback(user: User, database_url):
    await user.open("/")
    answer = (await user.http_client.post("/api/numbers", content=ONE_SEVEN_ZERO, headers=PNG)).json()
    labelled = await user.http_client.put(f"/api/numbers/{answer['request_id']}/label", json={"number": "171"})
    assert labelled.json()["digits_labelled"] == 3 and labelled.json()["saved"] == "database"
    corrected = await user.http_client.put(f"/api/numbers/{answer['request_id']}/digits/2/label", json={"digit": 4})
    assert corrected.status_code == 200, corrected.text
    (_, _, true_number, _), digits = await stored(database_url, answer["request_id"])
    assert true_number == "174" and [t for _, _, t, *_ in digits] == [1, 7, 4]

    async def feedback() -> list:
        pool = await open_pool(database_url, timeout=5)
        try:
            return await PredictionStore(pool).labelled_feedback()
        finally:
            await pool.close()

    crops = {bytes(crop): true for _, _, true, crop, _, _ in digits}
    learned = [f for f in await feedback() if f.canvas_png in crops]
    assert sorted(f.true_digit for f in learned) == [1, 4, 7]  # the corrected digit with its crop
    history = (await user.http_client.get("/api/history")).json()
    assert [n["true_number"] for n in history["numbers"] if n["request_id"] == answer["request_id"]] == ["174"]


async def test_a_retry_returns_the_same_rows_and_bad_requests_keep_nothing(user: User, database_url):
    await user.open("/")
    key = {**PNG, "Idempotency-Key": str(uuid.uuid4())}
    first = (await user.http_client.post("/api/numbers", content=ONE_SEVEN_ZERO, headers=key)).json()
    again = (await user.http_client.post("/api/numbers", content=ONE_SEVEN_ZERO, headers=key)).json()
    assert again["id"] == first["id"] and [d["id"] for d in again["digits"]] == [d["id"] for d in first["digits"]]
    (before,) = await fetch_one(database_url, "SELECT count(*) FROM numbers")
    for body, status in ((blank_png(), 422), (b"not an image", 415), (b"", 400)):
        response = await user.http_client.post("/api/numbers", content=body, headers=PNG)
        assert response.status_code == status, response.text
    live = (await user.http_client.post("/api/numbers?save=false", content=ONE_SEVEN_ZERO, headers=PNG)).json()
    assert live["number"] == "170" and live["id"] is None
    assert await fetch_one(database_url, "SELECT count(*) FROM numbers") == (before,)


async def test_numbers_and_single_drawings_share_the_clients_limit_and_both_answer(user: User, canvas_pngs):
    await user.open("/")
    png, label, _ = canvas_pngs[18]
    single, number = await asyncio.gather(
        user.http_client.post("/api/predictions", content=png, headers=PNG),
        user.http_client.post("/api/numbers", content=ONE_SEVEN_ZERO, headers=PNG),
    )
    assert single.json()["digit"] == label and number.json()["number"] == "170"
