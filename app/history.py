"""A browser's history and everyone's statistics, as the pages and the JSON API show them.

A history is a timeline of single drawings and numbers, newest first: a number is one entry (a StoredNumber with its
digits), never its digits one by one. The statistics count digits (single drawings and the digits of numbers, which are
prediction rows: per digit, per version, the confusion matrix) and whole numbers (`Stats.numbers`) separately.

While the database is known to be down (writes waiting in the journal: app/predictions.py; or a read or write met the
outage a moment ago: app/outage.py), these answer at once with StoreUnavailable instead of waiting for the pool's
timeout on every page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from app.ports import NumberRecords, PredictionRecords
from app.predictions import Predictions
from records.errors import StoreUnavailable
from records.numbers import StoredNumber
from records.predictions import StoredPrediction
from records.stats import Accuracy, Stats

T = TypeVar("T")
Entry = StoredPrediction | StoredNumber  # one line of a history: a single drawing, or a number with its digits


@dataclass(frozen=True)
class HistoryWindow:
    """One page of a browser's history (newest first, without drawings: see History.drawing), its accuracy."""

    entries: list[Entry]
    total: int  # the browser's entries in all (single drawings and numbers)
    page: int  # 1-based, within 1..pages
    pages: int
    by_version: dict[str, Accuracy]  # over the browser's labelled digits (single drawings and digits of numbers)

    @property
    def rows(self) -> list[StoredPrediction]:
        """The single drawings of the page (what a page without numbers shows)."""
        return [entry for entry in self.entries if isinstance(entry, StoredPrediction)]

    @property
    def numbers(self) -> list[StoredNumber]:
        return [entry for entry in self.entries if isinstance(entry, StoredNumber)]

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(
            sum(a.correct for a in self.by_version.values()), sum(a.labelled for a in self.by_version.values())
        )


class History:
    """What a browser has drawn, and how the app does overall. One per app."""

    def __init__(self, *, store: PredictionRecords, numbers: NumberRecords, predictions: Predictions):
        self.store = store
        self.numbers = numbers
        self.predictions = predictions

    @property
    def database_known_down(self) -> bool:
        """Whether a read would be answered StoreUnavailable at once (the pages say so without asking)."""
        return self.predictions.database_down or self.predictions.outage.known

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.predictions.database_down:
            raise StoreUnavailable("the database cannot be reached (writes wait in the journal)")
        return await self.predictions.outage.read(call)

    async def page(self, *, browser_id: str, page: int, size: int) -> HistoryWindow:
        """Page `page` (1-based; past the last, the last) of `size` rows."""
        return await self._read(lambda: self._page(browser_id=browser_id, page=page, size=size))

    async def _page(self, *, browser_id: str, page: int, size: int) -> HistoryWindow:
        total = await self.numbers.timeline_count(browser_id=browser_id)
        pages = max(1, -(-total // size))
        page = min(max(1, page), pages)
        entries = await self.numbers.timeline(browser_id=browser_id, limit=size, offset=(page - 1) * size)
        by_version = await self.store.accuracy_by_version(browser_id=browser_id)
        return HistoryWindow(entries=entries, total=total, page=page, pages=pages, by_version=by_version)

    async def rows(self, *, browser_id: str, limit: int, offset: int) -> tuple[list[Entry], int]:
        """(entries, total): the JSON API's paging by offset."""

        async def both() -> tuple[list[Entry], int]:
            return (
                await self.numbers.timeline(browser_id=browser_id, limit=limit, offset=offset),
                await self.numbers.timeline_count(browser_id=browser_id),
            )

        return await self._read(both)

    async def drawing(self, *, browser_id: str, prediction_id: int) -> bytes | None:
        """The drawing of one of the browser's predictions (its thumbnail), None when it is not theirs."""
        return await self._read(lambda: self.store.drawing(browser_id=browser_id, prediction_id=prediction_id))

    async def number_drawing(self, *, browser_id: str, number_id: int) -> bytes | None:
        """The whole drawing of one of the browser's numbers, None when it is not theirs (a digit's crop is a
        drawing: see drawing())."""
        return await self._read(lambda: self.numbers.drawing(browser_id=browser_id, number_id=number_id))

    async def stats(self) -> Stats:
        async def both() -> Stats:
            return replace(await self.store.stats(), numbers=await self.numbers.stats())

        return await self._read(both)
