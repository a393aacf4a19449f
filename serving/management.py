"""TorchServe's management API, with the management key (serving/auth.py): the loaded versions and their workers,
set-default, register, unregister, scale (ModelManager, async: the page and the CLI), and what the tools around the
product ask (SyncManagement, blocking: is a model READY, which versions are not, new keys; and, for `make run`'s
supervisor putting back what a restarted TorchServe forgot, register, scale, set-default). The rules about which
version is the default and how it survives restarts are serving/versions.py's; the operator's command line is
app/cli.py.

A worker is ready when TorchServe says READY (`Worker.ready`): the one check behind the admin page's "1/1 ready",
`make run` waiting for TorchServe, and the container's health check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from records.errors import ManagementError
from records.versions import Version, Worker
from serving.auth import KeyFile, KeyUnavailable, TokenAuth, error_message, is_auth_failure

# Serving settings for versions registered at run time: the same as config.properties gives 1.0 (docs/performance.md).
REGISTER_DEFAULTS = {"batch_size": 16, "max_batch_delay": 2, "response_timeout": 30}


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
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=2.0), auth=TokenAuth(self.keys, "management")
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> ModelManager:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _request(self, method: str, path: str, **params) -> httpx.Response:
        """One request (the key is re-read and the request sent once more after an authorization failure)."""
        with _unreachable_as_error(self.url):
            response = await self.client.request(method, f"{self.url}{path}", params=params)
        return _refused_key_as_error(response, kind="management")

    async def versions(self) -> list[Version]:
        """Every loaded version, oldest version number first, with TorchServe's current default marked."""
        response = await self._request("GET", f"/models/{self.model_name}/all")
        if response.status_code == 404:
            return []
        _raise_for(response, f"cannot list the versions of {self.model_name}")
        return _versions(response.json(), default=await self.default_version())

    async def default_version(self) -> str | None:
        """The version TorchServe answers /predictions/<model> with (None when the model is not loaded)."""
        response = await self._request("GET", f"/models/{self.model_name}")
        return _default_version(response, model=self.model_name)

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
            raise ManagementError(f"{archive}: {error_message(response)} (unregister that version first)")
        _raise_for(response, f"cannot register {archive}")
        return error_message(response)

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


class SyncManagement:
    """The management API for the tools around the product (blocking): `make run` and the test fixtures waiting for
    READY workers, the container's health check, key renewal. Any model of the server, by name."""

    def __init__(
        self,
        *,
        management_url: str,
        key_file: Path | None,  # None: TorchServe runs without token authorization
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,  # tests: a scripted stand-in server
    ):
        self.url = management_url.rstrip("/")
        self.keys = None if key_file is None else KeyFile(key_file)
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)), transport=transport)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SyncManagement:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, path: str, *, kind: str = "management", **params) -> httpx.Response:
        """GET with the key of `kind` (re-read and sent once more after an authorization failure)."""
        return self._request("GET", path, kind=kind, **params)

    def _request(self, method: str, path: str, *, kind: str = "management", **params) -> httpx.Response:
        """One request with the key of `kind` (re-read and sent once more after an authorization failure)."""
        with _unreachable_as_error(self.url):
            response = self.client.request(method, f"{self.url}{path}", params=params, auth=TokenAuth(self.keys, kind))
        return _refused_key_as_error(response, kind=kind)

    def models(self) -> list[str]:
        """The names of the registered models."""
        response = self._get("/models")
        _raise_for(response, "cannot list the models")
        return [str(model["modelName"]) for model in response.json()["models"]]

    def default(self, model: str) -> Version | None:
        """The version of `model` that /predictions/<model> answers with, as TorchServe describes it (None: not
        loaded)."""
        response = self._get(f"/models/{model}")
        if (version := _default_version(response, model=model)) is None:
            return None
        return _version(response.json()[0], default=version)

    def describe(self, model: str) -> list[Version]:
        """Every loaded version of `model`, oldest version number first, with TorchServe's current default marked."""
        default = self.default(model)
        response = self._get(f"/models/{model}/all")
        if response.status_code == 404:
            return []
        _raise_for(response, f"cannot list the versions of {model}")
        return _versions(response.json(), default=default.version if default else None)

    def ready(self, model: str) -> bool:
        """Whether `model`'s default version has a READY worker; False also while TorchServe cannot say (starting,
        no key file yet)."""
        try:
            default = self.default(model)
        except (ManagementError, httpx.HTTPError, OSError):
            return False
        return default is not None and default.ready

    def unready(self) -> list[str]:
        """ "<model> <version>" of every loaded version without a READY worker (empty: all can answer)."""
        return [f"{model} {v.version}" for model in self.models() for v in self.describe(model) if not v.ready]

    def register(self, archive: str, *, workers: int, **settings) -> None:
        """Load an archive of the model store (file name) with `workers` workers, waiting until they are up (the
        supervisor putting back a version registered at run time; the operator's tool is ModelManager.register)."""
        params = {**REGISTER_DEFAULTS, **settings, "url": archive, "initial_workers": workers, "synchronous": "true"}
        _raise_for(self._request("POST", "/models", **params), f"cannot register {archive}")

    def scale(self, model: str, version: str, *, workers: int) -> None:
        """Run exactly `workers` workers for one version (waits until they are up)."""
        response = self._request(
            "PUT", f"/models/{model}/{version}", min_worker=workers, max_worker=workers, synchronous="true"
        )
        _raise_for(response, f"cannot scale {model} {version}")

    def set_default(self, model: str, version: str) -> None:
        """Make TorchServe answer /predictions/<model> with this version."""
        response = self._request("PUT", f"/models/{model}/{version}/set-default")
        _raise_for(response, f"cannot make {version} the default of {model}")

    def renew_key(self, kind: str) -> None:
        """A new key of one API ("inference" or "management"; TorchServe rewrites the key file, and clients re-read
        it). Asked with the API key, which does not expire."""
        response = self._get("/token", kind="API", type=kind)
        _raise_for(response, f"cannot renew the {kind} key")


@contextmanager
def _unreachable_as_error(url: str) -> Iterator[None]:
    """No key file, no connection: ManagementError saying so."""
    try:
        yield
    except KeyUnavailable as exc:
        raise ManagementError(str(exc)) from exc
    except httpx.TransportError as exc:
        raise ManagementError(f"TorchServe's management API at {url} is unreachable: {exc}") from exc


def _refused_key_as_error(response: httpx.Response, *, kind: str) -> httpx.Response:
    if is_auth_failure(response):  # after the one retry with the key read again
        raise ManagementError(
            f"TorchServe refused the {kind} key, also as just read from the key file: it expired and nothing "
            "renewed it (TorchServe's /token API), or TS_KEY_FILE is not this server's key file"
        )
    return response


def _default_version(response: httpx.Response, *, model: str) -> str | None:
    """The version in an answer to GET /models/<model> (TorchServe describes the default version only)."""
    if response.status_code == 404:
        return None
    _raise_for(response, f"cannot describe {model}")
    return str(response.json()[0]["modelVersion"])


def _versions(described: list[dict], *, default: str | None) -> list[Version]:
    return sorted((_version(d, default=default) for d in described), key=lambda v: _sort_key(v.version))


def _sort_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in version.split("."))


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise ManagementError(f"{what}: TorchServe answered {response.status_code}: {error_message(response)}")
