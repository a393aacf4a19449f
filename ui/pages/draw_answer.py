"""One digit mode's answer card: the digit read (or "not a digit"), how sure, the model that answered, the 28×28
picture it saw, Why?, the ten probabilities as bars, and the feedback under them (ui/pages/draw_feedback.py).

What it shows is one value, `reading`: the elements are bound to it, so showing an answer (or a problem in its place)
is one assignment. After each prediction the answer is said in a live region: the big digit alone says nothing to a
screen reader.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import binding, ui

from app.predictions import Predictions, Recorded, SavedIn
from records.predictions import Prediction
from ui.pages.draw_feedback import Feedback
from ui.theme import Heading, notify
from ui.widgets.charts import bar_chart, data_url
from ui.widgets.why import Explain, WhyView

NOT_A_DIGIT = "That doesn't look like a digit — draw one digit"
PROMPT = "Draw, then press Predict (or Enter)"

# (request_id, row_id, digit): the page's labelling; digit None (draw_feedback.NOT_A_DIGIT) labels it "not a digit"
Label = Callable[[uuid.UUID, int | None, int | None], Awaitable[bool]]


@dataclass(frozen=True)
class Reading:
    """What the card shows: a prediction, or a problem said where the answer goes, or (neither) the prompt."""

    prediction: Prediction | None = None
    problem: str = ""


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


def verdict(prediction: Prediction, digit: int | None) -> str:
    """What a label says of the answer: a confirmed refusal is correct, a refusal given a digit is wrong, as is a digit
    answered for what is not a digit (records/predictions.py StoredPrediction.right)."""
    if digit is None:
        return "correct: not a digit" if prediction.not_a_digit else "wrong, it is not a digit"
    return "correct" if digit == prediction.digit else f"wrong, it is a {digit}"


def chart_options(probabilities: list[float], digit: int | None = None) -> dict:
    """The ten probabilities as bars, the predicted digit's darker; described for screen readers."""
    options = bar_chart(probabilities, colors=["#1d4ed8" if d == digit else "#93c5fd" for d in range(10)])
    described = ", ".join(f"{d}: {p:.0%}" for d, p in enumerate(probabilities)) if any(probabilities) else "none yet"
    options["aria"] = {"enabled": True, "label": {"description": f"Probability of each digit: {described}"}}
    return options


def digit_text(reading: Reading) -> str:
    p = reading.prediction
    return "" if p is None else "?" if p.not_a_digit else str(p.digit)


def version_text(reading: Reading) -> str:
    p = reading.prediction
    return "" if p is None else f"model {p.model_name} {p.model_version} · {p.latency_ms:.0f} ms"


def refused(reading: Reading) -> bool:
    return reading.prediction is not None and reading.prediction.not_a_digit


def preview_shown(reading: Reading) -> bool:
    """The picture the model saw, unless the answer came without one (before any answer its box is invisible)."""
    return reading.prediction is None or reading.prediction.preview_png is not None


class DigitAnswer:
    """The answer card of One digit mode (the page's `Answer`): reads a drawing, shows and says the answer, and
    labels it through the page's `label`."""

    reading = binding.BindableProperty()

    def __init__(
        self,
        *,
        predictions: Predictions,
        explain: Explain,
        browser_id: str,
        network: str | None,
        threshold: float,
        label: Label,
    ) -> None:
        self.predictions = predictions
        self.explain = explain
        self.browser_id = browser_id
        self.network = network
        self.threshold = threshold
        self.label = label
        self.shown: Recorded | None = None  # the prediction on screen, with the drawing that was predicted
        self.why: WhyView | None = None
        self.reading = Reading()
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        with ui.card().classes("w-full sm:w-[360px]").style("scroll-margin-top: 64px"):
            Heading("Answer", level=2).classes("sr-only")
            # the focus target after Predict (tabindex -1: reached by script, not by Tab)
            with ui.row().classes("result-focus items-center gap-6 no-wrap") as self.result_focus:
                self.result_focus.props('tabindex="-1"').mark("result")
                ui.label("").classes("digit-box w-20 h-24 shrink-0 text-8xl font-bold leading-none text-center").mark(
                    "digit"
                ).bind_text_from(self, "reading", backward=digit_text)
                with ui.column().classes("gap-1"):
                    ui.label("").mark("confidence").bind_text_from(self, "reading", backward=self._status)
                    ui.label("").classes("text-xs text-gray-600").mark("refusal").bind_text_from(
                        self, "reading", backward=lambda r: refusal_text(r.prediction) if refused(r) else ""
                    ).bind_visibility_from(self, "reading", backward=refused)
                    ui.label("").classes("text-sm text-gray-600 min-h-5").mark("version").bind_text_from(
                        self, "reading", backward=version_text
                    )
                    self._build_preview()
            self.announcer = ui.label("").classes("sr-only").props('role="status" aria-live="polite"')
            self.announcer.mark("announcer")
            self.chart = ui.echart(chart_options([0.0] * 10)).classes("w-full h-[180px]")
            self.feedback = Feedback(label=self._label_shown, say=self.say)

    def _build_preview(self) -> None:
        # kept in the layout but invisible before the first prediction: showing it then moved the cards below by
        # 29 px (and an empty image box read as a broken picture)
        with ui.row().classes("items-end gap-3 invisible") as self.preview_box:
            with ui.column().classes("gap-1"):
                ui.label("What the model saw:").classes("text-xs text-gray-600")
                ui.image("").props('no-spinner no-transition alt="the 28×28 picture the model saw"').classes(
                    "w-[84px] h-[84px]"
                ).style("image-rendering: pixelated").mark("preview").bind_source_from(
                    self, "reading", backward=lambda r: data_url(r.prediction.preview_png) if r.prediction else ""
                ).bind_visibility_from(self, "reading", backward=preview_shown)
            self.why_button = (
                ui.button("Why?", icon="help_outline", on_click=self.explain_shown).props("outline no-caps").mark("why")
            )

    def build_details(self) -> None:
        """The Why? view, under the slate's row: its pictures need the width."""
        self.why = WhyView(explain=self.explain)

    def _status(self, reading: Reading) -> str:
        p = reading.prediction
        if p is None:
            return reading.problem or PROMPT
        return NOT_A_DIGIT if p.not_a_digit else confidence_text(p.confidence, threshold=self.threshold)

    # ---- showing ------------------------------------------------------------------------------------------------
    async def predict(self, png: bytes, *, save: bool) -> SavedIn:
        """Ask for the digit, show it and say it; recorded unless live."""
        recorded = await self.predictions.predict(png, browser_id=self.browser_id, save=save, network=self.network)
        self._show(recorded, saved=save)
        return recorded.saved

    def _show(self, shown: Recorded, *, saved: bool) -> None:
        self.shown = shown
        p = shown.prediction
        self.reading = Reading(prediction=p)
        self.preview_box.classes(remove="invisible")
        if self.why is not None:
            self.why.reset(shown.row.canvas_png, p)
        self._set_chart(p.probabilities, p.closest_digit)
        self.feedback.offer(p, labellable=shown.labellable, saved=saved)
        self.say(announcement(p, threshold=self.threshold))

    def show_problem(self, text: str) -> None:
        """A picture or drawing the model cannot read: said where the answer goes, and nothing to label."""
        self.shown = None
        self.reading = Reading(problem=text)
        self.preview_box.classes(add="invisible")
        if self.why is not None:
            self.why.reset()
        self._set_chart([0.0] * 10)
        self.feedback.withdraw()

    def say(self, text: str) -> None:
        """Into the live region (set to the same text twice, a screen reader would stay silent: nudge it)."""
        self.announcer.set_text(text if self.announcer.text != text else text + " ")

    def _set_chart(self, probabilities: list[float], digit: int | None = None) -> None:
        self.chart.options.clear()
        self.chart.options.update(chart_options(probabilities, digit))
        self.chart.update()

    # ---- Why? and labels ----------------------------------------------------------------------------------------
    async def explain_shown(self) -> None:
        """Why? for the prediction shown: the predicted digit first (the view offers the others)."""
        if self.shown is None or self.why is None:
            return
        self.why_button.props("loading")
        try:
            await self.why.show()
        finally:
            self.why_button.props(remove="loading")

    async def _label_shown(self, digit: int | None) -> None:
        shown = self.shown
        if shown is None:
            return
        if not shown.labellable:
            notify("Press Predict first: there is no saved prediction to label", type="warning")
            return
        await self.label(shown.request_id, shown.row_id, digit)

    def labelled(self, request_id: uuid.UUID, digit: int | None) -> None:
        """A label was saved (here or from the history; digit None: "not a digit"): thanked for here when it is the
        prediction on screen."""
        if self.shown is not None and self.shown.request_id == request_id:
            self.feedback.note = f"Thanks! Saved as {verdict(self.shown.prediction, digit)}. You can still change it."
