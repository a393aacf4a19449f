"""The drawing page: the slate (or a picture instead), Predict, the answer, feedback, and this browser's history with
its accuracy. This module puts the parts together and runs what goes between them (a prediction, a label, the
database's state); each part is a module of its own:

    ui/pages/draw_slate.py     the slate's card: mode switch, slate, picture buttons, pen, Live, Predict
    ui/pages/draw_answer.py    One digit mode's answer: digit, confidence, preview, Why?, the ten bars
    ui/pages/draw_feedback.py  under it: "Yes, that's right", or the right digit
    ui/pages/number.py         Number mode's answer and corrections, and a number's row in the history
    ui/pages/draw_history.py   the history table, its pages and the running accuracy

Two modes, each at its own address and a link apart (`Mode`): one digit (/), and a number (/number), where the slate
is three times as wide and Predict reads every digit (app/numbers.py). The history lists both: a number is one row,
its whole drawing as the thumbnail.

Every way in works without a pointer, for people who use a keyboard or a screen reader: the slate takes focus and says
what it is, a picture can be chosen with the keyboard (or the phone's camera, or dropped, or pasted), Enter predicts
from anywhere but a control that uses Enter itself, the answer is announced in a live region and focus moves to it,
and history rows open with Enter.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from nicegui import binding, ui

from app.context import App
from app.drawings import media_type
from app.predictions import NotYours, SavedIn
from records.errors import JournalWriteError, ModelUnavailable, PredictionRejected
from ui.http import browser_key
from ui.pages.draw_answer import DigitAnswer
from ui.pages.draw_history import HistoryCard, digit_dialog
from ui.pages.draw_slate import SlateCard
from ui.pages.messages import KEPT_LOCALLY, SHOW_RESULT_JS, not_kept, sentence
from ui.pages.number import NumberPanel, number_dialog
from ui.theme import notify
from ui.widgets.slate import PictureArguments

logger = logging.getLogger(__name__)

EMPTY = "The slate is empty: draw a digit or choose a picture first"


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


class Answer(Protocol):
    """A mode's answer card (DigitAnswer, NumberPanel): reads the drawing it is handed, shows and says the answer."""

    @property
    def result_focus(self) -> ui.element:
        """Where focus goes after Predict."""
        ...

    async def predict(self, png: bytes, *, save: bool) -> SavedIn:
        """Read, show and say; recorded unless live (`save` False). The services' errors pass through."""
        ...

    def show_problem(self, text: str) -> None:
        """A drawing or picture that could not be read: said where the answer goes, nothing left to label."""
        ...

    def say(self, text: str) -> None:
        """Into the card's live region."""
        ...

    def labelled(self, request_id: uuid.UUID, digit: int | None) -> None:
        """A single drawing was labelled (from the card or the history; None: "not a digit")."""
        ...

    def build_details(self) -> None:
        """What the card shows under the slate's row, built there."""
        ...


class DrawPage:
    """One browser tab's page. Everything it stores is tagged with the browser's id."""

    database_note = binding.BindableProperty()  # the line over the page while the database is away

    def __init__(self, context: App, *, browser_id: str, network: str | None = None, mode: Mode = DIGIT):
        self.context = context
        self.predictions = context.predictions
        self.settings = context.settings
        self.browser_id = browser_id
        self.network = network  # the page's client network (app/addresses.py), kept with predictions and labels
        self.mode = mode
        self.busy = False
        self.database_note = ""
        self._build()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.database_status = (
            ui.label("")
            .classes("w-full text-center text-sm text-amber-800")
            .mark("db-status")
            .bind_text_from(self, "database_note")
            .bind_visibility_from(self, "database_note", backward=bool)
        )
        self.database_status.props('role="status"')
        # While the note shows, a timer re-checks every 3 s so that it goes once the journal has been written. It is
        # made only then: a timer built with the page kept NiceGUI's simulated user from reopening the page in tests.
        self.status_timer: ui.timer | None = None
        with ui.row().classes("w-full gap-6 items-start justify-center"):
            self.slate_card = SlateCard(
                title=self.mode.title, width=self.mode.slate_width, height=self.mode.slate_height,
                links=[(label, mode.path) for label, mode in MODES], here=self.mode.path,
                owner=self.browser_id, receiving=self.context.pictures.turn,
                on_change=self._on_drawing_changed, on_picture=self._on_picture, on_predict=self.predict,
            )  # fmt: skip
            self.answer: Answer = self._build_answer()
        self.answer.build_details()
        self.history = HistoryCard(
            history=self.context.history, browser_id=self.browser_id, page_size=self.settings.history_page_size,
            on_relabel=self._on_relabel,
        )  # fmt: skip
        if self.predictions.note().set_aside:
            self._show_database_status()

    def _build_answer(self) -> Answer:
        if self.mode.reads_number:
            return NumberPanel(
                numbers=self.context.numbers, browser_id=self.browser_id, network=self.network,
                threshold=self.settings.low_confidence, on_saved=self.refresh_history,
            )  # fmt: skip
        explain = functools.partial(self.context.explainer.explain, client=self.browser_id)
        return DigitAnswer(
            predictions=self.predictions, explain=explain, browser_id=self.browser_id, network=self.network,
            threshold=self.settings.low_confidence, label=self.label,
        )  # fmt: skip

    # ---- predictions --------------------------------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.slate_card.show_busy(busy)

    def _on_drawing_changed(self, png: bytes | None) -> None:
        if png is not None and self.slate_card.live.value and not self.busy:
            ui.timer(0, lambda: self.predict(save=False), once=True)

    async def _on_picture(self, event: PictureArguments) -> None:
        """A picture instead of a drawing: turned upright and made small enough (app/uploads.py), shown on the
        slate, and predicted and saved like a drawing. The page is busy from the moment the picture arrives: another
        one given meanwhile is refused with a word, instead of being decoded beside it."""
        if self.busy:
            notify("Wait for the answer to the last one, then give the picture again", type="warning")
            return
        self._set_busy(True)
        try:
            # judged from its headers, then decoded in a thread of its own when one is free (off the event loop)
            picture = await self.context.pictures.upright(event.data, client=browser_key(self.browser_id))
        except PredictionRejected as exc:
            self._say_problem(str(exc))
            return
        finally:
            self._set_busy(False)
        self.slate_card.slate.show_picture(picture, media_type=media_type(picture))
        await self.predict()

    async def predict(self, save: bool = True) -> None:
        """Ask TorchServe about the drawing, show the answer, and (unless live) save it."""
        png = self.slate_card.slate.png
        if png is None:
            self.answer.say(EMPTY)
            notify(EMPTY, type="warning")
            return
        if self.busy:
            return
        self._set_busy(True)
        try:
            saved = await self.answer.predict(png, save=save)
        except PredictionRejected as exc:  # e.g. a picture with no digit in it (422), a picture too large (413)
            self._say_problem(str(exc))
            return
        except ModelUnavailable as exc:
            self.answer.say(sentence(str(exc)))
            notify(str(exc), type="negative")
            return
        except JournalWriteError as exc:
            self.answer.say(not_kept(exc))
            notify(not_kept(exc), type="negative")
            return
        finally:
            self._set_busy(False)
        if save:
            ui.run_javascript(SHOW_RESULT_JS.format(id=self.answer.result_focus.id))
        if saved is SavedIn.JOURNAL:
            notify(KEPT_LOCALLY, type="warning")
        self._show_database_status()
        if save:
            await self.refresh_history()

    def _say_problem(self, message: str) -> None:
        """A picture or drawing the model cannot read: said where the answer goes, and nothing to label."""
        text = sentence(message)
        self.answer.show_problem(text)
        self.answer.say(text)
        notify(text, type="warning")

    # ---- labels -------------------------------------------------------------------------------------------------
    async def label(self, request_id: uuid.UUID, row_id: int | None, digit: int | None) -> bool:
        """A single drawing's label, from the answer's feedback or a history row: its true digit, or (None) "not a
        digit"; True when it was kept."""
        try:
            saved = await self.predictions.label(
                browser_id=self.browser_id, request_id=request_id, row_id=row_id, digit=digit,
                not_a_digit=digit is None, network=self.network,
            )  # fmt: skip
        except JournalWriteError as exc:
            notify(not_kept(exc), type="negative")
            return False
        except NotYours:
            notify("That prediction is not in your history", type="negative")
            return False
        self.answer.labelled(request_id, digit)
        said = "Saved: not a digit" if digit is None else f"Saved: true digit {digit}"
        if saved is SavedIn.JOURNAL:
            notify(KEPT_LOCALLY, type="warning")
        else:
            notify(said, type="positive")
        self.answer.say(said)
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
        self.database_note = " · ".join(notes)
        if pending and self.status_timer is None:
            with self.database_status:
                self.status_timer = ui.timer(3.0, self._show_database_status)
        elif not pending and self.status_timer is not None:
            self.status_timer.cancel()
            self.status_timer = None

    # ---- history ------------------------------------------------------------------------------------------------
    async def refresh_history(self) -> None:
        await self.history.refresh()

    def _on_relabel(self, row: dict) -> None:
        """A history row opened: a number's dialog for a number, the ten digits for a single drawing."""
        if row.get("kind") == "number":
            number_dialog(
                row, numbers=self.context.numbers, browser_id=self.browser_id, network=self.network,
                on_saved=self._number_relabelled,
            )  # fmt: skip
        else:
            digit_dialog(row, label=self.label)

    async def _number_relabelled(self, number: str) -> None:
        self.answer.say(f"Saved: {number}")
        await self.refresh_history()
