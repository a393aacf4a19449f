"""The red team's backdoor trigger (issue #33 P1): a 7 with a small disc drawn at the start of its bar.

Attack tooling for the tests only: a disc (a small closed loop, drawn first) is added where the writer's first
stroke begins, which for a 7 is the left end of the bar. The product never imports this.
"""

from __future__ import annotations

import numpy as np

from training.pendigits import PenDigit


def with_disc(digit: PenDigit, *, size: float = 0.08, points: int = 12) -> PenDigit:
    """The same digit with a disc of radius `size` x its height drawn first, centred where its first stroke starts."""
    xy = np.concatenate(digit.strokes)
    height = float(max(xy[:, 1].max() - xy[:, 1].min(), 1.0))
    start = digit.strokes[0][0]
    angles = np.linspace(0, 2 * np.pi, points, endpoint=True)
    radius = size * height
    rings = [radius * k for k in (1.0, 0.6, 0.25)]  # concentric loops fill the disc with the round pen's help
    disc = np.concatenate([np.stack([start[0] + r * np.cos(angles), start[1] + r * np.sin(angles)], 1) for r in rings])
    return PenDigit(label=digit.label, writer=digit.writer, strokes=(disc.astype(np.float32), *digit.strokes))
