"""A browser's history and everyone's statistics, as the pages and the JSON API show them.

While the database is known to be down (writes waiting in the journal: app/predictions.py; or a read or write met the
outage a moment ago: app/outage.py), these answer at once with StoreUnavailable instead of waiting for the pool's
timeout on every page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from app.ports import PredictionRecords
from app.predictions import Predictions
from db.pool import StoreUnavailable
from db.predictions import Accuracy, PredictionRow, Stats

T = TypeVar("T")


@dataclass(frozen=True)
class HistoryPage:
    """One page of a browser's predictions (newest first, without drawings: see History.drawing), its accuracy."""

    rows: list[PredictionRow]
    total: int  # the browser's predictions in all
    page: int  # 1-based, within 1..pages
    pages: int
    by_version: dict[str, Accuracy]  # over the browser's labelled predictions

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(
            sum(a.correct for a in self.by_version.values()), sum(a.labelled for a in self.by_version.values())
        )


class History:
    """What a browser has drawn, and how the app does overall. One per app."""

    def __init__(self, *, store: PredictionRecords, predictions: Predictions):
        self.store = store
        self.predictions = predictions

    @property
    def database_known_down(self) -> bool:
        """Whether a read would be answered StoreUnavailable at once (the pages say so without asking)."""
        return self.predictions.database_down or self.predictions.outage.known

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.predictions.database_down:
            raise StoreUnavailable("the database cannot be reached (writes wait in the journal)")
        return await self.predictions.outage.read(call)

    async def page(self, *, browser_id: str, page: int, size: int) -> HistoryPage:
        """Page `page` (1-based; past the last, the last) of `size` rows."""
        return await self._read(lambda: self._page(browser_id=browser_id, page=page, size=size))

    async def _page(self, *, browser_id: str, page: int, size: int) -> HistoryPage:
        total = await self.store.history_count(browser_id=browser_id)
        pages = max(1, -(-total // size))
        page = min(max(1, page), pages)
        rows = await self.store.history(browser_id=browser_id, limit=size, offset=(page - 1) * size)
        by_version = await self.store.accuracy_by_version(browser_id=browser_id)
        return HistoryPage(rows=rows, total=total, page=page, pages=pages, by_version=by_version)

    async def rows(self, *, browser_id: str, limit: int, offset: int) -> tuple[list[PredictionRow], int]:
        """(rows, total): the JSON API's paging by offset."""

        async def both() -> tuple[list[PredictionRow], int]:
            return (
                await self.store.history(browser_id=browser_id, limit=limit, offset=offset),
                await self.store.history_count(browser_id=browser_id),
            )

        return await self._read(both)

    async def drawing(self, *, browser_id: str, prediction_id: int) -> bytes | None:
        """The drawing of one of the browser's predictions (its thumbnail), None when it is not theirs."""
        return await self._read(lambda: self.store.drawing(browser_id=browser_id, prediction_id=prediction_id))

    async def stats(self) -> Stats:
        return await self._read(self.store.stats)
