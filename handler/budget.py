"""What finding the cuts and candidates of one drawing may cost (the number reader's work budget).

The work is counted rather than timed, so that whether a drawing is read never depends on how busy the machine is. A
unit is about a microsecond of one core: each step charges what its numpy calls cost, fitted to CPU time over real
numbers and zigzags (`python -m tools.bench_inputs --numbers`). Real numbers take at most ~34,000 (UNIPEN's, composed
ones of 2-10 digits with touching pairs); a dense zigzag over the slate took 90,000-290,000 (120-460 ms) before it
was stopped here, after ~60 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# the repository layout (tests, UI; and what mypy checks); see handler/mnist_handler.py for why not try/except
if TYPE_CHECKING or __package__:
    from .errors import PreprocessError
else:  # inside the .mar, every file sits flat in the model directory
    from errors import PreprocessError

MAX_WORK = 50_000
TOO_COMPLEX = "This drawing is too complex to read as a number: try writing it more simply or in fewer strokes"


class TooComplexError(PreprocessError):
    """Reading the drawing as a number would take more work than one request may have (MAX_WORK)."""

    status = 422


@dataclass
class Work:
    """The work spent on one drawing so far (units: see MAX_WORK); TooComplexError once it passes `limit` (None: no
    limit, for tools that measure)."""

    limit: float | None = MAX_WORK
    done: float = 0.0

    def spend(self, units: float) -> None:
        self.done += units
        if self.limit is not None and self.done > self.limit:
            raise TooComplexError(TOO_COMPLEX)
