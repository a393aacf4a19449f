"""The process supervisor behind `make run` and `make stop`.

    python -m deploy.run          start PostgreSQL, TorchServe and the UI, restart any that dies (deploy/restarts.py);
                                  stop them all on Ctrl-C (or SIGTERM)
    python -m deploy.run stop     stop what a background run left running

It owns the servers' processes: nothing else starts them, except the test fixtures, which use the same starters on
free ports.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from db.embedded import PrivateServer, PrivateServerError, start_private_server, stop_private_server
from deploy.java import JavaNotFoundError
from deploy.parts import PostgresPart, TorchServePart, UIPart
from deploy.restarts import Keeper, Part, keep_running
from deploy.torchserve import TorchServe, TorchServeError, stop_group
from deploy.torchserve import from_settings as torchserve
from settings import ROOT, Settings, SettingsError, load


class StartupError(RuntimeError):
    """The product cannot start; the message says why and what to do."""


def supervisor_pid_file(settings: Settings) -> Path:
    return settings.ts_home.parent / "run.pid"


def ui_pid_file(settings: Settings) -> Path:
    return settings.ts_home.parent / "ui.pid"


def check_port_free(url: str) -> None:
    """Refuse to start when something already listens where a server of ours must."""
    parts = urlsplit(url)
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex((parts.hostname, parts.port)) == 0:
            raise StartupError(f"{url} is already in use: another `make run`? Stop it with `make stop`.")


def check_model_store(settings: Settings, server: TorchServe) -> None:
    archives = server.properties.get("load_models", "").split(",")
    missing = [name for name in archives if name and not (settings.model_store / name).exists()]
    if missing:
        raise StartupError(
            f"missing model archive(s) {', '.join(missing)} in {settings.model_store}: run `make archive`"
        )


def ui_url(settings: Settings) -> str:
    return f"http://{settings.ui_host}:{settings.ui_port}"


class UIProcess:
    """The NiceGUI app (`python -m ui.main`) in its own process group, told where the database is."""

    def __init__(self, settings: Settings, *, database_url: str):
        self.settings = settings
        self.database_url = database_url
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, DATABASE_URL=self.database_url, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ui.main"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
        ui_pid_file(self.settings).write_text(str(self.process.pid))

    def answers(self) -> bool:
        """The page answers 200 now (it reads the database, so this also proves the pool and the schema)."""
        try:
            return httpx.get(ui_url(self.settings), timeout=5).status_code == 200
        except httpx.HTTPError:
            return False  # not listening yet

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Until the page answers; StartupError when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartupError(f"the UI exited with code {self.process.returncode} (its log is above)")
            if self.answers():
                return
            time.sleep(0.3)
        raise StartupError(f"the UI did not answer at {ui_url(self.settings)} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM its group, wait for it (our child: waiting also reaps it), SIGKILL what is left after 15 s.
        stop_group() is for groups that are not our children: an exited child stays a zombie until waited for, its
        group looks alive, and Ctrl-C took the whole 15 s."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass  # it ended meanwhile
        ui_pid_file(self.settings).unlink(missing_ok=True)


def start_database(settings: Settings) -> tuple[str, PrivateServer | None]:
    """DATABASE_URL when set; else the private server under var/postgres (started here, stopped by us)."""
    if settings.database_url:
        return settings.database_url, None
    check_port_free(f"postgresql://127.0.0.1:{settings.pg_port}")
    server = start_private_server(home=settings.pg_home, port=settings.pg_port)
    return server.url, server


def check_secrets(settings: Settings) -> None:
    """Before anything starts: the page's secrets (validated by Settings outside dev; generated under var/ in dev,
    which also makes the file the banner names exist)."""
    settings.secret("storage_secret")
    settings.secret("admin_password")


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: stop everything cleanly
    raise KeyboardInterrupt


def run(settings: Settings) -> int:
    """Start Postgres, TorchServe and the UI, wait until each serves, then supervise until interrupted."""
    server = torchserve(settings)
    for url in (server.endpoints.inference, server.endpoints.management, server.endpoints.metrics, ui_url(settings)):
        check_port_free(url)
    check_model_store(settings, server)
    check_secrets(settings)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    pid_file = supervisor_pid_file(settings)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    started, postgres, ui = time.monotonic(), None, None
    try:
        print("starting PostgreSQL ...", flush=True)
        database_url, postgres = start_database(settings)
        print(f"starting TorchServe (logs: {server.log_file}) ...", flush=True)
        server.start()
        server.wait_ready(models=(settings.model_name,), timeout=settings.ts_start_timeout)
        print("starting the UI ...", flush=True)
        ui = UIProcess(settings, database_url=database_url)
        ui.start()
        ui.wait_ready()
        print(_banner(settings, server, postgres, time.monotonic() - started), flush=True)
        keep_running(_keepers(settings, server, postgres, ui))
        return 0
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        if ui is not None:
            ui.stop()
        server.stop()
        if postgres is not None:
            postgres.stop()
        pid_file.unlink(missing_ok=True)
        print("stopped.", flush=True)


def _keepers(settings: Settings, server: TorchServe, postgres: PrivateServer | None, ui: UIProcess) -> list[Keeper]:
    """What the supervisor restarts when it dies: TorchServe, the private PostgreSQL (an external DATABASE_URL is its
    operator's), the UI; each with its own back-off (deploy/restarts.py)."""
    parts: list[Part] = [
        TorchServePart(server, model_name=settings.model_name, start_timeout=settings.ts_start_timeout),
        UIPart(ui),
    ]
    if postgres is not None:
        parts.insert(0, PostgresPart(postgres))
    return [Keeper(part) for part in parts]


def _banner(settings: Settings, server: TorchServe, postgres: PrivateServer | None, seconds: float) -> str:
    database = f"private server, data in {postgres.data_dir}" if postgres else "DATABASE_URL"
    password = "ADMIN_PASSWORD" if settings.admin_password else f"password in {settings.admin_password_file}"
    return (
        f"ready in {seconds:.1f} s\n"
        f"  the page               {ui_url(settings)}\n"
        f"  stats                  {ui_url(settings)}/stats\n"
        f"  model admin            {ui_url(settings)}/models ({password})\n"
        f"  TorchServe inference   {server.endpoints.inference}/predictions/{settings.model_name}\n"
        f"  TorchServe management  {server.endpoints.management}\n"
        f"  TorchServe metrics     {server.endpoints.metrics}/metrics\n"
        f"  API keys               {server.key_file}\n"
        f"  PostgreSQL             {database}\n"
        "A part that dies is restarted (docs/operations.md, When a part dies).\n"
        "Ctrl-C stops everything."
    )


def stop(settings: Settings) -> int:
    """Stop a background run: the supervisor first (it stops its children), then anything it left."""
    stopped = []
    targets = (
        ("supervisor", supervisor_pid_file(settings), "deploy.run"),
        ("UI", ui_pid_file(settings), "ui.main"),
        ("TorchServe", torchserve(settings).pid_file, "torchserve"),
    )
    for name, pid_file, marker in targets:
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text().strip() or 0)
        if _running(pid, marker):
            if name == "supervisor":
                _stop_process(pid)
            else:
                stop_group(pid, timeout=30)
            stopped.append(f"{name} (pid {pid})")
        pid_file.unlink(missing_ok=True)
    if not settings.database_url and (pid := stop_private_server(home=settings.pg_home)) is not None:
        stopped.append(f"PostgreSQL (pid {pid})")
    print("stopped " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def _running(pid: int, marker: str) -> bool:
    """True when pid is alive (not a zombie) and its command line contains marker (pid files can be stale)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and marker in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _stop_process(pid: int, timeout: float = 60) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _running(pid, "deploy.run"):
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("run", "stop"), default="run")
    args = parser.parse_args(argv)
    try:
        settings = load()
        sys.exit(run(settings) if args.command == "run" else stop(settings))
    except (SettingsError, StartupError, TorchServeError, JavaNotFoundError, PrivateServerError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
