"""The drawing page: the slate (or a picture instead), Predict, the result (or "not a digit"), Why?, feedback, and this
browser's history with its accuracy.

Two modes, each at its own address and a link apart (`Mode`): one digit (/), and a number (/number, issue #22), where
the slate is three times as wide and Predict reads every digit (app/numbers.py); its answer and corrections are
ui/pages/number.py's. The history lists both: a number is one row, its whole drawing as the thumbnail.

Every way in works without a pointer (issue #23): the slate takes focus and says what it is, a picture can be chosen
with the keyboard (or the phone's camera, or dropped, or pasted), Enter predicts from anywhere but a control that uses
Enter itself, the answer is announced in a live region and focus moves to it, and history rows open with Enter.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass

from nicegui import events, ui

from app.context import App
from app.drawings import media_type
from app.numbers import RecordedNumber
from app.predictions import NotYours, Recorded, SavedIn
from app.records import (
    Accuracy,
    JournalWriteError,
    ModelUnavailable,
    NumberRow,
    Prediction,
    PredictionRejected,
    PredictionRow,
    StoreUnavailable,
)
from ui.http import browser_key
from ui.pages.messages import KEPT_LOCALLY, SHOW_RESULT_JS, not_kept, sentence
from ui.pages.number import NUMBER_FORMAT, NumberPanel, is_number, save_number
from ui.theme import Heading, notify
from ui.widgets.charts import bar_chart, data_url
from ui.widgets.slate import ENTER_PREDICTS, PictureArguments, Slate
from ui.widgets.why import WhyView

logger = logging.getLogger(__name__)

ONE_DIGIT = "Type one digit from 0 to 9"


def is_one_digit(text: object) -> bool:
    value = str(text if text is not None else "").strip()
    return len(value) == 1 and value.isdecimal()  # isdigit() also takes "²", which int() refuses


def parse_digit(text: object) -> int:
    """The digit a user typed as the right answer; ValueError with a message for anything but one digit 0-9 ("42"
    too: the field has no maxlength, which cut it to "4" without a word)."""
    if not is_one_digit(text):
        raise ValueError(ONE_DIGIT)
    return int(str(text).strip())


NOT_A_DIGIT = "That doesn't look like a digit — draw one digit"
EMPTY = "The slate is empty: draw a digit or choose a picture first"


def confidence_text(confidence: float, *, threshold: float) -> str:
    percent = f"{confidence:.1%}"
    return f"not sure ({percent})" if confidence < threshold else f"{percent} sure"


def announcement(prediction: Prediction, *, threshold: float) -> str:
    """What the live region says after a prediction ("Predicted 7, 98% sure")."""
    if prediction.not_a_digit:
        return f"Not a digit, the model says; the closest digit is {prediction.closest_digit}"
    sure = "not sure" if prediction.confidence < threshold else "sure"
    return f"Predicted {prediction.digit}, {prediction.confidence:.0%} {sure}"


def refusal_text(prediction: Prediction) -> str:
    """The small print under a refusal: why, and the digit it came closest to."""
    reason = prediction.reason or "doesn't look like a digit"
    return f"{reason} · closest digit: {prediction.closest_digit} ({prediction.confidence:.0%})"


def chart_options(probabilities: list[float], digit: int | None = None) -> dict:
    """The ten probabilities as bars, the predicted digit's darker; described for screen readers."""
    options = bar_chart(probabilities, colors=["#1d4ed8" if d == digit else "#93c5fd" for d in range(10)])
    described = ", ".join(f"{d}: {p:.0%}" for d, p in enumerate(probabilities)) if any(probabilities) else "none yet"
    options["aria"] = {"enabled": True, "label": {"description": f"Probability of each digit: {described}"}}
    return options


SLATE_HINT = (
    "No mouse or pen? Choose a picture below, or drop or paste one (Ctrl+V) on the slate. Enter predicts; "
    "on the slate, Delete clears and Ctrl+Z undoes."
)

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


@dataclass(frozen=True)
class Mode:
    """What the page asks for: its heading, the slate's size, its address, and whether Predict reads one digit or a
    number (several digits, each with its box)."""

    title: str = "Draw a digit"
    slate_width: int = 280
    slate_height: int = 280
    path: str = "/"
    reads_number: bool = False


DIGIT = Mode()
NUMBER = Mode(title="Write a number", slate_width=840, slate_height=280, path="/number", reads_number=True)  # 3:1
MODES = (("One digit", DIGIT), ("A number", NUMBER))


class DrawPage:
    """One browser tab's page. Everything it stores is tagged with the browser's id."""

    def __init__(self, context: App, *, browser_id: str, network: str | None = None, mode: Mode = DIGIT):
        self.context = context
        self.predictions = context.predictions
        self.settings = context.settings
        self.browser_id = browser_id
        self.network = network  # the page's client network (app/networks.py), kept with predictions and labels
        self.mode = mode
        self.shown: Recorded | None = None  # the prediction on screen, with the drawing that was predicted
        self.number_panel: NumberPanel | None = None  # Number mode's answer card
        self.why: WhyView | None = None  # One digit mode's Why?
        self.result_focus: ui.element  # where focus goes after Predict, in either mode
        self.busy = False
        self.history_page = 1
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.database_status = ui.label("").classes("w-full text-center text-sm text-amber-800").mark("db-status")
        self.database_status.props('role="status"')
        self.database_status.set_visibility(False)
        # While the note shows, a timer re-checks every 3 s so that it goes once the journal has been written. It is
        # made only then: a timer built with the page kept NiceGUI's simulated user from reopening the page in tests.
        self.status_timer: ui.timer | None = None
        with ui.row().classes("w-full gap-6 items-start justify-center"):
            self._build_slate()
            if self.mode.reads_number:
                self.number_panel = NumberPanel(
                    numbers=self.context.numbers, browser_id=self.browser_id, network=self.network,
                    threshold=self.settings.low_confidence, on_saved=self.refresh_history,
                )  # fmt: skip
                self.result_focus = self.number_panel.result_focus
            else:
                self._build_result()
        if not self.mode.reads_number:
            self.why = WhyView(explain=functools.partial(self.context.explainer.explain, client=self.browser_id))
        self._build_history()
        if self.predictions.note().set_aside:
            self._show_database_status()

    def _build_slate(self) -> None:
        # a number's slate is wider than a phone: the card's padding halved there, so the slate takes the width
        with ui.card().classes("items-center max-w-full" + (" p-2 sm:p-4" if self.mode.reads_number else "")):
            with ui.row().classes("w-full items-center justify-between gap-2"):
                Heading(self.mode.title, level=1)
                self._build_mode_switch()
            hint = (
                ui.label(SLATE_HINT)
                .classes("text-xs text-gray-600 text-center")
                .style(f"max-width: {self.mode.slate_width}px")
            )
            self.slate = Slate(
                owner=self.browser_id,
                width=self.mode.slate_width,
                height=self.mode.slate_height,
                stroke_width=18,
                on_change=self._on_drawing_changed,
                on_picture=self._on_picture,
                on_submit=self.predict,
                described_by=f"c{hint.id}",
                receiving=self.context.pictures.turn,
            ).mark("slate")
            hint.move(target_index=-1)  # the hint under the slate, read with it (aria-describedby)
            with ui.row().classes("items-center justify-center gap-2"):
                ui.button("Choose a picture", icon="image").props("outline no-caps").on(
                    "click", js_handler=self.slate.choose_picture_js()
                ).mark("choose-picture")
                ui.button("Take a photo", icon="photo_camera").props("outline no-caps").classes("coarse-only").on(
                    "click", js_handler=self.slate.choose_picture_js(camera=True)
                )
            with ui.row().classes("w-full items-center no-wrap"):
                ui.icon("brush", size="sm").classes("text-gray-700").tooltip("Pen width")
                ui.slider(
                    min=6, max=36, step=1, value=18, on_change=lambda e: self.slate.set_stroke_width(e.value)
                ).props('aria-label="Pen width" label')
                ui.button(icon="undo", on_click=self.slate.undo).props('flat round aria-label="Undo the last stroke"')
                ui.button(icon="delete", on_click=self._clear).props(
                    f'flat round aria-label="Clear the slate" {ENTER_PREDICTS}'
                ).tooltip("Clear the slate")
            with ui.row().classes("w-full items-center justify-between"):
                self.live = ui.switch("Live: predict as you draw", value=False)
                self.live.tooltip("Live predictions are not saved")
                self.predict_button = (
                    ui.button("Predict", icon="auto_awesome", on_click=self.predict).props("unelevated").mark("predict")
                )

    def _build_mode_switch(self) -> None:
        """One digit / A number: two links (each mode has its address), the current one marked for screen readers."""
        with ui.element("nav").props('aria-label="What to read"').classes("row no-wrap gap-0").mark("mode-switch"):
            for position, (label, mode) in enumerate(MODES):
                current = mode == self.mode
                corners = "rounded-l" if position == 0 else "rounded-r"
                link = ui.link(label, mode.path).classes(
                    f"px-3 py-1 text-sm no-underline border border-[#1d4ed8] {corners} "
                    + ("bg-[#1d4ed8] text-white font-medium" if current else "text-[#1d4ed8] bg-white")
                )
                if current:
                    link.props('aria-current="page"')

    def _build_result(self) -> None:
        with ui.card().classes("w-full sm:w-[360px]").style("scroll-margin-top: 64px") as self.result_card:
            Heading("Answer", level=2).classes("sr-only")
            # the focus target after Predict (tabindex -1: reached by script, not by Tab)
            with ui.row().classes("result-focus items-center gap-6 no-wrap") as self.result_focus:
                self.result_focus.props('tabindex="-1"').mark("result")
                self.digit_label = (
                    ui.label("")
                    .classes("digit-box w-20 h-24 shrink-0 text-8xl font-bold leading-none text-center")
                    .mark("digit")
                )
                with ui.column().classes("gap-1"):
                    self.confidence_label = ui.label("Draw, then press Predict (or Enter)").mark("confidence")
                    self.refusal_label = ui.label("").classes("text-xs text-gray-600").mark("refusal")
                    self.version_label = ui.label("").classes("text-sm text-gray-600 min-h-5").mark("version")
                    # kept in the layout but invisible before the first prediction: showing it then moved the
                    # cards below by 29 px (and an empty image box read as a broken picture)
                    with ui.row().classes("items-end gap-3 invisible") as self.preview_box:
                        with ui.column().classes("gap-1"):
                            ui.label("What the model saw:").classes("text-xs text-gray-600")
                            self.preview = (
                                ui.image("")
                                .props('no-spinner no-transition alt="the 28×28 picture the model saw"')
                                .classes("w-[84px] h-[84px]")
                                .style("image-rendering: pixelated")
                                .mark("preview")
                            )
                        self.why_button = (
                            ui.button("Why?", icon="help_outline", on_click=self.explain)
                            .props("outline no-caps")
                            .mark("why")
                        )
            # what a screen reader hears after each prediction (the big digit alone says nothing to it)
            self.announcer = ui.label("").classes("sr-only").props('role="status" aria-live="polite"')
            self.announcer.mark("announcer")
            self.refusal_label.set_visibility(False)
            self.chart = ui.echart(chart_options([0.0] * 10)).classes("w-full h-[180px]")
            self._build_feedback()

    def _build_feedback(self) -> None:
        # the same height with the hint or the controls: the history below does not move when they appear
        with ui.element("div").classes("w-full min-h-[112px]"):
            self.feedback_hint = ui.label("After Predict: confirm the answer or type the right digit here.")
            self.feedback_hint.classes("text-sm text-gray-600").mark("feedback-hint")
            with ui.column().classes("gap-2") as self.feedback_row:
                correct = (
                    ui.button("Yes, that's right", icon="check", on_click=self.confirm_correct)
                    .props("color=positive no-caps unelevated")
                    .mark("confirm")
                )
                with ui.row().classes("items-start gap-2 no-wrap"):
                    self.correct_input = (
                        ui.input("The right digit", validation={ONE_DIGIT: lambda v: not v or is_one_digit(v)})
                        .props('dense outlined inputmode="numeric" autocomplete="off"')
                        .classes("w-36")
                        .mark("correct")
                    )
                    self.correct_input.on("keydown.enter", self.submit_feedback)
                    submit = ui.button("Save correction", on_click=self.submit_feedback).props("outline no-caps")
        self.feedback_controls = [self.correct_input, submit, correct]
        self.confirm_button = correct
        self.feedback_label = ui.label("").classes("text-sm").mark("feedback")
        self._enable_feedback(False)

    def _build_history(self) -> None:
        with ui.card().classes("w-full max-w-4xl mx-auto"):
            with ui.row().classes("w-full items-center justify-between"):
                Heading("Your drawings", level=2)
                with ui.column().classes("items-end gap-0"):
                    self.accuracy_label = ui.label("").mark("accuracy")
                    self.version_accuracy_label = ui.label("").classes("text-xs text-gray-600").mark("version-accuracy")
            self.table = ui.table(columns=HISTORY_COLUMNS, rows=[], row_key="key").classes("w-full").mark("history")
            self.table.props('no-data-label="No drawings yet" wrap-cells')
            self.table.add_slot("body", HISTORY_ROW)
            self.table.on("relabel", self._on_relabel)
            ui.label("Click a row, or press Enter on it, to set or change its true digit (or number).").classes(
                "text-xs text-gray-600"
            )
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
    def _clear(self) -> None:
        self.slate.clear()

    def _on_drawing_changed(self, png: bytes | None) -> None:
        if png is not None and self.live.value and not self.busy:
            ui.timer(0, lambda: self.predict(save=False), once=True)

    async def _on_picture(self, event: PictureArguments) -> None:
        """A picture instead of a drawing: turned upright and made small enough (app/uploads.py), shown on the
        slate, and predicted and saved like a drawing. The page is busy from the moment the picture arrives: another
        one given meanwhile is refused with a word, instead of being decoded beside it."""
        if self.busy:
            notify("Wait for the answer to the last one, then give the picture again", type="warning")
            return
        self.busy = True
        self.predict_button.props("loading")
        try:
            # judged from its headers, then decoded in a thread of its own when one is free (off the event loop)
            picture = await self.context.pictures.upright(event.data, client=browser_key(self.browser_id))
        except PredictionRejected as exc:
            self._say_problem(str(exc))
            return
        finally:
            self.busy = False
            self.predict_button.props(remove="loading")
        self.slate.show_picture(picture, media_type=media_type(picture))
        await self.predict()

    async def predict(self, save: bool = True) -> None:
        """Ask TorchServe about the drawing, show the answer, and (unless live) save it."""
        png = self.slate.png
        if png is None:
            self._say(EMPTY)
            notify(EMPTY, type="warning")
            return
        if self.busy:
            return
        self.busy = True
        self.predict_button.props("loading")
        try:
            recorded = await self._ask(png, save=save)
        except PredictionRejected as exc:  # e.g. a picture with no digit in it (422), a picture too large (413)
            self._say_problem(str(exc))
            return
        except ModelUnavailable as exc:
            self._say(sentence(str(exc)))
            notify(str(exc), type="negative")
            return
        except JournalWriteError as exc:
            self._say(not_kept(exc))
            notify(not_kept(exc), type="negative")
            return
        finally:
            self.busy = False
            self.predict_button.props(remove="loading")
        if isinstance(recorded, RecordedNumber):
            if self.number_panel is not None:
                self._say(self.number_panel.show(recorded, saved=save))
        else:
            self._show(recorded, saved=save)
        if save:
            ui.run_javascript(SHOW_RESULT_JS.format(id=self.result_focus.id))
        if recorded.saved is SavedIn.JOURNAL:
            notify(KEPT_LOCALLY, type="warning")
        self._show_database_status()
        if save:
            await self.refresh_history()

    async def _ask(self, png: bytes, *, save: bool) -> Recorded | RecordedNumber:
        """The mode's reading: one digit (Predictions.predict) or a number (Numbers.read), recorded unless live."""
        if self.mode.reads_number:
            return await self.context.numbers.read(png, browser_id=self.browser_id, save=save, network=self.network)
        return await self.predictions.predict(png, browser_id=self.browser_id, save=save, network=self.network)

    def _say(self, text: str) -> None:
        """Into the live region (set to the same text twice, a screen reader would stay silent: nudge it)."""
        if self.number_panel is not None:
            self.number_panel.say(text)
            return
        self.announcer.set_text(text if self.announcer.text != text else text + " ")

    def _say_problem(self, message: str) -> None:
        """A picture or drawing the model cannot read: said where the answer goes, and nothing to label."""
        text = sentence(message)
        if self.number_panel is not None:
            self.number_panel.show_problem(text)
            self._say(text)
            notify(text, type="warning")
            return
        self.shown = None
        self.digit_label.set_text("")
        self.confidence_label.set_text(text)
        self.refusal_label.set_visibility(False)
        self.version_label.set_text("")
        self.preview_box.classes(add="invisible")
        if self.why is not None:
            self.why.reset()
        self._set_chart([0.0] * 10)
        self._enable_feedback(False)
        self.feedback_label.set_text("")
        self._say(text)
        notify(text, type="warning")

    def _set_chart(self, probabilities: list[float], digit: int | None = None) -> None:
        self.chart.options.clear()
        self.chart.options.update(chart_options(probabilities, digit))
        self.chart.update()

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
        self.preview_box.classes(remove="invisible")
        if self.why is not None:
            self.why.reset(shown.row.canvas_png, p)
        self._set_chart(p.probabilities, p.closest_digit)
        self.correct_input.set_value("")
        self._enable_feedback(shown.labellable, can_confirm=not p.not_a_digit)
        self.feedback_label.set_text(feedback_note(p, saved=saved))
        self._say(announcement(p, threshold=self.settings.low_confidence))

    async def explain(self) -> None:
        """Why? for the prediction shown: the predicted digit first (the view offers the others)."""
        if self.shown is None or self.why is None:
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
            self._say(str(exc))
            notify(str(exc), type="negative")
            return
        if self.shown is not None:
            await self._label(self.shown.request_id, self.shown.row_id, digit)

    async def _label(self, request_id: uuid.UUID, row_id: int | None, digit: int) -> bool:
        shown = self.shown if self.shown is not None and self.shown.request_id == request_id else None
        if shown is not None and not shown.labellable:
            notify("Press Predict first: there is no saved prediction to label", type="warning")
            return False
        try:
            saved = await self.predictions.label(
                browser_id=self.browser_id, request_id=request_id, row_id=row_id, digit=digit, network=self.network
            )
        except JournalWriteError as exc:
            notify(not_kept(exc), type="negative")
            return False
        except NotYours:
            notify("That prediction is not in your history", type="negative")
            return False
        if shown is not None:
            verdict = "correct" if digit == shown.prediction.digit else f"wrong, it is a {digit}"
            self.feedback_label.set_text(f"Thanks! Saved as {verdict}. You can still change it.")
        if saved is SavedIn.JOURNAL:
            notify(KEPT_LOCALLY, type="warning")
        else:
            notify(f"Saved: true digit {digit}", type="positive")
        self._say(f"Saved: true digit {digit}")
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
        self.table.rows = [
            _number_table_row(entry) if isinstance(entry, NumberRow) else _table_row(entry) for entry in history.entries
        ]
        self.table.update()
        correct, labelled = history.accuracy
        self.accuracy_label.set_text(accuracy_text(correct, labelled, history.total))
        self.version_accuracy_label.set_text(version_accuracy_text(history.by_version))

    def _on_relabel(self, event: events.GenericEventArguments) -> None:
        row = event.args
        if not isinstance(row, dict) or "id" not in row:
            return
        if row.get("kind") == "number":
            self._relabel_number(row)
            return
        with ui.dialog() as dialog, ui.card():
            Heading(f"True digit for drawing #{row['id']}", level=2)
            ui.label(f"The model read {row['predicted']}.").classes("text-sm text-gray-600")
            with ui.grid(columns=5):
                for digit in range(10):
                    ui.button(str(digit), on_click=lambda d=digit: self._label_from_dialog(dialog, row, d)).props(
                        f'aria-label="True digit {digit}"'
                    )
            ui.button("Cancel", on_click=dialog.close).props("flat no-caps")
        dialog.open()

    async def _label_from_dialog(self, dialog: ui.dialog, row: dict, digit: int) -> None:
        if await self._label(uuid.UUID(row["request_id"]), int(row["id"]), digit):
            dialog.close()

    def _relabel_number(self, row: dict) -> None:
        """A number's row: type the number that was written (Enter saves)."""
        title = f"The number you wrote, #{row['id']}"
        with ui.dialog().props(f'aria-label="{title}"') as dialog, ui.card():
            Heading(title, level=2)
            ui.label(f"The model read {row['predicted']}.").classes("text-sm text-gray-600")
            field = (
                ui.input("The number you wrote", validation={NUMBER_FORMAT: lambda v: not v or is_number(v)})
                .props('autofocus dense outlined inputmode="numeric" autocomplete="off"')
                .mark("history-number")
            )

            async def save() -> None:
                if not is_number(field.value):
                    notify(NUMBER_FORMAT, type="negative")
                    return
                saved = await save_number(
                    self.context.numbers, browser_id=self.browser_id, network=self.network,
                    request_id=uuid.UUID(row["request_id"]), number=str(field.value).strip(),
                )  # fmt: skip
                if saved is not None:
                    self._say(f"Saved: {str(field.value).strip()}")
                    dialog.close()
                    await self.refresh_history()

            field.on("keydown.enter", save)
            with ui.row().classes("gap-2"):
                ui.button("Save number", on_click=save).props("unelevated no-caps")
                ui.button("Cancel", on_click=dialog.close).props("flat no-caps")
        dialog.open()


def feedback_note(prediction: Prediction, *, saved: bool) -> str:
    if not saved:
        return "Live prediction (not saved): press Predict to keep it"
    if prediction.not_a_digit:
        return "Was it a digit after all? Type it and press Save correction: that teaches the model too."
    return ""


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


def _table_row(row: PredictionRow) -> dict:
    result = {None: "", True: "✓", False: "✗"}[row.right]  # refusing a real digit is wrong
    return {
        "key": f"drawing {row.id}",
        "kind": "drawing",
        "alt": f"drawing #{row.id}",
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


def _number_table_row(number: NumberRow) -> dict:
    """A number as one row: the number read (or why none), the least sure digit, the number the user wrote."""
    right = None if number.true_number is None else number.true_number == number.number
    least = min((digit.confidence for digit in number.digits), default=None)
    return {
        "key": f"number {number.id}",
        "kind": "number",
        "alt": f"number #{number.id}",
        "id": number.id,
        "request_id": str(number.request_id),
        "time": number.created_at.isoformat(timespec="seconds") if number.created_at else "",
        "thumb": f"/numbers/{number.id}/drawing",  # the whole drawing (History.number_drawing)
        "predicted": number.number if number.number is not None else f"no number ({number.reading})",
        "confidence": "" if least is None else f"{least:.1%} (least sure digit)",
        "true": number.true_number or "",
        "result": {None: "", True: "✓", False: "✗"}[right],
        "version": number.model_version,
    }
