"""Cross-site requests (ui/http.py OriginCheck): another site's page cannot make a visitor's browser change anything
here (a state-changing request with a foreign Origin is 403; scripts that send no Origin go on), nor frame the page;
every response says so in its headers. On stand-ins: the check sits in front of every route."""

from __future__ import annotations

import pytest
from nicegui.testing import User
from starlette.types import Message

from ui.http import CROSS_ORIGIN, OriginCheck, parse_origins, same_origin

PNG = {"Content-Type": "image/png"}
SEVEN = b"\x89PNG\r\n\x1a\n a seven"
EVIL = "https://evil.example"


@pytest.mark.usefixtures("fake_app")
async def test_a_foreign_origin_changes_nothing_and_the_pages_own_or_none_does(fake_app, user: User):
    fake_app.predictor.digits[SEVEN] = 7
    await user.open("/")
    refused = await user.http_client.post("/api/predictions", content=SEVEN, headers={**PNG, "Origin": EVIL})
    assert refused.status_code == 403 and refused.json() == {"detail": CROSS_ORIGIN}
    assert fake_app.store.rows == []
    own = await user.http_client.post("/api/predictions", content=SEVEN, headers={**PNG, "Origin": "http://test"})
    script = await user.http_client.post("/api/predictions", content=SEVEN, headers=PNG)  # no Origin: curl, scripts
    assert own.status_code == script.status_code == 200 and len(fake_app.store.rows) == 2
    label = f"/api/predictions/{own.json()['request_id']}/label"
    for origin in (EVIL, "null", "http://test:8080", "http://test.evil.example"):
        response = await user.http_client.put(label, json={"digit": 1}, headers={"Origin": origin})
        assert response.status_code == 403, origin
    assert fake_app.store.rows[0].true_digit is None
    assert (await user.http_client.put(label, json={"digit": 1}, headers={"Origin": "http://test"})).status_code == 200


@pytest.mark.usefixtures("fake_app")
async def test_another_site_cannot_navigate_a_browser_to_the_admin_routes(user: User):
    """/admin/session and /admin/logout are GETs that change state: a cross-site navigation (browsers send no Origin
    with one, but say Sec-Fetch-Site) is refused; the page's own link and a typed address are not."""
    await user.open("/")
    for path in ("/admin/logout", "/admin/session?ticket=x"):
        for site in ("cross-site", "same-site"):
            assert (await user.http_client.get(path, headers={"Sec-Fetch-Site": site})).status_code == 403
        for site in ("same-origin", "none"):
            assert (await user.http_client.get(path, headers={"Sec-Fetch-Site": site})).status_code == 303


@pytest.mark.usefixtures("fake_app")
async def test_every_response_keeps_the_page_out_of_frames(user: User):
    await user.open("/")
    for response in [
        await user.http_client.get("/"),
        await user.http_client.get("/api/history"),
        await user.http_client.get("/drawings/1"),  # a 404
        await user.http_client.post("/api/predictions", content=SEVEN, headers={**PNG, "Origin": EVIL}),  # a 403
    ]:
        assert response.headers["x-frame-options"] == "DENY", response.request.url
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("origin", "scheme", "host", "same"),
    [
        ("http://127.0.0.1:8501", "http", "127.0.0.1:8501", True),
        ("http://[::1]:8501", "http", "[::1]:8501", True),
        ("https://digits.example.com", "https", "digits.example.com", True),
        ("https://digits.example.com", "http", "digits.example.com", True),  # TLS proxy, X-Forwarded-Proto unbelieved
        ("https://digits.example.com:443", "http", "digits.example.com", True),
        ("http://digits.example.com", "https", "digits.example.com", False),  # a downgrade
        ("http://127.0.0.1:8502", "http", "127.0.0.1:8501", False),
        ("http://127.0.0.1", "http", "127.0.0.1:8501", False),
        ("http://localhost:8501", "http", "127.0.0.1:8501", False),
        ("http://127.0.0.1:8501", "ws", "127.0.0.1:8501", True),
        ("http://127.0.0.1:8501/path", "http", "127.0.0.1:8501", False),
        ("http://user@127.0.0.1:8501", "http", "127.0.0.1:8501", False),
        ("http://127.0.0.1:x", "http", "127.0.0.1:x", False),
        ("null", "http", "127.0.0.1:8501", False),
        ("ftp://127.0.0.1:8501", "http", "127.0.0.1:8501", False),
    ],
)
def test_same_origin_is_scheme_host_and_port_as_the_browser_wrote_them(origin, scheme, host, same):
    assert same_origin(origin, scheme=scheme, host=host) is same


async def answered(scope_type: str, headers: dict[str, str], method: str = "POST") -> str:
    """What OriginCheck (with ALLOWED_ORIGINS as below) lets through to an app that answers 204 or accepts the
    websocket: its first message, the status of an HTTP response or the type of a websocket message."""
    sent: list[Message] = []

    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    scope = {"type": scope_type, "method": method, "path": "/x", "scheme": "http", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    check = OriginCheck(app, allowed=parse_origins(" https://Digits.example.com/ , https://b.example"))
    await check(scope, receive, send)
    return str(sent[0].get("status", sent[0]["type"]))


async def test_allowed_origins_and_websockets():
    """ALLOWED_ORIGINS adds origins (a proxy that rewrites the Host); a websocket from another site is closed before
    it is accepted (NiceGUI's socket.io takes any origin)."""
    proxied = {"Host": "127.0.0.1:8501", "Origin": "https://digits.example.com"}
    assert await answered("http", proxied) == "204"
    assert await answered("http", proxied | {"Origin": EVIL}) == "403"
    assert await answered("http", proxied | {"Origin": EVIL}, method="GET") == "204"  # reading: CORS keeps it
    own = {"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"}
    assert await answered("websocket", own) == "websocket.accept"
    assert await answered("websocket", {"Host": "127.0.0.1:8501"}) == "websocket.accept"
    assert await answered("websocket", own | {"Origin": EVIL}) == "websocket.close"
