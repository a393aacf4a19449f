"""What the pages and the JSON API share, built once at start-up and handed to them: the AppContext.

NiceGUI runs async startup handlers as background tasks, so a first request can arrive before they finish: the
Runtime (one per app, kept on the FastAPI app's state by ui/main.py) builds the context on start-up, lets requests
wait for it, and closes everything on shutdown. Nothing here is a module global.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from nicegui import app
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from app.explanations import Explainer
from db import store
from db.journal import Journal
from serving.endpoints import endpoints
from serving.inference import Predictor
from serving.management import ManagementError, ModelManager
from serving.versions import reconcile
from settings import Settings
from ui.admin import AdminLogin
from ui.limits import InFlight
from ui.recorder import Recorder

logger = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    pool: AsyncConnectionPool | None  # None in page tests, whose store is an in-memory stand-in
    store: store.Store
    predictor: Predictor
    models: ModelManager
    defaults: store.DefaultVersions
    journal: Journal
    recorder: Recorder
    admin: AdminLogin
    in_flight: InFlight  # the JSON API's predictions in flight per client
    explainer: Explainer  # Why?: bounded, cached explanations

    async def apply_default(self) -> None:
        """Re-apply the operator's chosen default version if TorchServe lost it (restart); never raises."""
        try:
            applied = await reconcile(self.models, self.defaults)
        except (ManagementError, store.StoreUnavailable) as exc:
            logger.debug("default version not checked: %s", exc)  # TorchServe or Postgres down: the page says so
            return
        if applied:
            logger.info("TorchServe's default version of %s set back to %s", self.models.model_name, applied)

    async def apply_default_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.apply_default()

    async def close(self) -> None:
        await self.predictor.close()
        await self.models.close()
        if self.pool is not None:
            await self.pool.close()


def journal_path(settings: Settings) -> Path:
    """JOURNAL_FILE, else var/journal/<hash of the database's host, port and name>.jsonl: one file per database, so
    that a test stack or a second instance never replays into another's database (the password may change)."""
    if settings.journal_file:
        return settings.journal_file
    where = conninfo_to_dict(settings.database_url)
    identity = f"{where.get('host', '')}:{where.get('port', '5432')}/{where.get('dbname', '')}"
    return settings.journal_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsonl"


async def replay_at_start(journal: Journal, pool: AsyncConnectionPool) -> None:
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


def explainer(settings: Settings, predictor: Predictor) -> Explainer:
    return Explainer(
        explain_all=predictor.explain_all,
        share=settings.explain_share,
        wait=settings.explain_wait_seconds,
        cache_size=settings.explain_cache,
    )


async def build(settings: Settings) -> AppContext:
    """Open the pool (applying the schema) and the TorchServe clients; replay an earlier outage's journal."""
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set: start the product with `make run`, which provides one")
    pool = await store.open_pool(settings.database_url, timeout=5)
    await store.apply_schema(pool)
    addresses = endpoints(settings)
    predictor = Predictor(inference_url=addresses.inference, key_file=settings.key_file, model_name=settings.model_name)
    models = ModelManager(
        management_url=addresses.management, key_file=settings.key_file, model_name=settings.model_name
    )
    journal = Journal(journal_path(settings))
    context = AppContext(
        settings=settings,
        pool=pool,
        store=store.Store(pool),
        predictor=predictor,
        models=models,
        defaults=store.DefaultVersions(pool),
        journal=journal,
        recorder=Recorder(predictor=predictor, store=store.Store(pool), journal=journal),
        admin=AdminLogin(settings, pool),
        in_flight=InFlight(settings.api_max_in_flight),
        explainer=explainer(settings, predictor),
    )
    await context.apply_default()  # before the first prediction
    await replay_at_start(journal, pool)
    return context


@dataclass
class Runtime:
    """The app's lifecycle: builds the AppContext on start-up (or records why it could not), closes it on shutdown."""

    settings: Settings
    _context: AppContext | None = None
    _error: BaseException | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def start(self) -> None:
        """Build the context; while the database cannot be reached (it may start after the page: compose, a pod
        started during an outage), try again every `retry` seconds instead of serving errors until a restart."""
        retry = 2.0
        while True:
            try:
                self._context = await build(self.settings)
                break
            except store.StoreUnavailable as exc:
                self._error = exc
                logger.warning("the database cannot be reached yet (%s); trying again in %.0f s", exc, retry)
                await asyncio.sleep(retry)
                retry = min(30.0, retry * 2)
            except (RuntimeError, OSError) as exc:
                self._error = exc
                logger.error("the app's services failed to start: %s", exc)
                self._ready.set()
                raise
        self._error = None
        self._ready.set()
        self._tasks = [
            asyncio.create_task(self._context.apply_default_forever(self.settings.reconcile_seconds)),
            asyncio.create_task(self._context.recorder.replay_forever(self.settings.journal_replay_seconds)),
        ]
        logger.info("services started: TorchServe at %s", self._context.predictor.url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self._context is not None:
            await self._context.close()
            self._context = None

    @property
    def started(self) -> AppContext | None:
        """The context once start-up has built it (None before, or if it failed)."""
        return self._context

    async def context(self, *, timeout: float = 30.0) -> AppContext:
        """The started context; waits for start-up (and re-raises what made it fail)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            why = f": {self._error}" if self._error else ""
            raise RuntimeError(f"the app's services did not start in time{why}") from exc
        if self._context is None:
            raise RuntimeError(f"the app's services failed to start: {self._error}") from self._error
        return self._context


async def current() -> AppContext:
    """The running app's context (for routes and pages)."""
    return await app.state.runtime.context()
