"""Start, watch and stop one TorchServe instance, and read the keys it writes.

Everything an instance owns lives in its home folder: the effective config.properties (the template with overrides
applied), key_file.json (TorchServe writes it into its working directory), logs, its own TMPDIR (the CLI keeps a
pid file there, so two instances must not share one) and torchserve.pid (for `make stop`). Used by the supervisor
(`make run`) and by the test fixtures, which start a second instance on free ports. Whatever is asked of the running
instance (READY workers, new keys) goes through serving's sync clients, which `inference()` and `management()` hand out.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from deploy.java import java_home
from records.errors import ManagementError
from serving.auth import read_keys
from serving.endpoints import Endpoints, configure, local_url, read_properties, settings_overrides
from serving.inference import SyncInference
from serving.management import SyncManagement
from settings import Settings


class TorchServeError(RuntimeError):
    """TorchServe did not start, or stopped; the message includes the end of its log."""


WORKER_PORT_BASE = 9000  # config.properties' initial_worker_port, for the default inference port 8080
WORKER_PORT_SLOTS = 2000  # bases 9000..28990, 10 worker ports each


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together so that they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def isolated_overrides() -> dict[str, str]:
    """Overrides that let another TorchServe run beside the one of `make run`: every port distinct.

    Workers listen on unix sockets /tmp/.ts.sock.<port> counted up from initial_worker_port, so that moves too.
    """
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    return {
        "inference_address": f"http://127.0.0.1:{inference}",
        "management_address": f"http://127.0.0.1:{management}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_port": str(grpc_management),
        "initial_worker_port": str(20000 + (inference % 4000) * 10),
    }


class TorchServe:
    """One TorchServe process group, started from a config template with overrides, in its own home folder."""

    def __init__(
        self, *, home: Path, config_template: Path, model_store: Path, overrides: dict[str, str] | None = None
    ):
        self.home = Path(home).resolve()
        self.model_store = Path(model_store).resolve()
        template = Path(config_template).read_text()
        self.config_text = configure(
            template, {**self._own_worker_sockets(template, overrides or {}), **(overrides or {})}
        )
        self.properties = read_properties(self.config_text)
        self.endpoints = Endpoints.from_properties(self.properties)
        self.process: subprocess.Popen | None = None

    def _own_worker_sockets(self, template: str, overrides: dict[str, str]) -> dict[str, str]:
        """Overrides that give this instance worker sockets of its own (issue #20 N7).

        The frontend talks to each worker over the unix socket <java.io.tmpdir>/.ts.sock.<port>, ports counted up from
        initial_worker_port: with the JVM's default /tmp and the configured 9000, two instances on one host (a second
        checkout, a test stack beside `make run`) bound the same paths, and a worker restarting in one could take the
        other's socket. So the JVM's tmpdir is this instance's own folder (home/tmp), and the port base follows the
        inference port (8080 -> 9000, 8081 -> 9010, ...) unless set: either alone keeps the paths apart."""
        properties = read_properties(configure(template, overrides))
        tmpdir = self.home / "tmp"
        chosen = {"vmargs": f"{properties.get('vmargs', '')} -Djava.io.tmpdir={tmpdir}".strip()}
        if "initial_worker_port" not in overrides:
            port = urlsplit(properties["inference_address"]).port or 8080
            chosen["initial_worker_port"] = str(WORKER_PORT_BASE + ((port - 8080) % WORKER_PORT_SLOTS) * 10)
        return chosen

    @property
    def worker_sockets(self) -> Path:
        """The folder of this instance's worker sockets (.ts.sock.<port>)."""
        return self.home / "tmp"

    @property
    def key_file(self) -> Path:
        return self.home / "key_file.json"

    @property
    def pid_file(self) -> Path:
        return self.home / "torchserve.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "torchserve.out"

    def keys(self) -> dict[str, str]:
        return read_keys(self.key_file)

    def _client_key_file(self) -> Path | None:
        return self.key_file if token_auth(self) else None

    def inference(self, *, model_name: str = "mnist", timeout: float = 10.0, connections: int = 8) -> SyncInference:
        """A blocking inference client for this instance (close it, or use it in a `with`)."""
        return SyncInference(
            inference_url=local_url(self.endpoints.inference), key_file=self._client_key_file(),
            model_name=model_name, timeout=timeout, connections=connections,
        )  # fmt: skip

    def management(self, *, timeout: float = 10.0) -> SyncManagement:
        """A blocking management client for this instance (close it, or use it in a `with`)."""
        return SyncManagement(
            management_url=local_url(self.endpoints.management), key_file=self._client_key_file(), timeout=timeout
        )

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TMPDIR=str(self.home / "tmp"), LOG_LOCATION=str(self.home / "logs"))
        env.update(METRICS_LOCATION=str(self.home / "logs"), PYTHONUNBUFFERED="1")
        home = java_home()
        if home is None:
            env.pop("JAVA_HOME", None)
        else:
            env["JAVA_HOME"] = str(home)
            env["PATH"] = f"{home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(self) -> None:
        """Launch TorchServe in the foreground of its own process group (returns at once; see wait_ready)."""
        for folder in (self.home, self.home / "tmp", self.home / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)  # keys change on every start; never read the last run's
        config = self.home / "config.properties"
        config.write_text(self.config_text)
        command = [
            str(Path(sys.executable).parent / "torchserve"),
            "--start", "--foreground", "--ncs",
            "--ts-config", str(config),
            "--model-store", str(self.model_store),
        ]  # fmt: skip
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.home, env=self._environment(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(self.process.pid))

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _log_since_start(self) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as log:
            log.seek(getattr(self, "_log_start", 0))
            return log.read().decode("utf-8", "replace")

    def ready_models(self, model: str) -> bool:
        """True when `model`'s default version has a READY worker (asked over the management API, with its key)."""
        if not self.key_file.exists():  # TorchServe writes it once it is up
            return False
        with self.management(timeout=5) as management:
            return management.ready(model)

    def wait_ready(self, *, models: tuple[str, ...], timeout: float) -> None:
        """Block until every model has a READY worker; raise TorchServeError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise TorchServeError(f"TorchServe exited with code {self.process.returncode}:\n{self.log_tail()}")
            if all(self.ready_models(model) for model in models):
                return
            if "Load model failed" in self._log_since_start():
                raise TorchServeError(f"TorchServe could not load a model:\n{self.log_tail(60)}")
            time.sleep(0.5)
        raise TorchServeError(f"TorchServe not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group (TorchServe stops its workers), SIGKILL what is left after timeout."""
        if self.process is None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        _signal_group(self.process.pid, signal.SIGKILL)  # workers that outlived the frontend
        self.process = None
        self.pid_file.unlink(missing_ok=True)


@contextmanager
def temporary(
    *, config_template: Path, model_store: Path, models: tuple[str, ...] = ("mnist",), overrides: dict | None = None
) -> Iterator[TorchServe]:
    """A TorchServe on free ports in a throw-away home, ready, stopped on exit (benchmarks, evaluation)."""
    with tempfile.TemporaryDirectory(prefix="torchserve-") as home:
        settings = {**isolated_overrides(), **(overrides or {})}
        server = TorchServe(
            home=Path(home), config_template=config_template, model_store=model_store, overrides=settings
        )
        server.start()
        try:
            server.wait_ready(models=models, timeout=180)
            yield server
        finally:
            server.stop()


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _group_runs(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: only their parent can remove them, and where
    pid 1 does not reap orphans (some containers, this project's test machines) the workers of a killed TorchServe
    stay zombies in its group for good."""
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue  # ended meanwhile
    return False


def stop_group(pid: int, *, timeout: float) -> bool:
    """Stop a process group that is not our child (`make stop`, the leftovers of a TorchServe that died): SIGTERM,
    then SIGKILL. False if none was running."""
    if not _signal_group(pid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_runs(pid):
        time.sleep(0.2)
    _signal_group(pid, signal.SIGKILL)
    return True


def from_settings(settings: Settings) -> TorchServe:
    """The TorchServe instance the settings describe: config.properties with the TS_* overrides (serving/endpoints.py,
    which the clients read too)."""
    return TorchServe(
        home=settings.ts_home,
        config_template=settings.ts_config,
        model_store=settings.model_store,
        overrides=settings_overrides(settings),
    )


RENEWED_KEYS = ("inference", "management")


def token_auth(server: TorchServe) -> bool:
    return server.properties.get("disable_token_authorization", "false").lower() != "true"


def renew_keys(server: TorchServe) -> None:
    """New inference and management keys (TorchServe rewrites key_file.json; clients re-read it when it changes).

    Keys expire after token_expiration_min and TorchServe does not renew them by itself; only the API key, which
    does not expire, may ask for new ones. ManagementError when TorchServe refuses or cannot be reached."""
    with server.management(timeout=10) as management:
        for kind in RENEWED_KEYS:
            management.renew_key(kind)


def renewal_interval(server: TorchServe) -> float:
    """Seconds between renewals: half the keys' lifetime, so a failed renewal is retried before they expire."""
    return float(server.properties.get("token_expiration_min", "60")) * 60 / 2


class KeyRenewal:
    """Calls renew_keys every renewal_interval (never when token authorization is off); for supervisor loops."""

    RETRY_SECONDS = 60.0

    def __init__(self, server: TorchServe, *, clock=time.monotonic):
        self.server = server
        self.clock = clock
        self.interval = renewal_interval(server) if token_auth(server) else None
        self.next = clock() + (self.interval or 0)

    def tick(self) -> str | None:
        """Renew if due; returns an error message when renewing failed (retried after RETRY_SECONDS)."""
        if not self.interval or self.clock() < self.next or not self.server.key_file.exists():
            return None
        try:
            renew_keys(self.server)
        except (ManagementError, httpx.HTTPError, ValueError, OSError) as exc:
            self.next = self.clock() + self.RETRY_SECONDS
            return f"renewing TorchServe's keys failed (retried in {self.RETRY_SECONDS:.0f} s): {exc}"
        self.next = self.clock() + self.interval
        return None
