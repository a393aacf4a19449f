"""How to talk to TorchServe with token authorization on: the key file, the Bearer header, one retry after an
authorization failure, and the error messages TorchServe answers with. One copy, for sync and async clients alike.

TorchServe writes key_file.json (keys "inference", "management", "API") into its working directory at every start;
the keys change on every start and expire (token_expiration_min) unless renewed. So the key is re-read whenever the
file changes, and once more after TorchServe refuses it, before giving up.

Nothing outside serving/ builds this auth (tests/test_layers.py): the tools use serving's sync clients, and a load
generator that cannot take an httpx.Auth (tools/bench.py's aiohttp) gets its header from `authorization`.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import httpx


class KeyUnavailable(RuntimeError):
    """No usable key: TorchServe has not written its key file yet (not running), or the file lacks the key."""


class KeyFile:
    """TorchServe's key_file.json, re-read whenever the file changes (or when forced)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, str] | None = None

    def keys(self, *, force: bool = False) -> dict[str, str]:
        """{"inference": ..., "management": ..., "API": ...}; KeyUnavailable when there is no readable file."""
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise KeyUnavailable("the model server is not running (no key file yet)") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if force or stamp != self._stamp or self._keys is None:
            try:
                self._keys = {name: entry["key"] for name, entry in json.loads(self.path.read_text()).items()}
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError, OSError) as exc:
                raise KeyUnavailable("the model server's key file is not readable yet") from exc
            self._stamp = stamp
        return self._keys

    def key(self, kind: str, *, force: bool = False) -> str:
        """The current key of one API: "inference", "management" or "API"."""
        try:
            return self.keys(force=force)[kind]
        except KeyError as exc:
            raise KeyUnavailable(f"the model server's key file has no {kind} key") from exc


def read_keys(path: Path) -> dict[str, str]:
    """The keys the file holds now ({"inference": ..., "management": ..., "API": ...}); KeyUnavailable without one."""
    return KeyFile(path).keys()


def _bearer(key: str) -> str:
    return f"Bearer {key}"


def authorization(path: Path, kind: str) -> dict[str, str]:
    """The Authorization header with the current key of one API, for a client that cannot use TokenAuth (no retry:
    a new key after a restart needs a new header)."""
    return {"Authorization": _bearer(KeyFile(path).key(kind))}


def is_auth_failure(response: httpx.Response) -> bool:
    """TorchServe's answer to a missing, wrong or expired key (400 InvalidKeyException, also on /ping)."""
    return response.status_code in (400, 401, 403) and "InvalidKeyException" in response.text


class TokenAuth(httpx.Auth):
    """Bearer <key of `kind`> on every request; after an authorization failure the key file is read again and the
    request sent once more (TorchServe restarted, or its keys were renewed). Works for httpx.Client and AsyncClient.
    With `keys=None` (token authorization off) requests go out without the header."""

    requires_response_body = True  # is_auth_failure reads the body

    def __init__(self, keys: KeyFile | None, kind: str):
        self.keys = keys
        self.kind = kind

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.keys is None:
            yield request
            return
        request.headers["Authorization"] = _bearer(self.keys.key(self.kind))
        response = yield request
        if is_auth_failure(response):
            request.headers["Authorization"] = _bearer(self.keys.key(self.kind, force=True))
            yield request


def error_message(response: httpx.Response) -> str:
    """What TorchServe (or our handler) said was wrong: its JSON "error"/"message", else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"refused ({response.status_code})"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body.get("status") or body)
    return str(body)
