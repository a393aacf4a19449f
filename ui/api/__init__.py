"""The page's JSON API: what the drawing page does, for scripts and the load test (`make load`). One router a
resource: predictions.py, numbers.py, history.py (and drawings.py, the history's thumbnails); common.py what they
share.

    POST /api/predictions                     body: the PNG (Content-Type: image/png); optional header
                                              Idempotency-Key: <uuid> makes a retry return the same row
                                              ?save=false: predict only (like the page's Live mode)
    PUT  /api/predictions/{request_id}/label  JSON {"digit": 0-9}: the digit the user meant (a JSON integer)
    GET  /api/history?limit=10&offset=0       this client's predictions and numbers, newest first
    POST /api/numbers                         body: a PNG of several digits, read as one number (Idempotency-Key and
                                              ?save=false as for predictions)
    PUT  /api/numbers/{request_id}/label      JSON {"number": "2026"}: the number the user wrote (1-10 digits, a string)
    PUT  /api/numbers/{request_id}/digits/{position}/label
                                              JSON {"digit": 0-9}: one digit of it (position 0 = leftmost)

Every route gets the App through `Depends(current_app)` (ui/deps.py), so a test replaces it with one on stand-ins.

Strict on purpose: the body of a prediction is the image's own bytes (PNG or JPEG, else 415); an Idempotency-Key names
one image (reused with another: 409); a label is a JSON integer 0-9 (true, "7", 7.0: 422); paging numbers are bounded
(422, never a database error). Each route declares its response model (PredictionOut, LabelOut, HistoryOut, ...).

The client is identified like a browser: by NiceGUI's signed session cookie (set on the first response; keep it, as
a browser does). Every read and label is scoped to that identity, so knowing another client's ids is not enough.
Records go through the app's Predictions (app/predictions.py), like the page's: during a database outage they are
journaled, not lost ("saved": "journal"). What the database would refuse and the journal can tell (an Idempotency-Key
it holds for another image or client, a label for another client's entry it holds) is refused at once, as the database
path refuses it; what only the database can tell is checked when it is back, and such an answer says so in "note".
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from nicegui import app

from ui.api import drawings, history, numbers, predictions
from ui.api.common import invalid_request


def register() -> None:
    """Add the routes to NiceGUI's FastAPI app (called by ui/main.py's startup(), once per app)."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    # include_router wraps the app's lifespan in the router's (FastAPI >= 0.112), even for routers without one: the
    # page's tests start the one NiceGUI app again per test, so the wrappers nested until the stack overflowed.
    lifespan = app.router.lifespan_context
    for router in (drawings.router, predictions.router, history.router, numbers.router):
        app.include_router(router)
    app.router.lifespan_context = lifespan
