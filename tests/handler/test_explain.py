"""Explanations: the handler in-process from real .mar files (as /explanations reaches it), and Integrated Gradients
itself: on the ink, different for another digit, complete, and failing without trained weights (Adebayo et al.'s
model-randomisation sanity check)."""

import base64
import json

import numpy as np
import pytest
import torch
from ts.context import RequestProcessor

from handler.explain import integrated_gradients, scores_at
from handler.model import DigitNet
from handler.preprocess import prepare
from tests.conftest import SHIPPED_V2_WEIGHTS, SHIPPED_WEIGHTS, blank_png
from tests.handler.test_mnist_handler import load_handler

EXPLAIN = {"explain": "True"}  # what TorchServe's frontend adds to every /explanations request


@pytest.fixture(scope="module", params=["1.0", "2.0"])
def versioned(request, model_store, tmp_path_factory):
    name = "mnist.mar" if request.param == "1.0" else "mnist-v2.0.mar"
    return load_handler(model_store / name, tmp_path_factory.mktemp("model_dir"), batch_size=8)


def handle(handler_and_context, rows, headers):
    """Like test_mnist_handler.handle, with each request's own headers (a batch can mix kinds of request)."""
    instance, context = handler_and_context
    context.request_processor = [RequestProcessor(dict(h)) for h in headers]
    context.request_ids = {i: f"req-{i}" for i in range(len(rows))}
    answers = instance.handle(rows, context)
    return answers, [processor.get_response_status_code() for processor in context.request_processor]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (ties broken by order: the maps compared are continuous)."""
    ranks = [np.argsort(np.argsort(v.ravel())).astype(float) for v in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def shipped(version: str) -> DigitNet:
    weights = SHIPPED_WEIGHTS if version == "1.0" else SHIPPED_V2_WEIGHTS
    architecture = weights.parent / "architecture.json"
    model = DigitNet(**(json.loads(architecture.read_text()) if architecture.exists() else {}))
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.float().eval()


def test_explanation_answers_the_prediction_target_map_and_box_in_every_form(versioned, canvas_pngs):
    png, label, _ = canvas_pngs[4]
    rows = [{"body": bytearray(png)}, {"data": png}, {"body": {"image": base64.b64encode(png).decode()}}]
    answers, statuses = handle(versioned, rows, [EXPLAIN] * 3)
    assert statuses == [200] * 3
    for answer in answers:
        assert answer["digit"] == answer["target"] == label
        assert len(answer["probabilities"]) == 10 and answer["model_version"] == versioned[1].manifest["model"][
            "modelVersion"]  # fmt: skip
        attributions = np.array(answer["attributions"])
        assert attributions.shape == (28, 28) and np.isfinite(attributions).all()
        assert attributions.sum() > 0  # the drawing raised the predicted digit's score above the blank slate's
        assert set(answer["field_box"]) == {"left", "top", "right", "bottom"}
    assert answers[0]["attributions"] == answers[1]["attributions"] == answers[2]["attributions"]


def test_the_map_for_the_predicted_digit_sits_on_the_ink(versioned, canvas_pngs):
    pngs = [png for png, _, _ in canvas_pngs[::6]]
    answers, statuses = handle(versioned, [{"body": png} for png in pngs], [EXPLAIN] * len(pngs))
    assert set(statuses) == {200}
    for png, answer in zip(pngs, answers, strict=True):
        positive = np.clip(np.array(answer["attributions"]), 0, None)
        strokes = prepare(png).ink > 0.3  # the body of the strokes, not their anti-aliased rims
        assert positive[strokes].sum() >= 0.8 * positive.sum()  # measured: min 0.90 (1.0), 0.95 (2.0)


def test_another_target_from_json_form_field_or_header_gives_another_map(versioned, canvas_pngs):
    png, label, _ = canvas_pngs[10]
    other = (label + 3) % 10
    encoded = base64.b64encode(png).decode()
    rows = [{"body": png}, {"body": {"image": encoded, "target": other}}, {"data": png, "target": str(other).encode()},
            {"body": png}, {"body": {"image": encoded, "target": 0}}]  # fmt: skip
    headers = [EXPLAIN, EXPLAIN, EXPLAIN, {**EXPLAIN, "X-Target": str(other)}, {**EXPLAIN, "X-Target": "5"}]
    answers, statuses = handle(versioned, rows, headers)
    assert statuses == [200] * 5
    own, *others = answers[:4]
    assert own["target"] == label and all(answer["target"] == other for answer in others)
    assert all(answer["digit"] == label for answer in answers)
    assert others[0]["attributions"] == others[1]["attributions"] == others[2]["attributions"]
    ink = prepare(png).ink > 0
    rho = rank_correlation(np.array(own["attributions"])[ink], np.array(others[0]["attributions"])[ink])
    assert rho < 0.5, rho
    assert answers[4]["target"] == 0  # the JSON target wins over the header, and 0 is a target


def test_bad_targets_get_their_own_400_and_batch_mates_are_explained(versioned, canvas_pngs):
    png = canvas_pngs[2][0]
    bad = [10, -1, 3.5, "x", True, [3]]
    rows = [{"body": png}] + [{"body": {"image": base64.b64encode(png).decode(), "target": t}} for t in bad]
    rows += [{"body": png}, {"body": png}]
    headers = [EXPLAIN] * (len(bad) + 1) + [{**EXPLAIN, "X-Target": "12"}, EXPLAIN]
    answers, statuses = handle(versioned, rows, headers)
    assert statuses == [200] + [400] * (len(bad) + 1) + [200]
    for answer in answers[1:-1]:
        assert "target must be a digit 0-9" in answer["error"]
    assert answers[0]["attributions"] == answers[-1]["attributions"]


def test_a_batch_mixing_predictions_and_explanations_answers_each_as_asked(versioned, canvas_pngs):
    """TorchServe batches /predictions and /explanations requests together; BaseHandler looks at the first only."""
    png = canvas_pngs[7][0]
    for headers in ([{}, EXPLAIN, {}], [EXPLAIN, {}, EXPLAIN]):
        answers, statuses = handle(versioned, [{"body": png}, {"body": blank_png()}, {"body": png}], headers)
        assert statuses == [200, 422, 200]
        for answer, asked in zip(answers[::2], headers[::2], strict=True):
            assert ("attributions" in answer) == bool(asked)
    answers, _ = handle(versioned, [{"body": png}], [{"X-Target": "3"}])
    assert "attributions" not in answers[0] and "target" not in answers[0]  # a prediction ignores a target


@pytest.fixture(scope="module")
def inputs(canvas_pngs) -> torch.Tensor:
    return torch.stack([prepare(png).tensor() for png, _, _ in canvas_pngs[::3]])  # (20, 1, 28, 28)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_attributions_add_up_to_the_score_difference(version, inputs):
    """Completeness: the map's sum is score(drawing) - score(blank slate), up to the quadrature error."""
    model = shipped(version)
    with torch.inference_mode():
        targets = model(inputs).argmax(1)
    total = integrated_gradients(model, inputs, targets=targets).sum((1, 2, 3))
    error = ((total - scores_at(model, inputs, targets)).abs() / scores_at(model, inputs, targets).abs()).numpy()
    assert np.median(error) < 0.03 and error.max() < 0.25, error  # measured: 1.4% median, 6% (1.0) / 21% (2.0) max


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_model_randomisation_sanity_check(version, inputs):
    """Adebayo et al. (2018): a map that explains the model changes when the weights are re-initialised. Compared on
    the ink (off the ink, the blank-slate baseline makes every map 0, which would inflate any correlation)."""
    model = shipped(version)
    torch.manual_seed(0)
    randomised = DigitNet(members=len(model.members) if model.members is not None else 1).eval()
    with torch.inference_mode():
        targets = model(inputs).argmax(1)
    trained = integrated_gradients(model, inputs, targets=targets).numpy()
    random = integrated_gradients(randomised, inputs, targets=targets).numpy()
    ink = (inputs > inputs.min()).numpy()
    signed = [rank_correlation(t[m], r[m]) for t, r, m in zip(trained, random, ink, strict=True)]
    magnitude = [rank_correlation(np.abs(t[m]), np.abs(r[m])) for t, r, m in zip(trained, random, ink, strict=True)]
    print(f"{version}: rank correlation trained vs randomised, signed median {np.median(signed):.3f}, "
          f"absolute median {np.median(magnitude):.3f}")  # fmt: skip
    assert abs(np.median(signed)) < 0.2 and max(np.abs(signed)) < 0.5
    # |IG| keeps some of the image (x - baseline is a factor), as Adebayo et al. saw for gradient x input
    assert np.median(magnitude) < 0.7


def test_all_targets_in_one_pass_are_the_single_target_maps(versioned, canvas_pngs):
    """ "target": "all" answers every digit's map (index = digit), each the map that digit alone gets, and the predicted
    digit's as "attributions"."""
    png, label, _ = canvas_pngs[12]
    encoded = base64.b64encode(png).decode()
    rows = [{"body": {"image": encoded, "target": "all"}}, {"body": png}, {"data": png, "target": b"All"}]
    rows += [{"body": {"image": encoded, "target": d}} for d in (0, 9)]
    answers, statuses = handle(versioned, rows, [EXPLAIN, {**EXPLAIN, "X-Target": "all"}] + [EXPLAIN] * 3)
    assert statuses == [200] * 5
    every = np.array(answers[0]["attributions_by_target"])
    assert every.shape == (10, 28, 28)
    assert answers[0]["target"] == label and answers[0]["attributions"] == answers[0]["attributions_by_target"][label]
    assert answers[1]["attributions_by_target"] == answers[2]["attributions_by_target"] == answers[0][
        "attributions_by_target"]  # fmt: skip
    for answer in answers[3:]:
        np.testing.assert_allclose(every[answer["target"]], np.array(answer["attributions"]), rtol=1e-3, atol=1e-6)
    assert "attributions_by_target" not in answers[3]
