"""The refusal head's share of the learning loop: what users said about refusal teaches the "not a digit" head of a
version that has one (`make retrain` from 5.0 on, training/retrain.py).

The screen (training/screen.py) passes two kinds of labels about refusal under the same review, history, poisoning
screen and caps as digit corrections: drawings labelled not a digit (`head_negatives`: confirmed refusals of
established browsers, "This is not a digit" on an answered digit once approved) and refusals overturned to a digit
(`head_digits`: they disagree with the answer, so only approved ones). After the digit fine-tune (which keeps the
features and the head frozen: finetune.with_frozen_head), the head alone trains on for `steps` steps from the base's
head (refusal_head.train_head: the features frozen, so the digits' logits do not move and P(not a digit) moves only
through the head):
- digits: a sample of MNIST training digits as served, the screened digit labels, and the overturned refusals, these
  weighted up (`label_weight` shares against MNIST's one);
- not digits: training/nondigits.py's training kinds and the training browsers' drawings side by side (a modest
  count of each, so that the head keeps refusing letters, shapes and scribbles), and the drawings labelled not a
  digit, weighted up (`label_weight` shares against each kind's one: a dozen labels weigh as much in each step as
  hundreds of letters).
Then the threshold on P(not a digit) is chosen again (`threshold`): the lowest that refuses at most `digit_refusal`
of the held-out browsers' digits and no larger share of the MNIST digits kept out of the training than the base's
head refused at its own threshold (or `mnist_refusal`, when that is larger): the head learns to refuse more
drawings, not to trade MNIST digits for them.

Nothing here runs when no label about refusal passed the screen, or with `steps` 0: the candidate keeps the base's
head and refusal.json exactly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from db.predictions import Feedback
from handler.model import DigitNet
from training import data, finetune
from training.gate import choose_threshold, read
from training.refusal_head import HeadConfig, train_head
from training.screen import Selection, overturned_refusal
from training.train import to_input


@dataclass(frozen=True)
class HeadLearning:
    """The head's training and threshold (training/retrain.py makes one of its RetrainConfig: these defaults are
    RetrainConfig's)."""

    steps: int = 300  # of the head alone, after the digit fine-tune (0: the head stays the base's)
    lr: float = 3e-4  # the peak of refusal_head's one-cycle schedule (the head from scratch: 2e-3)
    batch: int = 64  # digits and as many non-digits per step
    nondigits: int = 300  # training non-digits per kind of training/nondigits.py (and drawings side by side)
    mnist: int = 3000  # MNIST training digits as served (of those the digit fine-tune saw)
    label_weight: float = 2.0  # the users' labelled drawings' shares of each step, against one per other source
    digit_refusal: float = 0.01  # of the held-out browsers' digits refused, at most
    mnist_refusal: float = 0.001  # of the MNIST digits kept out, at most (or the base head's share, when larger)
    seed: int = 0
    threads: int = 2
    processes: int = 2


def base_has_head(weights: str | None) -> bool:
    """Whether the base weights carry a refusal head (as finetune.start_model tells them apart)."""
    if weights is None:
        return False
    return finetune.HEAD_WIDTH_KEY in torch.load(weights, map_location="cpu", weights_only=True)


def why_not(selection: Selection, *, steps: int, base_weights: str | None) -> str:
    """Why the base's head stays exactly as it is ("": it learns)."""
    if not base_has_head(base_weights):
        return "the base has no refusal head"
    if steps <= 0:
        return "head_steps is 0"
    if not selection.teaches_the_head:
        return "no label about refusal passed the screen"
    return ""


def _prepared(rows: Sequence[Feedback], *, processes: int) -> np.ndarray:
    return finetune.prepare_all([r.canvas_png for r in rows], processes=processes)[0]


def training_sets(
    selection: Selection, *, mnist_train: data.Split, synthetic: dict[str, list[bytes]], cfg: HeadLearning
) -> tuple[dict[str, tuple[np.ndarray, float]], dict[str, tuple[np.ndarray, float]]]:
    """(digits, non-digits): source -> (prepared images, weight), empty sources left out."""
    rng = np.random.default_rng(cfg.seed)
    picks = np.sort(rng.choice(len(mnist_train.labels), size=min(cfg.mnist, len(mnist_train.labels)), replace=False))
    sample = data.Split(mnist_train.images[picks], mnist_train.labels[picks])
    digits = {
        "mnist": (finetune.mnist_as_served(sample, processes=cfg.processes), 1.0),
        "feedback": (_prepared([r for r in selection.train_rows if not overturned_refusal(r)], processes=cfg.processes),
                     1.0),
        "overturned_refusals": (_prepared(selection.head_digits, processes=cfg.processes), cfg.label_weight),
    }  # fmt: skip
    nondigits = {
        kind: (finetune.prepare_all(pngs, processes=cfg.processes)[0], 1.0) for kind, pngs in synthetic.items()
    }
    nondigits["labelled_not_a_digit"] = (_prepared(selection.head_negatives, processes=cfg.processes), cfg.label_weight)
    return (
        {name: source for name, source in digits.items() if len(source[0])},
        {name: source for name, source in nondigits.items() if len(source[0])},
    )


def tune(
    model: DigitNet,
    digits: dict[str, tuple[np.ndarray, float]],
    nondigits: dict[str, tuple[np.ndarray, float]],
    cfg: HeadLearning,
    *,
    log=print,
) -> list:
    """Train the head of `model` alone (every other parameter frozen, batch norm as served) on these sources; the
    loss curve. Digits' weights become shares of each step's digits, non-digits' weights shares of its non-digits."""
    if model.refusal is None:
        raise ValueError("only a network with a refusal head has a head to tune")
    torch.set_num_threads(cfg.threads)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("refusal."))
    total = sum(weight for _, weight in digits.values())
    head_cfg = HeadConfig(steps=cfg.steps, digit_batch=cfg.batch, negative_batch=cfg.batch, lr=cfg.lr, seed=cfg.seed)
    curve = train_head(
        model,
        [(to_input(images), weight / total) for images, weight in digits.values()],
        [(to_input(images), weight) for images, weight in nondigits.values()],
        head_cfg,
        log=log,
    )
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return curve


def threshold(
    model: DigitNet,
    *,
    heldout_digits: np.ndarray,
    mnist_kept_out: np.ndarray,
    mnist_share: float,
    cfg: HeadLearning,
    fallback: float,
) -> float:
    """The lowest threshold on P(not a digit) that refuses at most cfg.digit_refusal of the held-out browsers' digits
    and at most `mnist_share` of the MNIST digits kept out (prepared images); `fallback` with neither set."""
    if not len(heldout_digits) and not len(mnist_kept_out):
        return fallback
    held = read(model, heldout_digits, structural=False).not_a_digit
    kept_out = read(model, mnist_kept_out, structural=False).not_a_digit
    return choose_threshold((held, cfg.digit_refusal), (kept_out, mnist_share))


def learn(
    model: DigitNet,
    selection: Selection,
    *,
    base_refusal: dict,
    mnist_train: data.Split,
    mnist_kept_out: data.Split | None,
    heldout_digits: np.ndarray,
    synthetic: dict[str, list[bytes]],
    cfg: HeadLearning,
    log=print,
) -> tuple[dict, dict]:
    """Tune `model`'s head on the screened labels about refusal and choose its threshold again: (refusal.json, the
    figures metrics.json keeps as "head")."""
    started = time.perf_counter()
    kept_out = (
        finetune.mnist_as_served(mnist_kept_out, processes=cfg.processes)
        if mnist_kept_out is not None
        else np.zeros((0, 28, 28), np.uint8)
    )
    base_threshold = float(base_refusal["not_a_digit_threshold"])
    share = cfg.mnist_refusal  # no lower than the base head's own share, read before it learns
    if len(kept_out):
        share = max(share, float(read(model, kept_out, structural=False).refused(base_threshold).mean()))
    digits, nondigits = training_sets(selection, mnist_train=mnist_train, synthetic=synthetic, cfg=cfg)
    log("the refusal head learns from " + ", ".join(f"{name} {len(images)}" for name, (images, _) in
                                                  (digits | nondigits).items()))  # fmt: skip
    curve = tune(model, digits, nondigits, cfg, log=log)
    chosen = threshold(model, heldout_digits=heldout_digits, mnist_kept_out=kept_out, mnist_share=share, cfg=cfg,
                       fallback=base_threshold)  # fmt: skip
    refusal = {
        **base_refusal,
        "several_digits": True,
        "too_little_ink": True,
        "not_a_digit_threshold": round(chosen, 6),
    }
    figures = {
        "tuned": True,
        "steps": cfg.steps,
        "digits": {name: len(images) for name, (images, _) in digits.items()},
        "nondigits": {name: len(images) for name, (images, _) in nondigits.items()},
        "base_threshold": base_threshold,
        "threshold": refusal["not_a_digit_threshold"],
        "mnist_kept_out_share": share,
        "curve": curve,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return refusal, figures
