"""NiceGUI's socket events as a hostile visitor sends them (ui/sockets.py): a browser's log message cannot forge
entries in the server's log, and an element event from a socket that is not the page's own is dropped."""

from __future__ import annotations

import logging

import pytest
from nicegui import core
from nicegui.testing import User

pytestmark = [pytest.mark.integration]
FORGED = "hello\n2026-12-01 21:00:00 INFO app.admin: admin logged in from 10.0.0.1\r\x1b[2K\u2028done"


def handler(event: str):
    return core.sio.handlers["/"][event]  # what NiceGUI's socket server calls for that event


@pytest.mark.parametrize("level", ["error", "info", "critical", None])
async def test_a_browser_log_message_stays_one_marked_line(user: User, caplog, level):
    await user.open("/")
    caplog.set_level(logging.DEBUG)
    handler("log")("sid-1", {"client_id": user.client.id, "level": level, "message": FORGED})
    messages = [r.getMessage() for r in caplog.records if "hello" in r.getMessage()]
    assert len(messages) == 1
    (message,) = messages
    assert not any(ch in message for ch in "\n\r\x1b\u2028"), message
    assert "hello\\n2026-12-01" in message and "browser (client" in message


async def test_an_event_from_another_socket_is_dropped(user: User, monkeypatch):
    await user.open("/")
    seen = []
    monkeypatch.setattr(user.client, "handle_event", seen.append)
    event = {"client_id": user.client.id, "id": 1, "listener_id": "x", "args": []}
    handler("event")("stranger-socket", event)  # knows the client id, did not complete its handshake
    assert seen == []
    # NiceGUI's handshake puts the page's own socket in the room named after its client
    rooms = {"own-socket": ["own-socket", user.client.id], "stranger-socket": ["stranger-socket"]}
    monkeypatch.setattr(core.sio, "rooms", lambda sid, namespace=None: rooms[sid])
    handler("event")("stranger-socket", event)
    handler("event")("own-socket", event)
    assert seen == [event]
