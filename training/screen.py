"""Which labelled drawings `make retrain` may learn from and judge on (docs/security.md "Learning from people").

An anonymous browser's label is a suggestion, not a fact: a cookie is free, an address nearly so, and a red team
taught a backdoor (a 7 with a disc read as 1) with 40 cookies and drawings chosen below every confidence rule. So the
rules are about who vouched for a label, not about how it looks:

1. **Reviewed labels** (the review queue on the admin page, db/review.py): approved ones train and are the only
   drawings of people the gate judges on; rejected ones never count. Nothing below drops an approved label.
2. **A label that disagrees with the answer and was not reviewed** (`agrees`: another digit, "This is not a digit" on
   an answered digit, or any digit on a refusal, its closest one too) is a suggestion: it waits in the queue and
   trains on nothing.
3. **A label that agrees with the answer and was not reviewed** (the digit answered, or "Right, not a digit" on a
   refusal) may train (it teaches the network to keep reading such drawings as it does), but only
   - from an *established* browser: one whose labelled drawings span at least `established_hours` (days of use, not
     seconds of requests);
   - outside browsers and networks whose labels contradict the network's confident answers far more often than
     honest users' do (the poisoning screen);
   - within caps counted against the *others*: the unreviewed labels of one browser, and of one network, are
     subsampled so that it holds at most `max_share` of the training drawings beside everyone else's. A share of a
     total that includes one's own rows grows with one's own volume; this one does not.
4. **The gate's drawings of people** are approved labels only, of browsers held out whole: no anonymous browser chose
   them.

The rules are the same for both kinds of label, counted together (one cap for a browser's labels of either kind).
What passes is sorted by what it teaches: the digit labels train the digits (`train_rows`, overturned refusals among
them); the refusal head learns from the drawings labelled not a digit (`head_negatives`) and from the overturned
refusals (`head_digits`: digits it refused, approved only since they disagree with the answer).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from db.predictions import Feedback
from training import finetune

APPROVED, REJECTED = "approved", "rejected"


@dataclass(frozen=True)
class ScreenConfig:
    holdout_share: float = 0.2  # of the browsers with approved labels, held out whole for the gate
    seed: int = 0
    # The poisoning screen, on unreviewed labels: among a browser's (or network's) answers given with at least
    # `confident` confidence, the share its labels contradict. Above `poison_rate` (with at least `poison_min` such
    # answers) its unreviewed labels are left out.
    confident: float = 0.95
    poison_rate: float = 0.3
    poison_min: int = 10
    # An unreviewed agreeing label trains only from a browser whose labelled drawings span this long: 40 cookies made
    # in a minute are not 40 people, and keeping 40 cookies alive for days costs days
    established_hours: float = 48.0
    max_share: float = 0.1  # of the training drawings, from one browser's or one network's unreviewed labels


@dataclass(frozen=True)
class Selection:
    """The labelled drawings sorted by what they may do."""

    train_rows: list[Feedback]  # the digit labels the fine-tune learns from
    heldout: list[finetune.Example]  # approved labels of browsers held out whole: the gate's drawings of people
    pending: int  # disagreeing labels nobody reviewed: suggestions, not trained on
    rejected: int  # labels the operator rejected
    fresh: int  # unreviewed agreeing labels of browsers without `established_hours` of history
    excluded: dict[str, str] = field(default_factory=dict)  # browser -> why its unreviewed labels were left out
    excluded_networks: dict[str, str] = field(default_factory=dict)  # network -> why
    capped: dict[str, int] = field(default_factory=dict)  # browser -> unreviewed labels left out by its cap
    capped_networks: dict[str, int] = field(default_factory=dict)  # network -> the same
    head_negatives: list[Feedback] = field(default_factory=list)  # labelled not a digit, passed: the head's non-digits
    head_digits: list[Feedback] = field(default_factory=list)  # refusals overturned to a digit, approved

    @property
    def teaches_the_head(self) -> bool:
        """Whether any label that passed is about refusal: a drawing labelled not a digit, or an overturned refusal."""
        return bool(self.head_negatives or self.head_digits)

    def report(self, feedback: Sequence[Feedback]) -> dict:
        """What the version learned from, as metrics.json keeps it ("learned_from")."""
        times = [r.created_at for r in feedback]
        return {
            "labelled_drawings": len(feedback),
            "browsers": len({r.browser_id for r in feedback}),
            "from": min(times).isoformat(timespec="seconds") if times else None,
            "to": max(times).isoformat(timespec="seconds") if times else None,
            "approved": sum(r.review == APPROVED for r in feedback),
            "not_a_digit_labels": sum(r.labelled_not_a_digit for r in feedback),
            "overturned_refusals": sum(overturned_refusal(r) for r in feedback),
            "pending_suggestions": self.pending,
            "rejected": self.rejected,
            "fresh_browsers_left_out": self.fresh,
            "excluded_browsers": {browser[:8]: why for browser, why in self.excluded.items()},
            "excluded_networks": dict(self.excluded_networks),
            "capped_browsers": {browser[:8]: lost for browser, lost in self.capped.items()},
            "capped_networks": dict(self.capped_networks),
            "training_drawings": len(self.train_rows),
            "training_approved": sum(r.review == APPROVED for r in self.train_rows),
            "training_browsers": len({r.browser_id for r in self.train_rows}),
            "heldout_drawings": len(self.heldout),
            "heldout_browsers": len({e.group for e in self.heldout}),
            "head_negatives": len(self.head_negatives),
            "head_digits": len(self.head_digits),
        }


def select(feedback: Sequence[Feedback], cfg: ScreenConfig) -> Selection:
    """The module's rules, in order: reviewed, suggestions, the screen, history, the held-out browsers, the caps."""
    approved = [r for r in feedback if r.review == APPROVED]
    unreviewed = [r for r in feedback if r.review is None]
    agreeing = [r for r in unreviewed if agrees(r)]
    excluded = _suspects(unreviewed, cfg, key=_browser)
    # a network is judged on its other browsers: one excluded browser must not take its neighbours' labels with it
    excluded_networks = _suspects([r for r in unreviewed if r.browser_id not in excluded], cfg, key=_network)
    agreeing = [r for r in agreeing if r.browser_id not in excluded and _network(r) not in excluded_networks]
    established = established_browsers(feedback, hours=cfg.established_hours)
    eligible = [r for r in agreeing if r.browser_id in established]
    heldout = (
        finetune.hold_out_groups(examples(approved), share=cfg.holdout_share, seed=cfg.seed)[1]
        if cfg.holdout_share > 0
        else []
    )
    held = {e.group for e in heldout}
    kept_approved = [r for r in approved if r.browser_id not in held]
    eligible = [r for r in eligible if r.browser_id not in held]
    eligible, capped = cap_against_others(kept_approved, eligible, max_share=cfg.max_share, seed=cfg.seed, key=_browser)
    eligible, capped_networks = cap_against_others(
        kept_approved, eligible, max_share=cfg.max_share, seed=cfg.seed, key=_network
    )
    passed = kept_approved + eligible
    return Selection(
        train_rows=[r for r in passed if r.true_digit is not None],
        heldout=heldout,
        pending=len(unreviewed) - sum(agrees(r) for r in unreviewed),
        rejected=sum(r.review == REJECTED for r in feedback),
        fresh=len(agreeing) - len([r for r in agreeing if r.browser_id in established]),
        excluded=excluded,
        excluded_networks={str(k): v for k, v in excluded_networks.items()},
        capped=capped,
        capped_networks={str(k): v for k, v in capped_networks.items()},
        head_negatives=[r for r in passed if r.labelled_not_a_digit],
        head_digits=[r for r in passed if overturned_refusal(r)],
    )


def agrees(row: Feedback) -> bool:
    """The label is the answer: the digit answered, or "not a digit" for a refusal (db/init.sql
    predictions_label_contradicts is the same rule, for the review queue). A refusal labelled a digit, even its
    closest, overturns the answer "not a digit"."""
    if row.labelled_not_a_digit:
        return row.answered_not_a_digit
    return not row.answered_not_a_digit and row.true_digit == row.predicted_digit


def overturned_refusal(row: Feedback) -> bool:
    """A refusal labelled a digit: for the refusal head, a digit it should have answered."""
    return row.answered_not_a_digit and row.true_digit is not None


def _browser(row: Feedback) -> str:
    return row.browser_id


def _network(row: Feedback) -> str | None:
    return row.network


def _groups(rows: Sequence[Feedback], key: Callable[[Feedback], object]) -> dict:
    grouped: dict = defaultdict(list)
    for row in rows:
        grouped[key(row)].append(row)
    return grouped


def established_browsers(feedback: Sequence[Feedback], *, hours: float) -> set[str]:
    """The browsers whose labelled drawings span at least `hours` from the first to the last."""
    span = timedelta(hours=hours)
    return {
        browser
        for browser, rows in _groups(feedback, _browser).items()
        if max(r.created_at for r in rows) - min(r.created_at for r in rows) >= span
    }


def confident_answer(row: Feedback, confident: float) -> bool:
    """The model answered a digit with at least `confident` confidence. A refusal is none: its confidence is its
    closest digit's, not the refusal's, and honest users overturn refusals of their real digits (which the digits'
    classifier reads confidently) as often as the refusal is wrong."""
    return not row.answered_not_a_digit and row.confidence >= confident


def overturns(row: Feedback, confident: float) -> bool:
    """The label contradicts a digit the model answered with at least `confident` confidence (another digit, or
    "not a digit")."""
    return confident_answer(row, confident) and not agrees(row)


def _suspects(rows: Sequence[Feedback], cfg: ScreenConfig, *, key: Callable[[Feedback], object]) -> dict:
    """Browsers (or networks: `key`) whose unreviewed labels contradict confident answers far more often than honest
    users' do (honest users correct mostly unconfident answers) -> why."""
    suspects = {}
    for group, own in _groups(rows, key).items():
        confident = [r for r in own if confident_answer(r, cfg.confident)]
        if group is None or len(confident) < cfg.poison_min:
            continue
        rate = sum(overturns(r, cfg.confident) for r in confident) / len(confident)
        if rate > cfg.poison_rate:
            suspects[group] = (
                f"its labels contradict {rate:.0%} of {len(confident)} confident answers (limit {cfg.poison_rate:.0%})"
            )
    return suspects


def cap_against_others(
    fixed: Sequence[Feedback],
    capped: Sequence[Feedback],
    *,
    max_share: float,
    seed: int,
    key: Callable[[Feedback], object],
) -> tuple[list[Feedback], dict]:
    """Subsample the `capped` rows of each group (browser or network: `key`) so that the group holds at most
    `max_share` of the training rows beside the rows of every other group (`fixed` rows count but are never dropped):
    n <= max_share / (1 - max_share) x the others' rows. The kept `capped` rows, and the number each group lost."""
    if max_share >= 1:  # no cap
        return list(capped), {}
    everything = [*fixed, *capped]
    sizes = {group: len(rows) for group, rows in _groups(everything, key).items()}
    own_fixed = {group: len(rows) for group, rows in _groups(fixed, key).items()}
    ratio = max_share / (1 - max_share)
    rng = np.random.default_rng(seed)
    kept, lost = [], {}
    for group, rows in sorted(_groups(capped, key).items(), key=lambda item: str(item[0])):
        others = len(everything) - sizes[group]
        room = max(0, math.floor(ratio * others) - own_fixed.get(group, 0))
        if len(rows) > room:
            picks = sorted(rng.choice(len(rows), size=room, replace=False).tolist())
            lost[group] = len(rows) - room
            rows = [rows[i] for i in picks]
        kept += rows
    return kept, lost


def examples(rows: Sequence[Feedback]) -> list[finetune.Example]:
    """The digit labels among `rows` as the fine-tune's examples (a "not a digit" label is never a digit)."""
    return [
        finetune.Example(png=r.canvas_png, label=r.true_digit, group=r.browser_id)
        for r in rows
        if r.true_digit is not None
    ]
