"""The drawing page's Number mode (issue #22): the answer to a drawing of several digits, and its corrections.

The page (ui/pages/draw.py) asks app/numbers.py `Numbers.read` for the number and hands the result here: the number in
large type ("Read 2026"), each digit's box and confidence over the drawing (ui/widgets/boxes.py), a button per digit
that corrects that digit alone (`Numbers.label_digit`), and a field for the whole number (`Numbers.label_number`). A
number refused by the model says why; it is kept like any other and can still be labelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from nicegui import ui

from app.drawings import image_size
from app.numbers import Numbers, RecordedNumber
from app.predictions import NotYours, SavedIn
from app.records import DigitReading, JournalWriteError, NumberReading
from ui.pages.messages import KEPT_LOCALLY, not_kept
from ui.theme import Heading, notify
from ui.widgets.boxes import boxes_svg, chip_text

NUMBER_FORMAT = "Type the number you wrote: 1 to 10 digits 0-9"
ONE_DIGIT = "Type one digit from 0 to 9"
NO_NUMBER = "No number read"
HINT = "After Predict: confirm the number, type the right one, or press a digit to correct it alone."
_DIGITS = frozenset("0123456789")  # str.isdigit() would let "²" and other scripts' digits through


def is_number(text: object) -> bool:
    value = str(text if text is not None else "").strip()
    return 1 <= len(value) <= 10 and set(value) <= _DIGITS


def parse_number(text: object) -> str:
    """The number a user typed as the right one ("0089" keeps its zeros); ValueError with a message otherwise."""
    if not is_number(text):
        raise ValueError(NUMBER_FORMAT)
    return str(text).strip()


def parse_one_digit(text: object) -> int:
    value = str(text if text is not None else "").strip()
    if len(value) != 1 or value not in _DIGITS:
        raise ValueError(ONE_DIGIT)
    return int(value)


def refusal_text(reading: NumberReading) -> str:
    """Why no number was read, in the page's words."""
    if reading.reason:
        return f"{NO_NUMBER}: {reading.reason}"
    return f"{NO_NUMBER}: a part of the drawing doesn't look like a digit"


def announcement(reading: NumberReading) -> str:
    """What the live region says after a reading ("Read 2026", or why none was)."""
    return f"Read {reading.number}" if reading.number is not None else refusal_text(reading)


def summary(reading: NumberReading, *, threshold: float) -> str:
    """The line under the number: how many digits, and the least sure one."""
    if not reading.digits:
        return "No digits were found in the drawing"
    least = min(reading.digits, key=lambda d: d.confidence)
    count = "1 digit" if len(reading.digits) == 1 else f"{len(reading.digits)} digits"
    sure = "not sure of" if least.confidence < threshold else "least sure of"
    return f"{count}; {sure} the {least.digit} ({least.confidence:.0%})"


class NumberPanel:
    """The answer card of Number mode, with its corrections. `on_saved` runs after a label is saved (the page's
    history refresh); `say` speaks in the page's live region."""

    def __init__(
        self,
        *,
        numbers: Numbers,
        browser_id: str,
        network: str | None,
        threshold: float,
        on_saved: Callable[[], Awaitable[None]],
    ) -> None:
        self.numbers = numbers
        self.browser_id = browser_id
        self.network = network
        self.threshold = threshold
        self.on_saved = on_saved
        self.shown: RecordedNumber | None = None
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        with ui.card().classes("w-full max-w-[872px]").style("scroll-margin-top: 64px") as self.card:
            Heading("Answer", level=2).classes("sr-only")
            with ui.column().classes("result-focus gap-1") as self.result_focus:  # the focus target after Predict
                self.result_focus.props('tabindex="-1"').mark("result")
                self.number_label = ui.label("").classes("text-5xl font-bold leading-tight").mark("number")
                self.status_label = ui.label("Write a number, then press Predict (or Enter)").mark("number-status")
                self.version_label = ui.label("").classes("text-sm text-gray-600 min-h-5").mark("version")
            self.boxes = ui.html("", sanitize=False).classes("w-full").mark("boxes")  # markup built from numbers only
            self.chips = ui.row().classes("items-center gap-2").mark("chips")
            self._build_digit_editor()
            self.announcer = ui.label("").classes("sr-only").props('role="status" aria-live="polite"')
            self.announcer.mark("announcer")
            self._build_feedback()

    def _build_digit_editor(self) -> None:
        """One digit's correction, under the digits' buttons (in the page rather than a dialog: nothing covers the
        drawing the user is checking against)."""
        self.editing: int | None = None  # the position being corrected
        with ui.row().classes("items-start gap-2") as self.digit_editor:
            self.digit_input = (
                ui.input("The right digit", validation={ONE_DIGIT: lambda v: not v or len(str(v).strip()) <= 1})
                .props('dense outlined inputmode="numeric" autocomplete="off"')
                .classes("w-64")
                .mark("digit-input")
            )
            self.digit_input.on("keydown.enter", self.submit_digit_field)
            self.digit_input.on("keydown.escape", self.close_digit)
            ui.button("Save digit", on_click=self.submit_digit_field).props("unelevated no-caps").mark("save-digit")
            ui.button("Cancel", on_click=self.close_digit).props("flat no-caps")
        self.digit_editor.set_visibility(False)

    def _build_feedback(self) -> None:
        with ui.element("div").classes("w-full min-h-[56px]"):
            self.feedback_hint = ui.label(HINT).classes("text-sm text-gray-600").mark("feedback-hint")
            with ui.row().classes("items-start gap-2") as self.feedback_row:
                self.confirm_button = (
                    ui.button("Yes, that's right", icon="check", on_click=self.confirm)
                    .props("color=positive no-caps unelevated")
                    .mark("confirm-number")
                )
                self.number_input = (
                    ui.input("The right number", validation={NUMBER_FORMAT: lambda v: not v or is_number(v)})
                    .props('dense outlined inputmode="numeric" autocomplete="off"')
                    .classes("w-44")
                    .mark("correct-number")
                )
                self.number_input.on("keydown.enter", self.submit_number)
                ui.button("Save number", on_click=self.submit_number).props("outline no-caps").mark("save-number")
        self.feedback_label = ui.label("").classes("text-sm").mark("number-feedback")
        self._enable_feedback(False)

    def _enable_feedback(self, enabled: bool, *, can_confirm: bool = True) -> None:
        self.feedback_row.set_visibility(enabled)
        self.confirm_button.set_enabled(enabled and can_confirm)
        self.feedback_hint.set_visibility(not enabled)

    # ---- showing ------------------------------------------------------------------------------------------------
    def show(self, recorded: RecordedNumber, *, saved: bool) -> str:
        """Show a reading; returns what the live region should say."""
        self.shown = recorded
        reading = recorded.reading
        refused = reading.number is None
        kept = recorded.saved is not SavedIn.NOT_SAVED  # live readings are not kept: nothing to label
        self.number_label.set_text(NO_NUMBER if refused else f"Read {reading.number}")
        self.status_label.set_text(
            refusal_text(reading) if refused else summary(reading, threshold=self.threshold)
        )  # fmt: skip
        self.version_label.set_text(f"model {reading.model_name} {reading.model_version} · {reading.latency_ms:.0f} ms")
        size = image_size(recorded.row.canvas_png or b"")
        drawing = recorded.row.canvas_png
        self.boxes.set_content(
            boxes_svg(drawing, size=size, digits=reading.digits, threshold=self.threshold) if drawing and size else ""
        )
        self._show_chips(reading.digits, labellable=kept)
        self.close_digit()
        self.number_input.set_value("")
        self._enable_feedback(kept and bool(reading.digits), can_confirm=not refused)
        if not kept:
            self.feedback_label.set_text("Live reading (not saved): press Predict to keep it")
        else:
            self.feedback_label.set_text("")
        return announcement(reading)

    def _show_chips(self, digits: list[DigitReading], *, labellable: bool) -> None:
        self.chips.clear()
        with self.chips:
            if digits and labellable:
                ui.label("Correct one digit:").classes("text-sm text-gray-700")
            for position, digit in enumerate(digits):
                chip = ui.button(chip_text(digit), on_click=lambda p=position: self.open_digit(p))
                chip.props(
                    f'outline no-caps aria-label="Digit {position + 1}: {digit.digit}, '
                    f'{digit.confidence:.0%} sure. Correct it"'
                ).mark(f"digit-{position}")
                chip.set_enabled(labellable)

    def show_problem(self, text: str) -> None:
        """A drawing that could not be read at all (nothing kept): said where the answer goes."""
        self.shown = None
        self.number_label.set_text("")
        self.status_label.set_text(text)
        self.version_label.set_text("")
        self.boxes.set_content("")
        self.chips.clear()
        self.close_digit()
        self._enable_feedback(False)
        self.feedback_label.set_text("")

    def say(self, text: str) -> None:
        """Into the live region (the same text twice would stay silent: nudged)."""
        self.announcer.set_text(text if self.announcer.text != text else text + " ")

    # ---- corrections --------------------------------------------------------------------------------------------
    async def confirm(self) -> None:
        if self.shown is not None and self.shown.reading.number is not None:
            await self.label_number(self.shown.request_id, self.shown.reading.number)

    async def submit_number(self) -> None:
        try:
            number = parse_number(self.number_input.value)
        except ValueError as exc:
            self.say(str(exc))
            notify(str(exc), type="negative")
            return
        if self.shown is not None:
            await self.label_number(self.shown.request_id, number)

    async def label_number(self, request_id: uuid.UUID, number: str) -> bool:
        """The whole number as the user wrote it (Numbers.label_number); True when it was kept."""
        saved = await save_number(
            self.numbers, browser_id=self.browser_id, network=self.network, request_id=request_id, number=number
        )
        if saved is None:
            return False
        await self._saved(f"Saved: {number}", saved, notified=True)
        return True

    def open_digit(self, position: int) -> None:
        """Correct one digit: the field for it opens under the buttons, focused; Enter saves, Escape closes."""
        if self.shown is None or not 0 <= position < len(self.shown.reading.digits):
            return
        digit = self.shown.reading.digits[position]
        self.editing = position
        self.digit_input.props(f'label="The right digit for digit {position + 1} (read {digit.digit})"')
        self.digit_input.set_value("")
        self.digit_editor.set_visibility(True)
        self.digit_input.run_method("focus")

    def close_digit(self) -> None:
        self.editing = None
        self.digit_editor.set_visibility(False)

    async def submit_digit_field(self) -> None:
        if self.shown is None or self.editing is None:
            return
        if await self.submit_digit(self.shown.request_id, self.editing, self.digit_input.value):
            self.close_digit()

    async def submit_digit(self, request_id: uuid.UUID, position: int, text: object) -> bool:
        """One digit as the user meant it (Numbers.label_digit); True when it was kept."""
        try:
            digit = parse_one_digit(text)
        except ValueError as exc:
            self.say(str(exc))
            notify(str(exc), type="negative")
            return False
        try:
            saved = await self.numbers.label_digit(
                browser_id=self.browser_id, request_id=request_id, position=position, digit=digit,
                network=self.network,
            )  # fmt: skip
        except JournalWriteError as exc:
            notify(not_kept(exc), type="negative")
            return False
        except NotYours:
            notify("That digit is not in your history", type="negative")
            return False
        await self._saved(f"Saved: digit {position + 1} as {digit}", saved)
        return True

    async def _saved(self, text: str, saved: SavedIn, *, notified: bool = False) -> None:
        if self.shown is not None:
            self.feedback_label.set_text(f"{text}. You can still change it.")
        if not notified:
            say_saved(text, saved)
        self.say(text)
        await self.on_saved()


async def save_number(
    numbers: Numbers, *, browser_id: str, network: str | None, request_id: uuid.UUID, number: str
) -> SavedIn | None:
    """Label a number (the answer card's field, a history row's dialog) and say so; None when it was not kept."""
    try:
        labelled = await numbers.label_number(
            browser_id=browser_id, request_id=request_id, number=number, network=network
        )
    except JournalWriteError as exc:
        notify(not_kept(exc), type="negative")
        return None
    except NotYours:
        notify("That number is not in your history", type="negative")
        return None
    say_saved(f"Saved: {number}", labelled.saved)
    return labelled.saved


def say_saved(text: str, saved: SavedIn) -> None:
    if saved is SavedIn.JOURNAL:
        notify(KEPT_LOCALLY, type="warning")
    else:
        notify(text, type="positive")
