"""The page's HTTP connections: each must finish its request head in time, and there are only so many (slowloris).

uvicorn closes an idle connection only once it has answered on it: its keep-alive timer is armed when a response
ends (`on_response_complete`) and cancelled by any data that arrives (`data_received`); `connection_made` arms
nothing (uvicorn/protocols/http/httptools_impl.py, and h11_impl.py alike). So a connection that sends nothing, half
a request head, or a byte every few seconds is never closed, and 20,000 of them took every file descriptor of the
page. `GuardedProtocol`, uvicorn's httptools protocol with three additions, passed to uvicorn as its `http` class
(ui/main.py server_options):
- a deadline for the request head: HEAD_SECONDS from the connection's start, and from the end of each response (a
  kept-alive connection's next request), until the head is complete; past it the connection is closed;
- at most MAX_HEAD_BYTES before the head is complete (431, closed): httptools, unlike h11, sets no limit;
- at most `max_connections` open at once (HTTP and websockets, as uvicorn counts them): one more is answered 503 and
  closed at once, so the page keeps file descriptors for its database, TorchServe and the tabs already open.
A slow request body is not covered: that connection's request has started, and its ASGI task is bounded by the body
limit (ui/http.py), not by time.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_SECONDS = 10.0  # a browser sends its whole head at once; a phone on a bad network within a few seconds
MAX_HEAD_BYTES = 64 * 1024  # browsers' heads are a few KB (cookies included); uvicorn's h11 default is 16 KiB
MAX_CONNECTIONS = 4096  # open tabs (a websocket each) and requests in progress on one page process
RESERVED_DESCRIPTORS = 256  # for what the process opens itself: database pool, TorchServe clients, files, logs

SERVICE_UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def connection_limit(*, cap: int = MAX_CONNECTIONS) -> int:
    """The most connections to keep open: `cap`, and fewer when the process may open fewer files than that."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return cap
    return max(16, min(cap, soft - RESERVED_DESCRIPTORS))


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request head is late or too large, and refusing
    connections past `max_connections`. Class attributes, so that a subclass (a test) can choose other figures."""

    head_seconds = HEAD_SECONDS
    max_head_bytes = MAX_HEAD_BYTES
    max_connections = connection_limit()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(SERVICE_UNAVAILABLE)
            transport.close()
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_deadline is not None and self._head_bytes > self.max_head_bytes:
            self._close(HEAD_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._head_complete()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a queued request, whose head is complete, starts now
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_complete()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_bytes = 0
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_seconds, self._head_late)

    def _head_complete(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        self._close(b"")

    def _close(self, answer: bytes) -> None:
        self._head_complete()
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()
