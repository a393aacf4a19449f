"""Model versions: TorchServe's management API (with the management token) and the operator's persisted default.

    python -m deploy.models list
    python -m deploy.models register mnist-v2.0.mar [--workers 1] [--set-default]
    python -m deploy.models set-default 2.0
    python -m deploy.models unregister 2.0
    python -m deploy.models scale 2.0 --workers 2

TorchServe forgets `set-default` when it restarts (it does not reload its snapshot when started with --ts-config),
so the chosen default is kept in PostgreSQL (table model_defaults) and re-applied: by the UI at start and whenever
it sees TorchServe's default differ (`reconcile`). The admin page (/models) uses the same functions.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from psycopg_pool import AsyncConnectionPool

from db import store
from ui.predictor import KeyFile, ModelUnavailable
from ui.settings import Settings

# Serving settings for versions registered at run time: the same as config.properties gives 1.0 (README Performance).
REGISTER_DEFAULTS = {"batch_size": 16, "max_batch_delay": 2, "response_timeout": 30}


class ManagementError(RuntimeError):
    """A management request failed or was refused; the message says why and what to do."""


@dataclass(frozen=True)
class Worker:
    id: str
    pid: int | None
    status: str
    memory: int | None


@dataclass(frozen=True)
class Version:
    """One loaded version of a model, as TorchServe describes it."""

    version: str
    is_default: bool
    archive: str
    min_workers: int
    max_workers: int
    batch_size: int
    max_batch_delay: int
    workers: tuple[Worker, ...]

    @property
    def ready_workers(self) -> int:
        return sum(worker.status == "READY" for worker in self.workers)


def _version(description: dict, *, default: str | None) -> Version:
    workers = tuple(
        Worker(id=str(w.get("id")), pid=w.get("pid"), status=str(w.get("status")), memory=w.get("memoryUsage"))
        for w in description.get("workers", [])
    )
    return Version(
        version=str(description["modelVersion"]),
        is_default=str(description["modelVersion"]) == default,
        archive=str(description.get("modelUrl", "")),
        min_workers=int(description.get("minWorkers", 0)),
        max_workers=int(description.get("maxWorkers", 0)),
        batch_size=int(description.get("batchSize", 1)),
        max_batch_delay=int(description.get("maxBatchDelay", 0)),
        workers=workers,
    )


class ModelManager:
    """TorchServe's management API for one model, authenticated with the management key from the key file."""

    def __init__(self, *, management_url: str, key_file: Path, model_name: str = "mnist", timeout: float = 60.0):
        self.url = management_url.rstrip("/")
        self.model_name = model_name
        self.keys = KeyFile(key_file)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=2.0))

    async def close(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> ModelManager:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _request(self, method: str, path: str, **params) -> httpx.Response:
        """One request; on an authorization failure (restart, expired key) the key file is read again, once."""
        for force in (False, True):
            try:
                key = self.keys.key("management", force=force)
            except ModelUnavailable as exc:
                raise ManagementError(str(exc)) from exc
            headers = {"Authorization": f"Bearer {key}"}
            try:
                response = await self.client.request(method, f"{self.url}{path}", params=params, headers=headers)
            except httpx.TransportError as exc:
                raise ManagementError(f"TorchServe's management API at {self.url} is unreachable: {exc}") from exc
            if not (response.status_code in (400, 401, 403) and "InvalidKeyException" in response.text):
                return response
        raise ManagementError(
            "TorchServe refused the management key, also as just read from the key file: it expired and nothing "
            "renewed it (TorchServe's /token API), or TS_KEY_FILE is not this server's key file"
        )

    async def versions(self) -> list[Version]:
        """Every loaded version, oldest version number first, with TorchServe's current default marked."""
        response = await self._request("GET", f"/models/{self.model_name}/all")
        if response.status_code == 404:
            return []
        _raise_for(response, f"cannot list the versions of {self.model_name}")
        default = await self.default_version()
        return sorted((_version(d, default=default) for d in response.json()), key=lambda v: _sort_key(v.version))

    async def default_version(self) -> str | None:
        """The version TorchServe answers /predictions/<model> with (None when the model is not loaded)."""
        response = await self._request("GET", f"/models/{self.model_name}")
        if response.status_code == 404:
            return None
        _raise_for(response, f"cannot describe {self.model_name}")
        return str(response.json()[0]["modelVersion"])

    async def require(self, version: str) -> list[Version]:
        """All loaded versions; ManagementError unless `version` is one of them."""
        versions = await self.versions()
        if version not in {v.version for v in versions}:
            loaded = ", ".join(v.version for v in versions) or "none"
            raise ManagementError(f"version {version} of {self.model_name} is not loaded (loaded: {loaded})")
        return versions

    async def set_default(self, version: str) -> None:
        """Make TorchServe answer /predictions/<model> with this version (only TorchServe; see `promote`)."""
        await self.require(version)
        response = await self._request("PUT", f"/models/{self.model_name}/{version}/set-default")
        _raise_for(response, f"cannot make {version} the default")

    async def register(self, archive: str, *, workers: int = 1, **settings) -> str:
        """Load an archive from the model store (file name) with `workers` workers; returns TorchServe's message."""
        params = {**REGISTER_DEFAULTS, **settings, "url": archive, "initial_workers": workers, "synchronous": "true"}
        response = await self._request("POST", "/models", **params)
        if response.status_code == 409:
            raise ManagementError(f"{archive}: {_message(response)} (unregister that version first)")
        _raise_for(response, f"cannot register {archive}")
        return _message(response)

    async def unregister(self, version: str) -> None:
        """Unload a version; refuses the default one (make another version the default first)."""
        versions = await self.require(version)
        default = next((v.version for v in versions if v.is_default), None)
        if version == default:
            others = [v.version for v in versions if v.version != version]
            hint = f"make {others[0]} the default first" if others else "it is the only version loaded"
            raise ManagementError(f"version {version} is the default and cannot be unregistered: {hint}")
        response = await self._request("DELETE", f"/models/{self.model_name}/{version}")
        _raise_for(response, f"cannot unregister {version}")

    async def scale(self, version: str, *, workers: int) -> None:
        """Run exactly `workers` workers for a version (waits until they are up)."""
        if workers < 1:
            raise ManagementError(f"workers must be at least 1 (got {workers}); unregister a version to stop it")
        await self.require(version)
        response = await self._request(
            "PUT", f"/models/{self.model_name}/{version}", min_worker=workers, max_worker=workers, synchronous="true"
        )
        _raise_for(response, f"cannot scale {version}")


def _sort_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in version.split("."))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return str(body.get("message") or body.get("status") or body) if isinstance(body, dict) else str(body)


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise ManagementError(f"{what}: TorchServe answered {response.status_code}: {_message(response)}")


async def promote(manager: ModelManager, pool: AsyncConnectionPool, version: str, *, by: str) -> None:
    """Make a version the default now and after restarts: check it is loaded, remember it, then apply it.

    Remembering first means that if applying fails, the UI's reconciliation applies it later; the other order could
    leave TorchServe on a version that the UI would soon switch back.
    """
    await manager.require(version)
    await store.set_default_version(pool, model_name=manager.model_name, version=version, updated_by=by)
    await manager.set_default(version)


async def reconcile(manager: ModelManager, pool: AsyncConnectionPool) -> str | None:
    """Re-apply the remembered default when TorchServe's differs (it restarted); returns the version applied.

    Does nothing when no default was ever chosen (config.properties' defaultVersion stands) or when the remembered
    version is not loaded (an operator unloaded it outside this tool; TorchServe keeps its own default).
    """
    chosen = await store.get_default_version(pool, model_name=manager.model_name)
    if chosen is None:
        return None
    current = await manager.default_version()
    if current is None or current == chosen.version:
        return None
    versions = {v.version for v in await manager.versions()}
    if chosen.version not in versions:
        return None
    await manager.set_default(chosen.version)
    return chosen.version


# --- the command line -------------------------------------------------------------------------------------------


def manager_for(settings: Settings) -> ModelManager:
    from deploy.run import torchserve  # the supervisor's view of TorchServe: the same addresses and key file

    server = torchserve(settings)
    return ModelManager(
        management_url=server.endpoints.management, key_file=settings.key_file, model_name=settings.model_name
    )


def database_url(settings: Settings) -> str:
    """DATABASE_URL, else the private server of `make run` (which must be running)."""
    if settings.database_url:
        return settings.database_url
    from db.embedded import PrivateServer

    server = PrivateServer(home=settings.pg_home, port=settings.pg_port)
    if not server.is_running():
        raise ManagementError(
            "the database is not running, and set-default must record the choice there: start the product "
            "(`make run`) or set DATABASE_URL"
        )
    return server.url


async def _open_pool(settings: Settings) -> AsyncConnectionPool:
    try:
        return await store.open_pool(database_url(settings), timeout=5)
    except store.StoreUnavailable as exc:
        raise ManagementError(str(exc)) from exc


async def _accuracy(settings: Settings) -> dict[str, store.VersionStats] | None:
    """Live accuracy per version from user feedback, or None when the database is not reachable."""
    try:
        pool = await _open_pool(settings)
    except ManagementError:
        return None
    try:
        return (await store.stats(pool)).per_version
    except store.StoreUnavailable:
        return None
    finally:
        await pool.close()


def _format_versions(versions: list[Version], accuracy: dict[str, store.VersionStats] | None) -> str:
    rows = [("VERSION", "DEFAULT", "WORKERS", "BATCH", "LIVE ACCURACY", "ARCHIVE")]
    for v in versions:
        stats = (accuracy or {}).get(v.version)
        if accuracy is None:
            live = "(database not reachable)"
        elif stats is None or not stats.labelled:
            live = "no feedback yet"
        else:
            live = f"{stats.rate:.1%} of {stats.labelled} labelled"
        workers = f"{v.ready_workers}/{len(v.workers)} ready"
        rows.append((v.version, "*" if v.is_default else "", workers, f"{v.batch_size}/{v.max_batch_delay}ms", live,
                     v.archive))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _archive_in_store(argument: str, store_dir: Path) -> str:
    """The archive's file name in the model store; a path elsewhere is copied in (TorchServe only loads from it)."""
    path = Path(argument)
    if len(path.parts) == 1 and (store_dir / path).exists():
        return path.name
    if not path.exists():
        raise ManagementError(f"no archive {argument} (looked in {store_dir} too): build it with `make archive`")
    if path.suffix != ".mar":
        raise ManagementError(f"{argument} is not a .mar archive")
    target = store_dir / path.name
    if path.resolve() != target.resolve():
        if target.exists():
            raise ManagementError(f"{target} exists already; remove it or rename {argument}")
        shutil.copyfile(path, target)
    return path.name


async def _command(args: argparse.Namespace, settings: Settings) -> str:
    async with manager_for(settings) as manager:
        if args.command == "list":
            versions = await manager.versions()
            if not versions:
                return f"no version of {manager.model_name} is loaded"
            return _format_versions(versions, await _accuracy(settings))
        if args.command == "register":
            archive = _archive_in_store(args.archive, settings.model_store)
            message = await manager.register(archive, workers=args.workers)
            if args.set_default:
                version = next(v.version for v in await manager.versions() if v.archive == archive)
                await _promote(manager, settings, version)
                message += f"; {version} is now the default"
            return message
        if args.command == "set-default":
            await _promote(manager, settings, args.version)
            return f"{manager.model_name} {args.version} is now the default (remembered across restarts)"
        if args.command == "unregister":
            await manager.unregister(args.version)
            return f"unregistered {manager.model_name} {args.version}"
        if args.command == "scale":
            await manager.scale(args.version, workers=args.workers)
            return f"{manager.model_name} {args.version} runs {args.workers} worker(s)"
    raise AssertionError(args.command)


async def _promote(manager: ModelManager, settings: Settings, version: str) -> None:
    pool = await _open_pool(settings)
    try:
        await promote(manager, pool, version, by="cli")
    except store.StoreUnavailable as exc:
        raise ManagementError(str(exc)) from exc
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="loaded versions, the default, workers and live accuracy")
    register = commands.add_parser("register", help="load an archive (file name in the model store, or a path)")
    register.add_argument("archive")
    register.add_argument("--workers", type=int, default=1)
    register.add_argument("--set-default", action="store_true", help="make it the default once loaded")
    set_default = commands.add_parser("set-default", help="answer /predictions/<model> with this version")
    set_default.add_argument("version")
    unregister = commands.add_parser("unregister", help="unload a version (not the default)")
    unregister.add_argument("version")
    scale = commands.add_parser("scale", help="set a version's number of workers")
    scale.add_argument("version")
    scale.add_argument("--workers", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(_command(args, Settings())))
    except ManagementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
