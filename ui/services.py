"""What the pages share: the settings, the TorchServe client and the Postgres pool, opened on startup."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from db import store
from ui.predictor import Predictor
from ui.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    predictor: Predictor
    pool: AsyncConnectionPool


_services: Services | None = None
_start_error: BaseException | None = None
_ready: asyncio.Event | None = None


def _ready_event() -> asyncio.Event:
    global _ready
    if _ready is None:
        _ready = asyncio.Event()
    return _ready


async def get(*, timeout: float = 30.0) -> Services:
    """The started services. NiceGUI runs async startup handlers as background tasks, so a first request can
    arrive before they finish: wait for them (and re-raise what made them fail)."""
    try:
        await asyncio.wait_for(_ready_event().wait(), timeout)
    except TimeoutError as exc:
        raise RuntimeError("the app's services did not start in time") from exc
    if _services is None:
        raise RuntimeError(f"the app's services failed to start: {_start_error}") from _start_error
    return _services


def inference_url(settings: Settings) -> str:
    """TorchServe's inference address: config.properties with the settings' overrides applied."""
    from deploy.run import torchserve  # the supervisor's view of TorchServe, so both agree on the address

    return torchserve(settings).endpoints.inference


async def start(settings: Settings) -> None:
    """Open the pool (applying the schema) and the TorchServe client; pages wait for this (see get)."""
    global _services, _start_error
    try:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set: start the product with `make run`, which provides one")
        pool = await store.open_pool(settings.database_url, timeout=5)
        await store.apply_schema(pool)
        predictor = Predictor(
            inference_url=inference_url(settings), key_file=settings.key_file, model_name=settings.model_name
        )
        _services = Services(settings=settings, predictor=predictor, pool=pool)
        logger.info("services started: TorchServe at %s", predictor.url)
    except (RuntimeError, store.StoreUnavailable, OSError) as exc:
        _start_error = exc
        logger.error("the app's services failed to start: %s", exc)
        raise
    finally:
        _ready_event().set()


async def stop() -> None:
    global _services, _ready, _start_error
    if _services is not None:
        await _services.predictor.close()
        await _services.pool.close()
    _services, _ready, _start_error = None, None, None


def storage_secret(settings: Settings) -> str:
    """The secret that signs the browser-storage cookie: from the environment, else one kept under var/ (dev)."""
    if settings.storage_secret:
        return settings.storage_secret
    path = settings.storage_secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()
