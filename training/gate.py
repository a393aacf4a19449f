"""Judging a candidate version against the current default (`make retrain`'s gate): how a version reads prepared
images as the product would (Reading, read, Figures, Measured), the gate's rules (gate, golden_gate), the threshold on
P(not a digit) and its AUROC, and the gate as metrics.json keeps it (gate_report). Everything here works on prepared
28x28 images and the readings of them; making those sets from drawings is training/retrain.py's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import torch

from app.report import Gate
from handler.model import DigitNet
from handler.refusal import NOT_A_DIGIT_INDEX, several_digits, too_little_ink
from training import golden
from training.train import normalise, to_input


@dataclass(frozen=True)
class GateConfig:
    """The gate: what a candidate version must measure to replace the default, its refusals included (a version that
    refuses nothing meets the refusal rules trivially). A refused digit counts as wrong everywhere except in MNIST's
    accuracy, which is over the digits answered, its refusals limited on their own."""

    mnist_min: float = 0.996  # MNIST test as served, over the digits answered
    mnist_vs_default: float = 0.0005  # ... below the default's by at most this (0.05 points)
    mnist_refused: float = 0.005  # MNIST test digits refused, at most
    heldout_refused: float = 0.01  # the held-out browsers' real digits refused, at most
    heldout_margin: float = 0.01  # held-out browsers: at least the default's + this when the version learned
    refusal_only: bool = False  # the only change is refusal (the default's digit network, a refusal added): then
    refusal_only_margin: float = 0.003  # ... the held-out browsers at most this below the default's
    nondigits_refused: float = 0.90  # each held-out kind of non-digit (made differently from the training ones)
    nondigits_drop: float = 0.02  # against a refusing default: no kind more than this below the default's share
    noise_z: float = 2.0  # canvas- and pen-style sets: not below the default's by more than z standard errors
    style_count: int = 500  # MNIST test digits drawn per export style in the canvas- and pen-style sets
    mnist_count: int | None = None  # MNIST test digits measured (None: all 10,000; tests measure fewer)
    # The golden set (training/golden.py: fixed drawings of training writers, never from users): the candidate must
    # not read it, nor any digit of it, worse than the default beyond noise (z standard errors)
    golden_z: float = 2.0
    golden_stride: int = 1  # every n-th golden drawing (tests measure fewer)


# ---- reading sets as the product would ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What a version answers for each prepared image: the digit, and whether it refuses the drawing."""

    digits: np.ndarray  # (N,) int
    not_a_digit: np.ndarray  # (N,) P(not a digit); zeros for a 10-output network
    several: np.ndarray  # (N,) bool: a structural check refuses it (several digits side by side, a line lying flat)

    def refused(self, threshold: float | None) -> np.ndarray:
        high = self.not_a_digit >= threshold if threshold is not None else np.zeros(len(self.digits), bool)
        return self.several | high


def _structural(field: np.ndarray) -> bool:
    """The checks refusal.json switches on with "several_digits" and "too_little_ink" (a prepared 28x28 image does
    not say how much of the slate it took, so of "too little ink" only the line lying flat is seen here)."""
    return several_digits(field) or too_little_ink(field)


def read(model: DigitNet, images: np.ndarray, *, structural: bool) -> Reading:
    """(N, 28, 28) uint8 prepared images -> the version's reading (batched, no gradients)."""
    model.eval()
    x = normalise(to_input(images))
    digits, not_a_digit = [], []
    with torch.inference_mode():
        for start in range(0, len(x), 1000):
            logits = model(x[start : start + 1000]).float()
            digits.append(DigitNet.digit_logits(logits).argmax(1))
            if logits.shape[1] > NOT_A_DIGIT_INDEX:
                not_a_digit.append(torch.softmax(logits, dim=1)[:, NOT_A_DIGIT_INDEX])
            else:
                not_a_digit.append(torch.zeros(len(logits)))
    several = (
        np.array([_structural(image.astype(np.float32) / 255) for image in images], dtype=bool) if structural else None
    )
    return Reading(
        digits=torch.cat(digits).numpy() if digits else np.zeros(0, int),
        not_a_digit=torch.cat(not_a_digit).numpy() if not_a_digit else np.zeros(0),
        several=several if several is not None else np.zeros(len(images), bool),
    )


def accuracy(reading: Reading, labels: np.ndarray, threshold: float | None) -> float:
    """Right and not refused: a refused digit counts as wrong."""
    if not len(labels):
        return float("nan")
    return float(((reading.digits == labels) & ~reading.refused(threshold)).mean())


@dataclass(frozen=True)
class Figures:
    """How a version reads one set of real digits."""

    accuracy: float  # right and answered, over all (a refusal counts as wrong)
    answered: float  # right, over the digits answered
    refused: float  # the share refused
    count: int

    @classmethod
    def of(cls, reading: Reading, labels: np.ndarray, threshold: float | None) -> Figures:
        if not len(labels):
            return cls(float("nan"), float("nan"), 0.0, 0)
        refused = reading.refused(threshold)
        right = reading.digits == labels
        answered = float(right[~refused].mean()) if (~refused).any() else float("nan")
        return cls(float((right & ~refused).mean()), answered, float(refused.mean()), len(labels))


def standard_error(p: float, n: int) -> float:
    """Of an accuracy p measured on n drawings. p(1 - p) is floored at 1/n (one error's worth): a default with no error
    on a small set (a digit of the golden set) is not known to be perfect, and must not make a tolerance of zero."""
    n = max(1, n)
    return math.sqrt(max(p * (1 - p), 1 / n) / n)


# ---- the gate -------------------------------------------------------------------------------------------------------


def gate(
    candidate: dict[str, Figures],
    default: dict[str, Figures],
    cfg: GateConfig,
    *,
    nondigits: dict[str, float] | None = None,
    nondigits_default: dict[str, float] | None = None,
) -> list[str]:
    """Why the candidate fails (empty: it passes). candidate/default: set name -> Figures on the same drawings;
    nondigits: each held-out kind -> the share the candidate refuses (None: it refuses nothing); nondigits_default:
    the same for the default (None: it refuses nothing).

    Against a default that refuses, no kind may fall more than `nondigits_drop` below the default's share (a
    candidate that refuses nothing falls to 0): the kinds are a floor to keep, not a target to tune to. Against a
    default that refuses nothing, a first refusing candidate must refuse each kind at least `nondigits_refused`."""
    failures = _mnist_rules(candidate["mnist_test"], default["mnist_test"], cfg)
    failures += _heldout_rules(candidate["heldout_browsers"], default["heldout_browsers"], cfg)
    if nondigits_default:
        for kind, theirs in nondigits_default.items():
            ours = (nondigits or {}).get(kind, 0.0)
            if ours < theirs - cfg.nondigits_drop:
                failures.append(f"held-out {kind.replace('_', ' ')}: {ours:.1%} refused, the default {theirs:.1%} "
                                f"(more than {cfg.nondigits_drop:.0%} lower)")  # fmt: skip
    else:
        for kind, refused in (nondigits or {}).items():
            if refused < cfg.nondigits_refused:
                failures.append(
                    f"held-out {kind.replace('_', ' ')}: {refused:.1%} refused < {cfg.nondigits_refused:.0%}"
                )
    for name in ("canvas_style", "pen_style"):
        if name not in candidate:
            continue
        ours, theirs = candidate[name].accuracy, default[name].accuracy
        tolerance = cfg.noise_z * standard_error(theirs, default[name].count)
        if ours < theirs - tolerance:
            failures.append(
                f"{name.replace('_', '-')} set {ours:.2%} < the default's {theirs:.2%} - {tolerance:.2%} (noise)"
            )
    return failures


def _mnist_rules(ours: Figures, theirs: Figures, cfg: GateConfig) -> list[str]:
    failures = []
    if ours.answered < cfg.mnist_min:
        failures.append(f"MNIST test {ours.answered:.2%} of the digits answered < {cfg.mnist_min:.2%}")
    if ours.answered < theirs.answered - cfg.mnist_vs_default:
        failures.append(
            f"MNIST test {ours.answered:.2%} of the digits answered < the default's {theirs.answered:.2%} - "
            f"{cfg.mnist_vs_default:.2%}"
        )
    if ours.refused > cfg.mnist_refused:
        failures.append(f"MNIST test {ours.refused:.2%} refused > {cfg.mnist_refused:.1%}")
    return failures


def _heldout_rules(ours: Figures, theirs: Figures, cfg: GateConfig) -> list[str]:
    if not ours.count:
        return [
            "no reviewed drawings of people held out to judge on: approve corrections in the review queue (admin page)"
        ]
    failures = []
    if ours.refused > cfg.heldout_refused:
        failures.append(f"held-out browsers' digits {ours.refused:.2%} refused > {cfg.heldout_refused:.0%}")
    margin = -cfg.refusal_only_margin if cfg.refusal_only else cfg.heldout_margin
    if ours.accuracy < theirs.accuracy + margin:
        failures.append(f"held-out browsers {ours.accuracy:.2%} < the default's {theirs.accuracy:.2%} {margin:+.1%}")
    return failures


def golden_gate(
    candidate: dict[str, float], default: dict[str, float], counts: dict[str, int], cfg: GateConfig
) -> list[str]:
    """Why the candidate loses to the default on the golden set (empty: it does not). Each dict: "all" and each digit
    ("0".."9") -> accuracy (refusals count as wrong) or count. Per digit, so that a poisoned rule for one digit (7s
    labelled 1) cannot hide in the average."""
    failures = []
    for key in ["all", *map(str, range(10))]:
        if key not in counts:
            continue
        tolerance = cfg.golden_z * standard_error(default[key], counts[key])
        if candidate[key] < default[key] - tolerance:
            what = "golden set" if key == "all" else f"golden set, digit {key}"
            failures.append(f"{what} {candidate[key]:.2%} < the default's {default[key]:.2%} - {tolerance:.2%} (noise)")
    return failures


def choose_threshold(*limits: tuple[np.ndarray, float]) -> float:
    """The lowest threshold on P(not a digit) that refuses at most the given share of each set of real digits
    ((P(not a digit) of each digit, share) per set): the most non-digits caught for that many digits refused."""
    # "higher": a real score at or above the quantile, so that a small set never has more than its share above it
    quantiles = [np.quantile(scores, 1 - share, method="higher") + 1e-6 for scores, share in limits if len(scores)]
    if not quantiles:
        return 0.5
    return float(max(0.05, *quantiles))


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a non-digit scores above a digit), ties half: the area under the ROC curve of P(not a digit)."""
    if not len(positives) or not len(negatives):
        return float("nan")
    scores = np.concatenate([positives, negatives])
    ranks = scores.argsort().argsort().astype(np.float64) + 1
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # average ranks for ties
    positive_ranks = ranks[: len(positives)].sum()
    return float((positive_ranks - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives)))


# ---- a version's figures on the gate's sets --------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A version's reading of the gate's sets and its figures on each."""

    readings: dict[str, Reading]
    figures: dict[str, Figures]
    threshold: float | None

    @classmethod
    def of(cls, model: DigitNet, sets: dict, *, refusal: dict | None) -> Measured:
        threshold = refusal.get("not_a_digit_threshold") if refusal else None
        structural = bool(refusal and refusal.get("several_digits"))
        readings = {name: read(model, images, structural=structural) for name, (images, _) in sets.items()}
        figures = {name: Figures.of(readings[name], labels, threshold) for name, (_, labels) in sets.items()}
        return cls(readings, figures, threshold)

    def per_digit(self, name: str, labels: np.ndarray) -> dict[str, float]:
        return per_digit(self.readings[name], labels, self.threshold)


def golden_figures(candidate: Measured, default: Measured, labels: np.ndarray) -> dict:
    """The golden set's accuracy overall and per digit, both versions, with the counts (golden_gate's input)."""
    return {
        "version": golden.VERSION,
        "candidate": {"all": candidate.figures["golden"].accuracy, **candidate.per_digit("golden", labels)},
        "default": {"all": default.figures["golden"].accuracy, **default.per_digit("golden", labels)},
        "counts": {"all": len(labels), **{str(d): int((labels == d).sum()) for d in range(10)}},
    }


def gate_report(
    candidate: Measured,
    default: Measured,
    default_version: str,
    *,
    failures: list[str],
    cfg: GateConfig,
    golden: dict,
    nondigits: dict[str, float] | None,
    nondigits_default: dict[str, float] | None = None,
) -> Gate:
    """The gate as metrics.json keeps it: each set's accuracy (a refusal counts as wrong), and beside it what the
    decided rules read (accuracy over the digits answered, the share refused, each non-digit kind refused by the
    candidate and, when it refuses, by the default)."""
    names = list(candidate.figures)
    return Gate(
        passed=not failures,
        failures=failures,
        candidate={n: candidate.figures[n].accuracy for n in names},
        default={n: default.figures[n].accuracy for n in names},
        default_version=default_version,
        counts={n: candidate.figures[n].count for n in names},
        config=asdict(cfg),
        golden=golden,
        answered={
            "candidate": {n: candidate.figures[n].answered for n in names},
            "default": {n: default.figures[n].answered for n in names},
        },
        refused={
            "candidate": {n: candidate.figures[n].refused for n in names},
            "default": {n: default.figures[n].refused for n in names},
        },
        nondigits=nondigits,
        nondigits_default=nondigits_default,
    )


def per_digit(reading: Reading, labels: np.ndarray, threshold: float | None) -> dict[str, float]:
    right = (reading.digits == labels) & ~reading.refused(threshold)
    return {str(d): float(right[labels == d].mean()) for d in range(10) if (labels == d).any()}


def confusions(predicted: np.ndarray, labels: np.ndarray) -> dict[str, int]:
    pairs = Counter(f"{t}->{p}" for t, p in zip(labels.tolist(), predicted.tolist(), strict=True) if t != p)
    return dict(pairs.most_common(10))
