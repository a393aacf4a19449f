"""The golden set: the committed file is the version the code names, balanced, from training writers only, credited,
and drawn the same way every time."""

import gzip
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from handler.preprocess import prepare
from training import canvas, golden, pendigits, unipen

# The pixels of every 50th digit drawn in the three export styles: changes when the renderer draws differently, which
# changes what the gate measures (then the golden set needs a new version, not an edit of this line).
RENDER_SHA256 = "6596bc0591b6a3a38b487fa81d2d6c7904c392a4ec06b7693de461a8e661f743"


def test_the_committed_file_is_this_version_and_small():
    raw = golden.FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == golden.SHA256
    assert len(raw) < 1_000_000
    document = json.loads(gzip.decompress(raw))
    assert document["version"] == golden.VERSION
    assert document["licence"] == "CC BY 4.0"
    assert "Alpaydin" in document["credit"]["pendigits"] and "Guyon" in document["credit"]["unipen"]


def test_balanced_per_digit_and_from_training_writers_only():
    digits = golden.digits()
    assert len(digits) == 10 * golden.PER_DIGIT
    for label in range(10):
        own = [d for d in digits if d.label == label]
        assert len(own) == golden.PER_DIGIT
        assert sum(d.writer.startswith("pendigits:") for d in own) == golden.PER_DIGIT // 2
    for digit in digits:
        source, writer = digit.writer.split(":", 1)
        if source == "pendigits":
            assert int(writer) not in pendigits.VALIDATION_WRITERS
        else:
            assert source == "unipen" and not unipen.held_out(writer)
        points = np.concatenate(digit.strokes)
        assert points.min() >= 0 and points.max() <= golden.SCALE


def test_a_changed_file_is_refused(tmp_path):
    changed = tmp_path / "golden.json.gz"
    raw = bytearray(golden.FILE.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte of the strokes
    changed.write_bytes(bytes(raw))
    with pytest.raises(golden.GoldenError, match="sha256 differs"):
        golden.digits(changed)
    with pytest.raises(golden.GoldenError, match="not found"):
        golden.digits(tmp_path / "missing.json.gz")


def test_drawn_the_same_way_every_time_in_every_style():
    chosen = golden.digits()[::50]
    drawn = golden.render(chosen)
    assert golden.render(chosen) == drawn
    assert len(drawn) == len(chosen) * len(canvas.STYLES)
    digest = hashlib.sha256()
    for png, label in drawn:
        digest.update(np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).tobytes())
        digest.update(bytes([label]))
    assert digest.hexdigest() == RENDER_SHA256
    for png, _ in drawn[:6]:
        assert prepare(png).ink.max() > 0.9  # drawings the handler reads


def test_simplify_keeps_corners_and_drops_collinear_points():
    line = np.array([[0, 0], [1, 0.5], [2, 1], [3, 1.5], [4, 2], [4, 10]], dtype=float)
    assert np.array_equal(golden.simplify(line, 0.1), line[[0, 4, 5]])
