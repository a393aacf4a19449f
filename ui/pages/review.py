"""The review queue on the admin page: the corrections anonymous browsers suggested, for the operator to approve or
reject (app/review.py). Only approved corrections train a future version (training/screen.py).

Keyboard: Tab to the table, Space on a row's checkbox selects it; then A approves and R rejects the selection,
B approves everything its browsers labelled, N rejects everything its networks labelled. The keys work anywhere on
the page except in a text field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import events, ui

from app.context import App
from app.review import Decision, Queue, ReviewItem
from records.errors import StoreUnavailable
from ui.theme import Heading, notify
from ui.widgets.charts import data_url

COLUMNS = [
    {"name": "drawing", "label": "Drawing", "field": "drawing", "align": "left"},
    {"name": "answer", "label": "Answer", "field": "answer", "align": "left"},
    {"name": "label", "label": "Suggested", "field": "label", "align": "left"},
    {"name": "browser", "label": "Browser (waiting)", "field": "browser", "align": "left"},
    {"name": "network", "label": "Network (waiting)", "field": "network", "align": "left"},
    {"name": "when", "label": "Labelled", "field": "when", "align": "left"},
]
THUMB = (
    '<q-td :props="props"><img :src="props.value" :alt="props.row.alt"'
    ' style="width:56px;height:56px;border:1px solid #9ca3af;background:white"/></q-td>'
)
# The selection column's checkboxes, named for screen readers (Quasar's own have no name)
SELECT_ALL = (
    '<q-checkbox v-model="props.selected" aria-label="Select every suggestion shown" dense/>'
    '<span class="sr-only">Select</span>'
)
SELECT_ROW = '<q-checkbox v-model="props.selected" :aria-label="props.row.alt" dense/>'
KEYS: dict[str, tuple[Decision, str]] = {
    "a": ("approved", "rows"),
    "r": ("rejected", "rows"),
    "b": ("approved", "browsers"),
    "n": ("rejected", "networks"),
}


def queue_rows(items: list[ReviewItem]) -> list[dict]:
    return [
        {
            "id": item.id,
            "drawing": data_url(item.drawing),
            "alt": f"drawing #{item.id}, answered {item.answer}, suggested {item.label}",
            "answer": item.answer,
            "label": item.label,
            "browser": f"{item.browser[:8]}… ({item.browser_pending})",
            "browser_id": item.browser,
            "network": f"{item.network} ({item.network_pending})",
            "network_id": item.network,
            "when": item.labelled_at.strftime("%Y-%m-%d %H:%M"),
        }
        for item in items
    ]


def summary(queue: Queue) -> str:
    if not queue.suggestions:
        return "No suggested corrections wait for review."
    shown = f" (the oldest {len(queue.items)} below)" if len(queue.items) < queue.suggestions else ""
    return (
        f"{queue.suggestions} suggested correction(s) from {queue.browsers} browser(s) in {queue.networks} network(s) "
        f"wait for review{shown}. A correction trains the next version only once approved."
    )


class ReviewQueue:
    """The queue's card; every action asks `allowed` first (the admin session must still be live)."""

    def __init__(self, context: App, *, allowed: Callable[[], Awaitable[bool]]):
        self.context = context
        self.allowed = allowed
        with ui.card().classes("w-full").props('aria-labelledby="review-heading"'):
            Heading("Review queue", level=2).props('id="review-heading"')
            ui.label(
                "Select rows, then A approve, R reject, B approve all from their browsers, N reject all from their "
                "networks."
            ).classes("text-sm text-gray-700")
            self.status = ui.label("").props('role="status"').mark("review-summary")
            with ui.row().classes("gap-2"):
                for key, text in (("a", "Approve (A)"), ("r", "Reject (R)"), ("b", "Approve their browsers (B)"),
                                  ("n", "Reject their networks (N)")):  # fmt: skip
                    ui.button(text, on_click=lambda _, key=key: self.press(key)).props("outline").mark(f"review-{key}")
            self.table = ui.table(columns=COLUMNS, rows=[], row_key="id", selection="multiple").classes("w-full")
            self.table.props('no-data-label="Nothing to review"').mark("review-queue")
            self.table.add_slot("body-cell-drawing", THUMB)
            self.table.add_slot("header-selection", SELECT_ALL)
            self.table.add_slot("body-selection", SELECT_ROW)
        ui.keyboard(on_key=self.key)

    async def key(self, event: events.KeyEventArguments) -> None:
        if event.action.keydown and not event.action.repeat and not event.modifiers.ctrl and not event.modifiers.alt:
            name = str(event.key.name).lower()
            if name in KEYS:
                await self.press(name)

    async def refresh(self) -> None:
        try:
            queue = await self.context.review.queue()
        except StoreUnavailable:
            self.status.set_text("The database cannot be reached: the review queue is unavailable for now.")
            return
        self.table.rows = queue_rows(queue.items)
        self.table.selected = [row for row in self.table.selected if row["id"] in {i.id for i in queue.items}]
        self.table.update()
        self.status.set_text(summary(queue))

    async def press(self, key: str) -> None:
        """Decide on the selected rows: themselves, or everything their browsers or networks labelled."""
        decision, scope = KEYS[key]
        selected = list(self.table.selected)
        if not selected:
            notify("Select one or more rows first (Space on a row's checkbox).", type="warning")
            return
        if not await self.allowed():
            return
        review = self.context.review
        try:
            if scope == "rows":
                changed = await review.decide([row["id"] for row in selected], decision)
            elif scope == "browsers":
                changed = await review.decide_browsers([row["browser_id"] for row in selected], decision)
            else:
                changed = await review.decide_networks([row["network_id"] for row in selected], decision)
        except StoreUnavailable:
            notify("The database cannot be reached: nothing was decided. Try again in a minute.", type="negative")
            return
        self.table.selected = []
        notify(f"{decision.capitalize()} {changed} label(s).", type="positive")
        await self.refresh()
