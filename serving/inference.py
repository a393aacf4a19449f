"""Predictions and explanations from TorchServe: POST /predictions/<model>[/<version>] and
/explanations/<model>[/<version>] with the inference key (serving/auth.py), timeouts, and errors split into "this
image is refused" (the user's to fix) and "the model is unavailable".

A version with a refusal policy may answer "not a digit" (HTTP 200, `digit` null): that is an answer, not an error,
and comes back as a Prediction with `not_a_digit` set, the reason, and the closest digit.

A number (several digits in one drawing, header `X-Read: number`) comes back as a NumberReading: the number read (None
when none can be read), and each digit read left to right with its box in the drawing's pixels (DigitReading).

The answers are records of records/ (predictions.py, numbers.py, explanations.py) and the errors those of
records/errors.py: the pages show them as parsed here, and db/ stores the answer itself.

Two clients share the requests' error mapping and the parsing: `Predictor` (async, the page) and `SyncInference`
(blocking, the tools: the container's health check, the offline evaluation)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from records.errors import ModelUnavailable, PredictionRejected
from records.explanations import AllExplanations, Explanation, FieldBox
from records.numbers import DigitReading, NumberReading
from records.predictions import Prediction
from serving.auth import KeyFile, KeyUnavailable, TokenAuth, error_message, is_auth_failure

# What the page says when TorchServe does not answer at all: `make run`, compose and Kubernetes restart it, which
# takes 10-30 s, and the drawing stays on the slate (deploy/restarts.py; docs/operations.md, When a part dies).
NOT_ANSWERING = "the model server is unavailable, probably restarting: your drawing is kept, try again in a moment"
NOT_IN_TIME = (
    "the model server did not answer in time (busy, or restarting): your drawing is kept, try again in a moment"
)

PNG = {"Content-Type": "image/png"}
PREVIEW = {"X-Preview": "1"}  # the handler adds the 28x28 image the model saw
NUMBER = {"X-Read": "number"}  # the handler reads every digit of the drawing, left to right


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
        self.explain_url = f"{inference_url.rstrip('/')}/explanations/{model_name}"
        self.keys = KeyFile(key_file)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=2.0), auth=TokenAuth(self.keys, "inference"), transport=transport
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _post(self, url: str, png: bytes, *, version: str | None, headers: dict[str, str]) -> httpx.Response:
        with _unavailable_when_unreachable():
            return await self.client.post(_at(url, version), content=png, headers={**PNG, **headers})

    async def predict(self, png: bytes, *, version: str | None = None) -> Prediction:
        """The model's reading of a PNG, by TorchServe's default version unless `version` is given.
        Raises PredictionRejected (bad image) or ModelUnavailable."""
        body, latency_ms = await self._ask(self.url, png, version=version, headers=PREVIEW)
        return parse_prediction(body, latency_ms=latency_ms)

    async def read_number(self, png: bytes, *, version: str | None = None) -> NumberReading:
        """Every digit of a drawing read as one number (X-Read: number), each digit with its box and 28x28 preview.
        Raises PredictionRejected (bad image) or ModelUnavailable, as predict() does."""
        body, latency_ms = await self._ask(self.url, png, version=version, headers={**NUMBER, **PREVIEW})
        return parse_number(body, latency_ms=latency_ms)

    async def explain(self, png: bytes, *, target: int | None = None, version: str | None = None) -> Explanation:
        """Why the model reads a PNG as it does, for `target` (default: the predicted digit). Costs about 50-500 ms
        (Integrated Gradients, 24 passes). Raises PredictionRejected (bad image, bad target) or ModelUnavailable."""
        headers = {} if target is None else {"X-Target": str(int(target))}
        body, latency_ms = await self._ask(self.explain_url, png, version=version, headers=headers)
        return _parse_explanation(body, latency_ms=latency_ms)

    async def explain_all(self, png: bytes, *, version: str | None = None) -> AllExplanations:
        """Every digit's map for a PNG in one request (about 6x one explanation's cost, not 10x). Raises
        PredictionRejected or ModelUnavailable."""
        body, latency_ms = await self._ask(self.explain_url, png, version=version, headers={"X-Target": "all"})
        single = _parse_explanation(body, latency_ms=latency_ms)
        maps = body.get("attributions_by_target")
        if not isinstance(maps, list) or len(maps) != 10:
            raise ModelUnavailable("the model server's explanation has no map per digit; try again")
        by_target = [_map(m) for m in maps]
        return AllExplanations(single.prediction, by_target, single.field_box, single.method)

    async def _ask(self, url: str, png: bytes, *, version: str | None, headers: dict[str, str]) -> tuple[dict, float]:
        """The JSON answer of a 200 and the time it took; the errors mapped as predict() documents."""
        started = time.perf_counter()
        response = await self._post(url, png, version=version, headers=headers)
        latency_ms = (time.perf_counter() - started) * 1000
        return _answer(response), latency_ms


class SyncInference:
    """Predictions for the tools around the product (blocking; the page uses Predictor): the same key handling, the
    same Prediction and the same errors. One instance per run; safe to share between threads."""

    def __init__(
        self,
        *,
        inference_url: str,
        key_file: Path | None,  # None: TorchServe runs without token authorization
        model_name: str = "mnist",
        timeout: float = 10.0,
        connections: int = 8,  # requests at once (threads sharing this client)
        transport: httpx.BaseTransport | None = None,  # tests: a scripted stand-in server
    ):
        self.base = inference_url.rstrip("/")
        self.url = f"{self.base}/predictions/{model_name}"
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        keys = None if key_file is None else KeyFile(key_file)
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=2.0), limits=limits, auth=TokenAuth(keys, "inference"),
            transport=transport,
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SyncInference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def predict(self, png: bytes, *, version: str | None = None, preview: bool = False) -> Prediction:
        """The model's reading of a PNG, by TorchServe's default version unless `version` is given (with the 28x28
        preview only when asked: it costs the worker an encoding). Raises PredictionRejected or ModelUnavailable."""
        headers = {**PNG, **PREVIEW} if preview else PNG
        started = time.perf_counter()
        with _unavailable_when_unreachable():
            response = self.client.post(_at(self.url, version), content=png, headers=headers)
        latency_ms = (time.perf_counter() - started) * 1000
        return parse_prediction(_answer(response), latency_ms=latency_ms)

    def read_number(self, png: bytes, *, version: str | None = None) -> NumberReading:
        """Every digit of a drawing read as one number (X-Read: number), as Predictor.read_number reads it."""
        started = time.perf_counter()
        with _unavailable_when_unreachable():
            response = self.client.post(_at(self.url, version), content=png, headers={**PNG, **NUMBER})
        return parse_number(_answer(response), latency_ms=(time.perf_counter() - started) * 1000)

    def ping(self) -> None:
        """Returns when TorchServe answers /ping with 200 ("Healthy"; its workers may still be dead: see
        SyncManagement.unready); ModelUnavailable saying why otherwise."""
        try:
            response = self.client.get(f"{self.base}/ping")
        except KeyUnavailable as exc:
            raise ModelUnavailable(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"TorchServe at {self.base} does not answer: {exc}") from exc
        if response.status_code != 200:
            raise ModelUnavailable(f"TorchServe answered {response.status_code}: {error_message(response)}")


def _at(url: str, version: str | None) -> str:
    return url if version is None else f"{url}/{version}"


@contextmanager
def _unavailable_when_unreachable() -> Iterator[None]:
    """No key, no answer in time, no connection: ModelUnavailable, with the page's messages."""
    try:
        yield
    except KeyUnavailable as exc:  # no key file: not running, or starting (it writes the file once up)
        raise ModelUnavailable(NOT_ANSWERING) from exc
    except httpx.TimeoutException as exc:
        raise ModelUnavailable(NOT_IN_TIME) from exc
    except httpx.TransportError as exc:
        raise ModelUnavailable(NOT_ANSWERING) from exc


def _answer(response: httpx.Response) -> dict:
    """The JSON answer of a 200; PredictionRejected for a refused image, ModelUnavailable for the rest."""
    if response.status_code == 200:
        return response.json()
    if is_auth_failure(response):  # also the key just re-read: it expired and nothing renewed it
        raise ModelUnavailable("the model server refused this app's key (expired or not this server's); "
                               "your drawing is kept, try again later")  # fmt: skip
    if 400 <= response.status_code < 500 and response.status_code != 404:
        raise PredictionRejected(error_message(response), status=response.status_code)
    raise ModelUnavailable(f"the model server answered {response.status_code}; your drawing is kept, try again")


def parse_prediction(body: dict, *, latency_ms: float) -> Prediction:
    """A Prediction from TorchServe's JSON answer (of /predictions or /explanations)."""
    preview = body.get("preview")
    probabilities = [float(p) for p in body["probabilities"]]
    refused = bool(body.get("not_a_digit"))
    digit = None if refused or body.get("digit") is None else int(body["digit"])
    closest = body.get("closest_digit", digit)
    return Prediction(
        digit=digit,
        confidence=float(body["confidence"]) if "confidence" in body else max(probabilities),
        probabilities=probabilities,
        model_name=str(body["model_name"]),
        model_version=str(body["model_version"]),
        preview_png=base64.b64decode(preview) if preview else None,
        latency_ms=latency_ms,
        not_a_digit=refused,
        reason=str(body["reason"]) if refused and body.get("reason") else None,
        closest_digit=int(closest) if closest is not None else probabilities.index(max(probabilities)),
    )


def parse_number(body: dict, *, latency_ms: float) -> NumberReading:
    """A NumberReading from TorchServe's JSON answer to X-Read: number (docs/api.md "Numbers: several digits in one
    drawing"); ModelUnavailable when the answer is not one (e.g. a handler too old to read numbers answered a digit)."""
    if "digits" not in body or not isinstance(body["digits"], list):
        raise ModelUnavailable("the model server did not answer with a number (is this version able to read numbers?)")
    number = body.get("number")
    return NumberReading(
        number=None if number is None else str(number),
        digits=[_digit_reading(digit) for digit in body["digits"]],
        model_name=str(body["model_name"]),
        model_version=str(body["model_version"]),
        latency_ms=latency_ms,
        not_a_digit=bool(body.get("not_a_digit")),
        reason=str(body["reason"]) if body.get("reason") else None,
    )


def _digit_reading(digit: dict) -> DigitReading:
    left, top, right, bottom = (float(v) for v in digit["box"])
    probabilities = [float(p) for p in digit["probabilities"]]
    preview = digit.get("preview")
    return DigitReading(
        digit=int(digit["digit"]),
        confidence=float(digit["confidence"]),
        probabilities=probabilities,
        box=(left, top, right, bottom),
        preview_png=base64.b64decode(preview) if preview else None,
        not_a_digit=bool(digit.get("not_a_digit")),
    )


def _map(rows: list) -> list[list[float]]:
    attributions = [[float(v) for v in row] for row in rows]
    if len(attributions) != 28 or any(len(row) != 28 for row in attributions):
        raise ModelUnavailable("the model server's explanation is not a 28x28 map; try again")
    return attributions


def _parse_explanation(body: dict, *, latency_ms: float) -> Explanation:
    attributions = _map(body["attributions"])
    box = body["field_box"]
    return Explanation(
        prediction=parse_prediction(body, latency_ms=latency_ms),
        target=int(body["target"]),
        attributions=attributions,
        field_box=FieldBox(**{side: float(box[side]) for side in ("left", "top", "right", "bottom")}),
        method=str(body.get("method", "")),
    )
