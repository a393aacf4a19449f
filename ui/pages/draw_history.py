"""This browser's drawings under the slate, in both modes: a table, newest first (a number is one row, its whole drawing
as the thumbnail), a page at a time, and the running accuracy over the drawings with feedback. A row opens with a
click, Enter or Space; the page decides what opens (`on_relabel`): `digit_dialog` for a drawing, Number mode's dialog
(ui/pages/number.py) for a number.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from nicegui import binding, events, ui

from app.history import History
from records.errors import StoreUnavailable
from records.numbers import StoredNumber
from records.predictions import StoredPrediction
from records.stats import Accuracy
from ui.pages.number import number_table_row
from ui.theme import Heading

# Columns hidden on a phone (Quasar's gt-xs: from 600 px): the history shows what matters there, without scrolling.
WIDE_ONLY = {"classes": "gt-xs", "headerClasses": "gt-xs"}
HISTORY_COLUMNS = [
    {"name": "time", "label": "Time", "field": "time", "align": "left"},  # ISO with offset, shown in local time
    {"name": "thumb", "label": "Drawing", "field": "thumb", "align": "center"},
    {"name": "predicted", "label": "Predicted", "field": "predicted"},
    {"name": "confidence", "label": "Confidence", "field": "confidence", **WIDE_ONLY},
    {"name": "true", "label": "True answer", "field": "true"},
    {"name": "result", "label": "Right?", "field": "result"},
    {"name": "version", "label": "Model", "field": "version", **WIDE_ONLY},
]
# One row, by column. Rows take focus and open the relabel dialog with Enter or Space as with a click; times are shown
# in the browser's zone ('sv-SE' formats as 2026-12-01 23:03:19; on a phone the time of day only).
HISTORY_ROW = """
<q-tr :props="props" tabindex="0" class="cursor-pointer"
      @click="() => $parent.$emit('relabel', props.row)"
      @keydown.enter.prevent="() => $parent.$emit('relabel', props.row)"
      @keydown.space.prevent="() => $parent.$emit('relabel', props.row)">
  <q-td v-for="col in props.cols" :key="col.name" :props="props">
    <template v-if="col.name === 'time'">
      <span class="gt-xs" :title="col.value">{{ new Date(col.value).toLocaleString('sv-SE') }}</span>
      <span class="xs" :title="col.value">{{ new Date(col.value).toLocaleTimeString('sv-SE').slice(0, 5) }}</span>
    </template>
    <img v-else-if="col.name === 'thumb'" :src="col.value" :alt="props.row.alt"
         :style="{ width: props.row.kind === 'number' ? '108px' : '36px', height: '36px',
                   border: '1px solid #9ca3af' }"/>
    <span v-else-if="col.name === 'result' && col.value" role="img"
          :aria-label="col.value === '✓' ? 'right' : 'wrong'">{{ col.value }}</span>
    <template v-else>{{ col.value }}</template>
  </q-td>
</q-tr>
"""
UNAVAILABLE = "History unavailable: the database cannot be reached"


def accuracy_text(correct: int, labelled: int, total: int) -> str:
    drawings = "1 drawing" if total == 1 else f"{total} drawings"
    if labelled == 0:
        return f"{drawings} · no feedback yet"
    return f"{drawings} · accuracy {correct}/{labelled} = {correct / labelled:.1%} (over the digits with feedback)"


def version_accuracy_text(by_version: dict[str, Accuracy]) -> str:
    """Per model version, when more than one version answered this browser's labelled drawings."""
    if len(by_version) < 2:
        return ""
    return "by model: " + " · ".join(
        f"{version} {a.correct}/{a.labelled} = {a.rate:.0%}" for version, a in sorted(by_version.items())
    )


def table_row(row: StoredPrediction) -> dict:
    result = {None: "", True: "✓", False: "✗"}[row.right]  # refusing a real digit is wrong
    return {
        "key": f"drawing {row.id}",
        "kind": "drawing",
        "alt": f"drawing #{row.id}",
        "id": row.id,
        "request_id": str(row.request_id),
        "time": row.created_at.isoformat(timespec="seconds") if row.created_at else "",  # shown in local time
        "thumb": f"/drawings/{row.id}",  # the browser fetches (and caches) each drawing once
        "predicted": f"not a digit ({row.predicted_digit})" if row.answer.not_a_digit else row.predicted_digit,
        "confidence": f"{row.answer.confidence:.1%}",
        "true": "not a digit" if row.labelled_not_a_digit else "" if row.true_digit is None else row.true_digit,
        "result": result,
        "version": row.answer.model_version,
    }


class HistoryCard:
    """The card; `refresh` reads the page shown (the page calls it once the browser is connected, and after each
    save). The two accuracy lines are bound to `accuracy` and `by_version`."""

    accuracy = binding.BindableProperty()
    by_version = binding.BindableProperty()

    def __init__(
        self, *, history: History, browser_id: str, page_size: int, on_relabel: Callable[[dict], None]
    ) -> None:
        self.history = history
        self.browser_id = browser_id
        self.page_size = page_size
        self.on_relabel = on_relabel
        self.page = 1
        self.accuracy = ""
        self.by_version = ""
        self._build()

    def _build(self) -> None:
        with ui.card().classes("w-full max-w-4xl mx-auto"):
            with ui.row().classes("w-full items-center justify-between"):
                Heading("Your drawings", level=2)
                with ui.column().classes("items-end gap-0"):
                    ui.label("").mark("accuracy").bind_text_from(self, "accuracy")
                    ui.label("").classes("text-xs text-gray-600").mark("version-accuracy").bind_text_from(
                        self, "by_version"
                    )
            self.table = ui.table(columns=HISTORY_COLUMNS, rows=[], row_key="key").classes("w-full").mark("history")
            self.table.props('no-data-label="No drawings yet" wrap-cells')
            self.table.add_slot("body", HISTORY_ROW)
            self.table.on("relabel", self._on_relabel)
            ui.label("Click a row, or press Enter on it, to set or change its true digit (or number).").classes(
                "text-xs text-gray-600"
            )
            self.pagination = ui.pagination(1, 1, direction_links=True, on_change=self._on_page)

    async def _on_page(self, event: events.ValueChangeEventArguments) -> None:
        self.page = int(event.value or 1)
        await self.refresh()

    async def refresh(self) -> None:
        try:
            window = await self.history.page(browser_id=self.browser_id, page=self.page, size=self.page_size)
        except StoreUnavailable:  # (answered at once while the database is known to be down)
            self.accuracy = UNAVAILABLE
            return
        self.page = window.page
        self.pagination.max = window.pages
        self.pagination.set_value(window.page)
        self.table.rows = [
            number_table_row(entry) if isinstance(entry, StoredNumber) else table_row(entry) for entry in window.entries
        ]
        self.table.update()
        correct, labelled = window.accuracy
        self.accuracy = accuracy_text(correct, labelled, window.total)
        self.by_version = version_accuracy_text(window.by_version)

    def _on_relabel(self, event: events.GenericEventArguments) -> None:
        row = event.args
        if isinstance(row, dict) and "id" in row:
            self.on_relabel(row)


def digit_dialog(row: dict, *, label: Callable[[uuid.UUID, int, int | None], Awaitable[bool]]) -> None:
    """A drawing's row: ten buttons, one per true digit, and "Not a digit" (label None); the dialog closes once the
    label is saved."""
    with ui.dialog() as dialog, ui.card():
        Heading(f"True digit for drawing #{row['id']}", level=2)
        ui.label(f"The model read {row['predicted']}.").classes("text-sm text-gray-600")

        async def choose(digit: int | None) -> None:
            if await label(uuid.UUID(row["request_id"]), int(row["id"]), digit):
                dialog.close()

        with ui.grid(columns=5):
            for digit in range(10):
                ui.button(str(digit), on_click=lambda d=digit: choose(d)).props(f'aria-label="True digit {digit}"')
        ui.button("Not a digit", on_click=lambda: choose(None)).props("outline no-caps").mark("dialog-not-digit")
        ui.button("Cancel", on_click=dialog.close).props("flat no-caps")
    dialog.open()
