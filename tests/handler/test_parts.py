"""A drawing's ink as parts (handler/parts.py), on drawings made here: small marks join their digit, specks drop, and
the writing's slant is measured."""

from handler import segmentation
from handler.parts import writing_slant
from handler.preprocess import decode, ink_map
from tests.handler.test_numbers import drawing, five_with_its_bar_apart, one, seven


def test_a_5s_bar_joins_its_body_and_a_speck_is_dropped():
    ink, _ = ink_map(decode(drawing(five_with_its_bar_apart(100), one(400), [[(600, 250)]])))
    found = segmentation.segment(ink)
    assert len(found.parts) == 2  # the 5 (body and bar) and the 1, in reading order
    five, one_ = found.parts
    assert five.x1 < one_.x0
    assert five.y0 < 56 / 2 < five.y1  # the bar (y 56 on the 840 px slate, worked on at 420) is the 5's


def test_the_slant_comes_from_the_upright_strokes():
    upright = ink_map(decode(drawing(*[one(x) for x in (150, 400, 650)])))[0]
    leaning = ink_map(decode(drawing(*[[[(x + 40, 60), (x, 220)]] for x in (150, 400, 650)], seven(20))))[0]
    assert abs(writing_slant(upright)) < 0.05
    assert abs(writing_slant(leaning) - 40 / 160) < 0.05  # x per y, the 7's long diagonal outvoted
