"""The page's TorchServe client against a scripted stand-in server (httpx.MockTransport): the key handling and
the error mapping. The real TorchServe is exercised by tests/integration and the page tests."""

import base64
import json

import httpx
import pytest

from records.errors import ModelUnavailable, PredictionRejected
from serving.inference import Predictor

ANSWER = {"digit": 3, "confidence": 0.9, "probabilities": [0.1 / 9] * 3 + [0.9] + [0.1 / 9] * 6,
          "model_name": "mnist", "model_version": "2.0"}  # fmt: skip
INVALID_KEY = {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed."}


def write_key(path, key: str) -> None:
    path.write_text(json.dumps({"inference": {"key": key}, "management": {"key": "m"}, "API": {"key": "a"}}))


def predictor_with(handler, key_file) -> Predictor:
    return Predictor(inference_url="http://ts.test", key_file=key_file, transport=httpx.MockTransport(handler))


async def test_rereads_the_key_file_after_an_auth_failure_and_retries_once(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "old")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] != "Bearer new":
            write_key(key_file, "new")  # TorchServe restarted meanwhile and wrote new keys
            return httpx.Response(400, json=INVALID_KEY)
        return httpx.Response(200, json=ANSWER)

    prediction = await predictor_with(handler, key_file).predict(b"png")
    assert seen == ["Bearer old", "Bearer new"]
    assert prediction.digit == 3 and prediction.model_version == "2.0" and prediction.preview_png is None


async def test_a_still_invalid_key_is_reported_as_unavailable(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "stale")
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(400, json=INVALID_KEY)

    with pytest.raises(ModelUnavailable):
        await predictor_with(handler, key_file).predict(b"png")
    assert len(calls) == 2  # one retry, not a loop


async def test_a_refused_image_carries_the_servers_message(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    blank = {"error": "the drawing is blank: draw a digit first", "status": 422}
    predictor = predictor_with(lambda request: httpx.Response(422, json=blank), key_file)
    with pytest.raises(PredictionRejected, match="blank") as caught:
        await predictor.predict(b"png")
    assert caught.value.status == 422


async def test_no_key_file_means_the_model_server_is_not_running_or_restarting(tmp_path):
    """TorchServe writes its key file once it is up: none is what the page meets while it restarts."""
    predictor = predictor_with(lambda request: httpx.Response(200, json=ANSWER), tmp_path / "missing.json")
    with pytest.raises(ModelUnavailable, match="unavailable, probably restarting: your drawing is kept"):
        await predictor.predict(b"png")


@pytest.mark.parametrize("status", [404, 500, 503, 507])
async def test_server_errors_are_unavailable_not_rejections(tmp_path, status):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    predictor = predictor_with(lambda request: httpx.Response(status, json={"message": "x"}), key_file)
    with pytest.raises(ModelUnavailable, match=str(status)):
        await predictor.predict(b"png")


REFUSAL = {"not_a_digit": True, "digit": None, "reason": "looks like several digits", "closest_digit": 7,
           "confidence": 0.6, "probabilities": [0.04] * 7 + [0.6] + [0.04] * 2,
           "model_name": "mnist", "model_version": "3.0"}  # fmt: skip


async def test_a_refusal_is_an_answer_with_the_reason_and_the_closest_digit(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    prediction = await predictor_with(lambda request: httpx.Response(200, json=REFUSAL), key_file).predict(b"png")
    assert prediction.not_a_digit and prediction.digit is None
    assert prediction.reason == "looks like several digits" and prediction.closest_digit == 7
    assert prediction.confidence == 0.6 and prediction.model_version == "3.0"


async def test_an_answer_is_not_a_refusal_and_its_closest_digit_is_the_digit(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    answered = dict(ANSWER, not_a_digit=False)  # what a version with a refusal policy answers for a digit
    for body in (ANSWER, answered):
        prediction = await predictor_with(lambda request, body=body: httpx.Response(200, json=body), key_file).predict(
            b"png"
        )
        assert not prediction.not_a_digit and prediction.reason is None
        assert prediction.digit == prediction.closest_digit == 3 and prediction.runner_up != 3


def explanation_answer(target: int) -> dict:
    attributions = [[0.0] * 28 for _ in range(28)]
    attributions[14][target] = 0.5
    return dict(ANSWER, target=target, attributions=attributions, method="integrated_gradients(baseline=blank)",
                field_box={"left": 31.5, "top": 12.0, "right": 310.5, "bottom": 291.0})  # fmt: skip


async def test_explain_asks_the_explanations_endpoint_with_the_target_and_version(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        target = int(request.headers.get("X-Target", 3))
        return httpx.Response(200, json=explanation_answer(target))

    predictor = predictor_with(handler, key_file)
    explanation = await predictor.explain(b"png", target=5, version="2.0")
    assert seen[-1].url.path == "/explanations/mnist/2.0" and seen[-1].content == b"png"
    assert seen[-1].headers["Content-Type"] == "image/png"
    assert explanation.target == 5 and explanation.attributions[14][5] == 0.5
    assert explanation.field_box.left == 31.5 and explanation.field_box.bottom == 291.0
    assert explanation.prediction.digit == 3
    default = await predictor.explain(b"png")
    assert seen[-1].url.path == "/explanations/mnist" and "X-Target" not in seen[-1].headers
    assert default.target == 3


async def test_explain_maps_errors_like_predict(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    bad_target = {"error": "target must be a digit 0-9, not '12'", "status": 400}
    with pytest.raises(PredictionRejected, match="target must be"):
        await predictor_with(lambda request: httpx.Response(400, json=bad_target), key_file).explain(b"png", target=12)
    with pytest.raises(ModelUnavailable, match="503"):
        await predictor_with(lambda request: httpx.Response(503, json={}), key_file).explain(b"png")


NUMBER = {
    "number": "42",
    "digits": [
        {"digit": 4, "confidence": 0.9, "probabilities": [0.0] * 4 + [0.9] + [0.02] * 5,
         "box": [48.0, 4.0, 238.0, 184.0], "preview": base64.b64encode(b"4's preview").decode()},
        {"digit": 2, "confidence": 0.8, "probabilities": [0.1, 0.1, 0.8] + [0.0] * 7,
         "box": [272.0, 20.0, 414.0, 190.0], "preview": base64.b64encode(b"2's preview").decode()},
    ],
    "model_name": "mnist",
    "model_version": "3.0",
}  # fmt: skip


async def test_read_number_asks_for_a_number_with_previews_and_reads_each_digits_box(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=NUMBER)

    reading = await predictor_with(handler, key_file).read_number(b"png", version="3.0")
    assert seen[0].url.path == "/predictions/mnist/3.0" and seen[0].content == b"png"
    assert seen[0].headers["X-Read"] == "number" and seen[0].headers["X-Preview"] == "1"
    assert (reading.number, reading.model_version, reading.not_a_digit, reading.reason) == ("42", "3.0", False, None)
    assert [d.digit for d in reading.digits] == [4, 2] and reading.digits[1].box == (272.0, 20.0, 414.0, 190.0)
    assert reading.digits[0].preview_png == b"4's preview" and reading.digits[1].confidence == 0.8
    assert reading.latency_ms >= 0


async def test_a_number_that_cannot_be_read_is_an_answer_and_errors_map_like_predict(tmp_path):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    refused_digit = dict(NUMBER["digits"][0], not_a_digit=True)
    refused = dict(NUMBER, number=None, not_a_digit=True, reason="doesn't look like a digit", digits=[refused_digit])
    reading = await predictor_with(lambda request: httpx.Response(200, json=refused), key_file).read_number(b"png")
    assert reading.number is None and reading.not_a_digit and reading.reason == "doesn't look like a digit"
    assert reading.digits[0].not_a_digit and reading.digits[0].digit == 4  # the closest digit
    marks = dict(NUMBER, number=None, digits=[], not_a_digit=True, reason="too many marks to be a number")
    assert (
        await predictor_with(lambda request: httpx.Response(200, json=marks), key_file).read_number(b"png")
    ).digits == []
    blank = {"error": "the drawing is blank: draw a digit first", "status": 422}
    with pytest.raises(PredictionRejected, match="blank"):
        await predictor_with(lambda request: httpx.Response(422, json=blank), key_file).read_number(b"png")
    with pytest.raises(ModelUnavailable, match="did not answer with a number"):  # a handler that reads no numbers
        await predictor_with(lambda request: httpx.Response(200, json=ANSWER), key_file).read_number(b"png")
