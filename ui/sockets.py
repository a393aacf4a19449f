"""Two of NiceGUI's socket event handlers, replaced (ui/main.py calls `install()`), because the framework's own trust
what any socket sends (docs/security.md). Both are public hooks of python-socketio (`sio.on(event, handler)`
replaces the handler NiceGUI registered in nicegui/nicegui.py); the replacements keep NiceGUI's behaviour otherwise.

- `log`: NiceGUI writes the message a browser sends straight into the server's log at the level it names, so any
  visitor could write forged, multi-line entries (and an unknown level raised KeyError). Here control characters and
  line breaks are escaped, the length is capped, the entry says it comes from a browser, and it is at most a WARNING
  (a visitor cannot raise the server's ERROR alarms).
- `event`: NiceGUI routes an element event by the client id inside the message, from any socket, so a page's buttons
  were protected only by the secrecy of its client id. Here the socket must be one that completed the handshake for that
  client (NiceGUI puts it in a room named after the client; that needs the tab id the page pinned as well). The user
  simulation of the tests (socket ids "test-...") has no rooms and is let through, as NiceGUI does for its handshake.
  The admin page also checks its server-side session before every action (ui/pages/models.py).
"""

from __future__ import annotations

import logging

from nicegui import Client, core

logger = logging.getLogger(__name__)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}  # "error" and others: WARNING
MAX_LOG_MESSAGE = 2000  # characters kept of one browser message


def escaped(text: str) -> str:
    """`text` on one line: line breaks, escape sequences and other unprintable characters as Python escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def client_log(_sid: str, msg: object) -> None:
    """A browser's log message, on one line, marked as the browser's (never at a level it did not name)."""
    if not isinstance(msg, dict) or (client := Client.instances.get(str(msg.get("client_id")))) is None:
        return
    level = LEVELS.get(str(msg.get("level")), logging.WARNING)
    text = str(msg.get("message", ""))
    cut = " [cut]" if len(text) > MAX_LOG_MESSAGE else ""
    logger.log(level, "browser (client %s) says: %s%s", client.id, escaped(text[:MAX_LOG_MESSAGE]), cut)


def client_event(sid: str, msg: object) -> None:
    """NiceGUI's element event, only from a socket that completed the handshake for the client it names."""
    if not isinstance(msg, dict) or (client := Client.instances.get(str(msg.get("client_id")))) is None:
        return
    if not client.has_socket_connection:
        return
    if not sid.startswith("test-") and client.id not in core.sio.rooms(sid):
        logger.warning("dropped an event for client %s from socket %s, which is not that client's", client.id, sid)
        return
    client.handle_event(msg)


def install() -> None:
    core.sio.on("log", handler=client_log)
    core.sio.on("event", handler=client_event)
