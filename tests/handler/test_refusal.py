"""'Not a digit' answers: the policy a version's refusal.json sets, through the handler in-process from real .mar
files: the structural check with today's 10-output weights, and an 11-output DigitNet (index 10 = not a digit); and the
structural "several digits" check itself on prepared images: drawn shapes, MNIST digits as canvases, generated pairs."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from handler.preprocess import prepare
from handler.refusal import (
    MIN_GAP,
    NOT_A_DIGIT,
    SEVERAL_DIGITS,
    TOO_LITTLE_INK,
    RefusalPolicy,
    several_digits,
    side_by_side,
    too_little_ink,
)
from tests.conftest import SHIPPED_WEIGHTS, blank_png
from tests.handler.test_explain import EXPLAIN, handle
from tests.handler.test_mnist_handler import load_handler
from training import canvas, nondigits
from training.archive import build
from training.nondigits import to_png


def strokes(*lines) -> bytes:
    mask = Image.new("L", (280, 280), 0)
    for line in lines:
        ImageDraw.Draw(mask).line(line, fill=255, width=14, joint="curve")
    return to_png(np.asarray(mask), style="transparent")


SEVENTEEN = strokes([(60, 60), (60, 220)], [(120, 60), (200, 60), (140, 220)])


def version_dir(tmp_path, *, refusal: dict | None, extra_class_bias: float | None = None):
    """A version folder with 1.0's weights (optionally grown an 11th output with the given bias) and refusal.json."""
    folder = tmp_path / "version"
    folder.mkdir()
    if extra_class_bias is None:
        shutil.copy(SHIPPED_WEIGHTS, folder / "weights.pt")
    else:  # the first ten outputs stay 1.0's, so its digit probabilities are unchanged
        state = torch.load(SHIPPED_WEIGHTS, weights_only=True)
        weight, bias = state["classifier.4.weight"], state["classifier.4.bias"]
        state["classifier.4.weight"] = torch.cat([weight, torch.zeros(1, weight.shape[1], dtype=weight.dtype)])
        state["classifier.4.bias"] = torch.cat([bias, torch.tensor([extra_class_bias], dtype=bias.dtype)])
        torch.save(state, folder / "weights.pt")
        (folder / "architecture.json").write_text(json.dumps({"classes": 11}))
    if refusal is not None:
        (folder / "refusal.json").write_text(json.dumps(refusal))
    return folder


def handler_for(tmp_path, **kwargs):
    mar = build(version="9.9", weights=version_dir(tmp_path, **kwargs) / "weights.pt", out=tmp_path / "store")
    return load_handler(mar, tmp_path / "model_dir", batch_size=8)


@pytest.fixture(scope="module")
def plain(model_store, tmp_path_factory):
    return load_handler(model_store / "mnist.mar", tmp_path_factory.mktemp("model_dir"), batch_size=8)


def test_policy_file(tmp_path):
    assert not RefusalPolicy.load(tmp_path).enabled  # no refusal.json: refuse nothing
    (tmp_path / "refusal.json").write_text('{"several_digits": true, "not_a_digit_threshold": 0.7}')
    policy = RefusalPolicy.load(tmp_path)
    assert policy == RefusalPolicy(several_digits=True, not_a_digit_threshold=0.7) and policy.enabled
    (tmp_path / "refusal.json").write_text('{"too_little_ink": true}')
    assert RefusalPolicy.load(tmp_path) == RefusalPolicy(too_little_ink=True) and RefusalPolicy.load(tmp_path).enabled
    (tmp_path / "refusal.json").write_text('{"threshold": 0.7}')
    with pytest.raises(ValueError, match="unknown keys"):
        RefusalPolicy.load(tmp_path)


def test_policy_reasons():
    one = np.zeros((28, 28), dtype=np.float32)
    one[4:24, 13:15] = 1
    two = one.copy()
    two[4:24, 20:22] = 1
    policy = RefusalPolicy(several_digits=True, not_a_digit_threshold=0.5)
    assert policy.reason(field=two, not_a_digit=None) == SEVERAL_DIGITS
    assert policy.reason(field=one, not_a_digit=0.6) == NOT_A_DIGIT
    assert policy.reason(field=one, not_a_digit=0.4) is None
    assert policy.reason(field=one, not_a_digit=None) is None  # a 10-output model: only the structure can refuse
    assert RefusalPolicy().reason(field=two, not_a_digit=0.99) is None


def test_a_photo_of_paper_is_judged_by_its_own_threshold_when_the_version_has_one(tmp_path):
    one = np.zeros((28, 28), dtype=np.float32)
    one[4:24, 13:15] = 1
    policy = RefusalPolicy(not_a_digit_threshold=0.5, photo_threshold=0.99)
    assert policy.reason(field=one, not_a_digit=0.9) == NOT_A_DIGIT  # a drawing
    assert policy.reason(field=one, not_a_digit=0.9, photo=True) is None  # faint ink on paper: read
    assert policy.reason(field=one, not_a_digit=0.995, photo=True) == NOT_A_DIGIT
    assert RefusalPolicy(not_a_digit_threshold=0.5).reason(field=one, not_a_digit=0.9, photo=True) == NOT_A_DIGIT
    (tmp_path / "refusal.json").write_text('{"not_a_digit_threshold": 0.5, "photo_threshold": 0.99}')
    assert RefusalPolicy.load(tmp_path) == policy


def test_prepare_says_whether_a_picture_is_a_photo_of_paper():
    from tests.support.pictures import photo

    assert prepare(photo()).photo
    assert not prepare(SEVENTEEN).photo  # a drawing from the slate


def test_versions_without_refusal_json_answer_as_before(plain):
    (answer,), (status,) = handle(plain, [{"body": SEVENTEEN}], [{}])
    assert status == 200 and isinstance(answer["digit"], int)
    assert "not_a_digit" not in answer and "not_a_digit_probability" not in answer


def test_the_structural_check_refuses_several_digits_with_a_10_output_model(tmp_path, canvas_pngs):
    refusing = handler_for(tmp_path, refusal={"several_digits": True})
    png, label, _ = canvas_pngs[0]
    rows = [{"body": SEVENTEEN}, {"body": png}, {"body": blank_png()}, {"body": SEVENTEEN}]
    answers, statuses = handle(refusing, rows, [{}, {}, {}, EXPLAIN])
    assert statuses == [200, 200, 422, 200]  # a refusal is an answer; a blank slate stays a 4xx
    refused, single = answers[0], answers[1]
    assert refused["not_a_digit"] is True and refused["digit"] is None and refused["reason"] == SEVERAL_DIGITS
    assert refused["closest_digit"] == int(np.argmax(refused["probabilities"])) and len(refused["probabilities"]) == 10
    assert single["not_a_digit"] is False and single["digit"] == label and "reason" not in single
    assert answers[3]["not_a_digit"] is True and answers[3]["target"] == refused["closest_digit"]  # still explained


@pytest.mark.parametrize(("bias", "refused"), [(30.0, True), (-30.0, False)])
def test_an_11_output_model_refuses_by_its_not_a_digit_output(tmp_path, plain, canvas_pngs, bias, refused):
    eleven = handler_for(tmp_path, refusal={"not_a_digit_threshold": 0.5}, extra_class_bias=bias)
    pngs = [png for png, _, _ in canvas_pngs[:4]]
    answers, statuses = handle(eleven, [{"body": png} for png in pngs], [{}] * 4)
    reference, _ = handle(plain, [{"body": png} for png in pngs], [{}] * 4)
    assert statuses == [200] * 4
    for answer, before in zip(answers, reference, strict=True):
        # digit probabilities: the softmax over the first ten outputs, exactly 1.0's
        assert np.allclose(answer["probabilities"], before["probabilities"], atol=1e-6)
        assert answer["not_a_digit"] is refused
        assert answer["not_a_digit_probability"] == pytest.approx(1.0 if refused else 0.0, abs=1e-6)
        if refused:
            assert answer["digit"] is None and answer["reason"] == NOT_A_DIGIT
            assert answer["closest_digit"] == before["digit"]
        else:
            assert answer["digit"] == before["digit"]
    (explained,), _ = handle(eleven, [{"body": pngs[0]}], [EXPLAIN])
    assert np.array(explained["attributions"]).shape == (28, 28)


# ---- several digits side by side: the structural check on prepared images -------------------------------------

ONE = [(60, 60), (60, 220)]
SEVEN = [(120, 60), (200, 60), (140, 220)]


@pytest.mark.parametrize(
    ("lines", "several"),
    [
        ([ONE, SEVEN], True),  # "17", a clear gap
        ([ONE, [(150, 60), (150, 220)]], True),  # "11"
        ([SEVEN], False),
        ([[(100, 60), (100, 140), (180, 140), (180, 220)], [(110, 60), (190, 60)]], False),  # a 5 with its bar apart
        ([ONE, [(140, 200), (150, 205)]], False),  # a stray dot beside a 1
        ([ONE, [(75, 60), (140, 60), (90, 220)]], False),  # touching digits: the model's part
    ],
    ids=["17", "11", "7", "5-bar-apart", "1-and-dot", "touching"],
)
def test_several_digits_side_by_side(lines, several):
    field = prepare(strokes(*lines)).ink
    assert several_digits(field) is several, side_by_side(field)


def dot(width: int) -> bytes:
    mask = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(mask).ellipse((130, 130, 130 + width, 130 + width), fill=255)
    return to_png(np.asarray(mask), style="transparent")


@pytest.mark.parametrize(
    ("png", "little"),
    [
        (dot(6), True),
        (dot(18), True),
        (dot(36), True),  # the slider's thickest pen, tapped once
        (strokes([(60, 140), (220, 140)]), True),  # a horizontal line
        (strokes([(60, 140), (140, 150), (220, 138)]), True),  # a wobbly one
        (strokes([(140, 40), (140, 240)]), False),  # a 1
        (strokes([(140, 120), (140, 165)]), False),  # a small 1 (the slate's smallest digits are 40 px)
        (strokes([(120, 150), (140, 120), (160, 150), (140, 170), (120, 150)]), False),  # a small 0
        (SEVENTEEN, False),
    ],
    ids=["dot-6", "dot-18", "dot-36", "line", "wobbly-line", "1", "small-1", "small-0", "17"],
)
def test_too_little_ink_is_a_dot_or_a_line(png, little):
    prepared = prepare(png)
    assert too_little_ink(prepared.ink, extent=prepared.extent) is little, prepared.extent


def test_too_little_ink_is_answered_as_such_and_digits_are_not(tmp_path, canvas_pngs):
    refusing = handler_for(tmp_path, refusal={"too_little_ink": True})
    png, label, _ = canvas_pngs[0]
    answers, statuses = handle(refusing, [{"body": dot(18)}, {"body": png}], [{}, {}])
    assert statuses == [200, 200]
    assert answers[0]["not_a_digit"] is True and answers[0]["reason"] == TOO_LITTLE_INK
    assert answers[1]["not_a_digit"] is False and answers[1]["digit"] == label


def test_no_mnist_test_digit_is_too_little_ink(mnist):
    """All 10,000 as 28x28 fields, and 300 drawn on the slate by both renderers (measured: none; handler/refusal.py)."""
    assert not any(too_little_ink(image.astype(np.float32) / 255) for image in mnist["test"].images)
    rng = np.random.default_rng(1)
    for render in (canvas.render, canvas.render_pen):
        for index in rng.choice(len(mnist["test"].images), 150, replace=False):
            prepared = prepare(canvas.to_png(render(mnist["test"].images[index], rng=rng, style="transparent")))
            assert not too_little_ink(prepared.ink, extent=prepared.extent), index


def test_a_blank_field_is_not_several_digits():
    assert not several_digits(np.zeros((28, 28), dtype=np.float32))


def test_mnist_digits_drawn_as_canvases_are_not_refused(mnist):
    """Measured on all 10,000 test digits x 2 renderers: 0.03% and 0.07% (handler/refusal.py); here 600."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(mnist["test"].images), 300, replace=False)
    refused = 0
    for render in (canvas.render, canvas.render_pen):
        for index in picks:
            png = canvas.to_png(render(mnist["test"].images[index], rng=rng, style="transparent"))
            refused += several_digits(prepare(png).ink)
    assert refused <= 1


def test_most_heldout_pairs_with_a_visible_gap_are_caught(mnist):
    pairs = list(nondigits.generate("pairs", count=200, seed=1, part="heldout", mnist=mnist))
    apart = [d for d in pairs if float(d.description.rsplit(" ", 1)[1]) >= 0.3]  # gap >= 0.3 of a 20 px digit
    caught = sum(several_digits(prepare(d.png).ink) for d in apart)
    assert caught >= 0.9 * len(apart), (caught, len(apart))
    assert MIN_GAP <= 0.3
