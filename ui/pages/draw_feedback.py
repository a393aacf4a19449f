"""One digit mode's feedback, under the answer, and a note on what was saved. For a digit: "Yes, that's right", "This is
not a digit", or the right digit typed (Enter saves). For a refusal ("not a digit"): "Right, not a digit", or "It is a
digit: N", N typed, the closest digit when nothing is typed. The controls show only while a saved prediction is on
screen (ui/pages/draw_answer.py offers them); Number mode's corrections are ui/pages/number.py's.

In focus order the answer's own confirmation comes first, then the labels that disagree with it; every button is a
button (Tab, Enter or Space), and what was saved is said in the page's live region like a digit correction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import binding, ui

from records.predictions import Prediction
from ui.theme import notify

ONE_DIGIT = "Type one digit from 0 to 9"
HINT = "After Predict: confirm the answer or type the right digit here."
SAVE_CORRECTION = "Save correction"
NOT_A_DIGIT = None  # what `label` is given for the label "not a digit" (else the digit)


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
        return "Was it a digit after all? Press It is a digit (type another first if need be): that teaches the model."
    return ""


def save_text(*, refusal: bool, typed: object, closest: int | None) -> str:
    """The save button: "Save correction" under a digit; under a refusal, the digit it would save ("It is a digit:
    7"): the one typed, else the closest."""
    if not refusal:
        return SAVE_CORRECTION
    text = str(typed if typed is not None else "").strip()
    digit = closest if not text else text if is_one_digit(text) else None
    return "It is a digit" if digit is None else f"It is a digit: {digit}"


class Feedback:
    """The controls and the note, shown through bindings on a few properties. `label` saves the label of the
    prediction on screen: a digit, or NOT_A_DIGIT; `say` speaks in the page's live region."""

    # the controls instead of the hint: disabled buttons still looked pressable, so they are hidden while there is
    # nothing to label, with the hint in their place
    open = binding.BindableProperty()
    confirmable = binding.BindableProperty()  # a digit answered: "Yes, that's right" and "This is not a digit"
    refusal = binding.BindableProperty()  # a refusal answered: "Right, not a digit" and "It is a digit: N"
    save_text = binding.BindableProperty()
    note = binding.BindableProperty()  # under the controls: what was saved, or what a live prediction lacks

    def __init__(self, *, label: Callable[[int | None], Awaitable[object]], say: Callable[[str], None]) -> None:
        self.label = label
        self.say = say
        self.digit: int | None = None  # the answer "Yes, that's right" confirms
        self.closest: int | None = None  # what "It is a digit" saves when nothing is typed
        self.open = False
        self.confirmable = False
        self.refusal = False
        self.save_text = SAVE_CORRECTION
        self.note = ""
        self._build()

    def _build(self) -> None:
        # the same height with the hint or the controls (two rows of buttons where "Yes" and "This is not a digit"
        # wrap, in a 360 px card and on a phone): the history below does not move when they appear
        with ui.element("div").classes("w-full min-h-[148px]"):
            ui.label(HINT).classes("text-sm text-gray-600").mark("feedback-hint").bind_visibility_from(
                self, "open", backward=lambda shown: not shown
            )
            with ui.column().classes("gap-2").bind_visibility_from(self, "open"):
                # wraps on a phone rather than pushing the page sideways
                with ui.row().classes("items-center gap-2"):
                    ui.button("Yes, that's right", icon="check", on_click=self.confirm).props(
                        "color=positive no-caps unelevated"
                    ).mark("confirm").bind_enabled_from(self, "confirmable").bind_visibility_from(
                        self, "refusal", backward=lambda refused: not refused
                    )
                    ui.button("Right, not a digit", icon="check", on_click=self.not_a_digit).props(
                        "color=positive no-caps unelevated"
                    ).mark("confirm-refusal").bind_visibility_from(self, "refusal")
                    ui.button("This is not a digit", icon="block", on_click=self.not_a_digit).props(
                        "outline no-caps"
                    ).mark("not-digit").bind_visibility_from(self, "confirmable")
                with ui.row().classes("items-start gap-2 no-wrap"):
                    self.field = (
                        ui.input("The right digit", validation={ONE_DIGIT: lambda v: not v or is_one_digit(v)})
                        .props('dense outlined inputmode="numeric" autocomplete="off"')
                        .classes("w-36")
                        .mark("correct")
                        .bind_enabled_from(self, "open")
                    )
                    self.field.on("keydown.enter", self.submit)
                    self.field.on_value_change(self._typed)
                    ui.button(SAVE_CORRECTION, on_click=self.submit).props("outline no-caps").mark(
                        "save-digit"
                    ).bind_enabled_from(self, "open").bind_text_from(self, "save_text")
        ui.label("").classes("text-sm").mark("feedback").bind_text_from(self, "note")

    def offer(self, prediction: Prediction, *, labellable: bool, saved: bool) -> None:
        """A new answer on screen: the controls when it can be labelled, the field emptied."""
        self.digit = prediction.digit
        self.closest = prediction.closest_digit
        self.open = labellable
        self.confirmable = labellable and not prediction.not_a_digit
        self.refusal = labellable and prediction.not_a_digit
        self.field.set_value("")
        self._typed()
        self.note = feedback_note(prediction, saved=saved)

    def withdraw(self) -> None:
        """No answer on screen (a drawing that could not be read): nothing to label."""
        self.digit = None
        self.closest = None
        self.open = False
        self.confirmable = False
        self.refusal = False
        self.note = ""

    def _typed(self) -> None:
        self.save_text = save_text(refusal=self.refusal, typed=self.field.value, closest=self.closest)

    async def confirm(self) -> None:
        if self.digit is not None:
            await self.label(self.digit)

    async def not_a_digit(self) -> None:
        """ "Right, not a digit" under a refusal, "This is not a digit" under a digit: the same label."""
        await self.label(NOT_A_DIGIT)

    async def submit(self) -> None:
        typed = self.field.value
        if self.refusal and not str(typed or "").strip() and self.closest is not None:
            await self.label(self.closest)  # "It is a digit: N" with nothing typed: the closest digit
            return
        try:
            digit = parse_digit(typed)
        except ValueError as exc:
            self.say(str(exc))
            notify(str(exc), type="negative")
            return
        await self.label(digit)
