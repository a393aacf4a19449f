"""Predictions from TorchServe: POST /predictions/<model>[/<version>] with the inference key (serving/auth.py),
timeouts, and errors split into "this image is refused" (the user's to fix) and "the model is unavailable"."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.auth import KeyFile, KeyUnavailable, TokenAuth, error_message, is_auth_failure


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


class Predictor:
    """Asks TorchServe for a digit. One instance per app: it owns a pooled httpx.AsyncClient."""

    def __init__(
        self,
        *,
        inference_url: str,
        key_file: Path,
        model_name: str = "mnist",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: a scripted stand-in server
    ):
        self.url = f"{inference_url.rstrip('/')}/predictions/{model_name}"
        self.keys = KeyFile(key_file)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=2.0), auth=TokenAuth(self.keys, "inference"), transport=transport
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _post(self, png: bytes, *, version: str | None) -> httpx.Response:
        url = self.url if version is None else f"{self.url}/{version}"
        headers = {"Content-Type": "image/png", "X-Preview": "1"}
        try:
            return await self.client.post(url, content=png, headers=headers)
        except KeyUnavailable as exc:
            raise ModelUnavailable(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise ModelUnavailable("the model server did not answer in time; your drawing is kept, try again") from exc
        except httpx.TransportError as exc:
            raise ModelUnavailable("the model server is unavailable; your drawing is kept, try again") from exc

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction:
        """The model's reading of a PNG, by TorchServe's default version unless `version` is given.
        Raises PredictionRejected (bad image) or ModelUnavailable."""
        started = time.perf_counter()
        response = await self._post(png, version=version)
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status_code == 200:
            return _parse(response.json(), latency_ms=latency_ms)
        if is_auth_failure(response):  # also the key just re-read: it expired and nothing renewed it
            raise ModelUnavailable("the model server refused this app's key (expired or not this server's); "
                                   "your drawing is kept, try again later")  # fmt: skip
        if 400 <= response.status_code < 500 and response.status_code != 404:
            raise PredictionRejected(error_message(response), status=response.status_code)
        raise ModelUnavailable(f"the model server answered {response.status_code}; your drawing is kept, try again")


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
