"""The drawing page: the slate, Predict, the result (or "not a digit"), Why?, feedback, and this browser's history
with its accuracy."""

from __future__ import annotations

import functools
import logging
import uuid

from nicegui import events, ui

from app.context import App
from app.predictions import NotYours, Recorded, SavedIn
from app.records import (
    Accuracy,
    JournalWriteError,
    ModelUnavailable,
    Prediction,
    PredictionRejected,
    PredictionRow,
    StoreUnavailable,
)
from ui.widgets.charts import bar_chart, data_url
from ui.widgets.slate import Slate
from ui.widgets.why import WhyView

logger = logging.getLogger(__name__)


def parse_digit(text: object) -> int:
    """The digit a user typed as the right answer; ValueError with a message for anything but one digit 0-9."""
    value = str(text if text is not None else "").strip()
    if len(value) != 1 or not value.isdecimal():  # isdigit() also takes "²", which int() refuses
        raise ValueError("Type one digit from 0 to 9")
    return int(value)


NOT_A_DIGIT = "That doesn't look like a digit — draw one digit"


def confidence_text(confidence: float, *, threshold: float) -> str:
    percent = f"{confidence:.1%}"
    return f"not sure ({percent})" if confidence < threshold else f"{percent} sure"


def refusal_text(prediction: Prediction) -> str:
    """The small print under a refusal: why, and the digit it came closest to."""
    reason = prediction.reason or "doesn't look like a digit"
    return f"{reason} · closest digit: {prediction.closest_digit} ({prediction.confidence:.0%})"


def chart_options(probabilities: list[float], digit: int | None = None) -> dict:
    """The ten probabilities as bars, the predicted digit's darker."""
    return bar_chart(probabilities, colors=["#2563eb" if d == digit else "#93c5fd" for d in range(10)])


KEPT_LOCALLY = "The database is unavailable: this is kept on the server and will be saved when it is back"
NOT_KEPT = "Not saved: the database is unavailable and the server could not keep it either"


HISTORY_COLUMNS = [
    {"name": "time", "label": "Time", "field": "time", "align": "left"},  # ISO with offset, shown in local time
    {"name": "thumb", "label": "Drawing", "field": "thumb", "align": "center"},
    {"name": "predicted", "label": "Predicted", "field": "predicted"},
    {"name": "confidence", "label": "Confidence", "field": "confidence"},
    {"name": "true", "label": "True digit", "field": "true"},
    {"name": "result", "label": "", "field": "result"},
    {"name": "version", "label": "Model", "field": "version"},
]


class DrawPage:
    """One browser tab's page. Everything it stores is tagged with the browser's id."""

    def __init__(self, context: App, *, browser_id: str, network: str | None = None):
        self.context = context
        self.predictions = context.predictions
        self.settings = context.settings
        self.browser_id = browser_id
        self.network = network  # the page's client network (app/networks.py), kept with predictions and labels
        self.shown: Recorded | None = None  # the prediction on screen, with the drawing that was predicted
        self.busy = False
        self.history_page = 1
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.database_status = ui.label("").classes("w-full text-center text-sm text-amber-700").mark("db-status")
        self.database_status.set_visibility(False)
        # While the note shows, a timer re-checks every 3 s so that it goes once the journal has been written. It is
        # made only then: a timer built with the page kept NiceGUI's simulated user from reopening the page in tests.
        self.status_timer: ui.timer | None = None
        with ui.row().classes("w-full gap-6 items-start justify-center"):
            self._build_slate()
            self._build_result()
        self.why = WhyView(explain=functools.partial(self.context.explainer.explain, client=self.browser_id))
        self._build_history()
        ui.keyboard(on_key=self._on_key)
        if self.predictions.note().set_aside:
            self._show_database_status()  # Enter predicts (ignored while typing in an input)

    def _build_slate(self) -> None:
        with ui.card().classes("items-center"):
            ui.label("Draw a digit").classes("text-lg font-medium")
            self.slate = Slate(stroke_width=18, on_change=self._on_drawing_changed).mark("slate")
            with ui.row().classes("w-full items-center no-wrap"):
                ui.icon("brush").tooltip("Pen width")
                ui.slider(min=6, max=36, step=1, value=18, on_change=lambda e: self.slate.set_stroke_width(e.value))
                ui.button(icon="undo", on_click=self.slate.undo).props("flat round").tooltip("Undo last stroke")
                ui.button(icon="delete", on_click=self._clear).props("flat round").tooltip("Clear")
            with ui.row().classes("w-full items-center justify-between"):
                self.live = ui.switch("Live", value=False).tooltip("Predict after every stroke (not saved)")
                self.predict_button = ui.button("Predict", icon="auto_awesome", on_click=self.predict).mark("predict")

    def _build_result(self) -> None:
        with ui.card().classes("min-w-[320px]"):
            with ui.row().classes("items-center gap-6"):
                self.digit_label = ui.label("–").classes("text-8xl font-bold leading-none").mark("digit")
                with ui.column().classes("gap-1"):
                    self.confidence_label = ui.label("Draw, then press Predict (or Enter)").mark("confidence")
                    self.refusal_label = ui.label("").classes("text-xs text-gray-500").mark("refusal")
                    self.version_label = ui.label("").classes("text-sm text-gray-500").mark("version")
                    # shown with the first prediction (a placeholder box would read as a broken image)
                    with ui.row().classes("items-end gap-3") as self.preview_box:
                        with ui.column().classes("gap-1"):
                            ui.label("What the model saw:").classes("text-xs text-gray-500")
                            self.preview = (
                                ui.image("")
                                .props("no-spinner no-transition")
                                .classes("w-[84px] h-[84px]")
                                .style("image-rendering: pixelated")
                                .mark("preview")
                            )
                        self.why_button = (
                            ui.button("Why?", icon="help_outline", on_click=self.explain)
                            .props("outline no-caps")
                            .tooltip("Show which strokes made the model say this")
                            .mark("why")
                        )
            self.preview_box.set_visibility(False)
            self.refusal_label.set_visibility(False)
            self.chart = ui.echart(chart_options([0.0] * 10)).classes("w-[320px] h-[180px]")
            self.feedback_hint = ui.label("After Predict: confirm the answer or type the right digit here.")
            self.feedback_hint.classes("text-sm text-gray-500").mark("feedback-hint")
            with ui.row().classes("items-center no-wrap") as self.feedback_row:
                self.correct_input = (
                    ui.input("Correct digit").props("maxlength=1 dense outlined").classes("w-28").mark("correct")
                )
                self.correct_input.on("keydown.enter", self.submit_feedback)
                submit = ui.button("Submit feedback", on_click=self.submit_feedback).props("outline")
                correct = (
                    ui.button("Correct", icon="check", on_click=self.confirm_correct)
                    .props("color=positive")
                    .mark("confirm")
                )
            self.feedback_controls = [self.correct_input, submit, correct]
            self.confirm_button = correct
            self.feedback_label = ui.label("").classes("text-sm").mark("feedback")
            self._enable_feedback(False)

    def _build_history(self) -> None:
        with ui.card().classes("w-full max-w-4xl mx-auto"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Your drawings").classes("text-lg font-medium")
                with ui.column().classes("items-end gap-0"):
                    self.accuracy_label = ui.label("").mark("accuracy")
                    self.version_accuracy_label = ui.label("").classes("text-xs text-gray-500").mark("version-accuracy")
            self.table = ui.table(columns=HISTORY_COLUMNS, rows=[], row_key="id").classes("w-full").mark("history")
            # 'sv-SE' formats as 2026-12-01 23:03:19, in the browser's own time zone
            self.table.add_slot(
                "body-cell-time",
                '<q-td :props="props" :title="props.value">{{ new Date(props.value).toLocaleString("sv-SE") }}</q-td>',
            )
            self.table.add_slot(
                "body-cell-thumb",
                '<q-td :props="props"><img :src="props.value" style="width:36px;height:36px;border:1px solid #ddd"/>'
                "</q-td>",
            )
            self.table.on("rowClick", self._on_row_click)
            ui.label("Click a row to set or change its true digit.").classes("text-xs text-gray-500")
            self.pagination = ui.pagination(1, 1, direction_links=True, on_change=self._on_page)

    def _enable_feedback(self, enabled: bool, *, can_confirm: bool = True) -> None:
        """Feedback controls only while a saved prediction is shown: disabled buttons still looked pressable, so
        they are hidden, with a hint in their place. A refusal cannot be confirmed as a digit, only corrected."""
        for control in self.feedback_controls:
            control.set_enabled(enabled)
        self.confirm_button.set_enabled(enabled and can_confirm)
        self.feedback_row.set_visibility(enabled)
        self.feedback_hint.set_visibility(not enabled)

    # ---- actions ------------------------------------------------------------------------------------------------
    def _on_key(self, event: events.KeyEventArguments) -> None:
        if event.key.enter and event.action.keydown and not event.action.repeat:
            ui.timer(0, self.predict, once=True)

    def _clear(self) -> None:
        self.slate.clear()

    def _on_drawing_changed(self, png: bytes | None) -> None:
        if png is not None and self.live.value and not self.busy:
            ui.timer(0, lambda: self.predict(save=False), once=True)

    async def predict(self, save: bool = True) -> None:
        """Ask TorchServe about the drawing, show the answer, and (unless live) save it."""
        png = self.slate.png
        if png is None:
            ui.notify("The slate is empty: draw a digit first", type="warning")
            return
        if self.busy:
            return
        self.busy = True
        self.predict_button.props("loading")
        try:
            recorded = await self.predictions.predict(png, browser_id=self.browser_id, save=save, network=self.network)
        except PredictionRejected as exc:
            ui.notify(str(exc), type="warning")
            return
        except ModelUnavailable as exc:
            ui.notify(str(exc), type="negative")
            return
        except JournalWriteError as exc:
            ui.notify(f"{NOT_KEPT} ({exc.strerror})", type="negative")
            return
        finally:
            self.busy = False
            self.predict_button.props(remove="loading")
        self._show(recorded, saved=save)
        if recorded.saved is SavedIn.JOURNAL:
            ui.notify(KEPT_LOCALLY, type="warning")
        self._show_database_status()
        if save:
            await self.refresh_history()

    def _show(self, shown: Recorded, *, saved: bool) -> None:
        self.shown = shown
        p = shown.prediction
        if p.not_a_digit:
            self.digit_label.set_text("?")
            self.confidence_label.set_text(NOT_A_DIGIT)
            self.refusal_label.set_text(refusal_text(p))
        else:
            self.digit_label.set_text(str(p.digit))
            self.confidence_label.set_text(confidence_text(p.confidence, threshold=self.settings.low_confidence))
        self.refusal_label.set_visibility(p.not_a_digit)
        self.version_label.set_text(f"model {p.model_name} {p.model_version} · {p.latency_ms:.0f} ms")
        self.preview.set_source(data_url(p.preview_png))
        self.preview.set_visibility(p.preview_png is not None)
        self.preview_box.set_visibility(True)
        self.why.reset(shown.row.canvas_png, p)
        self.chart.options.clear()
        self.chart.options.update(chart_options(p.probabilities, p.closest_digit))
        self.chart.update()
        self.correct_input.set_value("")
        self._enable_feedback(shown.labellable, can_confirm=not p.not_a_digit)
        self.feedback_label.set_text(feedback_note(p, saved=saved))

    async def explain(self) -> None:
        """Why? for the prediction shown: the predicted digit first (the view offers the others)."""
        if self.shown is None:
            return
        self.why_button.props("loading")
        try:
            await self.why.show()
        finally:
            self.why_button.props(remove="loading")

    async def confirm_correct(self) -> None:
        if self.shown is not None and self.shown.prediction.digit is not None:
            await self._label(self.shown.request_id, self.shown.row_id, self.shown.prediction.digit)

    async def submit_feedback(self) -> None:
        try:
            digit = parse_digit(self.correct_input.value)
        except ValueError as exc:
            ui.notify(str(exc), type="negative")
            return
        if self.shown is not None:
            await self._label(self.shown.request_id, self.shown.row_id, digit)

    async def _label(self, request_id: uuid.UUID, row_id: int | None, digit: int) -> bool:
        shown = self.shown if self.shown is not None and self.shown.request_id == request_id else None
        if shown is not None and not shown.labellable:
            ui.notify("Press Predict first: there is no saved prediction to label", type="warning")
            return False
        try:
            saved = await self.predictions.label(
                browser_id=self.browser_id, request_id=request_id, row_id=row_id, digit=digit, network=self.network
            )
        except JournalWriteError as exc:
            ui.notify(f"{NOT_KEPT} ({exc.strerror})", type="negative")
            return False
        except NotYours:
            ui.notify("That prediction is not in your history", type="negative")
            return False
        if shown is not None:
            verdict = "correct" if digit == shown.prediction.digit else f"wrong, it is a {digit}"
            self.feedback_label.set_text(f"Thanks! Saved as {verdict}. You can still change it.")
        if saved is SavedIn.JOURNAL:
            ui.notify(KEPT_LOCALLY, type="warning")
        else:
            ui.notify(f"Saved: true digit {digit}", type="positive")
        self._show_database_status()
        await self.refresh_history()
        return True

    def _show_database_status(self) -> None:
        note = self.predictions.note()
        pending = note.pending
        notes = []
        if pending:
            notes.append(f"Database unavailable: {pending} change(s) kept on the server, saved when it is back")
        if note.set_aside:  # unreadable journal lines (a crash mid-write): kept for an operator, not replayed
            notes.append(f"{note.set_aside} damaged journal line(s) set aside")
        self.database_status.set_text(" · ".join(notes))
        self.database_status.set_visibility(bool(notes))
        if pending and self.status_timer is None:
            with self.database_status:
                self.status_timer = ui.timer(3.0, self._show_database_status)
        elif not pending and self.status_timer is not None:
            self.status_timer.cancel()
            self.status_timer = None

    # ---- history ------------------------------------------------------------------------------------------------
    async def _on_page(self, event: events.ValueChangeEventArguments) -> None:
        self.history_page = int(event.value or 1)
        await self.refresh_history()

    async def refresh_history(self) -> None:
        try:
            history = await self.context.history.page(
                browser_id=self.browser_id, page=self.history_page, size=self.settings.history_page_size
            )
        except StoreUnavailable:  # (answered at once while the database is known to be down)
            self.accuracy_label.set_text("History unavailable: the database cannot be reached")
            return
        self.history_page = history.page
        self.pagination.max = history.pages
        self.pagination.set_value(history.page)
        self.table.rows = [_table_row(row) for row in history.rows]
        self.table.update()
        correct, labelled = history.accuracy
        self.accuracy_label.set_text(accuracy_text(correct, labelled, history.total))
        self.version_accuracy_label.set_text(version_accuracy_text(history.by_version))

    def _on_row_click(self, event: events.GenericEventArguments) -> None:
        row = event.args[1] if isinstance(event.args, list) and len(event.args) > 1 else None
        if not isinstance(row, dict) or "id" not in row:
            return
        with ui.dialog() as dialog, ui.card():
            ui.label(f"True digit for drawing #{row['id']} (predicted {row['predicted']})")
            with ui.grid(columns=5):
                for digit in range(10):
                    ui.button(str(digit), on_click=lambda d=digit: self._label_from_dialog(dialog, row, d))
        dialog.open()

    async def _label_from_dialog(self, dialog: ui.dialog, row: dict, digit: int) -> None:
        if await self._label(uuid.UUID(row["request_id"]), int(row["id"]), digit):
            dialog.close()


def feedback_note(prediction: Prediction, *, saved: bool) -> str:
    if not saved:
        return "Live prediction (not saved): press Predict to keep it"
    if prediction.not_a_digit:
        return "Was it a digit after all? Type it and press Submit feedback: that teaches the model too."
    return ""


def accuracy_text(correct: int, labelled: int, total: int) -> str:
    drawings = "1 drawing" if total == 1 else f"{total} drawings"
    if labelled == 0:
        return f"{drawings} · no feedback yet"
    return f"{drawings} · accuracy {correct}/{labelled} = {correct / labelled:.1%} (over drawings with feedback)"


def version_accuracy_text(by_version: dict[str, Accuracy]) -> str:
    """Per model version, when more than one version answered this browser's labelled drawings."""
    if len(by_version) < 2:
        return ""
    return "by model: " + " · ".join(
        f"{version} {a.correct}/{a.labelled} = {a.rate:.0%}" for version, a in sorted(by_version.items())
    )


def _table_row(row: PredictionRow) -> dict:
    result = {None: "", True: "✓", False: "✗"}[row.right]  # refusing a real digit is wrong
    return {
        "id": row.id,
        "request_id": str(row.request_id),
        "time": row.created_at.isoformat(timespec="seconds") if row.created_at else "",  # shown in local time
        "thumb": f"/drawings/{row.id}",  # the browser fetches (and caches) each drawing once
        "predicted": f"not a digit ({row.predicted_digit})" if row.not_a_digit else row.predicted_digit,
        "confidence": f"{row.confidence:.1%}",
        "true": "" if row.true_digit is None else row.true_digit,
        "result": result,
        "version": row.model_version,
    }
