"""GET /drawings/{id} and /numbers/{id}/drawing: one of this browser's drawings, as it sent it (the history's
thumbnails on the page; left out of the API's schema)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.drawings import media_type
from records.errors import StoreUnavailable
from ui.api.common import client_id
from ui.deps import CurrentApp

router = APIRouter(include_in_schema=False)


@router.get("/drawings/{prediction_id}")
async def drawing(prediction_id: int, context: CurrentApp) -> Response:
    """The PNG (or JPEG) of one of this browser's drawings, cached by the browser; 404 for another's, 503 without
    the database."""
    try:
        image = await context.history.drawing(browser_id=client_id(), prediction_id=prediction_id)
    except StoreUnavailable:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return _image_response(image)


@router.get("/numbers/{number_id}/drawing")
async def number_drawing(number_id: int, context: CurrentApp) -> Response:
    """The whole drawing of one of this browser's numbers (a number's thumbnail in the history), as `drawing`
    answers."""
    try:
        image = await context.history.number_drawing(browser_id=client_id(), number_id=number_id)
    except StoreUnavailable:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return _image_response(image)


def _image_response(image: bytes | None) -> Response:
    if image is None:
        return Response(status_code=404)
    # a row's drawing never changes; private: it is this browser's
    return Response(image, media_type=media_type(image), headers={"Cache-Control": "private, max-age=86400"})
