"""Retrain from users' corrections (`make retrain`): labelled drawings in PostgreSQL -> the next version, gated, and
registered live as a candidate (not the default).

    python -m training.retrain --data-dir MNIST_DIR [--version 3.0] [--negatives 1500] [--no-register]

1. **Feedback**: every labelled drawing (canvas PNG, true digit, browser) from PostgreSQL (DATABASE_URL, else the
   private server of `make run`).
2. **Who vouched for each label** (training/screen.py, docs/security.md "Learning from people"): a label that
   disagrees with the answer trains only once the operator approved it in the review queue (admin page); an
   unreviewed agreeing label trains only from a browser with days of history, outside the poisoning screen, within
   caps counted against everyone else; a rejected label never counts.
3. **Held out**: a share of the browsers with approved labels, whole: the only drawings of people the gate judges on.
4. **Train** (training/finetune.py): the current recipe fine-tunes a version's network (`--base`, default 1.0) on
   MNIST + the training browsers' drawings, prepared by the handler's own preprocessing; with `--negatives N`, N "not
   a digit" drawings per kind (training/nondigits.py: letters, shapes, scribbles, several digits, and the training
   browsers' own drawings side by side) train an 11th output, and the threshold on P(not a digit) is chosen on the
   held-out browsers' digits and on MNIST training digits kept out of the fine-tune (written to refusal.json with
   the "several digits" check). A base with a refusal head (5.0 on) keeps it frozen through the digit fine-tune;
   then, when labels about refusal passed the screen, the head alone learns from them for `--head-steps` steps and
   its threshold is chosen again (training/head_loop.py); else the head and its threshold stay the base's.
5. **Gate** (training/gate.py: `gate`, `golden_gate`), against the current default version on the same data: MNIST test
   as served >= 99.6% over the digits answered and at most 0.05 points below the default's, at most 0.5% of it refused;
   the held-out reviewed browsers' digits at most 1% refused and their accuracy (a refusal counts as wrong) >= the
   default's + 1 point (or, `--refusal-only`, at most 0.3 points below it); each held-out kind of non-digit >= 90%
   refused (a refusing version); the canvas- and pen-style sets not worse than the default's beyond noise (z standard
   errors); the golden set (training/golden.py), overall and digit by digit, not worse than the default's beyond noise.
6. Only if the gate passes (training/registration.py): model_store/v<version>/ (weights.pt, metrics.json with the
   gate's figures and what the version learned from, architecture.json, refusal.json), the .mar, and registration as
   a candidate. The operator promotes it (admin page or `make models ARGS="set-default <version>"`); rollback is the
   same.

This module is the run: its configuration, the sets it prepares from drawings (the gate's evaluation sets, the "not a
digit" drawings it trains and measures refusal on), `retrain()` (screen, train, measure, gate; nothing written) and
the command line that writes and registers what passed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.report import ModelReport
from db.embedded import PrivateServerError, database_url
from db.pool import open_pool
from db.predictions import Feedback, PredictionStore
from handler.model import ARCHITECTURE_FILE, DigitNet
from handler.refusal import REFUSAL_FILE
from records.errors import ManagementError, StoreUnavailable
from settings import Settings, load
from training import archive, canvas, data, finetune, golden, head_loop, nondigits
from training.gate import (
    GateConfig,
    Measured,
    Reading,
    auroc,
    choose_threshold,
    confusions,
    gate,
    gate_report,
    golden_figures,
    golden_gate,
    read,
)
from training.registration import current_default, next_version, register, write_version
from training.screen import ScreenConfig, Selection, select
from training.screen import examples as screen_examples

ROOT = Path(__file__).resolve().parent.parent


class GateFailed(RuntimeError):
    """The candidate did not pass the gate; nothing was written or registered. The message lists why."""


@dataclass(frozen=True)
class RetrainConfig:
    seed: int = 0
    screen: ScreenConfig = field(default_factory=ScreenConfig)  # which labels train and judge (training/screen.py)
    negatives: int = 0  # "not a digit" training drawings per kind (0: a 10-output network that refuses nothing)
    # The threshold on P(not a digit): the lowest that refuses at most `digit_refusal` of the validation browsers'
    # digits and at most `mnist_refusal` of `mnist_validation` MNIST training digits kept out of the training (as
    # served). MNIST digits need their own limit: thin, broken or specked ones look less like drawings than the
    # browsers' digits do, and each refused one counts as wrong in the gate's MNIST figure.
    digit_refusal: float = 0.01
    mnist_refusal: float = 0.001
    mnist_validation: int = 5000
    heldout_per_kind: int = 250  # held-out non-digits of each kind the gate reads when a version refuses
    finetune: finetune.FinetuneConfig = field(default_factory=finetune.FinetuneConfig)
    # A base with a refusal head: steps of its head alone on the screened labels about refusal (training/head_loop.py;
    # 0: the head and its threshold stay the base's), training non-digits per kind beside them, and the users'
    # labelled drawings' shares of each step.
    head_steps: int = head_loop.HeadLearning.steps
    head_nondigits: int = head_loop.HeadLearning.nondigits
    head_label_weight: float = head_loop.HeadLearning.label_weight


# ---- one retraining run ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    model: DigitNet
    report: ModelReport  # metrics.json, typed (app/report.py)
    refusal: dict | None  # refusal.json, for a refusing version
    failures: list[str]

    @property
    def metrics(self) -> dict:
        return self.report.to_json()


def _prepared(pngs: Sequence[bytes], labels: Sequence[int], *, processes: int) -> tuple[np.ndarray, np.ndarray]:
    images, kept = finetune.prepare_all(list(pngs), processes=processes)
    return images, np.asarray(labels, dtype=np.int64)[kept]


def evaluation_sets(
    mnist: dict[str, data.Split], heldout: Sequence[finetune.Example], *, gate_cfg: GateConfig, processes: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The gate's sets, prepared as the handler prepares requests: MNIST test as served (the 28x28 images sent as
    PNGs), canvas- and pen-style re-drawings of MNIST test, the held-out browsers' own drawings, and the golden set
    (training/golden.py)."""
    test = mnist["test"]
    if gate_cfg.mnist_count is not None:
        test = data.Split(test.images[: gate_cfg.mnist_count], test.labels[: gate_cfg.mnist_count])
    drawn = {
        "canvas_style": list(canvas.canvas_set(test.images, test.labels, count=gate_cfg.style_count, seed=11)),
        "pen_style": list(canvas.pen_set(test.images, test.labels, count=gate_cfg.style_count, seed=12)),
    }
    sets = {"mnist_test": (finetune.mnist_as_served(test, processes=processes), test.labels)}
    for name, rows in drawn.items():
        sets[name] = _prepared([png for png, _, _ in rows], [label for _, label, _ in rows], processes=processes)
    sets["heldout_browsers"] = _prepared([e.png for e in heldout], [e.label for e in heldout], processes=processes)
    drawings = golden.load()[:: gate_cfg.golden_stride]
    sets["golden"] = _prepared([png for png, _ in drawings], [label for _, label in drawings], processes=processes)
    return sets


def non_digits(kind_count: int, *, part: str, seed: int, mnist: dict[str, data.Split]) -> dict[str, list[bytes]]:
    """kind -> PNGs of drawings that are not one digit (training/nondigits.py)."""
    return {
        kind: [d.png for d in nondigits.generate(kind, count=kind_count, seed=seed, part=part, mnist=mnist)]
        for kind in nondigits.KINDS
    }


def heldout_nondigits(
    *, mnist: dict[str, data.Split], processes: int, heldout_pngs: Sequence[bytes] = (), per_kind: int = 250
) -> dict[str, np.ndarray]:
    """Kind -> prepared images of the held-out non-digits (made differently from the training ones) and of the
    held-out browsers' own drawings put side by side: made once, read by the candidate and the default alike."""
    heldout = non_digits(per_kind, part="heldout", seed=99, mnist=mnist)
    if heldout_pngs:
        side_by_side = nondigits.pairs_of_drawings(list(heldout_pngs), count=per_kind, seed=99)
        heldout["pairs_of_drawings"] = [d.png for d in side_by_side]
    return {kind: finetune.prepare_all(pngs, processes=processes)[0] for kind, pngs in heldout.items()}


def refusal_figures(
    model: DigitNet,
    *,
    threshold: float,
    validation_digits: Reading,
    heldout: dict[str, np.ndarray],
) -> dict:
    """How often a version refuses each of heldout_nondigits' kinds and the held-out browsers' real digits; and the
    AUROC of P(not a digit) against those real digits."""
    figures = {"threshold": threshold, "refused": {}, "auroc": {}}
    for kind, images in heldout.items():
        reading = read(model, images, structural=True)
        figures["refused"][f"heldout_{kind}"] = float(reading.refused(threshold).mean())
        figures["auroc"][kind] = auroc(reading.not_a_digit, validation_digits.not_a_digit)
    figures["refused"]["heldout_browsers_digits"] = float(validation_digits.refused(threshold).mean())
    return figures


def negative_drawings(train_rows: Sequence[Feedback], *, mnist: dict[str, data.Split], cfg: RetrainConfig) -> dict:
    """kind -> "not a digit" training drawings (none unless cfg.negatives), with the users' own drawings side by
    side (several digits in their own hands)."""
    if not cfg.negatives:
        return {}
    negatives = non_digits(cfg.negatives, part="train", seed=cfg.seed, mnist=mnist)
    if train_rows:
        own = nondigits.pairs_of_drawings([r.canvas_png for r in train_rows], count=cfg.negatives, seed=cfg.seed)
        negatives["pairs_of_drawings"] = [d.png for d in own]
    return negatives


def mnist_for_training(
    mnist: dict[str, data.Split], cfg: RetrainConfig, *, head: bool = False
) -> tuple[dict, data.Split | None]:
    """MNIST to fine-tune on, and the training digits kept out of it to limit refusals of MNIST (when refusing with
    negatives, or tuning a head: `head`)."""
    if not ((cfg.negatives or head) and cfg.mnist_validation):
        return mnist, None
    train = mnist["train"]
    cut = len(train.labels) - cfg.mnist_validation
    return {**mnist, "train": data.Split(train.images[:cut], train.labels[:cut])}, data.Split(
        train.images[cut:], train.labels[cut:]
    )


def refusal_threshold(
    model: DigitNet, heldout: Reading, mnist_check: data.Split | None, *, cfg: RetrainConfig, processes: int
) -> float:
    """The threshold on P(not a digit): the lowest that refuses at most its share of the held-out browsers' digits
    and of the MNIST training digits kept out."""
    limits = [(heldout.not_a_digit, cfg.digit_refusal)]
    if mnist_check is not None:
        served = finetune.mnist_as_served(mnist_check, processes=processes)
        limits.append((read(model, served, structural=False).not_a_digit, cfg.mnist_refusal))
    return choose_threshold(*limits)


def retrain(
    feedback: Sequence[Feedback],
    *,
    mnist: dict[str, data.Split],
    default: tuple[str, DigitNet, dict],
    cfg: RetrainConfig = RetrainConfig(),
    gate_cfg: GateConfig = GateConfig(),  # noqa: B008 (frozen, as RetrainConfig; ruff sees that in one file only)
    log=print,
) -> Result:
    """Screen, split, train, measure and gate; nothing is written here. default: (version, network, refusal.json)."""
    started = time.perf_counter()
    split = select(feedback, cfg.screen)
    _log_selection(split, log)
    frozen_head = head_loop.why_not(split, steps=cfg.head_steps, base_weights=cfg.finetune.base_weights)
    negatives = negative_drawings(split.train_rows, mnist=mnist, cfg=cfg)
    fit, mnist_check = mnist_for_training(mnist, cfg, head=not frozen_head)
    model, trained = finetune.finetune(
        screen_examples(split.train_rows), mnist=fit, cfg=cfg.finetune,
        negatives=[png for pngs in negatives.values() for png in pngs], log=log,
    )  # fmt: skip
    processes = cfg.finetune.processes
    sets = evaluation_sets(mnist, split.heldout, gate_cfg=gate_cfg, processes=processes)
    refusal, head = None, None
    if cfg.negatives:
        heldout_reading = read(model, sets["heldout_browsers"][0], structural=True)
        threshold = refusal_threshold(model, heldout_reading, mnist_check, cfg=cfg, processes=processes)
        refusal = {"several_digits": True, "too_little_ink": True, "not_a_digit_threshold": round(threshold, 6)}
    elif model.refusal is not None:  # a base with a head: its features and head were frozen (finetune.py), so
        refusal = _base_refusal(cfg.finetune.base_weights)  # P(not a digit) and its threshold are the base's
        if frozen_head or refusal is None or not _refuses(refusal):
            head = {"tuned": False, "why": frozen_head or "the base's refusal.json has no threshold"}
        else:  # ... until the head learns from the labels about refusal that passed the screen
            synthetic = negative_drawings(split.train_rows, mnist=mnist, cfg=replace(cfg, negatives=cfg.head_nondigits))
            refusal, head = head_loop.learn(
                model, split, base_refusal=refusal, mnist_train=fit["train"], mnist_kept_out=mnist_check,
                heldout_digits=sets["heldout_browsers"][0], synthetic=synthetic, cfg=head_learning(cfg), log=log,
            )  # fmt: skip
    default_version, default_model, default_refusal = default
    candidate = Measured.of(model, sets, refusal=refusal)
    before = Measured.of(default_model, sets, refusal=default_refusal or None)
    heldout: dict[str, np.ndarray] = {}
    if _refuses(refusal) or _refuses(default_refusal):
        heldout = heldout_nondigits(mnist=mnist, processes=processes, heldout_pngs=[e.png for e in split.heldout],
                                    per_kind=cfg.heldout_per_kind)  # fmt: skip
    refused, refused_kinds = _refused_kinds(model, refusal, candidate, heldout=heldout)
    _, default_kinds = _refused_kinds(default_model, default_refusal or None, before, heldout=heldout)
    golden_set = golden_figures(candidate, before, sets["golden"][1])
    failures = gate(candidate.figures, before.figures, gate_cfg, nondigits=refused_kinds,
                    nondigits_default=default_kinds)  # fmt: skip
    failures += golden_gate(golden_set["candidate"], golden_set["default"], golden_set["counts"], gate_cfg)
    report = ModelReport(
        test_accuracy=candidate.figures["mnist_test"].accuracy,  # the admin page's "MNIST test (offline)"
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        learned_from=split.report(feedback),
        gate=gate_report(
            candidate,
            before,
            default_version,
            failures=failures,
            cfg=gate_cfg,
            golden=golden_set,
            nondigits=refused_kinds,
            nondigits_default=default_kinds,
        ),
        per_digit_heldout=candidate.per_digit("heldout_browsers", sets["heldout_browsers"][1]),
        per_digit_heldout_default=before.per_digit("heldout_browsers", sets["heldout_browsers"][1]),
        confusions_heldout={
            "candidate": confusions(candidate.readings["heldout_browsers"].digits, sets["heldout_browsers"][1]),
            "default": confusions(before.readings["heldout_browsers"].digits, sets["heldout_browsers"][1]),
        },
        refusal=refused,
        extra={
            "base": base_provenance(cfg.finetune.base_weights),
            "training": {k: v for k, v in trained.items() if k not in ("curve",)},
            **({"head": head} if head is not None else {}),
            "retrain_seconds": round(time.perf_counter() - started, 1),
            "retrain_config": {k: v for k, v in asdict(cfg).items() if k != "finetune"},
        },
    )
    return Result(model=model, report=report, refusal=refusal, failures=failures)


def head_learning(cfg: RetrainConfig) -> head_loop.HeadLearning:
    """The head's training and threshold of the run's configuration."""
    return replace(
        head_loop.HeadLearning(), steps=cfg.head_steps, nondigits=cfg.head_nondigits,
        label_weight=cfg.head_label_weight, digit_refusal=cfg.digit_refusal, mnist_refusal=cfg.mnist_refusal,
        seed=cfg.seed, threads=cfg.finetune.threads, processes=cfg.finetune.processes,
    )  # fmt: skip


def _base_refusal(weights: str | None) -> dict | None:
    """The refusal.json beside a base's weights (None: there is none, and the candidate refuses nothing)."""
    path = Path(weights).parent / REFUSAL_FILE if weights else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None


def _refuses(refusal: dict | None) -> bool:
    """Whether a version's refusal.json refuses by P(not a digit) (a threshold comes with an 11th output)."""
    return refusal is not None and refusal.get("not_a_digit_threshold") is not None


def _refused_kinds(
    model: DigitNet, refusal: dict | None, measured: Measured, *, heldout: dict[str, np.ndarray]
) -> tuple[dict | None, dict[str, float] | None]:
    """(refusal figures, held-out kind -> share refused) of a version that refuses with a threshold; (None, None)
    for one that refuses nothing (the candidate, or the default, on the same drawings)."""
    if not _refuses(refusal):
        return None, None
    assert refusal is not None
    figures = refusal_figures(
        model, threshold=refusal["not_a_digit_threshold"], validation_digits=measured.readings["heldout_browsers"],
        heldout=heldout,
    )  # fmt: skip
    figures["refused"]["mnist_test"] = measured.figures["mnist_test"].refused
    kinds = {
        kind.removeprefix("heldout_"): share
        for kind, share in figures["refused"].items()
        if kind.startswith("heldout_") and kind != "heldout_browsers_digits"
    }
    return figures, kinds


def base_provenance(weights: str | None) -> dict | None:
    """Which weights the candidate grew from: their path and sha256, and the figures of the training that made them
    when a metrics.json lies beside them (a base training's, training/base_training.py: what it learned from, how long
    it took, its held-out figures), so that the version's report says how it was made from the start."""
    if weights is None:
        return None
    path = Path(weights)
    base: dict = {"weights": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)}
    base["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    report = path.parent / "metrics.json"
    if report.exists():
        figures = json.loads(report.read_text())
        base["metrics"] = {key: value for key, value in figures.items() if key != "curve"}
    return base


def _log_selection(selection: Selection, log) -> None:
    for browser, why in selection.excluded.items():
        log(f"left out browser {browser[:8]}…'s unreviewed labels: {why}")
    for network, why in selection.excluded_networks.items():
        log(f"left out network {network}'s unreviewed labels: {why}")
    if selection.pending:
        log(f"{selection.pending} corrections wait for review (admin page): not trained on until approved")
    if selection.fresh:
        log(f"left out {selection.fresh} unreviewed labels of browsers without days of history")
    if selection.teaches_the_head:
        log(f"for the refusal head: {len(selection.head_negatives)} drawings labelled not a digit, "
            f"{len(selection.head_digits)} overturned refusals")  # fmt: skip


async def read_feedback(settings: Settings) -> tuple[list[Feedback], str]:
    pool = await open_pool(database_url(settings), timeout=5)
    try:
        return await PredictionStore(pool).labelled_feedback(), await current_default(settings, pool)
    finally:
        await pool.close()


def run(args: argparse.Namespace, settings: Settings, *, cfg: RetrainConfig, gate_cfg: GateConfig) -> int:
    started = time.perf_counter()
    feedback, default_version = asyncio.run(read_feedback(settings))
    print(f"{len(feedback)} labelled drawings from {len({r.browser_id for r in feedback})} browsers; "
          f"the current default is {default_version}")  # fmt: skip
    folder = settings.model_store / f"v{default_version}"
    default_refusal = json.loads((folder / "refusal.json").read_text()) if (folder / "refusal.json").exists() else {}
    cfg = from_the_default(cfg, folder)
    mnist = data.load(args.data_dir)
    result = retrain(
        feedback, mnist=mnist, default=(default_version, finetune.load_model(folder), default_refusal), cfg=cfg,
        gate_cfg=gate_cfg,
    )  # fmt: skip
    print(json.dumps({"gate": result.metrics["gate"], "learned_from": result.metrics["learned_from"]}, indent=2))
    if result.failures:
        raise GateFailed("the candidate failed the gate, nothing registered:\n  " + "\n  ".join(result.failures))
    version = args.version or next_version(settings.model_store)
    write_version(settings.model_store / f"v{version}", result)
    built = archive.build(version=version, weights=settings.model_store / f"v{version}" / "weights.pt",
                          out=settings.model_store)  # fmt: skip
    print(f"wrote {settings.model_store / f'v{version}'} and {built.name} in {time.perf_counter() - started:.0f} s")
    if args.register:
        try:
            print(asyncio.run(register(settings, built.name)))
            print(f"{version} is loaded as a candidate; make it the default on the admin page or with "
                  f'`make models ARGS="set-default {version}"`')  # fmt: skip
        except ManagementError as exc:
            print(f'not registered ({exc}); with the product running: make models ARGS="register {built.name}"')
    return 0


def from_the_default(cfg: RetrainConfig, folder: Path) -> RetrainConfig:
    """cfg with the base weights resolved: the default version's (its folder) when none were named. A base with a
    refusal head (5.0 on) is fine-tuned on digits only (finetune.with_frozen_head): its head and threshold stay,
    so no negatives are drawn for it."""
    weights = Path(cfg.finetune.base_weights) if cfg.finetune.base_weights else folder / "weights.pt"
    if not weights.exists():
        raise ValueError(f"no weights for the base: {weights} is missing")
    head = weights.parent / ARCHITECTURE_FILE
    has_head = head.exists() and "refusal_head" in json.loads(head.read_text())
    if has_head and cfg.negatives:
        print(f"the base ({weights.parent.name}) refuses with a head of its own: fine-tuning its digits only, "
              "no negatives")  # fmt: skip
    return replace(
        cfg, negatives=0 if has_head else cfg.negatives,
        finetune=replace(cfg.finetune, base_weights=str(weights.resolve())),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the four MNIST IDX files")
    parser.add_argument("--version", default=None, help="the new version (default: one major above the newest)")
    parser.add_argument("--negatives", type=int, default=RetrainConfig.negatives, help="'not a digit' per kind")
    parser.add_argument("--steps", type=int, default=finetune.FinetuneConfig.steps)
    parser.add_argument("--lr", type=float, default=finetune.FinetuneConfig.lr)
    parser.add_argument("--negative-batch", type=int, default=finetune.FinetuneConfig.negative_batch)
    parser.add_argument(
        "--head-steps", type=int, default=RetrainConfig.head_steps,
        help="a base with a refusal head: steps of the head alone on the labels about refusal (0: the base's head)",
    )  # fmt: skip
    parser.add_argument("--head-nondigits", type=int, default=RetrainConfig.head_nondigits,
                        help="training non-digits per kind beside them")  # fmt: skip
    parser.add_argument("--head-label-weight", type=float, default=RetrainConfig.head_label_weight,
                        help="the labelled drawings' shares of each step, against one per other source")  # fmt: skip
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--base", default=None,
        help="the version whose weights are fine-tuned (default: the current default version; docs/model-card.md)",
    )  # fmt: skip
    start.add_argument(
        "--base-weights", type=Path, default=None,
        help="fine-tune these weights instead of a version's, e.g. a base training's (var/v4/base/weights.pt)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=finetune.FinetuneConfig.threads, help="torch threads")
    parser.add_argument("--holdout-share", type=float, default=ScreenConfig.holdout_share)
    parser.add_argument("--max-share", type=float, default=ScreenConfig.max_share)
    parser.add_argument("--mnist-min", type=float, default=GateConfig.mnist_min)
    parser.add_argument(
        "--heldout-margin", type=float, default=GateConfig.heldout_margin,
        help="held-out browsers: at least the default's + this (default 0.01)",
    )  # fmt: skip
    parser.add_argument(
        "--refusal-only", action="store_true",
        help="the candidate only adds refusal to the default's digits: held-out browsers at most 0.3 points below",
    )  # fmt: skip
    parser.add_argument("--register", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    try:
        settings = load()
        base = args.base_weights or (settings.model_store / f"v{args.base}" / "weights.pt" if args.base else None)
        if base is not None and not base.exists():
            whose = "the base weights" if args.base_weights else f"the base version {args.base}"
            raise ValueError(f"no weights for {whose}: {base} is missing")
        tuning = replace(
            finetune.FinetuneConfig(), steps=args.steps, lr=args.lr, negative_batch=args.negative_batch,
            base_weights=str(base.resolve()) if base is not None else None, threads=args.threads,
        )  # fmt: skip
        cfg = RetrainConfig(
            negatives=args.negatives, finetune=tuning,
            screen=ScreenConfig(holdout_share=args.holdout_share, max_share=args.max_share),
            head_steps=args.head_steps, head_nondigits=args.head_nondigits, head_label_weight=args.head_label_weight,
        )  # fmt: skip
        gate_cfg = GateConfig(
            mnist_min=args.mnist_min, heldout_margin=args.heldout_margin, refusal_only=args.refusal_only
        )
        return run(args, settings, cfg=cfg, gate_cfg=gate_cfg)
    except (GateFailed, StoreUnavailable, PrivateServerError, ManagementError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
