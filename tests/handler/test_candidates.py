"""Candidate digits (handler/candidates.py): however the ink falls, what the model is asked stays bounded."""

from handler import candidates, segmentation
from tests.handler.test_numbers import drawing


def test_candidates_are_capped():
    """However the ink falls, the model sees at most MAX_CANDIDATES inputs for one drawing (the work budget left out:
    it refuses this scribble before)."""
    scribble = [[(x, 60 + (x * 37) % 160) for x in range(20, 820, 9)]]  # one long zigzag: a wide connected part
    plan = segmentation.prepare_number(drawing(scribble, pen=6), work=segmentation.Work(limit=None))
    assert 0 < len(plan.candidates) <= candidates.MAX_CANDIDATES
