"""Slowloris at the page (ui/connections.py): a connection that never finishes its request head is closed by the
server, a head that grows without end is refused, connections past the cap are refused at once, and the page answers
meanwhile. Against a real page process (ui.main.run on stand-ins, on a free port), through real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from ui.connections import HEAD_SECONDS, MAX_HEAD_BYTES, GuardedProtocol, connection_limit
from ui.main import server_options

ROOT = Path(__file__).resolve().parents[2]
HALF_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # the head never ends
# The page on stand-ins, as ui.main.run serves it; argv: port, journal folder, storage folder, connection cap
PAGE = """
import sys
from pathlib import Path
from settings import Settings
from tests.support.fakes import fake_app
from ui import connections, main

connections.GuardedProtocol.max_connections = int(sys.argv[4])
settings = Settings(_env_file=None, storage_secret="s" * 16, admin_password="a" * 16, ui_port=int(sys.argv[1]),
                    database_url="postgresql://nowhere.invalid/none", ui_storage_dir=Path(sys.argv[3]))

async def build(settings):
    return fake_app(settings, Path(sys.argv[2]))[0]

main.run(settings, build=build)
"""
CAP = 300


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[str]:
    port, folder = free_port(), tmp_path_factory.mktemp("page")
    arguments = [str(port), str(folder / "journal"), str(folder / "storage"), str(CAP)]
    process = subprocess.Popen(
        [sys.executable, "-c", PAGE, *arguments], cwd=ROOT, env=page_environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not answers(url):
            assert process.poll() is None and time.monotonic() < deadline, "the page did not start"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def page_environment() -> dict[str, str]:
    """This environment without pytest's marks (NiceGUI's ui.run takes a test's port when it sees one)."""
    own = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    return {**own, "PYTHONPATH": str(ROOT)}


def answers(url: str) -> bool:
    try:
        return httpx.get(url + "/api/history", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def half_sent(url: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    connection.sendall(HALF_HEAD)
    connection.settimeout(0)
    return connection


def closed(connection: socket.socket) -> bool:
    """Whether the server has closed it (EOF, or a reset); an answer before the close counts with it."""
    try:
        while connection.recv(65536):
            continue  # an answer before the close
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_the_page_hands_uvicorn_the_guarded_protocol():
    from settings import Settings

    options = server_options(Settings(_env_file=None))
    assert options["http"] is GuardedProtocol and options["timeout_keep_alive"] == 5
    assert GuardedProtocol.head_seconds == HEAD_SECONDS == 10
    assert 16 <= connection_limit() <= 4096 and connection_limit(cap=100) <= 100


@pytest.mark.slow
def test_connections_that_never_finish_their_head_are_closed_while_the_page_answers(page):
    sockets = [half_sent(page) for _ in range(200)]
    try:
        started = time.monotonic()
        time.sleep(1)
        assert not any(closed(s) for s in sockets)  # not before the deadline
        assert answers(page)  # a normal request meanwhile
        while time.monotonic() - started < HEAD_SECONDS + 5 and sum(map(closed, sockets)) < len(sockets):
            time.sleep(0.25)
        assert sum(map(closed, sockets)) >= 0.9 * len(sockets)
        assert time.monotonic() - started >= HEAD_SECONDS - 1
        assert answers(page)
    finally:
        for s in sockets:
            s.close()


def test_a_head_that_never_ends_is_refused_at_its_size_limit(page):
    connection = socket.create_connection(("127.0.0.1", int(page.rsplit(":", 1)[1])), timeout=10)
    with connection:
        connection.sendall(HALF_HEAD + b"a" * (MAX_HEAD_BYTES - len(HALF_HEAD)))  # at the limit: still waited for
        time.sleep(0.5)
        assert not closed_now(connection)
        connection.sendall(b"a" * 16)  # one more byte of head than allowed (all read: the close is not a reset)
        assert connection.recv(200).startswith(b"HTTP/1.1 431")


def closed_now(connection: socket.socket) -> bool:
    connection.settimeout(0)
    try:
        return closed(connection)
    finally:
        connection.settimeout(10)


def test_connections_past_the_cap_are_refused_at_once(page):
    held = [half_sent(page) for _ in range(CAP)]
    try:
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", int(page.rsplit(":", 1)[1])), timeout=5)
        with extra:
            assert extra.recv(200).startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert answers(page)  # room again once they are gone
