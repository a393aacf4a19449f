"""What the drawing page says the same way in both of its modes (one digit, a number: ui/pages/draw.py and
ui/pages/number.py), kept apart so that the two modules need not import each other."""

from __future__ import annotations

from records.errors import JournalFull, JournalWriteError

KEPT_LOCALLY = "The database is unavailable: this is kept on the server and will be saved when it is back"
NOT_KEPT = "Not saved: the database is unavailable and the server could not keep it either"

# After Predict: focus on the answer, and the answer's card scrolled into view when it is not (a phone: the slate
# fills the screen, the chart and the feedback were below it).
SHOW_RESULT_JS = """(() => {{ const target = getHtmlElement({id}); if (!target) return;
  target.focus({{ preventScroll: true }}); const card = target.closest('.q-card'), box = card.getBoundingClientRect();
  if (box.top < 56 || box.bottom > window.innerHeight) card.scrollIntoView({{ block: 'start', behavior: 'smooth' }});
}})()"""


def not_kept(exc: JournalWriteError) -> str:
    """What the page says when a drawing or label could be kept neither in the database nor in the journal: the
    journal's own words when it is full (they say what happened and what to do), else NOT_KEPT and why."""
    return str(exc) if isinstance(exc, JournalFull) else f"{NOT_KEPT} ({exc.strerror})"


def sentence(message: str) -> str:
    """A message from a service ("no digit found in the picture: ...") as the page says it."""
    return message[:1].upper() + message[1:]
