"""Numbers for developing the segmentation (training/segmentation_eval.py): the private UNIPEN reader, composing a
number from one writer's digits on the wide slate (spacing, touching pairs, truth boxes), and the measure that splits
the errors."""

import argparse
import gzip
import itertools
import json

import numpy as np
import pytest

from training import pendigits, segmentation_eval, unipen


def digit(label: int, writer: int, *strokes) -> pendigits.PenDigit:
    arrays = tuple(np.asarray(stroke, dtype=np.float32) for stroke in strokes)
    return pendigits.PenDigit(label=label, writer=writer, strokes=arrays)


# a 1 (one stroke) and a 7 (two strokes) for each of two writers, y down as pendigits.parse gives them
POOL = [
    digit(1, 1, [[0, 0], [0, 100]]),
    digit(7, 1, [[0, 0], [60, 0], [20, 100]], [[10, 50], [50, 50]]),
    digit(1, 2, [[5, 0], [0, 100]]),
    digit(7, 2, [[0, 0], [70, 0], [30, 100]]),
]


def test_unipen_digits_of_the_training_files_flip_y_and_writers_are_numbered_by_file(tmp_path, monkeypatch):
    path = tmp_path / "digits.jsonl.gz"
    records = [{"label": "3", "strokes": [[[0, 10], [5, 0]]], "contributor": "x", "file": "c.dat"},
               {"label": "7", "strokes": [[[1, 1]]], "contributor": "x", "file": "b.dat"},
               {"label": "5", "strokes": [[[2, 2]]], "contributor": "x", "file": "a.dat"}]  # fmt: skip
    assert unipen.held_out("a.dat") and not unipen.held_out("b.dat") and not unipen.held_out("c.dat")
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    three, seven = segmentation_eval.load_unipen_digits(path)  # a.dat is a validation file: left out
    assert (three.label, seven.label) == (3, 7)
    assert three.strokes[0].tolist() == [[0, -10], [5, 0]]  # y up in the file, down here
    assert seven.writer < three.writer  # writers numbered by sorted file name
    (five,) = segmentation_eval.load_unipen_digits(path, files=["a.dat", "b.dat"])  # validation files only: a.dat
    assert five.label == 5 and five.strokes[0].tolist() == [[2, -2]]
    with pytest.raises(unipen.UnipenError, match="none of the files"):
        segmentation_eval.load_unipen_digits(path, files=["b.dat"])  # a training file
    monkeypatch.delenv(unipen.ENV_VAR, raising=False)
    with pytest.raises(unipen.UnipenError, match=unipen.ENV_VAR):
        segmentation_eval.load_unipen_digits()
    with pytest.raises(unipen.UnipenError, match="not found"):
        segmentation_eval.load_unipen_digits(tmp_path / "missing.jsonl.gz")


def test_the_unipen_heldout_set_is_composed_from_the_files_4_0s_gate_held_out(tmp_path, monkeypatch):
    """4.0's loop fine-tuned on half of the validation files: the set takes only the other half's writers."""
    path = tmp_path / "digits.jsonl.gz"
    one, seven = [[[0, 100], [0, 0]]], [[[0, 100], [60, 100], [20, 0]]]
    records = [{"label": "1", "strokes": one, "contributor": "x", "file": "a.dat"}] * 3
    records += [{"label": "7", "strokes": seven, "contributor": "x", "file": "d.dat"}] * 3
    records += [{"label": "3", "strokes": [[[0, 10], [5, 0], [0, -10]]], "contributor": "x", "file": "c.dat"}] * 3
    assert unipen.held_out("a.dat") and unipen.held_out("d.dat") and not unipen.held_out("c.dat")
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    split = tmp_path / "unipen_files.json"
    split.write_text(json.dumps({"heldout": ["a.dat"], "trained": ["d.dat"]}))
    monkeypatch.setattr(segmentation_eval, "GATE_HELD_OUT", split)
    args = argparse.Namespace(set="unipen-heldout", unipen_digits=path, count=4, seed=0)
    cases = segmentation_eval._cases(args, spec=segmentation_eval.NumberSpec(lengths=(2, 3)))
    assert len(cases) == 4 and all(set(case.number.label) == {"1"} for case in cases)  # never d.dat's 7s nor c.dat's 3s


def test_a_composed_number_is_one_writers_digits_on_the_wide_slate():
    rng = np.random.default_rng(0)
    for _ in range(20):
        number = segmentation_eval.compose(POOL, rng=rng, spec=segmentation_eval.NumberSpec(touching=0.0))
        assert 2 <= len(number.label) <= 6 and set(number.label) <= {"1", "7"}
        assert number.slate == (840, 280)
        boxes = number.boxes()
        assert all(left >= 0 and right <= 840 and top >= 0 and bottom <= 280 for left, top, right, bottom in boxes)
        assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right
        assert number.touching == 0
        assert number.mask().shape == (280, 840)


def test_touching_is_a_share_of_numbers_or_of_pairs():
    rng = np.random.default_rng(1)
    per_number = [
        segmentation_eval.compose(POOL, rng=rng, spec=segmentation_eval.NumberSpec(touching=0.5)).touching
        for _ in range(200)
    ]
    assert set(per_number) <= {0, 1} and 70 <= sum(per_number) <= 130
    spec = segmentation_eval.NumberSpec(touching=1.0, per_pair=True)
    number = segmentation_eval.compose(POOL, rng=rng, spec=spec)
    assert number.touching == len(number.label) - 1
    # touching digits' inks overlap, digits apart do not
    apart = segmentation_eval.compose(
        POOL, rng=np.random.default_rng(2), spec=segmentation_eval.NumberSpec(touching=0.0)
    )
    masks = [apart.mask(i) > 127 for i in range(len(apart.label))]
    assert not any((a & b).any() for a, b in itertools.pairwise(masks))
    masks = [number.mask(i) > 127 for i in range(len(number.label))]
    assert all((a & b).any() for a, b in itertools.pairwise(masks))


def test_evaluate_tells_segmentation_from_reading_errors():
    case = segmentation_eval.composed_set(
        POOL, count=1, seed=3, spec=segmentation_eval.NumberSpec(lengths=(2, 2), touching=0.0)
    )[0]
    boxes = case.number.boxes()
    label = case.number.label
    wrong_digit = "".join("7" if ch == "1" else "1" for ch in label[:1]) + label[1:]

    def reader(answer_number, answer_boxes):
        digits = [{"digit": int(ch), "box": list(box)} for ch, box in zip(answer_number, answer_boxes, strict=True)]
        return lambda png: {"number": answer_number, "digits": digits}

    assert segmentation_eval.evaluate([case], reader(label, boxes))["exact"] == 1
    assert segmentation_eval.evaluate([case], reader(wrong_digit, boxes))["reading_errors"] == 1
    assert segmentation_eval.evaluate([case], reader(label[:1], boxes[:1]))["segmentation_errors"] == 1


def test_chain_reads_is_what_a_perfect_chooser_among_the_candidates_would_read():
    from handler.segmentation import Boundary, Candidate, Layout, Shape

    def candidate(first, stop):
        return Candidate(first=first, stop=stop, field=np.zeros((28, 28), np.float32), box=(0, 0, 1, 1),
                         shape=Shape(width=0.5, height=1.0, gap=0.0))  # fmt: skip

    # boundaries 0..3: "1" from 0 to 1, "7" from 1 to 3, and a merged "4" from 0 to 3 (the likelier one alone)
    plan = Layout(last=3, candidates=(candidate(0, 1), candidate(1, 3), candidate(0, 3), candidate(1, 2)),
                  boundaries=(Boundary(),) * 3, height=100.0)  # fmt: skip
    logits = np.full((4, 10), -5.0)
    for row, digit_read in enumerate((1, 7, 4, 9)):
        logits[row, digit_read] = 5.0
    assert segmentation_eval.chain_reads(plan, logits, "17")
    assert segmentation_eval.chain_reads(plan, logits, "4")
    assert not segmentation_eval.chain_reads(plan, logits, "19")  # the 9 ends at boundary 2: no chain goes on to 3
    assert not segmentation_eval.chain_reads(plan, logits, "71")
    assert not segmentation_eval.chain_reads(plan, logits, "174")
    refused = Layout(last=0, candidates=(), boundaries=(), height=0.0, refused="too many marks")
    assert not segmentation_eval.chain_reads(refused, np.zeros((0, 10)), "1")
