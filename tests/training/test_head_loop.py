"""The refusal head learning from users' labels (training/head_loop.py), small and on the CPU: the labels about refusal
that passed the screen reach the head's training set (and only those), the head alone moves, and the threshold is
chosen again. Through a whole retraining: tests/training/test_retrain.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import torch
from PIL import Image

from db.predictions import Feedback
from handler.model import DigitNet
from training import canvas, data, finetune, head_loop, nondigits, retrain, screen
from training.gate import read
from training.refusal_head import ROOT, with_head
from training.screen import ScreenConfig
from training.train import normalise, to_input

BASE_REFUSAL = {"several_digits": True, "too_little_ink": True, "not_a_digit_threshold": 0.5}
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def labels_of(pngs: list[bytes], browser: str, *, review: str | None, answered_digit: bool = False) -> list[Feedback]:
    """Drawings labelled not a digit by one browser over three days: confirmed refusals, or (answered_digit) "This is
    not a digit" on answered digits."""
    made = []
    for index, png in enumerate(pngs):
        when = NOW - timedelta(days=3) * (1 - index / len(pngs))
        made.append(Feedback(png, None, browser, when, 3, 0.9, "5.0", "10.0.0.0/24", review,
                             labelled_not_a_digit=True, answered_not_a_digit=not answered_digit))  # fmt: skip
    return made


def test_the_head_learns_the_screened_labels_and_nothing_but_the_head_moves(mnist, inputs_prepared_once):
    letters = [d.png for d in nondigits.generate("letters", count=9, seed=5, part="heldout")]
    digits = [canvas.to_png(Image.fromarray(image, mode="L")) for image in mnist["test"].images[:12]]
    feedback = labels_of(letters[:8], "labeller", review="approved") + labels_of(
        letters[8:], "someone", review=None, answered_digit=True
    )  # the last one disagrees with the answer and nobody reviewed it
    feedback += [Feedback(png, int(label), "writer", NOW, int(label), 0.9, "5.0", "10.0.1.0/24", "approved")
                 for png, label in zip(digits, mnist["test"].labels[:12], strict=True)]  # fmt: skip
    selection = screen.select(feedback, ScreenConfig(holdout_share=0.0))

    model = with_head(finetune.load_model(ROOT / "model_store" / "v4.0"), hidden=8, seed=0).eval()  # real features
    base = {name: value.clone() for name, value in model.state_dict().items()}
    labelled = finetune.prepare_all(letters[:8], processes=1)[0]
    probe = normalise(to_input(np.concatenate([labelled, mnist["test"].images[:20]])))
    with torch.inference_mode():
        features, logits = model.features(probe), DigitNet.digit_logits(model(probe))
    before = read(model, labelled, structural=False).not_a_digit

    cfg = head_loop.HeadLearning(steps=20, lr=2e-3, batch=16, nondigits=4, mnist=100, threads=1, processes=1)
    refusal, figures = head_loop.learn(
        model, selection, base_refusal=BASE_REFUSAL, cfg=cfg, log=lambda *_: None,
        mnist_train=data.Split(mnist["train"].images[:300], mnist["train"].labels[:300]),
        mnist_kept_out=data.Split(mnist["train"].images[300:360], mnist["train"].labels[300:360]),
        heldout_digits=finetune.mnist_as_served(data.Split(mnist["test"].images[20:80], mnist["test"].labels[20:80])),
        synthetic=retrain.non_digits(cfg.nondigits, part="train", seed=0, mnist=mnist),
    )  # fmt: skip

    assert figures["nondigits"]["labelled_not_a_digit"] == 8  # the approved ones; the suggestion waits
    assert figures["digits"] == {"mnist": 100, "feedback": 12}  # no overturned refusal passed
    after = read(model, labelled, structural=False).not_a_digit
    assert after.mean() > before.mean() + 0.1, (before, after)
    with torch.inference_mode():  # the features and the digits' logits exactly as before: only the head learned
        assert torch.equal(model.features(probe), features)
        assert torch.equal(DigitNet.digit_logits(model(probe)), logits)
    moved = {name for name, value in model.state_dict().items() if not torch.equal(value, base[name])}
    assert moved and all(name.startswith("refusal.") for name in moved)
    assert set(refusal) == set(BASE_REFUSAL) and 0.05 <= refusal["not_a_digit_threshold"] <= 1.0 + 1e-5
    assert refusal["not_a_digit_threshold"] == figures["threshold"] != figures["base_threshold"]


def test_the_head_stays_as_it_is_without_steps_or_labels_about_refusal(tmp_path):
    """why_not: a head learns only when the base has one, head_steps > 0 and a label about refusal passed."""
    plain, headed = tmp_path / "plain.pt", tmp_path / "headed.pt"
    torch.save(DigitNet().state_dict(), plain)
    torch.save(DigitNet(refusal_head=8).state_dict(), headed)
    approved = screen.select(labels_of([b"png"], "a", review="approved"), ScreenConfig(holdout_share=0.0))
    nothing = screen.select([], ScreenConfig(holdout_share=0.0))
    assert head_loop.why_not(approved, steps=300, base_weights=str(headed)) == ""
    assert head_loop.why_not(approved, steps=0, base_weights=str(headed)) == "head_steps is 0"
    assert head_loop.why_not(nothing, steps=300, base_weights=str(headed)) == "no label about refusal passed the screen"
    assert head_loop.why_not(approved, steps=300, base_weights=str(plain)) == "the base has no refusal head"
