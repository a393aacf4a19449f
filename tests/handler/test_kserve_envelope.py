"""KServe's v1 protocol through TorchServe's own envelope and our handler, in-process (no server).

With `service_envelope=kserve` TorchServe's worker wraps the handler's `handle` in KServeEnvelope: the envelope takes
the JSON body of the first request, hands the handler its "instances" as rows, and wraps the handler's answers in
{"predictions": [...]}. Same setup as test_mnist_handler: a real ts Context, the model directory of a real .mar,
real canvas PNGs.
"""

import base64
import json

import pytest
from ts.context import RequestProcessor
from ts.torch_handler.request_envelope.kserve import KServeEnvelope

from tests.handler.test_mnist_handler import load_handler


@pytest.fixture(scope="module")
def handler(model_store, tmp_path_factory):
    return load_handler(model_store / "mnist.mar", tmp_path_factory.mktemp("model_dir"), batch_size=1)


def kserve_predict(handler_and_context, body) -> tuple[list, int]:
    """One POST /v1/models/mnist:predict as the worker runs it: one request whose body is the KServe JSON."""
    instance, context = handler_and_context
    context.request_processor = [RequestProcessor({"content-type": "application/json"})]
    context.request_ids = {0: "req-0"}
    answers = KServeEnvelope(instance.handle).handle([{"body": body}], context)
    return answers, context.request_processor[0].get_response_status_code()


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode()


@pytest.mark.parametrize(
    "make_instance",
    [
        lambda png: {"data": b64(png)},
        lambda png: {"image": b64(png)},
        lambda png: b64(png),
        lambda png: "data:image/png;base64," + b64(png),
    ],
    ids=["data-field", "image-field", "bare-base64", "data-url"],
)
def test_one_instance_gets_one_prediction(handler, canvas_pngs, make_instance):
    png, label, _ = canvas_pngs[3]
    answers, status = kserve_predict(handler, {"instances": [make_instance(png)]})
    assert status == 200
    assert len(answers) == 1 and list(answers[0]) == ["predictions"]
    (prediction,) = answers[0]["predictions"]
    assert prediction["digit"] == label
    assert len(prediction["probabilities"]) == 10
    assert prediction["model_name"] == "mnist"


def test_undecoded_json_body_and_preview(handler, canvas_pngs):
    """The envelope decodes a body TorchServe left as bytes; "preview" inside the instance is honoured."""
    png, label, _ = canvas_pngs[5]
    body = json.dumps({"instances": [{"image": b64(png), "preview": True}]}).encode()
    answers, status = kserve_predict(handler, bytearray(body))
    (prediction,) = answers[0]["predictions"]
    assert status == 200 and prediction["digit"] == label
    assert base64.b64decode(prediction["preview"]).startswith(b"\x89PNG")


def test_a_bad_instance_gets_its_error_inside_predictions(handler):
    answers, status = kserve_predict(handler, {"instances": [{"data": "@@not base64@@"}]})
    assert status == 400
    (prediction,) = answers[0]["predictions"]
    assert prediction["status"] == 400 and "base64" in prediction["error"]


def test_several_instances_in_one_request_each_get_a_prediction(handler, canvas_pngs):
    """One KServe request, one request context, three instances (one bad): three predictions in order."""
    (png_a, label_a, _), (png_b, label_b, _) = canvas_pngs[:2]
    instances = [{"data": b64(png_a)}, {"data": "@@not base64@@"}, {"image": b64(png_b), "preview": True}]
    answers, status = kserve_predict(handler, {"instances": instances})
    first, bad, last = answers[0]["predictions"]
    assert status == 200
    assert first["digit"] == label_a and last["digit"] == label_b and "preview" in last
    assert bad["status"] == 400 and "base64" in bad["error"]
