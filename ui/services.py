"""What the pages share: the settings, the TorchServe client and the Postgres pool, opened on startup."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from db import store
from db.journal import Journal
from deploy.models import ManagementError, ModelManager, reconcile
from ui.predictor import Predictor
from ui.settings import MIN_SECRET_LENGTH, Settings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    predictor: Predictor
    pool: AsyncConnectionPool
    models: ModelManager
    journal: Journal
    # Set when a write failed for an outage; until the journal has been replayed, writes go straight to the
    # journal instead of waiting for the pool's timeout on every request.
    database_down: bool = False


_services: Services | None = None
_start_error: BaseException | None = None
_ready: asyncio.Event | None = None
_background: list[asyncio.Task] = []


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


def journal_path(settings: Settings) -> Path:
    """JOURNAL_FILE, else var/journal/<hash of the database's host, port and name>.jsonl: one file per database, so
    that a test stack or a second instance never replays into another's database (the password may change)."""
    if settings.journal_file:
        return settings.journal_file
    where = conninfo_to_dict(settings.database_url)
    identity = f"{where.get('host', '')}:{where.get('port', '5432')}/{where.get('dbname', '')}"
    return settings.journal_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsonl"


def endpoints(settings: Settings):
    """TorchServe's addresses: config.properties with the settings' overrides applied."""
    from deploy.run import torchserve  # the supervisor's view of TorchServe, so both agree on the address

    return torchserve(settings).endpoints


def inference_url(settings: Settings) -> str:
    return endpoints(settings).inference


async def apply_default(models: ModelManager, pool: AsyncConnectionPool) -> None:
    """Re-apply the operator's chosen default version if TorchServe lost it (restart); never raises."""
    try:
        applied = await reconcile(models, pool)
    except (ManagementError, store.StoreUnavailable) as exc:
        logger.debug("default version not checked: %s", exc)  # TorchServe or Postgres down: the page says so
        return
    if applied:
        logger.info("TorchServe's default version of %s set back to %s", models.model_name, applied)


async def _reconcile_forever(models: ModelManager, pool: AsyncConnectionPool, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await apply_default(models, pool)


async def _replay_forever(services: Services, interval: float) -> None:
    """Write what the journal kept during a database outage as soon as the database answers again."""
    while True:
        await asyncio.sleep(interval)
        if services.journal.pending:
            try:
                await services.journal.replay(services.pool)
            except Exception:  # keep replaying later whatever happened (the entries stay in the file)
                logger.exception("journal replay failed")
        services.database_down = services.journal.pending > 0


async def _replay_at_start(journal: Journal, pool: AsyncConnectionPool) -> None:
    """Write what an earlier outage left in the journal; whatever happens, the app starts (what is not written
    stays in the journal for the background replay, unreadable lines go to the journal's .rejected file)."""
    if not journal.pending:
        return
    logger.info("journal: %d entries from an earlier database outage, replaying", journal.pending)
    try:
        await journal.replay(pool)
    except Exception:  # never block start-up: the background task retries, the entries stay in the file
        logger.exception("journal: replay at start failed; retried in the background")
    if journal.set_aside:
        logger.error("journal: %d unreadable entries are kept in %s", journal.set_aside, journal.rejected_path)


async def start(settings: Settings) -> None:
    """Open the pool (applying the schema) and the TorchServe client; pages wait for this (see get)."""
    global _services, _start_error
    # This start's own event: if the app stops before it finishes (the task is cancelled), its `finally` must not
    # mark a later start as done.
    ready = _ready_event()
    try:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set: start the product with `make run`, which provides one")
        pool = await store.open_pool(settings.database_url, timeout=5)
        await store.apply_schema(pool)
        addresses = endpoints(settings)
        predictor = Predictor(
            inference_url=addresses.inference, key_file=settings.key_file, model_name=settings.model_name
        )
        models = ModelManager(
            management_url=addresses.management, key_file=settings.key_file, model_name=settings.model_name
        )
        await apply_default(models, pool)  # before the first prediction
        journal = Journal(journal_path(settings))
        await _replay_at_start(journal, pool)
        _services = Services(settings=settings, predictor=predictor, pool=pool, models=models, journal=journal)
        _background.extend(
            [
                asyncio.create_task(_reconcile_forever(models, pool, settings.reconcile_seconds)),
                asyncio.create_task(_replay_forever(_services, settings.journal_replay_seconds)),
            ]
        )
        logger.info("services started: TorchServe at %s", predictor.url)
    except (RuntimeError, store.StoreUnavailable, OSError) as exc:
        _start_error = exc
        logger.error("the app's services failed to start: %s", exc)
        raise
    finally:
        ready.set()


async def stop() -> None:
    global _services, _ready, _start_error
    for task in _background:
        task.cancel()
    _background.clear()
    if _services is not None:
        await _services.predictor.close()
        await _services.models.close()
        await _services.pool.close()
    _services, _ready, _start_error = None, None, None


def _kept_secret(path: Path) -> str:
    """A random secret generated once and kept (mode 0600) in `path`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


class MissingSecret(RuntimeError):
    """Outside dev, a secret the page needs is unset or too short (the page does not start)."""


def _required_secret(settings: Settings, *, name: str, value: str | None, kept_in: Path) -> str:
    """`value`; unset in dev: one generated and kept in `kept_in`; outside dev: MissingSecret unless it is set and
    long enough (a generated one would differ per replica and could sit unnoticed in a container's var/)."""
    if settings.app_env == "dev":
        return value or _kept_secret(kept_in)
    if not value:
        raise MissingSecret(f"{name} is not set: APP_ENV={settings.app_env} needs it in the environment")
    if len(value) < MIN_SECRET_LENGTH:
        raise MissingSecret(
            f"{name} is too short ({len(value)} characters): APP_ENV={settings.app_env} needs at least "
            f"{MIN_SECRET_LENGTH}, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return value


def storage_secret(settings: Settings) -> str:
    """The secret that signs the browser-storage cookie: STORAGE_SECRET; in dev, one kept under var/ when unset."""
    return _required_secret(
        settings, name="STORAGE_SECRET", value=settings.storage_secret, kept_in=settings.storage_secret_file
    )


def admin_password(settings: Settings) -> str:
    """The admin page's password: ADMIN_PASSWORD; in dev, one generated and kept in var/admin_password when unset."""
    return _required_secret(
        settings, name="ADMIN_PASSWORD", value=settings.admin_password, kept_in=settings.admin_password_file
    )
