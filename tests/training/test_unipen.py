"""The UNIPEN loader (JSON lines), the fixed split by session file, and its renderings through the handler."""

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from handler.preprocess import prepare
from training import canvas, unipen

ROOT = Path(__file__).resolve().parents[2]
# A "1" written downwards (y points up: from 900 to 100) and a "7" in two strokes, from two sites' session files.
ONE = [[[500, 900], [505, 500], [510, 100]]]
SEVEN = [[[100, 40], [300, 40], [150, 10]], [[180, 25], [260, 25]]]
RECORDS = [
    {"label": "1", "strokes": ONE, "contributor": "aga", "file": "data/1a/aga/a.dat"},
    {"label": "7", "strokes": SEVEN, "contributor": "syn", "file": "data/1a/syn/b.dat"},
]


def write(path: Path, records) -> Path:
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    return path


def unipen_file() -> Path:
    default = ROOT.parent / "shared" / "data" / "unipen" / "unipen-digits-train.jsonl.gz"
    return Path(os.environ.get(unipen.ENV_VAR, default))


def test_load_reads_labels_files_sites_and_flips_y(tmp_path, monkeypatch):
    one, seven = unipen.load(write(tmp_path / "d.jsonl.gz", RECORDS))
    assert (one.label, one.writer, one.contributor, len(one.strokes)) == (1, "data/1a/aga/a.dat", "aga", 1)
    assert (seven.label, len(seven.strokes)) == (7, 2)
    assert one.strokes[0][0, 1] < one.strokes[0][-1, 1]  # written from the top of the image downwards
    assert seven.strokes[0][0, 1] < seven.strokes[0][2, 1]  # the 7's bar above its foot
    monkeypatch.setenv(unipen.ENV_VAR, str(tmp_path / "d.jsonl.gz"))
    assert [d.label for d in unipen.load()] == [1, 7]


def test_missing_file_and_bad_records_say_what_is_wrong(tmp_path, monkeypatch):
    monkeypatch.delenv(unipen.ENV_VAR, raising=False)
    with pytest.raises(unipen.UnipenError, match="--unipen FILE or set UNIPEN_FILE"):
        unipen.load()
    with pytest.raises(unipen.UnipenError, match="not found"):
        unipen.load(tmp_path / "missing.jsonl.gz")
    with pytest.raises(unipen.UnipenError, match="line 2: label '12' is not one digit"):
        unipen.load(write(tmp_path / "b.jsonl.gz", [RECORDS[0], {**RECORDS[1], "label": "12"}]))
    with pytest.raises(unipen.UnipenError, match="no 'file' field"):
        unipen.load(write(tmp_path / "c.jsonl.gz", [{k: v for k, v in RECORDS[0].items() if k != "file"}]))
    numbers = unipen.load(write(tmp_path / "n.jsonl.gz", [{**RECORDS[1], "label": "2026"}]), numbers=True)
    assert numbers[0].label == "2026"


def test_letters_load_flip_y_say_what_is_wrong_and_know_the_digit_like_ones(tmp_path, monkeypatch):
    records = [{**RECORDS[0], "label": "l"}, {**RECORDS[1], "label": "A"}]
    ell, a = unipen.load_letters(write(tmp_path / "l.jsonl.gz", records))
    assert (ell.letter, ell.label, ell.writer, ell.digit_like) == ("l", 10, "data/1a/aga/a.dat", True)  # written as a 1
    assert (a.letter, a.digit_like, len(a.strokes)) == ("A", False, 2)
    assert ell.strokes[0][0, 1] < ell.strokes[0][-1, 1]  # y flipped as for digits
    monkeypatch.delenv(unipen.LETTERS_ENV_VAR, raising=False)
    with pytest.raises(unipen.UnipenError, match="--unipen-letters FILE or set UNIPEN_LETTERS_FILE"):
        unipen.load_letters()
    with pytest.raises(unipen.UnipenError, match="line 2: label '7' is not one letter"):
        unipen.load_letters(write(tmp_path / "b.jsonl.gz", [records[0], RECORDS[1]]))


def test_the_head_samples_letters_of_one_side_of_the_split_and_of_one_kind():
    from training.refusal_head import letter_sample

    files = [f"data/1b/x/{i}.dat" for i in range(40)]
    letters = [unipen.UnipenLetter(letter=c, writer=f, contributor="x", strokes=()) for f in files for c in "AO"]
    for held in (False, True):
        for like in (False, True):
            picked = letter_sample(letters, 1000, held=held, digit_like=like, seed=0)
            assert picked and all(unipen.held_out(x.writer) is held and x.digit_like is like for x in picked)
    assert len(letter_sample(letters, 3, held=False, digit_like=False, seed=0)) == 3


def test_the_split_keeps_whole_files_apart_and_is_fixed():
    files = [f"data/1a/site{i % 7}/writer{i}.dat" for i in range(400)]
    digits = [unipen.UnipenDigit(label=i % 10, writer=f, contributor="x", strokes=(np.zeros((1, 2)),))
              for i, f in enumerate(files) for _ in range(3)]  # fmt: skip
    training, validation = unipen.split_by_file(digits)
    assert not {d.writer for d in training} & {d.writer for d in validation}
    assert len(training) + len(validation) == len(digits)
    assert 0.12 < len(validation) / len(digits) < 0.28  # about one file in five
    # decided by the file name alone: the same files, whatever else is in the set
    assert unipen.split_by_file(digits[::-1])[1] == validation[::-1]
    assert unipen.held_out("data/1a/syn/syn1/sjb-dig20.dat") and not unipen.held_out("data/1a/aga/annzchrl.dat")


def test_renderings_are_slate_drawings_the_handler_reads():
    one, _ = unipen.parse_record(RECORDS[0]), None
    for png, label, writer, style in unipen.renderings([one], count=2, seed=3):
        assert (label, writer) == (1, "data/1a/aga/a.dat") and style in canvas.STYLES
        rows, cols = np.nonzero(prepare(png).ink > 0.5)
        assert rows.max() - rows.min() >= 15 and cols.max() - cols.min() <= 8  # a tall, narrow stroke


def test_the_real_file_splits_as_documented():
    path = unipen_file()
    if not path.exists():
        pytest.skip(f"UNIPEN file not found at {path} (set {unipen.ENV_VAR})")
    digits = unipen.load(path)
    training, validation = unipen.split_by_file(digits)
    assert (len(digits), len(validation)) == (6887, 1576)
    assert len({d.writer for d in validation}) == 60 and len({d.writer for d in digits}) == 314
    assert set(range(10)) == {d.label for d in validation} == {d.label for d in training}
