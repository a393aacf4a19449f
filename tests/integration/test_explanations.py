"""/explanations through the real TorchServe: the inference token, both versions, the request forms, bad targets,
and what one explanation costs over HTTP (printed)."""

import base64
import statistics
import time

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_explanations_need_the_inference_token(torchserve, canvas_pngs):
    url = f"{torchserve.endpoints.inference}/explanations/mnist"
    for headers in ({}, {"Authorization": "Bearer wrong-key"}):
        response = httpx.post(url, content=canvas_pngs[0][0], headers=headers, timeout=30)
        assert response.status_code == 400 and "InvalidKeyException" in response.text


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_each_version_explains_its_prediction_and_another_digit(api, canvas_pngs, version):
    png, label, _ = canvas_pngs[5]
    response = api.post(f"/explanations/mnist/{version}", content=png, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_version"] == version
    assert answer["digit"] == answer["target"] == label
    assert np.array(answer["attributions"]).shape == (28, 28)
    assert set(answer["field_box"]) == {"left", "top", "right", "bottom"}
    other = (label + 1) % 10
    encoded = base64.b64encode(png).decode()
    by_json = api.post(f"/explanations/mnist/{version}", json={"image": encoded, "target": other}).json()
    by_header = api.post(f"/explanations/mnist/{version}", files={"data": ("d.png", png, "image/png")},
                         headers={"X-Target": str(other)}).json()  # fmt: skip
    assert by_json["target"] == by_header["target"] == other
    assert by_json["attributions"] == by_header["attributions"] != answer["attributions"]


def test_the_default_version_explains_and_bad_targets_are_400(api, canvas_pngs):
    png = canvas_pngs[8][0]
    assert api.post("/explanations/mnist", content=png).json()["model_version"] == "1.0"
    encoded = base64.b64encode(png).decode()
    for response in (
        api.post("/explanations/mnist", json={"image": encoded, "target": 10}),
        api.post("/explanations/mnist", content=png, headers={"X-Target": "seven"}),
    ):
        assert response.status_code == 400, response.text
        assert "target must be a digit 0-9" in response.json()["error"]
    assert api.post("/explanations/mnist", content=b"not an image").status_code == 400


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_cost_of_one_explanation_through_torchserve(api, canvas_pngs, version):
    """Sequential requests, one at a time: the latency a user of the "Why?" view waits (printed, not asserted
    beyond the response timeout's order of magnitude)."""
    pngs = [png for png, _, _ in canvas_pngs[:20]]
    timings = {}
    for kind in ("predictions", "explanations"):
        api.post(f"/{kind}/mnist/{version}", content=pngs[0])  # warm-up
        times = []
        for png in pngs:
            start = time.perf_counter()
            assert api.post(f"/{kind}/mnist/{version}", content=png).status_code == 200
            times.append((time.perf_counter() - start) * 1000)
        timings[kind] = (statistics.median(times), max(times))
    print(f"\n{version} via TorchServe, ms (median, max) over 20: {timings}")
    assert timings["explanations"][0] < 5000
