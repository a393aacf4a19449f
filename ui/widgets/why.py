"""The "Why?" view: where in the drawing the model found evidence for a digit, and against it.

Asked only when the user presses Why? (an explanation costs ~50-500 ms of the model server's time, a prediction a
few ms). It explains the drawing that was predicted, with the version that answered; the predicted digit first,
then any digit the user picks, the runner-up a tap away ("Why not 3?"). The server's explainer (app/explanations.py)
fetches all ten digits' maps in one pass and keeps them, so switching digits is instant; the pictures drawn from them
are kept here per digit until the next prediction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from nicegui import ui

from app.explanations import Superseded
from records.errors import PredictorError
from records.explanations import Explanation
from records.predictions import Prediction
from ui.theme import Heading, notify
from ui.widgets.charts import data_url
from ui.widgets.heatmap import Legend, colorize, over_drawing, over_field, smooth

Explain = Callable[..., Awaitable[Explanation]]  # (png, *, target, version): app.explanations.Explainer.explain

LEGEND_GRADIENT = "linear-gradient(to right, rgb(37,99,235), rgba(37,99,235,0.15), #fff, rgba(220,38,38,0.15), " \
    "rgb(220,38,38))"  # fmt: skip


@dataclass(frozen=True)
class Pictures:
    drawing: bytes  # PNG: the map over the drawing
    field: bytes  # PNG: the map over the 28x28 image the model saw
    legend: Legend


def pictures(explanation: Explanation, *, drawing_png: bytes) -> Pictures:
    """An explanation drawn over the drawing and over the field (smoothed 3x3, see ui/widgets/heatmap.py)."""
    colours, legend = colorize(smooth(np.asarray(explanation.attributions, dtype=np.float32)))
    return Pictures(
        drawing=over_drawing(colours, drawing_png, explanation.field_box),
        field=over_field(colours, explanation.prediction.preview_png),
        legend=legend,
    )


def title(target: int, prediction: Prediction) -> str:
    """The title: "Why 7?" for the digit the model answered, "Why not 3?" for any other."""
    shown = prediction.closest_digit
    if target == shown and not prediction.not_a_digit:
        return f"Why {target}?"
    if target == shown:
        return f"Why is it closest to {target}?"
    return f"Why not {target}? ({prediction.probabilities[target]:.0%})"


class WhyView:
    """The card under the result: hidden until the user asks; one per page."""

    def __init__(self, *, explain: Explain, notify_error: Callable[[str], None] | None = None):
        self.explain = explain
        self.notify_error = notify_error or (lambda message: notify(message, type="negative"))
        self.png: bytes | None = None
        self.prediction: Prediction | None = None
        self.target: int | None = None
        self.cache: dict[int, Pictures] = {}
        self._build()

    def _build(self) -> None:
        with ui.card().classes("w-full max-w-4xl mx-auto") as self.card:
            with ui.row().classes("w-full items-center justify-between gap-2"):
                self.title = Heading("", level=2).mark("why-title")
                self.spinner = ui.spinner(size="lg").mark("why-spinner")
                self.switch_button = ui.button("", on_click=self._switch).props("outline dense no-caps")
                self.switch_button.mark("why-switch")
            with ui.row().classes("items-center gap-2"):
                ui.label("Explain digit:").classes("text-sm text-gray-700")
                self.digits = (
                    ui.toggle({d: str(d) for d in range(10)}, on_change=self._on_digit)
                    .props("dense no-caps toggle-color=primary padding='2px 9px'")
                    .mark("why-digits")
                )
            with ui.row().classes("w-full gap-3 justify-center"):
                self.over_drawing = self._picture("Over your drawing", "why-drawing", alt="the map over your drawing")
                self.over_field = self._picture(
                    "Over what the model saw (28×28)", "why-field", alt="the map over what the model saw"
                )
            self._build_legend()
        self.card.set_visibility(False)

    @staticmethod
    def _picture(caption: str, marker: str, *, alt: str) -> ui.image:
        with ui.column().classes("items-center gap-1"):
            image = ui.image("").props(f'ratio=1 no-spinner no-transition alt="{alt}"')
            image.classes("w-[140px] sm:w-[224px]").style("border: 1px solid #d1d5db; border-radius: 6px").mark(marker)
            ui.label(caption).classes("w-[140px] sm:w-[224px] text-xs text-gray-600 text-center")
        return image

    def _build_legend(self) -> None:
        with ui.column().classes("w-full items-center gap-0"):
            with ui.row().classes("w-full max-w-md items-center no-wrap gap-2 text-xs"):
                self.against_label = ui.label("").classes("text-blue-700 whitespace-nowrap").mark("why-against")
                ui.element("div").classes("grow h-3 rounded").style(f"background: {LEGEND_GRADIENT}")
                self.for_label = ui.label("").classes("text-red-700 whitespace-nowrap").mark("why-for")
            self.caption = ui.label("").classes("text-xs text-gray-600 max-w-xl text-center").mark("why-caption")

    # ---- state --------------------------------------------------------------------------------------------------
    def reset(self, png: bytes | None = None, prediction: Prediction | None = None) -> None:
        """A new prediction is shown (or none): forget the old explanations and hide the card."""
        self.png, self.prediction, self.target = png, prediction, None
        self.cache = {}
        self.card.set_visibility(False)

    async def show(self, asked: int | None = None) -> None:
        """Explain digit `asked` (default: the digit the model answered) and show the card; a spinner while it
        works."""
        if self.png is None or self.prediction is None:
            return
        target: int = self.prediction.closest_digit if asked is None else asked
        self.target = target
        self.card.set_visibility(True)
        self.title.set_text(title(target, self.prediction))
        self.digits.set_value(target)
        self._update_switch(self.prediction)
        if target not in self.cache:
            self.spinner.set_visibility(True)
            png, prediction = self.png, self.prediction
            try:
                explanation = await self.explain(png, target=target, version=prediction.model_version)
            except Superseded:  # this tab asked for another drawing meanwhile: nothing to show for this one
                return
            except PredictorError as exc:
                if self.prediction is prediction:
                    self.spinner.set_visibility(False)
                    self.notify_error(f"No explanation: {exc}")
                return
            if self.prediction is not prediction or self.target != target:
                return  # stale: a new prediction, or the user picked another digit meanwhile; nothing is drawn
            # drawing the pictures is CPU work (~25 ms): off the event loop, which every other user's page shares
            pictures_ = await asyncio.to_thread(pictures, explanation, drawing_png=png)
            if self.prediction is not prediction:
                return
            self.cache[target] = pictures_
        if self.target == target:  # the user may have picked another digit meanwhile
            self.spinner.set_visibility(False)
            self._draw(target, self.cache[target])

    def _draw(self, target: int, shown: Pictures) -> None:
        self.over_drawing.set_source(data_url(shown.drawing))
        self.over_field.set_source(data_url(shown.field))
        self.against_label.set_text(f"against {target}")
        self.for_label.set_text(f"for {target}")
        self.caption.set_text(
            f"Red: strokes that made the model score {target} higher; blue: strokes that count against {target}. "
            "Integrated Gradients from an empty slate, smoothed a little (3×3), colours scaled to this map's strongest "
            "pixel. Pixels without ink are always 0: the map cannot show a missing stroke."
        )

    def _update_switch(self, prediction: Prediction) -> None:
        """One tap between the answer and the runner-up."""
        answer, runner_up = prediction.closest_digit, prediction.runner_up
        other = runner_up if self.target == answer else answer
        self.switch_button.set_text(f"Why {other}?" if other == answer else f"Why not {other}?")
        self._switch_to = other

    async def _switch(self) -> None:
        await self.show(self._switch_to)

    async def _on_digit(self, event) -> None:
        if event.value is not None and event.value != self.target:
            await self.show(int(event.value))
