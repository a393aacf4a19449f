"""Numbers through the real TorchServe (X-Read: number): the frontend passes the header and the form field through,
and the answer is the contract of docs/api.md "Calling the API"."""

import base64

import pytest

from tests.handler.test_numbers import drawing, one, seven, zero

pytestmark = pytest.mark.integration


def test_the_header_reads_a_number_the_json_field_too(api):
    png = drawing(one(150), seven(300), zero(480))
    response = api.post("/predictions/mnist", content=png, headers={"Content-Type": "image/png", "X-Read": "number"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["number"] == "170" and answer["model_version"] == "1.0"
    assert [digit["digit"] for digit in answer["digits"]] == [1, 7, 0]
    assert all(len(digit["probabilities"]) == 10 and len(digit["box"]) == 4 for digit in answer["digits"])
    response = api.post("/predictions/mnist/2.0", json={"image": base64.b64encode(png).decode(), "read": "number"})
    assert response.status_code == 200, response.text
    assert response.json()["number"] == "170" and response.json()["model_version"] == "2.0"


def test_a_multipart_field_and_a_plain_request_beside_it(api):
    png = drawing(seven(150), one(300))
    response = api.post("/predictions/mnist", files={"data": ("n.png", png, "image/png")}, data={"read": "number"})
    assert response.status_code == 200, response.text
    assert response.json()["number"] == "71"
    plain = api.post("/predictions/mnist", content=drawing(seven(300)), headers={"Content-Type": "image/png"})
    assert plain.status_code == 200 and plain.json()["digit"] == 7 and "number" not in plain.json()


def test_a_blank_number_is_refused_as_a_blank_digit_is(api):
    from tests.conftest import blank_png

    response = api.post("/predictions/mnist", content=blank_png(), headers={"X-Read": "number"})
    assert response.status_code == 422 and "blank" in response.json()["error"]
