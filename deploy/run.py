"""The process supervisor behind `make run` and `make stop`.

    python -m deploy.run          start everything, print where it is, stop it all on Ctrl-C (or SIGTERM)
    python -m deploy.run stop     stop what a background run left running

It owns the servers' processes: nothing else starts them, except the test fixtures, which use the same starters on
free ports.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from deploy.java import JavaNotFoundError
from deploy.torchserve import TorchServe, TorchServeError, address_overrides, stop_group
from ui.settings import Settings, get_settings


class StartupError(RuntimeError):
    """The product cannot start; the message says why and what to do."""


def torchserve(settings: Settings) -> TorchServe:
    """The TorchServe instance the settings describe."""
    overrides = address_overrides(
        host=settings.ts_host,
        inference=settings.ts_inference_port,
        management=settings.ts_management_port,
        metrics=settings.ts_metrics_port,
    )
    overrides.update(settings.ts_properties)
    return TorchServe(
        home=settings.ts_home, config_template=settings.ts_config, model_store=settings.model_store, overrides=overrides
    )


def supervisor_pid_file(settings: Settings) -> Path:
    return settings.ts_home.parent / "run.pid"


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


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: stop everything cleanly
    raise KeyboardInterrupt


def run(settings: Settings) -> int:
    """Start TorchServe, wait until it serves, then supervise until interrupted. Returns the exit code."""
    server = torchserve(settings)
    for url in (server.endpoints.inference, server.endpoints.management, server.endpoints.metrics):
        check_port_free(url)
    check_model_store(settings, server)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    pid_file = supervisor_pid_file(settings)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    started = time.monotonic()
    try:
        print(f"starting TorchServe (logs: {server.log_file}) ...", flush=True)
        server.start()
        server.wait_ready(models=(settings.model_name,), timeout=settings.ts_start_timeout)
        print(_banner(settings, server, time.monotonic() - started), flush=True)
        while server.process.poll() is None:
            time.sleep(1)
        print(
            f"TorchServe stopped unexpectedly (exit {server.process.returncode}):\n{server.log_tail()}", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        server.stop()
        pid_file.unlink(missing_ok=True)
        print("stopped.", flush=True)


def _banner(settings: Settings, server: TorchServe, seconds: float) -> str:
    return (
        f"ready in {seconds:.1f} s\n"
        f"  TorchServe inference   {server.endpoints.inference}/predictions/{settings.model_name}\n"
        f"  TorchServe management  {server.endpoints.management}\n"
        f"  TorchServe metrics     {server.endpoints.metrics}/metrics\n"
        f"  API keys               {server.key_file}\n"
        "Ctrl-C stops everything."
    )


def stop(settings: Settings) -> int:
    """Stop a background run: the supervisor first (it stops its children), then any child it left."""
    stopped = []
    targets = (
        ("supervisor", supervisor_pid_file(settings), "deploy.run"),
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
    settings = get_settings()
    try:
        sys.exit(run(settings) if args.command == "run" else stop(settings))
    except (StartupError, TorchServeError, JavaNotFoundError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
