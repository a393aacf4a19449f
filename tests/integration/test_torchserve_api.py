"""The real TorchServe serving the real .mar on free ports: the JSON contract, the input forms, token authorization,
and accuracy through the live API. Bad input and batches with bad items: test_bad_input.py."""

import base64
import io
import math

import httpx
import pytest
from PIL import Image

from training import evaluate

pytestmark = pytest.mark.integration


def check_contract(answer: dict, *, label: int | None = None) -> None:
    assert set(answer) >= {"digit", "confidence", "probabilities", "model_name", "model_version"}
    assert len(answer["probabilities"]) == 10 and all(0 <= p <= 1 for p in answer["probabilities"])
    assert math.isclose(sum(answer["probabilities"]), 1.0, abs_tol=1e-5)
    assert answer["digit"] == answer["probabilities"].index(max(answer["probabilities"]))
    assert answer["confidence"] == max(answer["probabilities"])
    assert answer["model_name"] == "mnist" and answer["model_version"] == "1.0"
    if label is not None:
        assert answer["digit"] == label


def test_raw_png_body(api, canvas_pngs):
    png, label, _ = canvas_pngs[0]
    response = api.post("/predictions/mnist", content=png, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    check_contract(response.json(), label=label)


def test_multipart_field_data(api, canvas_pngs):
    png, label, _ = canvas_pngs[21]
    response = api.post("/predictions/mnist", files={"data": ("digit.png", png, "image/png")})
    assert response.status_code == 200, response.text
    check_contract(response.json(), label=label)


def test_json_base64_and_data_url_with_preview(api, canvas_pngs):
    png, label, _ = canvas_pngs[42]
    encoded = base64.b64encode(png).decode()
    for image in (encoded, f"data:image/png;base64,{encoded}"):
        response = api.post("/predictions/mnist", json={"image": image, "preview": True})
        assert response.status_code == 200, response.text
        answer = response.json()
        check_contract(answer, label=label)
        preview = Image.open(io.BytesIO(base64.b64decode(answer["preview"])))
        assert preview.size == (28, 28)


def test_preview_header_multipart_field_and_versioned_url(api, canvas_pngs):
    png, label, _ = canvas_pngs[3]
    response = api.post("/predictions/mnist/1.0", content=png, headers={"X-Preview": "1"})
    assert response.status_code == 200, response.text
    check_contract(response.json(), label=label)
    assert "preview" in response.json()
    response = api.post("/predictions/mnist", files={"data": ("d.png", png, "image/png")}, data={"preview": "1"})
    assert response.status_code == 200 and "preview" in response.json()
    assert "preview" not in api.post("/predictions/mnist", content=png).json()


def test_unknown_version_is_404(api, canvas_pngs):
    response = api.post("/predictions/mnist/9.9", content=canvas_pngs[0][0])
    assert response.status_code == 404


def test_requests_without_the_token_are_refused(torchserve, canvas_pngs):
    inference, management = torchserve.endpoints.inference, torchserve.endpoints.management
    for headers in ({}, {"Authorization": "Bearer wrong-key"}):
        response = httpx.post(f"{inference}/predictions/mnist", content=canvas_pngs[0][0], headers=headers)
        assert response.status_code == 400 and "InvalidKeyException" in response.text
        assert httpx.get(f"{management}/models", headers=headers).status_code == 400
    # the inference key does not open the management API
    inference_key = {"Authorization": f"Bearer {torchserve.keys()['inference']}"}
    assert httpx.get(f"{management}/models", headers=inference_key).status_code == 400


def test_metrics_are_exposed_for_prometheus(torchserve):
    response = httpx.get(f"{torchserve.endpoints.metrics}/metrics", timeout=10)
    assert response.status_code == 200 and "# TYPE" in response.text


@pytest.mark.slow
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_live_accuracy_on_mnist_test_and_canvas_drawings(torchserve, mnist, inputs_prepared_once, version):
    """Each shipped version through the live API: all 10,000 MNIST test images, 3 x 200 canvas-style and 3 x 200
    pen-style drawings (the same drawings for both: made once, inputs_prepared_once)."""
    report = evaluate.evaluate(torchserve, mnist, canvas_count=200, concurrency=8, version=version)
    print(report)
    assert report["mnist_test"] >= (0.996 if version == "2.0" else 0.995)
    assert report["canvas_all"] >= 0.97
    assert report["pen_all"] >= 0.97
