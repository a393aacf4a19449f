"""The product's parts as the supervisor restarts them (deploy/restarts.py Part): TorchServe, the private PostgreSQL
and the UI process.

TorchServe forgets at every start what was done to it at run time: the versions registered over the management API
(`make retrain`, `make models ARGS="register ..."`) are not in config.properties' load_models, the workers scaled are
back to the configured numbers, the default is load_models' first archive. So while it runs the supervisor looks at
its versions every few seconds (LoadedVersions) and after a restart puts back what is missing. The operator's chosen
default is kept in PostgreSQL and re-applied by the UI every RECONCILE_SECONDS (serving/versions.py reconcile), which
skips a version that is not loaded: so the versions come back here first, and the last default seen is set here
too, so that the chosen version answers as soon as it is loaded rather than up to RECONCILE_SECONDS later.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from db.embedded import PrivateServer
from deploy.torchserve import KeyRenewal, TorchServe, stop_group
from records.errors import ManagementError
from records.versions import Version
from serving.management import SyncManagement

RESTORE_TIMEOUT = 120.0  # a registration waits for its worker to load


@dataclass(frozen=True)
class LoadedVersion:
    """What it takes to load one version again as it was."""

    version: str
    archive: str  # its file in the model store (TorchServe's modelUrl)
    min_workers: int
    max_workers: int
    batch_size: int
    max_batch_delay: int


class LoadedVersions:
    """One model's versions and default as TorchServe last showed them; put back after a restart."""

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.versions: dict[str, LoadedVersion] = {}
        self.default: str | None = None

    def observe(self, management: SyncManagement) -> None:
        """Remember what is loaded now (ManagementError, httpx.HTTPError: not now; what was known stays)."""
        described = management.describe(self.model_name)
        if not described:
            return  # the model is not loaded (yet): nothing to learn
        self.versions = {
            v.version: LoadedVersion(
                v.version, v.archive, v.min_workers, v.max_workers, v.batch_size, v.max_batch_delay
            )
            for v in described
        }
        self.default = next((v.version for v in described if v.is_default), self.default)

    def restore(self, management: SyncManagement) -> list[str]:
        """Register the versions TorchServe lacks, scale those it runs with other workers, set the default back;
        returns one line per thing done or failed (a failure does not stop the rest)."""
        loaded = {v.version: v for v in management.describe(self.model_name)}
        lines = [self._put_back(management, wanted, loaded.get(wanted.version)) for wanted in self.versions.values()]
        lines.append(self._default_back(management, loaded))
        return [line for line in lines if line]

    def _put_back(self, management: SyncManagement, wanted: LoadedVersion, running: Version | None) -> str | None:
        try:
            if running is None:
                management.register(
                    wanted.archive, workers=wanted.min_workers, batch_size=wanted.batch_size,
                    max_batch_delay=wanted.max_batch_delay,
                )  # fmt: skip
                return f"registered {self.model_name} {wanted.version} again ({wanted.archive})"
            if (running.min_workers, running.max_workers) != (wanted.min_workers, wanted.max_workers):
                management.scale(self.model_name, wanted.version, workers=wanted.max_workers)
                return f"scaled {self.model_name} {wanted.version} back to {wanted.max_workers} worker(s)"
        except (ManagementError, httpx.HTTPError) as exc:
            return f"could not put back {self.model_name} {wanted.version}: {exc}"
        return None

    def _default_back(self, management: SyncManagement, loaded: dict[str, Version]) -> str | None:
        if self.default is None or (self.default in loaded and loaded[self.default].is_default):
            return None
        try:
            management.set_default(self.model_name, self.default)
        except (ManagementError, httpx.HTTPError) as exc:
            return f"could not make {self.default} the default again: {exc} (the UI retries from the database)"
        return f"made {self.model_name} {self.default} the default again"


class TorchServePart:
    """TorchServe under the supervisor: its keys renewed, its versions remembered and put back after a restart."""

    OBSERVE_SECONDS = 5.0

    def __init__(self, server: TorchServe, *, model_name: str, start_timeout: float, clock=time.monotonic):
        self.name = "TorchServe"
        self.server = server
        self.model_name = model_name
        self.start_timeout = start_timeout
        self.clock = clock
        self.versions = LoadedVersions(model_name)
        self.renewal = KeyRenewal(server, clock=clock)
        self.next_look = 0.0
        self.unseen: str | None = None  # why the last look at the versions failed

    def alive(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None

    def start(self) -> None:
        """Stop the leftovers of the last process group (workers outlive a killed frontend), then start anew."""
        if self.alive():
            self.server.stop()  # started but never ready: our child, waited for
        elif self.server.process is not None:
            stop_group(self.server.process.pid, timeout=10)  # the frontend is gone (reaped); its workers may not be
        self.server.start()

    def ready(self) -> bool:
        return self.server.ready_models(self.model_name)

    def restored(self) -> list[str]:
        self.renewal = KeyRenewal(self.server, clock=self.clock)  # new keys, new lifetime
        try:
            with self.server.management(timeout=RESTORE_TIMEOUT) as management:
                return self.versions.restore(management)
        except (ManagementError, httpx.HTTPError) as exc:
            return [f"could not put back the versions: {exc}"]

    def tick(self) -> str | None:
        """Renew the keys when due; look at the loaded versions every OBSERVE_SECONDS."""
        problem = self.renewal.tick()
        if self.clock() >= self.next_look:
            self.next_look = self.clock() + self.OBSERVE_SECONDS
            self._look()
        return problem

    def _look(self) -> None:
        """Remember the loaded versions; when TorchServe cannot answer now, what was known stays (if it died, the
        supervisor notices within a second)."""
        try:
            with self.server.management(timeout=5) as management:
                self.versions.observe(management)
        except (ManagementError, httpx.HTTPError) as exc:
            self.unseen = str(exc)
        else:
            self.unseen = None

    def last_words(self) -> str:
        code = self.server.process.returncode if self.server.process is not None else None
        return f"(exit {code}; the end of {self.server.log_file})\n{self.server.log_tail()}"


class PostgresPart:
    """The private PostgreSQL (only when DATABASE_URL is not set: an external database is its operator's)."""

    def __init__(self, server: PrivateServer, *, start_timeout: float = 30.0):
        self.name = "PostgreSQL"
        self.server = server
        self.start_timeout = start_timeout

    def alive(self) -> bool:
        return self.server.is_running()

    def start(self) -> None:
        """pg_ctl start: waits until it accepts connections (a killed server's lock files are removed first)."""
        self.server.start(timeout=self.start_timeout)

    def ready(self) -> bool:
        return True  # start() returned: it answers

    def restored(self) -> list[str]:
        return []  # its data is on disk; the UI's pool reconnects and its journal is written when it is back

    def tick(self) -> str | None:
        return None

    def last_words(self) -> str:
        return f"(the end of {self.server.log_file})\n{self.server.log_tail(10)}"


class UIServer(Protocol):
    """deploy/run.py's UIProcess, as far as restarting it goes."""

    process: subprocess.Popen | None

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def answers(self) -> bool: ...


class UIPart:
    """The NiceGUI process: the page and the JSON API."""

    def __init__(self, ui: UIServer, *, start_timeout: float = 60.0):
        self.name = "the UI"
        self.ui = ui
        self.start_timeout = start_timeout

    def alive(self) -> bool:
        return self.ui.process is not None and self.ui.process.poll() is None

    def start(self) -> None:
        """Stop what is left of its process group, then start it again."""
        if self.ui.process is not None:
            self.ui.stop()
            stop_group(self.ui.process.pid, timeout=5)
        self.ui.start()

    def ready(self) -> bool:
        return self.ui.answers()

    def restored(self) -> list[str]:
        return []  # it reads the database and TorchServe's keys at start; a journal it kept is written from disk

    def tick(self) -> str | None:
        return None

    def last_words(self) -> str:
        code = self.ui.process.returncode if self.ui.process is not None else None
        return f"(exit {code}; its log is above)"
