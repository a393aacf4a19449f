"""How every page looks and reads, for everyone: colours with enough contrast, visible keyboard focus, the landmarks
(header, nav, main) with one h1 per page, and where notifications appear.

WCAG 2.1 AA, checked by axe-core in tests/e2e/test_accessibility.py: text at least 4.5:1 against its background,
controls at least 3:1, focus always visible (2.4.7). Quasar's default primary (#5898d4: 3.06:1 with white text) and
positive (#21ba45: 2.56:1) failed; these pass with white text and on white.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from nicegui import ui
from nicegui.elements.mixins.text_element import TextElement

PRIMARY = "#1d4ed8"  # Tailwind blue-700: 6.7:1 with white, and as text or an outline on white
POSITIVE = "#15803d"  # green-700: 5.0:1
NEGATIVE = "#b91c1c"  # red-700: 6.5:1
INFO = "#0369a1"  # sky-700: 5.9:1
WARNING = "#fbbf24"  # amber-400, under dark text (Quasar's warning notification): 12:1
FOCUS = "#1d4ed8"

PAGES = [("Draw", "/"), ("Stats", "/stats"), ("Models", "/models")]

# Quasar draws focus as a faint background (q-focus-helper), hard to see on some controls, and takes the outline off
# buttons and switches (.no-outline, !important in NiceGUI's last cascade layer: an important rule in an earlier layer
# wins over it); an outline is always visible.
# Notifications sit under the header: at the bottom they covered the history the user had just changed.
CSS = f"""
@layer overrides {{
  :focus-visible {{ outline: 3px solid {FOCUS} !important; outline-offset: 2px; }}
  .q-header :focus-visible {{ outline-color: #fff !important; }}
}}
.q-table tbody tr:focus-visible {{ outline-offset: -3px; }}
.q-notifications__list--top {{ top: 64px; }}
.result-focus:focus {{ outline: none; }}
.result-focus:focus-visible {{ outline: 3px solid {FOCUS} !important; }}
.slate-area {{ position: relative; }}
.slate-dragging canvas {{ outline: 3px dashed {PRIMARY}; outline-offset: 3px; }}
.slate-sending {{ position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  background: rgba(255, 255, 255, 0.85); border-radius: 8px; color: #1f2937; font-weight: 500; }}
.digit-box:empty {{ border: 2px dashed #9ca3af; border-radius: 8px; }}
@media (max-width: 599px) {{ .q-table th, .q-table td {{ padding-left: 6px; padding-right: 6px; }} }}
.coarse-only {{ display: none !important; }}
@media (pointer: coarse) {{ .coarse-only {{ display: inline-flex !important; }} }}
"""

Kind = Literal["positive", "negative", "warning", "info", "ongoing"]


def apply() -> None:
    """The colours and styles above, for the page being built."""
    ui.colors(primary=PRIMARY, positive=POSITIVE, negative=NEGATIVE, info=INFO, warning=WARNING)
    ui.add_css(CSS)


@contextmanager
def frame(current: str) -> Iterator[None]:
    """A page: the header (the app's name and the nav, `current` marked as the page shown) and the page's content,
    inside Quasar's <main>. The caller gives the page its h1."""
    apply()
    with ui.header().classes("items-center justify-between bg-slate-800 px-4 py-2"):
        ui.link("Digit recognizer", "/").classes("text-xl font-bold text-white no-underline")
        with ui.element("nav").props('aria-label="Pages"').classes("row gap-4"):
            for label, path in PAGES:
                link = ui.link(label, path).classes("text-white")
                if path == current:
                    link.props('aria-current="page"').classes("font-bold")
    yield


class Heading(TextElement):
    """A real heading (h1-h3): screen readers list them and jump between them; styled like the labels pages had."""

    def __init__(self, text: str, *, level: int = 2) -> None:
        super().__init__(tag=f"h{level}", text=text)
        self.classes("m-0 text-xl font-medium" if level == 1 else "m-0 text-lg font-medium")


def notify(message: str, *, type: Kind | None = None) -> None:
    """A notification, under the header (see CSS)."""
    ui.notify(message, type=type, position="top")
