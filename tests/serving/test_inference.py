"""The page's TorchServe client against a scripted stand-in server (httpx.MockTransport): the key handling and
the error mapping. The real TorchServe is exercised by tests/integration and the page tests."""

import json

import httpx
import pytest

from serving.inference import ModelUnavailable, PredictionRejected, Predictor

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


async def test_no_key_file_means_the_model_server_is_not_running(tmp_path):
    predictor = predictor_with(lambda request: httpx.Response(200, json=ANSWER), tmp_path / "missing.json")
    with pytest.raises(ModelUnavailable, match="not running"):
        await predictor.predict(b"png")


@pytest.mark.parametrize("status", [404, 500, 503, 507])
async def test_server_errors_are_unavailable_not_rejections(tmp_path, status):
    key_file = tmp_path / "key_file.json"
    write_key(key_file, "k")
    predictor = predictor_with(lambda request: httpx.Response(status, json={"message": "x"}), key_file)
    with pytest.raises(ModelUnavailable, match=str(status)):
        await predictor.predict(b"png")
