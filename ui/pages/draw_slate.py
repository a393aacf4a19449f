"""The slate's card on the drawing page: the heading and the switch between modes, the slate with its hint, the
picture buttons (a file, or the phone's camera), pen width, Undo and Clear, Live, and Predict.

Every way in works without a pointer: the slate takes focus and says what it is (the hint under it describes it), a
picture can be chosen with the keyboard (or dropped, or pasted), and Enter predicts from anywhere but a control that
uses Enter itself (ui/widgets/slate.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager

from nicegui import ui

from ui.theme import Heading
from ui.widgets.slate import ENTER_PREDICTS, PictureArguments, Slate

SLATE_HINT = (
    "No mouse or pen? Choose a picture below, or drop or paste one (Ctrl+V) on the slate. Enter predicts; "
    "on the slate, Delete clears and Ctrl+Z undoes."
)


class SlateCard:
    """The card, sized by the page's mode: `links` are the modes' (label, address), `here` the current address.
    `on_change` gets each new drawing, `on_picture` a picture given instead, `on_predict` runs on Predict and
    Enter."""

    def __init__(
        self,
        *,
        title: str,
        width: int,
        height: int,
        links: Sequence[tuple[str, str]],
        here: str,
        owner: str,
        receiving: Callable[[str], AbstractContextManager[None]],
        on_change: Callable[[bytes | None], None],
        on_picture: Callable[[PictureArguments], Awaitable[None]],
        on_predict: Callable[[], Awaitable[None]],
    ) -> None:
        # a slate wider than high (a number's) is wider than a phone: the card's padding halved there, so the slate
        # takes the width
        with ui.card().classes("items-center max-w-full" + (" p-2 sm:p-4" if width > height else "")):
            with ui.row().classes("w-full items-center justify-between gap-2"):
                Heading(title, level=1)
                mode_switch(links, here=here)
            hint = ui.label(SLATE_HINT).classes("text-xs text-gray-600 text-center").style(f"max-width: {width}px")
            self.slate = Slate(
                owner=owner,
                width=width,
                height=height,
                stroke_width=18,
                on_change=on_change,
                on_picture=on_picture,
                on_submit=on_predict,
                described_by=f"c{hint.id}",
                receiving=receiving,
            ).mark("slate")
            hint.move(target_index=-1)  # the hint under the slate, read with it (aria-describedby)
            self._build_picture_buttons()
            self._build_pen()
            with ui.row().classes("w-full items-center justify-between"):
                self.live = ui.switch("Live: predict as you draw", value=False)
                self.live.tooltip("Live predictions are not saved")
                self.predict_button = (
                    ui.button("Predict", icon="auto_awesome", on_click=on_predict).props("unelevated").mark("predict")
                )

    def _build_picture_buttons(self) -> None:
        with ui.row().classes("items-center justify-center gap-2"):
            ui.button("Choose a picture", icon="image").props("outline no-caps").on(
                "click", js_handler=self.slate.choose_picture_js()
            ).mark("choose-picture")
            ui.button("Take a photo", icon="photo_camera").props("outline no-caps").classes("coarse-only").on(
                "click", js_handler=self.slate.choose_picture_js(camera=True)
            )

    def _build_pen(self) -> None:
        with ui.row().classes("w-full items-center no-wrap"):
            ui.icon("brush", size="sm").classes("text-gray-700").tooltip("Pen width")
            ui.slider(min=6, max=36, step=1, value=18, on_change=lambda e: self.slate.set_stroke_width(e.value)).props(
                'aria-label="Pen width" label'
            )
            ui.button(icon="undo", on_click=self.slate.undo).props('flat round aria-label="Undo the last stroke"')
            ui.button(icon="delete", on_click=self.slate.clear).props(
                f'flat round aria-label="Clear the slate" {ENTER_PREDICTS}'
            ).tooltip("Clear the slate")

    def show_busy(self, busy: bool) -> None:
        """Predict spins while a drawing or a picture is being read."""
        if busy:
            self.predict_button.props("loading")
        else:
            self.predict_button.props(remove="loading")


def mode_switch(links: Sequence[tuple[str, str]], *, here: str) -> None:
    """One digit / A number: two links (each mode has its address), the current one marked for screen readers."""
    with ui.element("nav").props('aria-label="What to read"').classes("row no-wrap gap-0").mark("mode-switch"):
        for position, (label, path) in enumerate(links):
            current = path == here
            corners = "rounded-l" if position == 0 else "rounded-r"
            link = ui.link(label, path).classes(
                f"px-3 py-1 text-sm no-underline border border-[#1d4ed8] {corners} "
                + ("bg-[#1d4ed8] text-white font-medium" if current else "text-[#1d4ed8] bg-white")
            )
            if current:
                link.props('aria-current="page"')
