"""Simulated users' writers (training/simulate.py): pendigits writers or UNIPEN session files, one browser each, their
digits drawn as slate exports the handler reads. Sending them through the real page is tested with the whole product
in tests/integration/test_learning_loop.py."""

import asyncio
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from handler.preprocess import prepare
from training import simulate, unipen

# Two session files of the fixed split (training/unipen.py): the first is held out (validation), the second is not.
HELD_OUT, TRAINING = "data/1a/syn/syn1/sjb-dig20.dat", "data/1a/aga/annzchrl.dat"
ONE = [[[500, 900], [505, 500], [510, 100]]]  # a "1" written downwards (UNIPEN's y points up)


def records(file: str, count: int) -> list[dict]:
    return [{"label": "1", "strokes": ONE, "contributor": file.split("/")[2], "file": file} for _ in range(count)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    return path


def test_unipen_files_are_chosen_by_the_fixed_split(tmp_path):
    path = write(tmp_path / "u.jsonl.gz", records(HELD_OUT, 3) + records(TRAINING, 2))
    assert {d.writer for d in simulate.unipen_writers(path, files="validation")} == {HELD_OUT}
    assert {d.writer for d in simulate.unipen_writers(path, files="training")} == {TRAINING}
    assert len(simulate.unipen_writers(path, files="all")) == 5
    with pytest.raises(simulate.SimulationError, match="--files must be one of"):
        simulate.unipen_writers(path, files="everything")


def test_each_unipen_file_is_one_browser_of_slate_drawings_the_handler_reads(tmp_path):
    digits = simulate.unipen_writers(write(tmp_path / "u.jsonl.gz", records(HELD_OUT, 3) + records(TRAINING, 2)),
                                     files="all")  # fmt: skip
    drawn = simulate.drawings_of(digits, per_writer=2, seed=0)
    assert {writer: len(drawings) for writer, drawings in drawn.items()} == {HELD_OUT: 2, TRAINING: 2}
    for drawing in drawn[HELD_OUT]:
        assert (drawing.label, drawing.writer) == (1, HELD_OUT)
        rows, cols = np.nonzero(prepare(drawing.png).ink > 0.5)
        assert rows.max() - rows.min() >= 15 and cols.max() - cols.min() <= 8  # a tall, narrow stroke: the 1


def test_a_simulation_is_bounded_in_all(monkeypatch):
    digits = [unipen.parse_record(r) for r in records(HELD_OUT, 4) + records(TRAINING, 4)]
    monkeypatch.setattr(simulate, "MAX_DRAWINGS", 5)
    with pytest.raises(simulate.SimulationError, match="8 drawings asked, at most 5"):
        simulate.drawings_of(digits, per_writer=4, seed=0)


def test_a_missing_unipen_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl.gz"
    assert simulate.main(["--unipen", str(missing)]) == 1
    assert f"{missing} not found" in capsys.readouterr().err


def test_only_loopback_is_visited():
    with pytest.raises(simulate.SimulationError, match="only visit loopback"):
        asyncio.run(simulate.simulate("http://example.com:8501", {}, browsers=1))
