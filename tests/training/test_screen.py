"""Which labels `make retrain` learns from and judges on (training/screen.py): reviewed labels, suggestions, history,
the poisoning screen and the caps counted against the others. The same rules through the whole product, with a real
retrain: tests/integration/test_backdoor.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from db.predictions import Feedback
from training import screen
from training.screen import ScreenConfig

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
DAYS = timedelta(days=3)  # more than ScreenConfig.established_hours


def rows(
    browser: str,
    count: int,
    *,
    wrong_confident: int = 0,
    wrong_unsure: int = 0,
    seed: int = 0,
    network: str | None = None,
    review: str | None = None,
    history: timedelta = DAYS,
) -> list[Feedback]:
    """A browser's labelled drawings over `history`: `wrong_confident` of its labels contradict answers given with
    0.99 confidence, `wrong_unsure` correct wrong answers given with 0.5 confidence, the rest confirm confident
    answers."""
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        digit = int(rng.integers(10))
        confidence, label = 0.99, digit
        if index < wrong_confident:
            label = (digit + 1 + int(rng.integers(9))) % 10
        elif index < wrong_confident + wrong_unsure:
            confidence, label = 0.5, (digit + 3) % 10
        when = NOW - history * (1 - index / max(1, count - 1))
        made.append(Feedback(uuid.uuid4().bytes, label, browser, when, digit, confidence, "4.0", network, review))
    return made


def honest(count: int = 10, each: int = 40, *, review: str | None = None) -> list[Feedback]:
    return [
        r
        for i in range(count)
        for r in rows(f"honest-{i}", each, wrong_unsure=4, seed=i, network=f"10.0.{i}.0/24", review=review)
    ]


def of(selection: screen.Selection, prefix: str) -> list[Feedback]:
    return [r for r in selection.train_rows if r.browser_id.startswith(prefix)]


def test_a_correction_trains_only_once_approved():
    unreviewed = rows("a", 20, wrong_unsure=5, network="10.0.0.0/24")
    others = honest()
    selection = screen.select(unreviewed + others, ScreenConfig(holdout_share=0.0))
    assert selection.pending == 5 + 10 * 4
    assert all(r.true_digit == r.predicted_digit for r in selection.train_rows)
    approved = rows("a", 20, wrong_unsure=5, network="10.0.0.0/24", review="approved")
    selection = screen.select(approved + others, ScreenConfig(holdout_share=0.0))
    assert sum(r.true_digit != r.predicted_digit for r in of(selection, "a")) == 5
    assert selection.pending == 10 * 4


def test_a_rejected_label_never_trains_even_when_it_agrees():
    selection = screen.select(rows("a", 20, review="rejected") + honest(), ScreenConfig(holdout_share=0.0))
    assert selection.rejected == 20 and not of(selection, "a")


def test_agreeing_labels_of_a_browser_without_days_of_history_do_not_train():
    """Forty cookies made in a minute: their agreeing labels wait for days of history; the others' train."""
    cookies = [
        r for i in range(40) for r in rows(f"cookie-{i}", 10, history=timedelta(minutes=1), network="192.0.2.0/24")
    ]
    selection = screen.select(cookies + honest(), ScreenConfig(holdout_share=0.0))
    assert not of(selection, "cookie") and selection.fresh == 400
    assert len(of(selection, "honest")) == 10 * 36


def test_an_agreeing_browsers_share_is_capped_against_the_others_not_against_a_total_it_inflates():
    """The cap that grew with the attacker's own volume (10% of a total that held its rows: 57% at 40,000) now is
    10% beside everyone else's rows, whatever its volume."""
    others = honest()  # 360 agreeing rows train
    for volume in (500, 5_000, 40_000):
        big = rows("big", volume, network="198.51.100.0/24", seed=volume)
        selection = screen.select(big + others, ScreenConfig(holdout_share=0.0))
        share = len(of(selection, "big")) / len(selection.train_rows)
        assert 0.09 <= share <= 0.1, (volume, share)
        assert selection.capped == {"big": volume - 40}  # 360 x 1/9


def test_the_network_cap_is_counted_against_the_other_networks():
    crowd = [r for i in range(20) for r in rows(f"n-{i}", 50, seed=i, network="192.0.2.0/24")]
    others = [r for i in range(9) for r in rows(f"o-{i}", 50, seed=i, network=f"10.1.{i}.0/24")]
    selection = screen.select(crowd + others, ScreenConfig(holdout_share=0.0, max_share=0.2))
    assert sum(r.network == "192.0.2.0/24" for r in selection.train_rows) == 112  # 450 others x 0.25
    assert selection.capped_networks == {"192.0.2.0/24": 1000 - 112}


def test_approved_labels_are_never_capped_nor_excluded():
    """An honest writer's reviewed labels stay, even behind a network whose other browsers were excluded (P5)."""
    writer = rows("writer", 100, wrong_unsure=30, network="192.0.2.0/24", review="approved")
    # five cookies, each below the per-browser minimum of confident answers, together over it: the network is judged
    flippers = [r for i in range(5) for r in rows(f"flip-{i}", 8, wrong_confident=8, network="192.0.2.0/24")]
    selection = screen.select(writer + flippers + honest(2), ScreenConfig(holdout_share=0.0))
    assert "192.0.2.0/24" in selection.excluded_networks
    assert len(of(selection, "writer")) == 100
    assert not of(selection, "flip")


def test_a_browser_contradicting_confident_answers_loses_its_unreviewed_labels():
    poisoner = rows("poisoner", 300, wrong_confident=100, network="203.0.113.0/24")
    selection = screen.select(honest() + poisoner, ScreenConfig(holdout_share=0.0))
    assert "contradict 33% of 300 confident answers" in selection.excluded["poisoner"]
    assert not of(selection, "poisoner")


def test_honest_users_behind_one_network_are_not_excluded():
    office = [r for i in range(30) for r in rows(f"office-{i}", 30, wrong_confident=1, seed=i, network="10.9.9.0/24")]
    selection = screen.select(office, ScreenConfig(holdout_share=0.0))
    assert not selection.excluded_networks and not selection.excluded


@pytest.mark.parametrize("spread", ["one network", "40 networks"])
def test_forty_cookies_hold_nothing_of_training_nor_of_the_gate(spread):
    """The red team's scenarios in rows: 40 fresh cookies label drawings 1 that the model read as 7 below 0.95, and
    agree with whatever else it answers; the operator approved the honest browsers' labels."""
    attack = []
    for i in range(40):
        network = "192.0.2.0/24" if spread == "one network" else f"198.18.{i}.0/24"
        flips = [Feedback(uuid.uuid4().bytes, 1, f"cookie-{i}", NOW, 7, 0.8, "4.0", network) for _ in range(100)]
        attack += flips + rows(f"cookie-{i}", 40, history=timedelta(minutes=2), network=network, seed=i)
    selection = screen.select(attack + honest(review="approved"), ScreenConfig())
    assert not of(selection, "cookie")
    assert not [e for e in selection.heldout if e.group.startswith("cookie")]
    assert selection.heldout and {e.group for e in selection.heldout} <= {f"honest-{i}" for i in range(10)}
    assert selection.pending == 4000  # the honest corrections were approved


def test_the_gate_judges_only_approved_labels_of_browsers_held_out_whole():
    approved = honest(review="approved")
    unreviewed = [r for i in range(10) for r in rows(f"anon-{i}", 40, seed=i, network=f"10.2.{i}.0/24")]
    selection = screen.select(approved + unreviewed, ScreenConfig(holdout_share=0.2))
    held = {e.group for e in selection.heldout}
    assert len(held) == 2 and held <= {f"honest-{i}" for i in range(10)}
    assert not [r for r in selection.train_rows if r.browser_id in held]
    assert len(selection.heldout) == 80


def test_the_report_says_what_waits_and_what_was_left_out():
    feedback = honest(review="approved") + rows("new", 10, wrong_unsure=3, history=timedelta(0))
    report = screen.select(feedback, ScreenConfig()).report(feedback)
    assert report["pending_suggestions"] == 3 and report["fresh_browsers_left_out"] == 7
    assert report["approved"] == 400 and report["training_approved"] == report["training_drawings"]


def test_a_share_of_zero_holds_no_browser_out():
    assert not screen.select(honest(review="approved"), ScreenConfig(holdout_share=0.0)).heldout


def test_a_share_of_one_caps_nothing():
    crowd = [r for i in range(5) for r in rows(f"n-{i}", 20, seed=i, network="192.0.2.0/24")]
    assert len(screen.select(crowd, ScreenConfig(holdout_share=0.0, max_share=1.0)).train_rows) == 100


def test_one_excluded_browser_does_not_take_its_networks_honest_labels_with_it():
    office = [r for i in range(3) for r in rows(f"office-{i}", 30, seed=i, network="10.9.9.0/24")]
    flipper = rows("flipper", 200, wrong_confident=200, network="10.9.9.0/24")
    selection = screen.select(office + flipper, ScreenConfig(holdout_share=0.0, max_share=1.0))
    assert set(selection.excluded) == {"flipper"} and not selection.excluded_networks
    assert len(selection.train_rows) == 90


# ---- labels about refusal: the same rules, for the refusal head --------------------------------------------------

NOT_A_DIGIT_ON_A_DIGIT, CONFIRMED, OVERTURNED = "this is not a digit", "right, not a digit", "it is a digit: closest"


def refusal_labels(
    browser: str,
    count: int,
    kind: str,
    *,
    network: str | None = None,
    review: str | None = None,
    history: timedelta = DAYS,
) -> list[Feedback]:
    """A browser's labels about refusal over `history`: "This is not a digit" on answered digits, "Right, not a
    digit" on refusals, or refusals labelled their closest digit ("It is a digit: N", N the closest)."""
    made = []
    for index in range(count):
        when = NOW - history * (1 - index / max(1, count - 1))
        closest = index % 10
        made.append(
            Feedback(
                uuid.uuid4().bytes, closest if kind == OVERTURNED else None, browser, when, closest, 0.99, "5.0",
                network, review, labelled_not_a_digit=kind != OVERTURNED,
                answered_not_a_digit=kind != NOT_A_DIGIT_ON_A_DIGIT,
            )
        )  # fmt: skip
    return made


def test_this_is_not_a_digit_on_an_answered_digit_waits_and_reaches_the_head_once_approved():
    flagged = refusal_labels("a", 6, NOT_A_DIGIT_ON_A_DIGIT, network="10.8.0.0/24")
    selection = screen.select(flagged + honest(), ScreenConfig(holdout_share=0.0))
    assert selection.pending == 6 + 10 * 4 and not selection.head_negatives and not of(selection, "a")
    approved = refusal_labels("a", 6, NOT_A_DIGIT_ON_A_DIGIT, network="10.8.0.0/24", review="approved")
    selection = screen.select(approved + honest(), ScreenConfig(holdout_share=0.0))
    assert set(selection.head_negatives) == set(approved) and selection.pending == 10 * 4
    assert not of(selection, "a")  # never a digit training row
    assert selection.teaches_the_head and not selection.head_digits


def test_a_confirmed_refusal_reaches_the_head_from_an_established_browser_not_from_a_fresh_one():
    regular = refusal_labels("regular", 5, CONFIRMED, network="10.8.0.0/24")
    fresh = refusal_labels("fresh", 5, CONFIRMED, network="10.8.1.0/24", history=timedelta(minutes=1))
    selection = screen.select(regular + fresh + honest(), ScreenConfig(holdout_share=0.0))
    assert set(selection.head_negatives) == set(regular) and selection.fresh == 5
    assert selection.pending == 10 * 4  # they agree with the answer: no suggestion
    assert not of(selection, "regular") and not of(selection, "fresh")


def test_an_overturned_refusal_reaches_the_head_as_a_digit_only_once_approved():
    """Labelled its closest digit, a refusal still disagrees with the answer "not a digit": no unreviewed path."""
    unreviewed = refusal_labels("a", 6, OVERTURNED, network="10.8.0.0/24")
    selection = screen.select(unreviewed + honest(), ScreenConfig(holdout_share=0.0))
    assert selection.pending == 6 + 10 * 4
    assert not selection.head_digits and not of(selection, "a") and not selection.teaches_the_head
    approved = refusal_labels("a", 6, OVERTURNED, network="10.8.0.0/24", review="approved")
    selection = screen.select(approved + honest(), ScreenConfig(holdout_share=0.0))
    assert set(selection.head_digits) == set(of(selection, "a")) == set(approved)  # a digit for the digits too
    assert not selection.head_negatives


def test_refusal_labels_share_the_caps_and_the_screen_with_digit_labels():
    """One browser's unreviewed labels of either kind hold at most max_share beside everyone else's; a browser the
    poisoning screen excludes loses its confirmed refusals with its digit labels."""
    big = rows("big", 200, network="198.51.100.0/24") + refusal_labels("big", 300, CONFIRMED, network="198.51.100.0/24")
    poisoner = rows("poisoner", 300, wrong_confident=100, network="203.0.113.0/24")
    poisoner += refusal_labels("poisoner", 20, CONFIRMED, network="203.0.113.0/24")
    selection = screen.select(big + poisoner + honest(), ScreenConfig(holdout_share=0.0))
    mine = of(selection, "big") + [r for r in selection.head_negatives if r.browser_id == "big"]
    assert len(mine) == 40 and selection.capped == {"big": 500 - 40}  # 360 others x 1/9, both kinds together
    assert "poisoner" in selection.excluded
    assert {r.browser_id for r in selection.head_negatives} <= {"big"}


def test_overturned_refusals_are_not_contradictions_of_confident_answers():
    """The poisoning screen judges labels against confident digits answered: an honest user who says "It is a digit"
    to many refusals of their own digits (confidently read by the digits' classifier) is not a suspect."""
    writer = rows("writer", 30, network="10.8.0.0/24") + refusal_labels("writer", 30, OVERTURNED, network="10.8.0.0/24")
    selection = screen.select(writer + honest(), ScreenConfig(holdout_share=0.0))
    assert not selection.excluded and len(of(selection, "writer")) == 30  # its agreeing digit labels train


def test_the_report_counts_the_labels_about_refusal():
    feedback = (
        honest(review="approved")
        + refusal_labels("r", 4, CONFIRMED, network="10.3.0.0/24")
        + refusal_labels("o", 3, OVERTURNED, network="10.3.1.0/24", review="approved")
        + refusal_labels("n", 2, NOT_A_DIGIT_ON_A_DIGIT, network="10.3.2.0/24")
    )
    report = screen.select(feedback, ScreenConfig()).report(feedback)
    assert (report["not_a_digit_labels"], report["overturned_refusals"]) == (6, 3)
    assert (report["head_negatives"], report["head_digits"]) == (4, 3)
    assert report["pending_suggestions"] == 2
