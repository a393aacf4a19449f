"""The pendigits loader (UNIPEN text), the writer split, and the slate renderer."""

import gzip
import io

import numpy as np
import pytest
from PIL import Image

from handler.preprocess import prepare
from training import canvas, pendigits

# Two digits by two writers in the file's format: a "1" drawn downwards, a "7" in two strokes (the second a tap).
UNIPEN = """.INCLUDE        dene.doc

.LEXICON "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"
.HIERARCHY      DIGIT

.SEGMENT DIGIT    0 ? "1"
.COMMENT 1 12  224
.PEN_DOWN
 100  400
 100  250
 100  100
.PEN_UP
.DT 100

.SEGMENT DIGIT    1 ? "7"
.COMMENT 7 3   54
.PEN_DOWN
 100  400
 300  400
 150  100
.PEN_UP
.DT 100
.PEN_DOWN
 200  250
.PEN_UP
"""


def test_parse_reads_labels_writers_strokes_and_flips_y():
    one, seven = pendigits.parse(UNIPEN)
    assert (one.label, one.writer, len(one.strokes)) == (1, 12, 1)
    assert (seven.label, seven.writer, len(seven.strokes)) == (7, 3, 2)
    assert seven.strokes[1].shape == (1, 2)  # a tap is a one-point stroke
    # The "1" was drawn from y=400 down to y=100 with y growing upwards: from the top of the image downwards.
    ys = one.strokes[0][:, 1]
    assert ys[0] < ys[-1]
    # The 7's bar (tablet y=400) is at the top of the image, above its foot (tablet y=100).
    assert seven.strokes[0][0, 1] < seven.strokes[0][2, 1]


def test_parse_refuses_a_label_that_is_not_a_digit():
    with pytest.raises(pendigits.PendigitsError, match="not a quoted digit"):
        pendigits.parse(UNIPEN.replace('"7"', '"x"'))


def test_load_reads_gzip_latin1_from_an_argument_or_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "pen.tra.gz"
    path.write_bytes(gzip.compress(UNIPEN.replace("dene.doc", "dén.doc").encode("latin-1")))
    assert [d.label for d in pendigits.load(path)] == [1, 7]
    monkeypatch.setenv(pendigits.ENV_VAR, str(path))
    assert [d.writer for d in pendigits.load()] == [12, 3]
    with pytest.raises(pendigits.PendigitsError, match="not found"):
        pendigits.load(tmp_path / "missing.tra")


def test_writer_split_keeps_each_writer_on_one_side_only():
    stroke = (np.zeros((2, 2), dtype=np.float32),)
    digits = [pendigits.PenDigit(label=i % 10, writer=w, strokes=stroke) for w in range(1, 31) for i in range(5)]
    training, validation = pendigits.split_by_writer(digits)
    train_writers, validation_writers = {d.writer for d in training}, {d.writer for d in validation}
    assert not train_writers & validation_writers
    assert validation_writers == set(pendigits.VALIDATION_WRITERS)
    assert len(training) + len(validation) == len(digits)
    assert len(validation_writers) == 6


def test_a_round_pen_inks_the_stroke_and_its_round_caps_only():
    mask = pendigits.draw_strokes([np.array([[60.0, 140.0], [220.0, 140.0]])], width=18, size=280)
    assert mask.shape == (280, 280) and mask.dtype == np.uint8
    assert mask[140, 60:221].min() == 255  # along the stroke
    assert mask[140 - 6, 140] == 255 and mask[140 + 6, 140] == 255  # within the pen's half width
    assert mask[140 - 12, 140] == 0 and mask[140 + 12, 140] == 0  # beyond it
    assert mask[140, 60 - 6] == 255 and mask[140, 60 - 12] == 0  # a round cap reaches half a width past the end
    assert mask[140 - 8, 60 - 8] == 0  # ... and is round: its corner is not inked
    assert 0 < mask[140 - 9, 140] < 255 or 0 < mask[140 - 10, 140] < 255  # anti-aliased edge


def test_rendered_drawings_are_slate_pngs_the_handler_reads_with_the_ink_where_the_strokes_are():
    one, seven = pendigits.parse(UNIPEN)
    rng = np.random.default_rng(0)
    for style in canvas.STYLES:
        for _ in range(5):
            png = canvas.to_png(pendigits.render(one, rng=rng, style=style))
            image = Image.open(io.BytesIO(png))
            assert image.size == (280, 280) and image.format == "PNG"
            assert image.mode == ("RGB" if style == "white_on_black" else "RGBA")  # dark on white: as toDataURL()
            prepared = prepare(png)
            assert prepared.inverted == (style != "white_on_black")  # dark strokes, on white or on nothing
            # A vertical "1" stays a tall, narrow stroke: in the 28x28 view its ink is a column.
            rows, cols = np.nonzero(prepared.ink > 0.5)
            assert rows.max() - rows.min() >= 15 and cols.max() - cols.min() <= 8
    # The "7": its bar is at the top of the slate.
    ink = np.asarray(pendigits.render(seven, rng=rng, style="white_on_black").convert("L"))
    rows, cols = np.nonzero(ink > 127)
    top = ink[rows.min() : rows.min() + 5]
    assert np.count_nonzero(top > 127, axis=1).max() > 0.5 * (cols.max() - cols.min())


def test_renderings_cover_every_style_and_stay_inside_the_slate():
    digits = pendigits.parse(UNIPEN)
    drawn = pendigits.renderings(digits, count=3, seed=1)
    assert len(drawn) == 2 * 3 * len(canvas.STYLES)
    assert {style for *_, style in drawn} == set(canvas.STYLES)
    assert [(label, writer) for _, label, writer, _ in drawn] == [(1, 12)] * 9 + [(7, 3)] * 9
    assert pendigits.renderings(digits, count=3, seed=1) == drawn  # reproducible
    assert len(pendigits.renderings(digits, count=4, all_styles=False)) == 2 * 4
    for png, *_ in drawn:
        rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))  # (280, 280, 4)
        border = np.concatenate([rgba[0], rgba[-1], rgba[:, 0], rgba[:, -1]])  # (4 * 280, 4)
        assert (border == border[0]).all()  # no ink touches the edge
