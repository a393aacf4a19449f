"""The refusal head (DigitNet(refusal_head=H)): the digit outputs stay the base network's, the handler reads
P(not a digit) = sigmoid(head), old weights load as before, and training it moves the head only."""

import json

import numpy as np
import pytest
import torch

from handler.model import DigitNet
from handler.preprocess import prepare
from handler.refusal import NOT_A_DIGIT
from tests.conftest import SHIPPED_WEIGHTS
from tests.handler.test_mnist_handler import handle, load_handler
from training import finetune, refusal_head
from training.archive import build
from training.gate import Reading
from training.refusal_head import HeadConfig
from training.train import normalise, to_input


@pytest.fixture(scope="module")
def base() -> DigitNet:
    model = DigitNet()
    model.load_state_dict(torch.load(SHIPPED_WEIGHTS, weights_only=True))
    return model.eval()


def inputs(canvas_pngs, count=6) -> torch.Tensor:
    images, _ = finetune.prepare_all([png for png, _, _ in canvas_pngs[:count]], processes=1)
    return normalise(to_input(images))


def test_the_head_adds_an_11th_output_read_as_sigmoid_of_the_head(base, canvas_pngs):
    model = refusal_head.with_head(base, hidden=8, seed=0).eval()
    x = inputs(canvas_pngs)
    with torch.inference_mode():
        before, after = base(x), model(x)
        r = model.refusal(model.refusal_input(*model.stages(x))).squeeze(1)
    assert after.shape == (len(x), 11)
    assert torch.equal(after[:, :10], before)  # the digit logits are the base's, bit for bit
    # the handler's reading (mnist_handler.inference): digits = softmax over the first 10, P(not a digit) = softmax
    # over all 11 at index 10
    assert torch.allclose(torch.softmax(after[:, :10], 1), torch.softmax(before, 1))
    assert torch.allclose(torch.softmax(after, 1)[:, 10], torch.sigmoid(r), atol=1e-6)


def test_weights_without_a_head_load_as_before_and_the_keyword_is_checked(base):
    state = torch.load(SHIPPED_WEIGHTS, weights_only=True)
    DigitNet().load_state_dict(state)  # strict: nothing new in a plain DigitNet
    assert not any(key.startswith("refusal.") for key in DigitNet().state_dict())
    with pytest.raises(ValueError, match="one 10-digit network"):
        DigitNet(refusal_head=8, members=3)
    with pytest.raises(ValueError, match="one 10-digit network"):
        DigitNet(refusal_head=8, classes=11)
    with pytest.raises(ValueError, match="a single 10-output DigitNet without a head"):
        refusal_head.with_head(DigitNet(classes=11), hidden=8, seed=0)


def test_training_moves_the_head_only(base, canvas_pngs):
    model = refusal_head.with_head(base, hidden=8, seed=0)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("refusal.")}
    head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("refusal.")}
    digits = to_input(finetune.prepare_all([png for png, _, _ in canvas_pngs[:20]], processes=1)[0])
    scribbles = torch.zeros_like(digits)
    scribbles[:, :, 4:24, 4:24] = torch.rand(len(digits), 1, 20, 20, generator=torch.Generator().manual_seed(0))
    cfg = HeadConfig(steps=30, digit_batch=16, negative_batch=16)
    refusal_head.train_head(model, [(digits, 1.0)], [(scribbles, 1.0)], cfg, log=lambda _: None)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in frozen.items())  # batch-norm statistics included
    assert any(not torch.equal(state[k], v) for k, v in head.items())
    with torch.inference_mode():
        p = torch.softmax(model.eval()(normalise(torch.cat([digits, scribbles]))), 1)[:, 10]
    assert p[len(digits) :].mean() > p[: len(digits)].mean()  # it learned which is which


@pytest.mark.parametrize(("bias", "refused"), [(30.0, True), (-30.0, False)])
def test_the_handler_serves_a_head_version_from_its_archive(tmp_path, base, canvas_pngs, bias, refused):
    model = refusal_head.with_head(base, hidden=8, seed=0)
    with torch.no_grad():
        model.refusal[-1].bias.fill_(bias)
    version = tmp_path / "v9.9"
    refusal_head.write(model, {"note": "test"}, threshold=0.5, hidden=8, base_folder=tmp_path, out=version)
    assert json.loads((version / "architecture.json").read_text()) == {"refusal_head": 8}
    served = load_handler(build(version="9.9", weights=version / "weights.pt", out=tmp_path / "store"),
                          tmp_path / "model_dir", batch_size=4)  # fmt: skip
    pngs = [png for png, _, _ in canvas_pngs[:4]]
    answers, statuses = handle(served, [{"body": png} for png in pngs])
    assert statuses == [200] * 4
    with torch.inference_mode():
        expected = torch.softmax(base(torch.stack([prepare(png).tensor() for png in pngs])), 1).numpy()
    for answer, probabilities in zip(answers, expected, strict=True):
        assert np.allclose(answer["probabilities"], probabilities, atol=1e-5)  # the base network's digits
        assert answer["not_a_digit_probability"] == pytest.approx(1.0 if refused else 0.0, abs=1e-6)
        assert answer["not_a_digit"] is refused
        assert (answer["reason"] == NOT_A_DIGIT) if refused else (answer["digit"] == int(np.argmax(probabilities)))


def test_the_threshold_counts_structural_refusals_against_each_share():
    scores = np.linspace(0.0, 0.99, 100)
    several = np.zeros(100, bool)
    plain = Reading(digits=np.zeros(100, int), not_a_digit=scores, several=several)
    assert 0.97 < refusal_head.combined_threshold((plain, 0.02)) <= 0.99  # two of 100 above it
    several[:2] = True  # the structural check already refuses two low scorers: nothing left for the head
    structural = Reading(digits=np.zeros(100, int), not_a_digit=scores, several=several)
    threshold = refusal_head.combined_threshold((structural, 0.02))
    assert structural.refused(threshold).mean() <= 0.02
    several[:5] = True
    assert refusal_head.combined_threshold((structural, 0.02)) == 1.0


def test_negative_counts_share_the_batch_by_weight():
    assert refusal_head.negative_counts([1.0, 1.0, 3.0], 100) == [20, 20, 60]
    assert refusal_head.negative_counts([1.0] * 9, 128) == [14] * 9
    assert refusal_head.negative_counts([1.0, 1000.0], 10) == [1, 10]  # every kind drawn at least once
