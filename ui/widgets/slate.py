"""The slate: a custom NiceGUI element (this class + slate.js, no build step) where people draw a digit, or give a
picture instead.

The browser sends the drawing as a PNG data URL after every stroke, undo and clear (the `change` event), so the
server always holds the current drawing and Predict needs no round trip to the browser. A picture (chosen with the
page's picture buttons, dropped on the slate, or pasted) is too large for a socket message (a phone photo is several
MB; python-socketio takes 1 MB): the browser POSTs the file's bytes to the slate's own URL (`picture_route`), and the
page's `on_picture` handler gets them. What the page then predicts is shown on the slate with `show_picture`. While
the body is read, the picture is in the page's hand: `receiving` (app/uploads.py Pictures.turn) refuses a client that
has one in hand already (429) or a page that holds enough pictures (503) before a byte of the body is kept.

Enter on the page asks for a prediction (`on_submit`), except on controls that use Enter themselves (slate.js says
which); mark a control with `ENTER_PREDICTS` to have Enter predict there too (the clear button).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from nicegui import Client, app, events, ui
from nicegui.events import UiEventArguments, handle_event

from app.uploads import BUSY, ONE_AT_A_TIME
from records.errors import PredictionRejected
from ui.http import client_key, signed_browser_id
from ui.theme import notify

logger = logging.getLogger(__name__)

MAX_PNG_BYTES = 2 * 1024 * 1024
DATA_URL_PREFIX = "data:image/png;base64,"
PICTURE_PATH = "/_slate/picture"  # /_slate/picture/{client id}/{element id}: ui/http.py gives it a larger body limit
MAX_PICTURE_BYTES = 16 * 1024 * 1024  # a phone's photo (app/uploads.py MAX_PICTURE_BYTES says the same)
ENTER_PREDICTS = "data-enter-predicts"
REFUSED = {429: ONE_AT_A_TIME, 503: BUSY}  # what the picture route's refusals (before the body) say on the page


@dataclass(kw_only=True, slots=True)
class PictureArguments(UiEventArguments):
    """A picture's bytes as the browser sent them (any format: app/uploads.py decides what it is)."""

    data: bytes


class Slate(ui.element, component="slate.js"):
    """A drawing area, `width` x `height` px; `png` holds the current drawing or picture (None when empty).

    `owner`: the browser id of the page's visitor; only that browser may send the slate a picture. `receiving`: what
    holds a client's turn while its picture's body is read (refusing with PredictionRejected), none by default."""

    def __init__(
        self,
        *,
        owner: str,
        width: int = 280,
        height: int = 280,
        stroke_width: int = 18,
        on_change: Callable[[bytes | None], None] | None = None,
        on_picture: Callable[[PictureArguments], object] | None = None,
        on_submit: Callable[[], object] | None = None,
        described_by: str = "",
        receiving: Callable[[str], AbstractContextManager[None]] | None = None,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.receiving = receiving or (lambda client: nullcontext())
        self._props["width"] = width
        self._props["height"] = height
        self._props["strokeWidth"] = stroke_width
        self._props["pictureUrl"] = f"{PICTURE_PATH}/{self.client.id}/{self.id}"
        self._props["maxPictureBytes"] = MAX_PICTURE_BYTES
        self._props["describedBy"] = described_by
        self.png: bytes | None = None
        self._on_change = on_change
        self._on_picture = on_picture
        self.on("change", self._handle_change)
        if on_submit is not None:
            self.on("submit", on_submit, args=[])
        self.on("picture_refused", self._handle_refused)

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

    def choose_picture_js(self, *, camera: bool = False) -> str:
        """The browser-side click handler of a picture button: the file chooser opens only from the click itself (a
        round trip through the server would lose the browser's permission to open it)."""
        return f"() => getElement({self.id}).choose({'true' if camera else 'false'})"

    def receive_picture(self, data: bytes) -> None:
        """A picture for the page (from the picture route, or a test): the `on_picture` handler gets it."""
        handle_event(self._on_picture, PictureArguments(sender=self, client=self.client, data=data))

    def show_picture(self, picture: bytes, *, media_type: str) -> None:
        """Show on the slate the picture that will be predicted (it is `png` from now on, whatever its format)."""
        self.png = picture
        self.run_method("showPicture", f"data:{media_type};base64,{base64.b64encode(picture).decode()}")

    def _handle_refused(self, event: events.GenericEventArguments) -> None:
        """The browser could not send a picture: too large (by its size, or the server's 413), or no answer."""
        args = event.args if isinstance(event.args, dict) else {}
        if args.get("reason") == "size" or args.get("status") == 413:
            message = f"That picture is too large: choose one under {MAX_PICTURE_BYTES // 2**20} MB"
        elif args.get("status") in REFUSED:
            message = REFUSED[args["status"]]
        else:
            message = "The picture could not be sent: try again"
        notify(message, type="negative")


async def picture_route(client_id: str, element_id: int, request: Request) -> Response:
    """POST /_slate/picture/{client}/{element}: the picture's bytes for that page's slate (202, handled in the
    background: the answer reaches the page over its socket). 404 unless the slate exists and the request comes from
    the browser whose page it is (its signed browser-id cookie); 429 or 503 (`receiving`) before the body is kept."""
    client = Client.instances.get(client_id)
    slate = client.elements.get(element_id) if client is not None else None
    if not isinstance(slate, Slate) or signed_browser_id(request) != slate.owner:
        raise HTTPException(404, "no such slate")
    try:
        with slate.receiving(client_key(request)):
            data = await request.body()  # the body limit (ui/http.py) has capped it at MAX_PICTURE_BYTES
    except PredictionRejected as exc:
        # refused before a byte was kept; the body is still read (and dropped, chunk by chunk): a server that
        # answers while the browser is sending resets the connection, and the browser would see no answer
        async for _ in request.stream():
            continue
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers={"Retry-After": "1"})
    slate.receive_picture(data)
    return Response(status_code=202)


def register() -> None:
    """The picture route (once per app: ui/main.py startup)."""
    app.add_api_route(
        PICTURE_PATH + "/{client_id}/{element_id}", picture_route, methods=["POST"], include_in_schema=False
    )


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
