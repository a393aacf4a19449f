"""TorchServe in a container: the starter of `make run` in the foreground, and the container's health check.

    python -m deploy.container serve   start TorchServe from config.properties with the TS_* overrides of the
                                       environment (the image sets TS_HOST=0.0.0.0), copy its log to stdout, renew
                                       its keys before they expire, stop it on SIGTERM
    python -m deploy.container ping    exit 0 when /ping answers 200 and every loaded version has a READY worker
                                       (with the keys, unless token authorization is off)

The effective configuration is made as for `make run` (deploy.run.torchserve; a test keeps the two equal), so a
container differs from a local run only by its environment. TorchServe writes key_file.json into TS_HOME, its working
directory; docker-compose.yml shares that folder with the UI through a volume. This module imports no UI or database
code, so the TorchServe image needs only deploy/, serving/, settings.py and the model store.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from deploy.torchserve import KeyRenewal, TorchServe, renew_keys, renewal_interval, token_auth
from deploy.torchserve import from_settings as torchserve
from records.errors import ManagementError, ModelUnavailable
from settings import Settings, SettingsError, load

__all__ = ["renew_keys", "renewal_interval", "token_auth", "torchserve"]  # the tests use them from here


class MissingArchives(RuntimeError):
    """An archive named in load_models is not in the model store."""


def check_archives(server: TorchServe) -> None:
    names = [name for name in server.properties.get("load_models", "").split(",") if name]
    missing = [name for name in names if not (server.model_store / name).exists()]
    if missing:
        raise MissingArchives(
            f"missing model archive(s) {', '.join(missing)} in {server.model_store}: build them first "
            "(`make archive VERSION=<version>` for each; docs/deployment.md)"
        )


def supervise(server: TorchServe, *, log_offset: int, poll: float = 0.5) -> int:
    """Copy TorchServe's log to stdout and renew its keys until it exits; its exit code."""
    renewal = KeyRenewal(server)
    while True:
        code = server.process.poll()
        if server.log_file.exists():
            with server.log_file.open("rb") as log:
                log.seek(log_offset)
                chunk = log.read()
            log_offset += len(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        if code is not None:
            return code
        if problem := renewal.tick():
            print(problem, flush=True)
        time.sleep(poll)


def _raise_interrupt(signum, frame):  # SIGTERM (docker stop, Kubernetes) stops TorchServe like Ctrl-C
    raise KeyboardInterrupt


def serve(settings: Settings) -> int:
    """Run TorchServe in the foreground until it exits or the container is stopped."""
    server = torchserve(settings)
    check_archives(server)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    offset = server.log_file.stat().st_size if server.log_file.exists() else 0
    server.start()
    print(f"TorchServe: inference {server.endpoints.inference}, management {server.endpoints.management}, "
          f"metrics {server.endpoints.metrics}; keys in {server.key_file}; model store {server.model_store}",
          flush=True)  # fmt: skip
    try:
        return supervise(server, log_offset=offset)
    except KeyboardInterrupt:
        server.stop()
        return 0


def ping(settings: Settings, *, timeout: float = 5.0) -> int:
    """0 when TorchServe answers /ping with 200 and every loaded version has a READY worker, else 1 and why.

    /ping alone is not enough: it answered 200 "Healthy" while every worker died at start (a missing Python package
    in the image) and restarted in a loop, so the container looked healthy and answered no prediction."""
    server = torchserve(settings)
    try:
        with server.inference(timeout=timeout) as inference, server.management(timeout=timeout) as management:
            inference.ping()
            unready = management.unready()
    except (ModelUnavailable, ManagementError) as exc:
        print(f"TorchServe is not healthy: {exc}")
        return 1
    except (ValueError, KeyError, TypeError) as exc:  # an answer that is not TorchServe's
        print(f"TorchServe does not answer: {exc}")
        return 1
    if unready:
        print(f"no READY worker for {', '.join(unready)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.container", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["serve", "ping"])
    args = parser.parse_args(argv)
    try:
        settings = load()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "ping":
        return ping(settings)
    try:
        return serve(settings)
    except MissingArchives as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
