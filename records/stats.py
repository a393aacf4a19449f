"""The numbers of the stats pages: accuracy overall, per digit, per model version, and of whole numbers
(db/predictions.py and db/numbers.py count them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from records.predictions import DIGITS


class Accuracy(NamedTuple):
    """Correct predictions among the labelled ones; compares equal to the plain tuple (correct, labelled)."""

    correct: int
    labelled: int

    @property
    def rate(self) -> float | None:
        """correct / labelled, or None when nothing is labelled yet."""
        return self.correct / self.labelled if self.labelled else None


class VersionStats(NamedTuple):
    """Accuracy of one model version over its labelled rows, and how many predictions it made in all."""

    correct: int
    labelled: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


class NumberStats(NamedTuple):
    """Whole numbers (db/numbers.py): how many were read, how many the users labelled, how many of those were read
    exactly (every digit, and no digit too many or too few)."""

    total: int
    labelled: int
    exact: int

    @property
    def rate(self) -> float | None:
        return self.exact / self.labelled if self.labelled else None


NO_NUMBERS = NumberStats(total=0, labelled=0, exact=0)


class RefusalStats(NamedTuple):
    """The "not a digit" answers and labels: refusals answered, how many the users confirmed (right, not a digit) and
    overturned (it is a digit), and answered digits the users said were not a digit."""

    answered: int
    confirmed: int
    overturned: int
    not_digits: int  # "This is not a digit" on an answered digit


NO_REFUSALS = RefusalStats(answered=0, confirmed=0, overturned=0, not_digits=0)


@dataclass(frozen=True)
class Stats:
    """Global numbers for the stats page (all browsers)."""

    total: int  # all predictions, labelled or not: single drawings and the digits of numbers
    overall: Accuracy
    per_digit: dict[int, Accuracy]  # keyed by the true digit; all of 0..9 present
    confusion: list[list[int]]  # confusion[true][predicted], 10x10, labelled rows only
    per_version: dict[str, VersionStats]
    numbers: NumberStats = NO_NUMBERS  # whole numbers, counted apart (app/history.py adds them)
    refusals: RefusalStats = NO_REFUSALS

    @classmethod
    def from_counts(
        cls,
        pairs: list[tuple[int, int, int]],
        versions: list[tuple[str, int, int, int]],
        refusals: RefusalStats = NO_REFUSALS,
    ) -> Stats:
        """From (true, predicted, count) pairs of digit labels and (version, correct, labelled, total) rows. The
        overall accuracy is the versions' sum: it counts "not a digit" labels too (a confirmed refusal is right, "not
        a digit" for an answered digit is wrong), which the matrix of digits 0..9 has no place for."""
        confusion = [[0] * len(DIGITS) for _ in DIGITS]
        for true_digit, predicted_digit, count in pairs:
            confusion[true_digit][predicted_digit] = count
        per_digit = {digit: Accuracy(confusion[digit][digit], sum(confusion[digit])) for digit in DIGITS}
        per_version = {
            version: VersionStats(correct, labelled, total) for version, correct, labelled, total in versions
        }
        overall = Accuracy(sum(v.correct for v in per_version.values()), sum(v.labelled for v in per_version.values()))
        total = sum(v.total for v in per_version.values())
        return cls(
            total=total, overall=overall, per_digit=per_digit, confusion=confusion, per_version=per_version,
            refusals=refusals,
        )  # fmt: skip
