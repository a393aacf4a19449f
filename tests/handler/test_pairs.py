"""Two touching digits read as one pair (handler/segmentation.py with the pair reader, handler/model.py pair_net):
the pair field, the chooser's pair option, the two digits it answers, and the handler reading pairs in-process from
an archive that carries pairs.pt."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handler import segmentation
from handler.model import PAIRS_FILE, pair_net
from handler.preprocess import BlankImageError
from handler.segmentation import COSTS, NOT_PAIR, Boundary, Candidate, Layout, Shape
from tests.conftest import SHIPPED_V4_WEIGHTS
from tests.handler.test_mnist_handler import handle, load_handler
from tests.handler.test_numbers import drawing, one, seven


def test_the_pair_field_puts_the_ink_20_px_high_or_52_wide_round_its_centre_of_mass():
    tall = np.zeros((200, 300), np.uint8)
    tall[20:180, 40:260] = 255  # 160 high, 220 wide: the height decides
    field = segmentation.pair_field(tall)
    assert field.shape == (28, 56) and field.dtype == np.float32
    assert field.min() >= 0.0 and field.max() <= 1.0
    rows, cols = np.flatnonzero(field.max(1) > 0.5), np.flatnonzero(field.max(0) > 0.5)
    assert len(rows) == 20 and len(cols) == round(220 * 20 / 160)
    total = field.sum()
    assert abs((field.sum(1) * np.arange(28)).sum() / total - 13.5) <= 1
    assert abs((field.sum(0) * np.arange(56)).sum() / total - 27.5) <= 1
    wide = np.zeros((50, 900), np.uint8)
    wide[10:40, :] = 200  # 30 high, 900 wide: the width decides
    assert len(np.flatnonzero(segmentation.pair_field(wide).max(0) > 0.5)) == 52
    with pytest.raises(BlankImageError, match="no ink"):
        segmentation.pair_field(np.zeros((10, 10), np.uint8))


def candidate(first: int, stop: int, width: float, box=(0.0, 0.0, 1.0, 1.0)) -> Candidate:
    return Candidate(first=first, stop=stop, field=np.zeros((28, 28), np.float32), box=box,
                     shape=Shape(width=width, height=1.0, gap=0.0))  # fmt: skip


# boundaries 0..2: a "1" then a "7" (a cut between them), or the whole as one wide candidate that reads 4
WHOLE = candidate(0, 2, 1.1, (100, 20, 300, 220))
PLAN = Layout(last=2, candidates=(candidate(0, 1, 0.5), candidate(1, 2, 0.5), WHOLE),
              boundaries=(Boundary(), Boundary(cut=1.0, along=0.3)), height=100.0)  # fmt: skip
LOGITS = np.full((3, 10), -4.0)
LOGITS[0, 1], LOGITS[1, 7], LOGITS[2, 4] = 0.0, 0.0, 9.0  # the halves unsure, the whole a sure 4


def pair_rows(probabilities: dict[int, float]) -> np.ndarray:
    """Pair log probabilities for PLAN: only the wide candidate (row 2) asked, with these pair probabilities (the rest
    spread over the other outputs)."""
    p = np.full(NOT_PAIR + 1, (1 - sum(probabilities.values())) / (NOT_PAIR + 1 - len(probabilities)))
    for output, value in probabilities.items():
        p[output] = value
    return segmentation.pair_log_probs(PLAN, [2], np.log(p)[None, :])


def test_pair_log_probs_are_the_wide_candidates_log_softmax_and_minus_infinity_elsewhere():
    rows = segmentation.pair_log_probs(PLAN, [2], np.arange(101, dtype=np.float64)[None, :])
    assert np.isinf(rows[:2]).all() and (rows[:2] < 0).all()
    assert math.isclose(np.exp(rows[2]).sum(), 1.0) and rows[2].argmax() == 100


def test_the_pair_option_reads_a_wide_candidate_as_two_digits_only_when_it_is_likelier():
    assert segmentation.reading(PLAN, LOGITS)["number"] == "4"  # no pair reader
    sure = pair_rows({17: 0.999})
    assert segmentation.reading(PLAN, LOGITS, pairs=sure)["number"] == "17"
    assert segmentation.choose(PLAN, LOGITS, pairs=sure) == [(2, 17)]
    narrow = COSTS.__class__(**{**COSTS.__dict__, "pair_width": 1.2})
    assert segmentation.reading(PLAN, LOGITS, pairs=sure, costs=narrow)["number"] == "4"  # not wide enough
    costly = COSTS.__class__(**{**COSTS.__dict__, "pair_bonus": -30.0})
    assert segmentation.reading(PLAN, LOGITS, pairs=sure, costs=costly)["number"] == "4"  # the bonus weighs it
    unsure = pair_rows({17: 0.4, NOT_PAIR: 0.5})  # below pair_min (0.8)
    assert segmentation.reading(PLAN, LOGITS, pairs=unsure)["number"] == "4"


def test_a_pair_answers_two_digits_with_the_pairs_marginals_and_the_halves_of_its_box():
    answer = segmentation.reading(PLAN, LOGITS, pairs=pair_rows({17: 0.9, 11: 0.05}))
    first, second = answer["digits"]
    assert (first["digit"], second["digit"]) == (1, 7) and first["pair"] and second["pair"]
    assert first["candidate"] == second["candidate"] == 2
    assert first["box"] == [100, 20, 200, 220] and second["box"] == [200, 20, 300, 220]
    for digit in (first, second):
        assert math.isclose(sum(digit["probabilities"]), 1.0, abs_tol=1e-9)
        assert digit["confidence"] == digit["probabilities"][digit["digit"]]
    joint = np.exp(pair_rows({17: 0.9, 11: 0.05})[2, :NOT_PAIR])
    assert math.isclose(first["probabilities"][1], joint.reshape(10, 10)[1].sum() / joint.sum())
    one_digit = segmentation.reading(PLAN, LOGITS)["digits"][0]
    assert one_digit["pair"] is False and one_digit["candidate"] == 2


def test_pair_inputs_are_the_wide_candidates_pair_fields():
    plan = segmentation.prepare_number(drawing(seven(150, width=110), seven(255, width=110)))  # touching: one wide part
    wide, inputs = plan.pair_inputs()
    assert wide and all(plan.candidates[i].shape.width >= COSTS.pair_width for i in wide)
    assert inputs.shape == (len(wide), 1, 28, 56)
    assert plan.pair_inputs(width=99.0)[0] == [] and plan.pair_inputs(width=99.0)[1].shape == (0, 1, 28, 56)


# ---- the handler in-process, from an archive with the pair reader -----------------------------------------------


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """A version with 4.0's weights and an untrained pair reader (the plumbing: what the reader reads is set per test),
    and refusal rules (a pair's digits are never refused for looking like two digits)."""
    from training.archive import build

    folder = tmp_path_factory.mktemp("v4.9")
    (folder / "weights.pt").write_bytes(SHIPPED_V4_WEIGHTS.read_bytes())
    (folder / "refusal.json").write_text('{"several_digits": true}')
    torch.manual_seed(0)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in pair_net().state_dict().items()},
               folder / PAIRS_FILE)  # fmt: skip
    archive = build(version="4.9", weights=folder / "weights.pt", out=folder / "store")
    return load_handler(archive, tmp_path_factory.mktemp("model_dir"), batch_size=4)


def test_the_handler_reads_each_numbers_wide_candidates_with_the_pair_reader_in_one_more_pass(paired):
    instance, _ = paired
    assert instance.pair_forward is not None
    calls, forward = [], instance.pair_forward

    def sure_77(batch):  # the pair reader, certain every wide candidate is "77"
        calls.append(len(batch))
        logits = torch.full((len(batch), NOT_PAIR + 1), -20.0)
        logits[:, 77] = 20.0
        return logits

    touching, apart = drawing(seven(150, width=110), seven(255, width=110)), drawing(one(150), seven(400))
    instance.pair_forward = sure_77
    try:
        headers = {"X-Read": "number", "X-Preview": "1"}
        answers, statuses = handle(paired, [{"body": bytearray(touching)}, {"body": bytearray(apart)}], headers)
    finally:
        instance.pair_forward = forward
    wide = [segmentation.prepare_number(png).pair_inputs()[0] for png in (touching, apart)]
    assert calls == [sum(len(w) for w in wide)]  # both numbers' wide candidates in one pass
    assert statuses == [200, 200]
    pair = answers[0]
    assert pair["number"] == "77" and pair["not_a_digit"] is False
    left, right = pair["digits"]
    assert left["box"][2] == right["box"][0]  # the halves of one candidate's box
    assert left["not_a_digit"] is False and right["not_a_digit"] is False  # refusal rules skip a pair's digits
    assert all(
        set(d) == {"digit", "confidence", "probabilities", "box", "preview", "not_a_digit"} for d in pair["digits"]
    )
    assert answers[1]["number"] == "17"


def test_the_shipped_4_0_archive_carries_the_pair_reader(model_store, tmp_path):
    instance, _ = load_handler(model_store / "mnist-v4.0.mar", tmp_path, batch_size=2)
    assert instance.pair_forward is not None
