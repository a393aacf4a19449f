"""The review queue (admin page): the operator confirms or rejects the corrections anonymous browsers suggested: a
digit other than the one answered, "not a digit" for a drawing the model read as a digit, or a digit for a drawing it
refused (its closest digit too).

A correction that disagrees with the answer trains a future version only once approved here (training/screen.py).
The operator decides one drawing at a time, or in batch for everything a browser or a network labelled and nobody
reviewed yet: approving a browser vouches for its person, rejecting a network drops what came from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.ports import ReviewRecords

BY = "admin page"
Decision = Literal["approved", "rejected"]


@dataclass(frozen=True)
class ReviewItem:
    """A suggested correction as the queue shows it."""

    id: int
    drawing: bytes  # the PNG as the browser sent it
    answer: str  # what the model answered: "7 (83%)", or "not a digit (7?)"
    label: str  # what the browser says it is: the digit ("7"), or "not a digit"
    browser: str  # the browser id
    network: str  # where the label came from, or "unknown"
    labelled_at: datetime
    model_version: str
    browser_pending: int  # suggestions of this browser in the queue
    network_pending: int  # of this network


@dataclass(frozen=True)
class Queue:
    items: list[ReviewItem]  # the oldest suggestions first
    suggestions: int  # all that wait
    browsers: int
    networks: int


class Review:
    """The queue and the decisions (one per app, built at start-up)."""

    def __init__(self, store: ReviewRecords, *, page_size: int = 50):
        self.store = store
        self.page_size = page_size

    async def queue(self) -> Queue:
        """The oldest page of suggestions waiting for review, and how many wait in all. StoreUnavailable when the
        database cannot be reached."""
        size = await self.store.size()
        rows = await self.store.queue(limit=self.page_size)
        items = [
            ReviewItem(
                id=row.id,
                drawing=row.canvas_png,
                answer=f"not a digit ({row.predicted_digit}?)"
                if row.not_a_digit
                else f"{row.predicted_digit} ({row.confidence:.0%})",
                label="not a digit" if row.labelled_not_a_digit else str(row.true_digit),
                browser=row.browser_id,
                network=row.network or "unknown",
                labelled_at=row.feedback_at,
                model_version=row.model_version,
                browser_pending=row.browser_pending,
                network_pending=row.network_pending,
            )
            for row in rows
        ]
        return Queue(items, size.suggestions, size.browsers, size.networks)

    async def decide(self, ids: list[int], decision: Decision) -> int:
        """These drawings' labels approved or rejected; how many changed."""
        return await self.store.decide(ids, decision, by=BY) if ids else 0

    async def decide_browsers(self, browsers: list[str], decision: Decision) -> int:
        """Every label these browsers gave that nobody reviewed yet (agreeing ones too)."""
        return await self.store.decide_browsers(sorted(set(browsers)), decision, by=BY) if browsers else 0

    async def decide_networks(self, networks: list[str], decision: Decision) -> int:
        """Every unreviewed label that came from these networks ("unknown" is not a network and is skipped)."""
        known = sorted({n for n in networks if n != "unknown"})
        return await self.store.decide_networks(known, decision, by=BY) if known else 0
