"""The tools' blocking TorchServe clients (SyncInference, SyncManagement) against a scripted stand-in server
(httpx.MockTransport): the same key handling, answers and errors as the page's async clients, and the one READY check.
The real TorchServe answers them in tests/deploy/test_container.py (the health check, key renewal), the test fixtures
(waiting for READY workers) and tests/integration/test_torchserve_api.py (the evaluation)."""

import asyncio
import dataclasses

import httpx
import pytest

from records.errors import ManagementError, ModelUnavailable, PredictionRejected
from serving.auth import authorization
from serving.inference import Predictor, SyncInference
from serving.management import SyncManagement
from tests.serving.test_inference import ANSWER, INVALID_KEY, NUMBER, REFUSAL, write_key


def inference_with(handler, key_file) -> SyncInference:
    return SyncInference(inference_url="http://ts.test", key_file=key_file, transport=httpx.MockTransport(handler))


def management_with(handler, key_file) -> SyncManagement:
    return SyncManagement(management_url="http://ts.test", key_file=key_file, transport=httpx.MockTransport(handler))


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "key_file.json"
    write_key(path, "k")
    return path


def test_a_prediction_is_the_same_record_the_page_gets(key_file):
    for body in (ANSWER, REFUSAL):
        reply = lambda request, body=body: httpx.Response(200, json=body)  # noqa: E731
        tool = inference_with(reply, key_file).predict(b"png")
        page = Predictor(inference_url="http://ts.test", key_file=key_file, transport=httpx.MockTransport(reply))
        expected = asyncio.run(page.predict(b"png"))
        assert tool == dataclasses.replace(expected, latency_ms=tool.latency_ms)


def test_predict_asks_the_version_with_the_inference_key_and_no_preview_unless_asked(key_file):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER)

    with inference_with(handler, key_file) as inference:
        inference.predict(b"png", version="2.0")
        inference.predict(b"png", preview=True)
    assert [request.url.path for request in seen] == ["/predictions/mnist/2.0", "/predictions/mnist"]
    assert all(r.headers["Authorization"] == "Bearer k" and r.headers["Content-Type"] == "image/png" for r in seen)
    assert "X-Preview" not in seen[0].headers and seen[1].headers["X-Preview"] == "1"


def test_rereads_the_key_file_after_an_auth_failure_and_retries_once(key_file):
    write_key(key_file, "old")
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] != "Bearer new":
            write_key(key_file, "new")  # TorchServe restarted meanwhile and wrote new keys
            return httpx.Response(400, json=INVALID_KEY)
        return httpx.Response(200, json=ANSWER)

    assert inference_with(handler, key_file).predict(b"png").digit == 3
    assert seen == ["Bearer old", "Bearer new"]
    write_key(key_file, "stale")
    with pytest.raises(ModelUnavailable, match="refused this app's key"):
        inference_with(lambda request: httpx.Response(400, json=INVALID_KEY), key_file).predict(b"png")


def test_errors_are_the_pages(key_file, tmp_path):
    blank = {"error": "the drawing is blank: draw a digit first", "status": 422}
    with pytest.raises(PredictionRejected, match="blank"):
        inference_with(lambda request: httpx.Response(422, json=blank), key_file).predict(b"png")
    with pytest.raises(ModelUnavailable, match="503"):
        inference_with(lambda request: httpx.Response(503, json={}), key_file).predict(b"png")
    with pytest.raises(ModelUnavailable, match="probably restarting"):
        inference_with(lambda request: httpx.Response(200, json=ANSWER), tmp_path / "missing.json").predict(b"png")


def test_without_token_authorization_no_key_is_sent(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ANSWER if request.url.path.startswith("/predictions") else {"status": "ok"})

    inference = inference_with(handler, None)
    inference.predict(b"png")
    inference.ping()
    assert seen and not any("Authorization" in request.headers for request in seen)


def test_ping_says_what_torchserve_answered(key_file):
    inference_with(lambda request: httpx.Response(200, json={"status": "Healthy"}), key_file).ping()
    with pytest.raises(ModelUnavailable, match="500: Unhealthy"):
        inference_with(lambda request: httpx.Response(500, json={"status": "Unhealthy"}), key_file).ping()


def test_ping_when_nothing_listens(key_file):
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ModelUnavailable, match="does not answer"):
        inference_with(unreachable, key_file).ping()


def described(version: str, *workers: tuple[str, int]) -> dict:
    listed = [{"id": str(9000 + i), "status": status, "pid": pid} for i, (status, pid) in enumerate(workers)]
    return {"modelName": "mnist", "modelVersion": version, "modelUrl": f"mnist-v{version}.mar", "minWorkers": 1,
            "maxWorkers": 1, "batchSize": 16, "maxBatchDelay": 2, "workers": listed}  # fmt: skip


# What TorchServe described while every worker of 2.0 died at start and restarted in a loop (pid -1, UNLOADING): /ping
# answered 200 "Healthy" all along.
DYING = [described("1.0", ("READY", 12)), described("2.0", ("UNLOADING", -1)), described("3.0")]


def torchserve_with(versions: list[dict], seen: list | None = None):
    """A management API serving one model `mnist` with these versions, the first the default."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answers = {"/models": {"models": [{"modelName": "mnist", "modelUrl": "mnist.mar"}]},
                   "/models/mnist": versions[:1], "/models/mnist/all": versions}  # fmt: skip
        if request.url.path not in answers:
            return httpx.Response(404, json={"code": 404, "message": "Model not found"})
        return httpx.Response(200, json=answers[request.url.path])

    return handler


def test_a_version_whose_workers_keep_dying_is_not_ready(key_file):
    management = management_with(torchserve_with(DYING), key_file)
    assert management.unready() == ["mnist 2.0", "mnist 3.0"]
    assert management.ready("mnist")  # the default, 1.0, answers
    versions = management.describe("mnist")
    assert [(v.version, v.is_default, v.ready, v.ready_workers) for v in versions] == [
        ("1.0", True, True, 1), ("2.0", False, False, 0), ("3.0", False, False, 0),
    ]  # fmt: skip
    assert management_with(torchserve_with(DYING[:1]), key_file).unready() == []
    assert not management_with(torchserve_with(DYING[1:]), key_file).ready("mnist")


def test_not_ready_while_torchserve_cannot_say(key_file, tmp_path):
    assert not management_with(torchserve_with(DYING), key_file).ready("other")  # not loaded: 404
    assert not management_with(torchserve_with(DYING), tmp_path / "missing.json").ready("mnist")  # no key file yet

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert not management_with(unreachable, key_file).ready("mnist")
    with pytest.raises(ManagementError, match="unreachable"):
        management_with(unreachable, key_file).unready()


def test_management_uses_the_management_key_and_renews_with_the_api_key(key_file):
    seen: list[httpx.Request] = []
    management = management_with(torchserve_with(DYING, seen), key_file)
    management.ready("mnist")
    assert seen[-1].headers["Authorization"] == "Bearer m"
    with pytest.raises(ManagementError, match="cannot renew the inference key"):
        management.renew_key("inference")  # the stand-in has no /token: 404
    assert seen[-1].url.path == "/token" and seen[-1].url.params["type"] == "inference"
    assert seen[-1].headers["Authorization"] == "Bearer a"


def test_a_refused_management_key_is_read_again_once_then_reported(key_file):
    calls = []

    def refusing(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json=INVALID_KEY)

    with pytest.raises(ManagementError, match="refused the management key"):
        management_with(refusing, key_file).unready()
    assert len(calls) == 2


def test_the_header_for_a_client_without_httpx(key_file):
    """tools/bench.py's aiohttp load generator."""
    assert authorization(key_file, "inference") == {"Authorization": "Bearer k"}


def test_read_number_is_the_same_record_the_page_gets_and_asks_for_a_number(key_file):
    seen = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=NUMBER)

    tool = inference_with(reply, key_file).read_number(b"png", version="5.0")
    page = Predictor(inference_url="http://ts.test", key_file=key_file, transport=httpx.MockTransport(reply))
    expected = asyncio.run(page.read_number(b"png", version="5.0"))
    assert tool == dataclasses.replace(expected, latency_ms=tool.latency_ms)
    assert seen[0].url.path == "/predictions/mnist/5.0" and seen[0].headers["X-Read"] == "number"
