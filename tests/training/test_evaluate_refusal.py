"""training/evaluate_refusal.py: the letters it draws in system fonts (the live measurement itself needs the data)."""

import io

import numpy as np
import pytest
from PIL import Image

from training import evaluate_refusal, font_letters, unipen


def test_no_digit_like_letter_is_measured():
    assert not set(font_letters.LETTERS) & set(unipen.DIGIT_LIKE_LETTERS)
    assert "H" in font_letters.LETTERS and "O" not in font_letters.LETTERS


def test_a_font_letter_is_black_on_a_white_slate_centred_at_the_size_asked():
    fonts = font_letters.fonts()
    if not fonts:
        pytest.skip("no TrueType font under /usr/share/fonts")
    png = evaluate_refusal.font_letter(fonts[0], "H", 170)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert image.shape == (280, 280) and image[0, 0] == 255
    rows = np.flatnonzero((image < 128).any(axis=1))
    assert abs((rows[-1] - rows[0] + 1) - 170) <= 8  # the ink is as tall as asked
    assert abs((rows[0] + rows[-1]) / 2 - 140) <= 6  # and centred


def test_the_training_and_held_out_fonts_are_apart_and_their_letters_vary():
    train, heldout = font_letters.fonts("train"), font_letters.fonts("heldout")
    if not train or not heldout:
        pytest.skip("DejaVu or Liberation fonts are not installed")
    assert not set(train) & set(heldout)
    pngs = font_letters.letters(count=6, seed=0, part="train")
    assert len(set(pngs)) == 6 and pngs == font_letters.letters(count=6, seed=0, part="train")  # deterministic
    assert pngs != font_letters.letters(count=6, seed=0, part="heldout")
