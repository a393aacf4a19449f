"""The slate: a custom NiceGUI element (this class + slate.js, no build step) where people draw a digit.

The browser sends the drawing as a PNG data URL after every stroke, undo and clear (the `change` event), so the
server always holds the current drawing and Predict needs no round trip to the browser.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable

from nicegui import events, ui

logger = logging.getLogger(__name__)

MAX_PNG_BYTES = 2 * 1024 * 1024
DATA_URL_PREFIX = "data:image/png;base64,"


class Slate(ui.element, component="slate.js"):
    """A square drawing area; `png` holds the current drawing (None when empty)."""

    def __init__(
        self, *, size: int = 280, stroke_width: int = 18, on_change: Callable[[bytes | None], None] | None = None
    ) -> None:
        super().__init__()
        self._props["size"] = size
        self._props["strokeWidth"] = stroke_width
        self.png: bytes | None = None
        self._on_change = on_change
        self.on("change", self._handle_change)

    @property
    def stroke_width(self) -> int:
        return int(self._props["strokeWidth"])

    def set_stroke_width(self, width: int) -> None:
        self._props["strokeWidth"] = int(width)
        self.update()

    def _handle_change(self, event: events.GenericEventArguments) -> None:
        self.png = decode_data_url(event.args.get("png") if isinstance(event.args, dict) else None)
        if self._on_change is not None:
            self._on_change(self.png)

    def clear(self) -> Slate:
        """Wipe the slate (the browser confirms with a change event)."""
        self.png = None
        self.run_method("clear")
        return self

    def undo(self) -> None:
        """Remove the last stroke (the browser sends the new drawing)."""
        self.run_method("undo")


def decode_data_url(value: object) -> bytes | None:
    """A PNG data URL from the browser -> PNG bytes; None for an empty slate or anything that is not one."""
    if not isinstance(value, str) or not value.startswith(DATA_URL_PREFIX):
        return None
    if len(value) > MAX_PNG_BYTES * 4 // 3 + len(DATA_URL_PREFIX) + 4:
        logger.warning("ignored a drawing larger than %d bytes", MAX_PNG_BYTES)
        return None
    try:
        return base64.b64decode(value[len(DATA_URL_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        logger.warning("ignored a drawing that is not valid base64")
        return None
