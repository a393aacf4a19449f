"""The drawing page's Number mode, where one drawing holds several digits read together: the answer, its corrections,
and a number's row in the history.

The page (ui/pages/draw.py) hands the drawing here, and `NumberPanel` asks app/numbers.py `Numbers.read` for the number:
the number in large type ("Read 2026"), each digit's box and confidence over the drawing (ui/widgets/boxes.py), a button
per digit that corrects that digit alone (`Numbers.label_digit`), and a field for the whole number
(`Numbers.label_number`). A number refused by the model says why; it is kept like any other and can still be labelled.
What the card shows is bound to `shown`; the digits' buttons are a refreshable.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import binding, ui

from app.drawings import image_size
from app.numbers import Numbers, RecordedNumber
from app.predictions import NotYours, SavedIn
from records.errors import JournalWriteError
from records.numbers import NumberReading, StoredNumber
from ui.pages.messages import KEPT_LOCALLY, not_kept
from ui.theme import Heading, notify
from ui.widgets.boxes import boxes_svg, chip_text

NUMBER_FORMAT = "Type the number you wrote: 1 to 10 digits 0-9"
ONE_DIGIT = "Type one digit from 0 to 9"
NO_NUMBER = "No number read"
PROMPT = "Write a number, then press Predict (or Enter)"
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


@dataclass(frozen=True)
class Shown:
    """What the card shows: a reading, or a problem said where the answer goes, or (neither) the prompt."""

    recorded: RecordedNumber | None = None
    problem: str = ""

    @property
    def kept(self) -> bool:
        """Whether the reading can be labelled (live readings are not kept)."""
        return self.recorded is not None and self.recorded.saved is not SavedIn.NOT_SAVED


def number_text(shown: Shown) -> str:
    if shown.recorded is None:
        return ""
    number = shown.recorded.reading.number
    return NO_NUMBER if number is None else f"Read {number}"


def version_text(shown: Shown) -> str:
    if shown.recorded is None:
        return ""
    reading = shown.recorded.reading
    return f"model {reading.model_name} {reading.model_version} · {reading.latency_ms:.0f} ms"


class NumberPanel:
    """The answer card of Number mode, with its corrections (the page's `Answer`). `on_saved` runs after a label is
    saved (the page's history refresh); `say` speaks in the card's live region."""

    shown = binding.BindableProperty()
    editing = binding.BindableProperty()  # the position whose digit is being corrected, None when none is
    open = binding.BindableProperty()  # the corrections instead of the hint: something kept to label is shown
    confirmable = binding.BindableProperty()  # a number was read (a refusal can only be corrected)
    note = binding.BindableProperty()  # under the corrections: what was saved, or what a live reading lacks

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
        self.shown = Shown()
        self.editing = None
        self.open = False
        self.confirmable = False
        self.note = ""
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        with ui.card().classes("w-full max-w-[872px]").style("scroll-margin-top: 64px") as self.card:
            Heading("Answer", level=2).classes("sr-only")
            with ui.column().classes("result-focus gap-1") as self.result_focus:  # the focus target after Predict
                self.result_focus.props('tabindex="-1"').mark("result")
                ui.label("").classes("text-5xl font-bold leading-tight").mark("number").bind_text_from(
                    self, "shown", backward=number_text
                )
                ui.label("").mark("number-status").bind_text_from(self, "shown", backward=self._status)
                ui.label("").classes("text-sm text-gray-600 min-h-5").mark("version").bind_text_from(
                    self, "shown", backward=version_text
                )
            # markup built from numbers only
            ui.html("", sanitize=False).classes("w-full").mark("boxes").bind_content_from(
                self, "shown", backward=self._boxes
            )
            with ui.row().classes("items-center gap-2").mark("chips"):
                self._chips()
            self._build_digit_editor()
            self.announcer = ui.label("").classes("sr-only").props('role="status" aria-live="polite"')
            self.announcer.mark("announcer")
            self._build_feedback()

    def _build_digit_editor(self) -> None:
        """One digit's correction, under the digits' buttons (in the page rather than a dialog: nothing covers the
        drawing the user is checking against)."""
        with (
            ui.row()
            .classes("items-start gap-2")
            .bind_visibility_from(self, "editing", backward=lambda position: position is not None)
        ):
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

    def _build_feedback(self) -> None:
        with ui.element("div").classes("w-full min-h-[56px]"):
            ui.label(HINT).classes("text-sm text-gray-600").mark("feedback-hint").bind_visibility_from(
                self, "open", backward=lambda shown: not shown
            )
            with ui.row().classes("items-start gap-2").bind_visibility_from(self, "open"):
                ui.button("Yes, that's right", icon="check", on_click=self.confirm).props(
                    "color=positive no-caps unelevated"
                ).mark("confirm-number").bind_enabled_from(self, "confirmable")
                self.number_input = (
                    ui.input("The right number", validation={NUMBER_FORMAT: lambda v: not v or is_number(v)})
                    .props('dense outlined inputmode="numeric" autocomplete="off"')
                    .classes("w-44")
                    .mark("correct-number")
                )
                self.number_input.on("keydown.enter", self.submit_number)
                ui.button("Save number", on_click=self.submit_number).props("outline no-caps").mark("save-number")
        ui.label("").classes("text-sm").mark("number-feedback").bind_text_from(self, "note")

    def build_details(self) -> None:
        """Nothing under the slate's row: the boxes over the drawing are the details, in the card."""

    # ---- showing ------------------------------------------------------------------------------------------------
    def _status(self, shown: Shown) -> str:
        if shown.recorded is None:
            return shown.problem or PROMPT
        reading = shown.recorded.reading
        return refusal_text(reading) if reading.number is None else summary(reading, threshold=self.threshold)

    def _boxes(self, shown: Shown) -> str:
        recorded = shown.recorded
        drawing = recorded.row.canvas_png if recorded is not None else None
        size = image_size(drawing or b"")
        if recorded is None or not drawing or not size:
            return ""
        return boxes_svg(drawing, size=size, digits=recorded.reading.digits, threshold=self.threshold)

    @ui.refreshable_method
    def _chips(self) -> None:
        """A button per digit read, each correcting that digit alone (disabled when the reading was not kept)."""
        digits = self.shown.recorded.reading.digits if self.shown.recorded is not None else []
        if digits and self.shown.kept:
            ui.label("Correct one digit:").classes("text-sm text-gray-700")
        for position, digit in enumerate(digits):
            chip = ui.button(chip_text(digit), on_click=lambda p=position: self.open_digit(p))
            chip.props(
                f'outline no-caps aria-label="Digit {position + 1}: {digit.digit}, '
                f'{digit.confidence:.0%} sure. Correct it"'
            ).mark(f"digit-{position}")
            chip.set_enabled(self.shown.kept)

    async def predict(self, png: bytes, *, save: bool) -> SavedIn:
        """Ask for the number, show it and say it; recorded unless live."""
        recorded = await self.numbers.read(png, browser_id=self.browser_id, save=save, network=self.network)
        await self.show(recorded, saved=save)
        return recorded.saved

    async def show(self, recorded: RecordedNumber, *, saved: bool) -> None:
        """Show a reading and say it."""
        self.shown = shown = Shown(recorded=recorded)
        await self._chips.refresh()
        self.close_digit()
        self.number_input.set_value("")
        self.open = shown.kept and bool(recorded.reading.digits)
        self.confirmable = self.open and recorded.reading.number is not None
        self.note = "" if shown.kept else "Live reading (not saved): press Predict to keep it"
        self.say(announcement(recorded.reading))

    def show_problem(self, text: str) -> None:
        """A drawing that could not be read at all (nothing kept): said where the answer goes."""
        self.shown = Shown(problem=text)
        self._chips.refresh()
        self.close_digit()
        self.open = False
        self.confirmable = False
        self.note = ""

    def say(self, text: str) -> None:
        """Into the live region (the same text twice would stay silent: nudged)."""
        self.announcer.set_text(text if self.announcer.text != text else text + " ")

    def labelled(self, request_id: uuid.UUID, digit: int | None) -> None:
        """A single drawing labelled from the history: never one of this card's numbers."""

    # ---- corrections --------------------------------------------------------------------------------------------
    @property
    def recorded(self) -> RecordedNumber | None:
        """The reading on screen."""
        return self.shown.recorded

    async def confirm(self) -> None:
        if self.recorded is not None and self.recorded.reading.number is not None:
            await self.label_number(self.recorded.request_id, self.recorded.reading.number)

    async def submit_number(self) -> None:
        try:
            number = parse_number(self.number_input.value)
        except ValueError as exc:
            self.say(str(exc))
            notify(str(exc), type="negative")
            return
        if self.recorded is not None:
            await self.label_number(self.recorded.request_id, number)

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
        if self.recorded is None or not 0 <= position < len(self.recorded.reading.digits):
            return
        digit = self.recorded.reading.digits[position]
        self.digit_input.props(f'label="The right digit for digit {position + 1} (read {digit.digit})"')
        self.digit_input.set_value("")
        self.editing = position
        self.digit_input.run_method("focus")

    def close_digit(self) -> None:
        self.editing = None

    async def submit_digit_field(self) -> None:
        if self.recorded is None or self.editing is None:
            return
        if await self.submit_digit(self.recorded.request_id, self.editing, self.digit_input.value):
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
        if self.recorded is not None:
            self.note = f"{text}. You can still change it."
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


def number_table_row(number: StoredNumber) -> dict:
    """A number as one row of the history: the number read (or why none), the least sure digit, the number the user
    wrote (ui/pages/draw_history.py lists it among the single drawings)."""
    right = None if number.true_number is None else number.true_number == number.number
    least = min((digit.prediction.answer.confidence for digit in number.digits), default=None)
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


def number_dialog(
    row: dict,
    *,
    numbers: Numbers,
    browser_id: str,
    network: str | None,
    on_saved: Callable[[str], Awaitable[None]],
) -> None:
    """A number's row in the history: type the number that was written (Enter saves). `on_saved` gets the number
    once it is kept and the dialog closed."""
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
            number = str(field.value).strip()
            saved = await save_number(
                numbers, browser_id=browser_id, network=network, request_id=uuid.UUID(row["request_id"]), number=number
            )
            if saved is not None:
                dialog.close()
                await on_saved(number)

        field.on("keydown.enter", save)
        with ui.row().classes("gap-2"):
            ui.button("Save number", on_click=save).props("unelevated no-caps")
            ui.button("Cancel", on_click=dialog.close).props("flat no-caps")
    dialog.open()
