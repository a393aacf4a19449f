"""What one request and one client may cost the page (ui/limits.py): bodies over the cap are refused before they are
read (by Content-Length) or as soon as the cap is passed (chunked, or a lying Content-Length), on every route that
takes a body; and a client has at most `api_max_in_flight` predictions in flight at the JSON API."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from nicegui import app
from nicegui.testing import User

from ui.api.common import MAX_BODY

pytestmark = [pytest.mark.integration]
CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024  # what the red-team test sent: the page grew to 491 MB reading it


class Body:
    """A streamed request body of `size` bytes that counts how much of it the server pulled."""

    def __init__(self, size: int):
        self.size, self.sent = size, 0

    async def __aiter__(self):
        while self.sent < self.size:
            self.sent += CHUNK
            yield b"\x89PNG\r\n\x1a\n" + b"\0" * (CHUNK - 8)


ROUTES = [("POST", "/api/predictions"), ("PUT", f"/api/predictions/{uuid.uuid4()}/label")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(user: User, method, path):
    await user.open("/")
    body = Body(HUGE)
    headers = {"Content-Type": "image/png", "Content-Length": str(HUGE)}
    response = await user.http_client.request(method, path, content=body, headers=headers)
    assert response.status_code == 413 and "at most" in response.json()["detail"], response.text
    assert body.sent == 0


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("declared", [None, "1000"])  # chunked (no Content-Length), and a Content-Length that lies
async def test_reading_stops_at_the_limit_without_a_true_content_length(user: User, method, path, declared):
    await user.open("/")
    body = Body(HUGE)
    headers = {"Content-Type": "image/png"} | ({"Content-Length": declared} if declared else {})
    response = await user.http_client.request(method, path, content=body, headers=headers)
    assert response.status_code == 413, response.text
    assert MAX_BODY < body.sent <= MAX_BODY + 2 * CHUNK


async def test_a_client_has_at_most_two_predictions_in_flight(create_user, canvas_pngs, monkeypatch):
    """The third concurrent prediction of one client is 429 with Retry-After; other clients are not held up, whether
    they carry their own cookie or none (then they are counted by address); a forged cookie counts as none."""
    alice, bob = create_user(), create_user()
    await alice.open("/")
    await bob.open("/")
    context = app.state.runtime.started
    # every client here shares one address: the per-network limit (test_in_flight_on_fakes.py) is not this test's
    monkeypatch.setattr(context.in_flight, "per_network", 8)
    release, entered = asyncio.Event(), []
    real_predict = context.predictions.server.predict

    async def slow_predict(png, **kwargs):
        entered.append(png)
        await release.wait()
        return await real_predict(png, **kwargs)

    monkeypatch.setattr(context.predictions.server, "predict", slow_predict)
    png = canvas_pngs[0][0]

    def post(client: httpx.AsyncClient):
        return asyncio.create_task(client.post("/api/predictions?save=false", content=png))

    async def until_entered(count: int) -> None:
        while len(entered) < count:
            await asyncio.sleep(0.01)

    held = [post(alice.http_client), post(alice.http_client)]
    await asyncio.wait_for(until_entered(2), 10)
    third = await asyncio.wait_for(alice.http_client.post("/api/predictions?save=false", content=png), 10)
    assert third.status_code == 429 and third.headers["Retry-After"] == "1", third.text
    held.append(post(bob.http_client))  # another browser
    await asyncio.wait_for(until_entered(3), 10)
    transport = httpx.ASGITransport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous,
        httpx.AsyncClient(transport=transport, base_url="http://test", cookies={"session": "forged"}) as forged,
    ):
        held += [post(anonymous), post(anonymous)]  # no cookie: a fresh id each time, so counted by address
        await asyncio.wait_for(until_entered(5), 10)
        refused = await asyncio.wait_for(forged.post("/api/predictions?save=false", content=png), 10)
        assert refused.status_code == 429, refused.text
        release.set()
        answers = await asyncio.gather(*held)
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    after = await alice.http_client.post("/api/predictions?save=false", content=png)
    assert after.status_code == 200


def test_only_the_slates_picture_route_takes_more_than_the_cap():
    """A phone photo (up to 16 MiB) goes to /_slate/picture/<client>/<slate>; every other route keeps MAX_BODY."""
    from ui.http import BodyLimit
    from ui.widgets.slate import MAX_PICTURE_BYTES, PICTURE_PATH

    limit = BodyLimit(app, max_body=MAX_BODY, larger={PICTURE_PATH: MAX_PICTURE_BYTES}).limit
    assert limit(f"{PICTURE_PATH}/abc/12") == MAX_PICTURE_BYTES
    assert (
        limit("/api/predictions")
        == limit(f"{PICTURE_PATH}x/abc/12")
        == limit("/_nicegui/client/x/upload/1")
        == MAX_BODY
    )
