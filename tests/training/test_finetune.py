"""Fine-tuning on feedback drawings: preparation through the handler's preprocessing, widening to "not a digit",
and a few real training steps on tiny data."""

import numpy as np
import pytest
import torch

from handler.model import DigitNet
from training import canvas, data, finetune, pendigits
from training.train import TrainConfig


def tiny_mnist(count: int = 40) -> dict[str, data.Split]:
    """Random "digits": enough to exercise the training loop without reading MNIST."""
    rng = np.random.default_rng(0)
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 6:22, 10:18] = rng.integers(0, 256, size=(count, 16, 8), dtype=np.uint8)
    split = data.Split(images=images, labels=(np.arange(count) % 10).astype(np.int64))
    return {"train": split, "test": split}


def feedback(count: int = 12) -> list[finetune.Example]:
    stroke = np.array([[100.0, 100.0], [100.0, 300.0], [200.0, 300.0]], dtype=np.float32)
    digit = pendigits.PenDigit(label=4, writer=1, strokes=(stroke,))
    rng = np.random.default_rng(1)
    pngs = [canvas.to_png(pendigits.render(digit, rng=rng, style=canvas.STYLES[i % 3])) for i in range(count)]
    return [finetune.Example(png=png, label=i % 10, group=f"b{i % 2}") for i, png in enumerate(pngs)]


def small_config(tmp_path, **overrides) -> finetune.FinetuneConfig:
    torch.manual_seed(0)
    base = tmp_path / "base.pt"
    torch.save(DigitNet().state_dict(), base)
    settings = dict(
        base_weights=str(base), steps=3, mnist_batch=4, feedback_batch=4, negative_batch=2, warmup_steps=1, processes=1
    )
    return finetune.FinetuneConfig(**{**settings, **overrides})


def test_prepare_all_uses_the_handler_preprocessing_and_leaves_out_blank_drawings():
    blank = canvas.to_png(canvas.styled(np.zeros((280, 280), dtype=np.uint8), "black_on_white"))
    drawings = [e.png for e in feedback(3)]
    images, kept = finetune.prepare_all([drawings[0], blank, drawings[1]], processes=1)
    assert kept.tolist() == [True, False, True]
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255  # preprocessing scales the darkest ink to 1


def test_widening_to_not_a_digit_keeps_the_base_digits_and_reports_ten_renormalised_probabilities(tmp_path):
    cfg = small_config(tmp_path)
    base = DigitNet().eval()
    base.load_state_dict(torch.load(cfg.base_weights, weights_only=True))
    wide = finetune.start_model(cfg, classes=11).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.inference_mode():
        logits = wide(x)
        assert logits.shape == (5, 11)
        torch.testing.assert_close(DigitNet.digit_logits(logits), base(x))  # same ten digits as the base
        probabilities = torch.softmax(DigitNet.digit_logits(logits), dim=1)
        torch.testing.assert_close(probabilities.sum(1), torch.ones(5))


def test_a_few_steps_on_tiny_data_change_the_weights_and_report_figures(tmp_path):
    cfg = small_config(tmp_path, augment=TrainConfig(max_rotation_deg=5))
    before = torch.load(cfg.base_weights, weights_only=True)
    examples = feedback(12)
    model, figures = finetune.finetune(examples[:8], validation=examples[8:], mnist=tiny_mnist(), cfg=cfg, log=print)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    assert figures["outputs"] == 10 and figures["negatives"] == 0
    assert figures["feedback"] == {"drawings": 8, "unreadable": 0, "groups": 2}
    assert figures["validation"]["count"] == 4 and set(figures["validation"]["per_group"]) == {"b0", "b1"}
    assert 0.0 <= figures["mnist_test"]["accuracy"] <= 1.0


def test_negatives_add_an_eleventh_output_trained_as_not_a_digit(tmp_path):
    cfg = small_config(tmp_path)
    scribble = pendigits.PenDigit(label=0, writer=1, strokes=(np.array([[0, 0], [50, 10], [0, 20], [50, 30.0]]),))
    rng = np.random.default_rng(2)
    negatives = [canvas.to_png(pendigits.render(scribble, rng=rng, style="black_on_white")) for _ in range(4)]
    model, figures = finetune.finetune(feedback(6), mnist=tiny_mnist(), cfg=cfg, negatives=negatives)
    assert figures["outputs"] == 11 and figures["negatives"] == 4
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 11)


def test_a_base_with_a_refusal_head_fine_tunes_its_classifier_only_and_keeps_p_not_a_digit(tmp_path):
    torch.manual_seed(0)
    base = DigitNet(refusal_head=8)
    with torch.no_grad():
        for parameter in base.refusal.parameters():  # a head that says something (fresh ones are near 0.5)
            parameter.normal_(0, 0.3)
    torch.save(base.state_dict(), tmp_path / "headed.pt")
    cfg = small_config(tmp_path, base_weights=str(tmp_path / "headed.pt"), steps=4)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model, figures = finetune.finetune(feedback(6), mnist=tiny_mnist(), cfg=cfg)
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("features.", "refusal."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # batch norm's statistics included
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("classifier."))
    x = torch.randn(6, 1, 28, 28)
    with torch.inference_mode():
        base.eval(), model.eval()
        p_base, p_model = torch.softmax(base(x), 1)[:, 10], torch.softmax(model(x), 1)[:, 10]
    torch.testing.assert_close(p_model, p_base)  # P(not a digit) is the head's alone: the threshold still holds
    assert figures["outputs"] == 10
    with pytest.raises(ValueError, match="digits only"):
        finetune.start_model(cfg, classes=11)


def test_evaluate_counts_the_confusions():
    model = DigitNet().eval()
    images = np.zeros((6, 28, 28), dtype=np.uint8)
    images[:, 10:18, 10:18] = 255
    with torch.inference_mode():
        guess = int(finetune.predict_digits(model, finetune.normalise(finetune.to_input(images[:1])))[0])
    labels = np.array([guess, guess, guess, (guess + 1) % 10, (guess + 1) % 10, (guess + 2) % 10])
    report = finetune.evaluate(model, images, labels)
    assert report["errors"] == 3 and report["accuracy"] == 0.5
    assert report["top_confusions"][0] == f"{(guess + 1) % 10}->{guess}: 2"


def test_held_out_groups_are_whole_and_the_split_is_reproducible():
    examples = [finetune.Example(png=b"", label=i % 10, group=f"browser-{i % 10}") for i in range(100)]
    training, validation = finetune.hold_out_groups(examples, share=0.2, seed=3)
    assert len({e.group for e in validation}) == 2 and len(training) + len(validation) == 100
    assert not {e.group for e in training} & {e.group for e in validation}
    assert finetune.hold_out_groups(examples, share=0.2, seed=3) == (training, validation)


def test_feedback_labels_must_be_digits(tmp_path):
    bad = [finetune.Example(png=b"", label=10, group="b")]
    with pytest.raises(ValueError, match="must be digits"):
        finetune.finetune(bad, mnist=tiny_mnist(), cfg=small_config(tmp_path))


def test_cached_drawings_are_made_once_per_set_of_arguments(tmp_path):
    calls = []

    def make(digits, *, seed, processes):
        calls.append(seed)
        return [d.label + seed for d in digits]

    digits = pendigits.parse('.SEGMENT DIGIT 0 ? "3"\n.COMMENT 3 4 1\n.PEN_DOWN\n 1 2\n.PEN_UP\n')
    assert finetune.cached(tmp_path, make, digits, seed=1, processes=2) == [4]
    assert finetune.cached(tmp_path, make, digits, seed=1, processes=1) == [4]  # the process count is not in the key
    assert finetune.cached(tmp_path, make, digits, seed=2, processes=2) == [5]
    assert calls == [1, 2]
