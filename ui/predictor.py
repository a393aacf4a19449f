"""TorchServe client for the page: the inference token from TorchServe's key file, timeouts, one retry on auth.

TorchServe writes new keys at every start and they expire (60 min by default), so the key is re-read from the file
whenever it changes, and once more after an authorization failure before giving up.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


class PredictorError(RuntimeError):
    """Base class; the message is meant for the user."""


class ModelUnavailable(PredictorError):
    """TorchServe cannot be reached, is not ready, or timed out."""


class PredictionRejected(PredictorError):
    """TorchServe refused this image (blank, not an image, too large): the message says why."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Prediction:
    digit: int
    confidence: float
    probabilities: list[float]
    model_name: str
    model_version: str
    preview_png: bytes | None
    latency_ms: float


class KeyFile:
    """TorchServe's key_file.json, re-read whenever the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, str] | None = None

    def key(self, kind: str, *, force: bool = False) -> str:
        """The current key of one API: "inference" or "management"."""
        try:
            stat = self.path.stat()
        except FileNotFoundError as exc:
            raise ModelUnavailable("the model server is not running (no key file yet)") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        if force or stamp != self._stamp or self._keys is None:
            try:
                self._keys = {name: entry["key"] for name, entry in json.loads(self.path.read_text()).items()}
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError, OSError) as exc:
                raise ModelUnavailable("the model server's key file is not readable yet") from exc
            self._stamp = stamp
        try:
            return self._keys[kind]
        except KeyError as exc:
            raise ModelUnavailable(f"the model server's key file has no {kind} key") from exc

    def inference_key(self, *, force: bool = False) -> str:
        return self.key("inference", force=force)


def _is_auth_failure(response: httpx.Response) -> bool:
    return response.status_code in (400, 401, 403) and "InvalidKeyException" in response.text


class Predictor:
    """Asks TorchServe for a digit. One instance per app: it owns a pooled httpx.AsyncClient."""

    def __init__(self, *, inference_url: str, key_file: Path, model_name: str = "mnist", timeout: float = 10.0):
        self.url = f"{inference_url.rstrip('/')}/predictions/{model_name}"
        self.keys = KeyFile(key_file)
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=2.0))

    async def close(self) -> None:
        await self.client.aclose()

    async def _post(self, png: bytes, *, force_key: bool, version: str | None = None) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.keys.inference_key(force=force_key)}",
            "Content-Type": "image/png",
            "X-Preview": "1",
        }
        try:
            url = self.url if version is None else f"{self.url}/{version}"
            return await self.client.post(url, content=png, headers=headers)
        except httpx.TimeoutException as exc:
            raise ModelUnavailable("the model server did not answer in time; your drawing is kept, try again") from exc
        except httpx.TransportError as exc:
            raise ModelUnavailable("the model server is unavailable; your drawing is kept, try again") from exc

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction:
        """The model's reading of a PNG, by TorchServe's default version unless `version` is given.
        Raises PredictionRejected (bad image) or ModelUnavailable."""
        started = time.perf_counter()
        response = await self._post(png, force_key=False, version=version)
        if _is_auth_failure(response):  # TorchServe restarted (new keys) or the key expired: read it again
            response = await self._post(png, force_key=True, version=version)
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            return _parse(response.json(), latency_ms=latency_ms)
        if _is_auth_failure(response):  # also the key just read: it expired and nothing renewed it
            raise ModelUnavailable("the model server refused this app's key (expired or not this server's); "
                                   "your drawing is kept, try again later")  # fmt: skip
        if 400 <= response.status_code < 500 and response.status_code != 404:
            raise PredictionRejected(_error_message(response), status=response.status_code)
        raise ModelUnavailable(f"the model server answered {response.status_code}; your drawing is kept, try again")


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"refused ({response.status_code})"
    return str(body.get("error") or body.get("message") or body)


def _parse(body: dict, *, latency_ms: float) -> Prediction:
    preview = body.get("preview")
    return Prediction(
        digit=int(body["digit"]),
        confidence=float(body["confidence"]),
        probabilities=[float(p) for p in body["probabilities"]],
        model_name=str(body["model_name"]),
        model_version=str(body["model_version"]),
        preview_png=base64.b64decode(preview) if preview else None,
        latency_ms=latency_ms,
    )
