"""Cut paths through touching digits (handler/cuts.py), on drawings made here."""

import numpy as np

from handler import segmentation
from handler.preprocess import decode, ink_map
from tests.handler.test_numbers import drawing, zero


def test_a_cut_runs_down_the_stroke_two_0s_share():
    """The line from the upper contour's valley to the lower contour's peak follows the shared upright stroke, so
    each 0 keeps half of it."""
    ink, _ = ink_map(decode(drawing(zero(150), zero(244))))
    found = segmentation.segment(ink)
    (paths,) = [paths for paths in found.paths if paths]
    shared = 240 / 2  # the shared stroke's column in ink pixels (the 840 px slate is worked on at 420)
    assert any(np.all(np.abs(path.columns - shared) <= found.ink.pen) for path in paths)
