"""One digit mode's feedback, under the answer: "Yes, that's right", or the right digit typed (Enter saves), and a note
on what was saved. The controls show only while a saved prediction is on screen (ui/pages/draw_answer.py offers them);
Number mode's corrections are ui/pages/number.py's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import binding, ui

from records.predictions import Prediction
from ui.theme import notify

ONE_DIGIT = "Type one digit from 0 to 9"
HINT = "After Predict: confirm the answer or type the right digit here."


def is_one_digit(text: object) -> bool:
    value = str(text if text is not None else "").strip()
    return len(value) == 1 and value.isdecimal()  # isdigit() also takes "²", which int() refuses


def parse_digit(text: object) -> int:
    """The digit a user typed as the right answer; ValueError with a message for anything but one digit 0-9 ("42"
    too: the field has no maxlength, which cut it to "4" without a word)."""
    if not is_one_digit(text):
        raise ValueError(ONE_DIGIT)
    return int(str(text).strip())


def feedback_note(prediction: Prediction, *, saved: bool) -> str:
    if not saved:
        return "Live prediction (not saved): press Predict to keep it"
    if prediction.not_a_digit:
        return "Was it a digit after all? Type it and press Save correction: that teaches the model too."
    return ""


class Feedback:
    """The controls and the note, shown through bindings on three properties. `label` saves the true digit of the
    prediction on screen; `say` speaks in the page's live region."""

    # the controls instead of the hint: disabled buttons still looked pressable, so they are hidden while there is
    # nothing to label, with the hint in their place
    open = binding.BindableProperty()
    confirmable = binding.BindableProperty()  # a refusal cannot be confirmed as a digit, only corrected
    note = binding.BindableProperty()  # under the controls: what was saved, or what a live prediction lacks

    def __init__(self, *, label: Callable[[int], Awaitable[object]], say: Callable[[str], None]) -> None:
        self.label = label
        self.say = say
        self.digit: int | None = None  # the answer "Yes, that's right" confirms
        self.open = False
        self.confirmable = False
        self.note = ""
        self._build()

    def _build(self) -> None:
        # the same height with the hint or the controls: the history below does not move when they appear
        with ui.element("div").classes("w-full min-h-[112px]"):
            ui.label(HINT).classes("text-sm text-gray-600").mark("feedback-hint").bind_visibility_from(
                self, "open", backward=lambda shown: not shown
            )
            with ui.column().classes("gap-2").bind_visibility_from(self, "open"):
                ui.button("Yes, that's right", icon="check", on_click=self.confirm).props(
                    "color=positive no-caps unelevated"
                ).mark("confirm").bind_enabled_from(self, "confirmable")
                with ui.row().classes("items-start gap-2 no-wrap"):
                    self.field = (
                        ui.input("The right digit", validation={ONE_DIGIT: lambda v: not v or is_one_digit(v)})
                        .props('dense outlined inputmode="numeric" autocomplete="off"')
                        .classes("w-36")
                        .mark("correct")
                        .bind_enabled_from(self, "open")
                    )
                    self.field.on("keydown.enter", self.submit)
                    ui.button("Save correction", on_click=self.submit).props("outline no-caps").bind_enabled_from(
                        self, "open"
                    )
        ui.label("").classes("text-sm").mark("feedback").bind_text_from(self, "note")

    def offer(self, prediction: Prediction, *, labellable: bool, saved: bool) -> None:
        """A new answer on screen: the controls when it can be labelled, the field emptied."""
        self.digit = prediction.digit
        self.field.set_value("")
        self.open = labellable
        self.confirmable = labellable and not prediction.not_a_digit
        self.note = feedback_note(prediction, saved=saved)

    def withdraw(self) -> None:
        """No answer on screen (a drawing that could not be read): nothing to label."""
        self.digit = None
        self.open = False
        self.confirmable = False
        self.note = ""

    async def confirm(self) -> None:
        if self.digit is not None:
            await self.label(self.digit)

    async def submit(self) -> None:
        try:
            digit = parse_digit(self.field.value)
        except ValueError as exc:
            self.say(str(exc))
            notify(str(exc), type="negative")
            return
        await self.label(digit)
