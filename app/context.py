"""The application, wired once at start-up: `create_app(settings)` opens the services (PostgreSQL's pool, TorchServe's
clients, the journal) and `wire` builds the use cases on them. Page tests wire the same use cases on stand-ins
(tests/support/fakes.py). Nothing here is a module global: the page's Runtime (ui/main.py) holds the App. The
operator's command line (app/cli.py) gets its services here too: `version_control` and, per command, `operator_stores`.

NiceGUI runs async startup handlers as background tasks, so a first request can arrive before they finish: the
Runtime builds the App on start-up, lets requests wait for it, and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from app.admin import AdminLogin
from app.explanations import Explainer
from app.history import History
from app.limits import InFlight, LargeImageLane
from app.numbers import Numbers
from app.outage import Outage
from app.ports import (
    AdminRecords,
    ModelServer,
    NumberRecords,
    PendingWrites,
    PredictionRecords,
    ReviewRecords,
    VersionControl,
)
from app.predictions import Predictions
from app.review import Review
from app.uploads import Pictures
from app.versions import Versions
from db.admin import AdminStore
from db.defaults import DefaultVersions
from db.embedded import database_url
from db.journal import Batches, Journal, batches
from db.numbers import NumberStore
from db.pool import apply_schema, open_pool
from db.predictions import PredictionStore
from db.review import ReviewStore
from records.errors import StoreUnavailable
from serving.endpoints import endpoints
from serving.inference import Predictor
from serving.management import ModelManager
from serving.versions import RememberedDefault
from settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class App:
    """What the pages and the JSON API use: the use cases, and the settings they show."""

    settings: Settings
    predictions: Predictions  # predict and record, label
    numbers: Numbers  # several digits in one drawing: read and record, label the number or a digit
    history: History  # a browser's history, everyone's stats
    explainer: Explainer  # Why?, bounded and cached
    versions: Versions  # the admin page: versions, make default, compare
    admin: AdminLogin
    review: Review  # the admin page's review queue: suggested corrections approved or rejected
    in_flight: InFlight  # the JSON API's predictions in flight per client and per network
    pictures: Pictures  # the pictures given instead of drawings: judged from their headers, decoded a few at a time
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # closes the services

    async def close(self) -> None:
        for close in self.closing:
            await close()


def wire(
    settings: Settings,
    *,
    records: PredictionRecords,
    number_records: NumberRecords,
    admin_records: AdminRecords,
    review_records: ReviewRecords,
    defaults: RememberedDefault,
    server: ModelServer,
    control: VersionControl,
    journal: PendingWrites,
) -> App:
    """The use cases on these services (real ones from create_app; stand-ins in page tests)."""
    outage = Outage()  # what the reads know of a database outage, shared by everything that uses the database
    predictions = Predictions(
        server=server, store=records, journal=journal, lane=LargeImageLane(), outage=outage, number_store=number_records
    )
    return App(
        settings=settings,
        predictions=predictions,
        numbers=Numbers(server=server, store=number_records, predictions=predictions),
        history=History(store=records, numbers=number_records, predictions=predictions),
        explainer=Explainer(
            explain_all=server.explain_all,
            share=settings.explain_share,
            wait=settings.explain_wait_seconds,
            cache_size=settings.explain_cache,
        ),
        versions=Versions(
            control=control,
            defaults=defaults,
            store=records,
            predictions=predictions,
            model_store=settings.model_store,
            compare_drawings=settings.compare_drawings,
        ),
        admin=AdminLogin(settings, admin_records, outage=outage),
        review=Review(review_records),
        in_flight=InFlight(settings.api_max_in_flight, per_network=settings.api_max_in_flight_per_network),
        pictures=Pictures(),
    )


def journal_path(settings: Settings) -> Path:
    """JOURNAL_FILE, else var/journal/<hash of the database's host, port and name>.jsonl: one file per database, so
    that a test stack or a second instance never replays into another's database (the password may change)."""
    if settings.journal_file:
        return settings.journal_file
    where = conninfo_to_dict(settings.database_url or "")
    identity = f"{where.get('host', '')}:{where.get('port', '5432')}/{where.get('dbname', '')}"
    return settings.journal_dir / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsonl"


async def replay_at_start(
    journal: Journal, store: PredictionStore, numbers: NumberStore, *, batches: Batches | None = None
) -> None:
    """Write what an earlier outage left in the journal; whatever happens, the app starts (what is not written
    stays in the journal for the background replay, unreadable lines go to the journal's .rejected file)."""
    if not journal.pending:
        return
    logger.info("journal: %d entries from an earlier database outage, replaying", journal.pending)
    try:
        await journal.replay(store, numbers=numbers, batches=batches)
    except Exception:  # never block start-up: the background task retries, the entries stay in the file
        logger.exception("journal: replay at start failed; retried in the background")
    if journal.set_aside:
        logger.error("journal: %d unreadable entries are kept in %s", journal.set_aside, journal.rejected_path)


async def create_app(settings: Settings) -> App:
    """Open the pool (applying the schema) and the TorchServe clients; replay an earlier outage's journal."""
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set: start the product with `make run`, which provides one")
    pool = await open_pool(settings.database_url, timeout=5)
    await apply_schema(pool)
    addresses = endpoints(settings)
    server = Predictor(inference_url=addresses.inference, key_file=settings.key_file, model_name=settings.model_name)
    control = version_control(settings)
    journal = Journal(
        journal_path(settings),
        max_bytes=settings.journal_max_bytes,
        max_bytes_per_client=settings.journal_max_bytes_per_client,
        max_bytes_per_network=settings.journal_max_bytes_per_network,
    )
    await journal.load()  # an earlier outage's journal may be large: read in a thread, not on the event loop
    records, number_records = PredictionStore(pool), NumberStore(pool)
    app = wire(
        settings,
        records=records,
        number_records=number_records,
        admin_records=AdminStore(pool),
        review_records=ReviewStore(pool),
        defaults=DefaultVersions(pool),
        server=server,
        control=control,
        journal=journal,
    )
    app.closing = [server.close, control.close, pool.close]
    app.predictions.replay_batches = batches(pool)  # many entries a transaction
    await app.versions.apply_default()  # before the first prediction
    await replay_at_start(journal, records, number_records, batches=app.predictions.replay_batches)
    return app


def version_control(settings: Settings) -> ModelManager:
    """TorchServe's management client at the addresses the settings give: the page's, and the operator's command
    line's."""
    return ModelManager(
        management_url=endpoints(settings).management, key_file=settings.key_file, model_name=settings.model_name
    )


@dataclass(frozen=True)
class Stores:
    """What the operator's command line reads and writes in the database, on one pool."""

    records: PredictionStore  # the live accuracy per version
    review: ReviewStore  # the review queue
    defaults: DefaultVersions  # the remembered default version


@asynccontextmanager
async def operator_stores(settings: Settings) -> AsyncIterator[Stores]:
    """The stores on a pool of their own for one command, closed after it: DATABASE_URL's database, else `make run`'s
    private server (StoreUnavailable, PrivateServerError: it cannot be reached). Not an App from create_app: the
    command line answers `list` while the database is down, and never applies the schema or replays the page's
    journal."""
    pool = await open_pool(database_url(settings), timeout=5)
    try:
        yield Stores(records=PredictionStore(pool), review=ReviewStore(pool), defaults=DefaultVersions(pool))
    finally:
        await pool.close()


Build = Callable[[Settings], Awaitable[App]]


@dataclass
class Runtime:
    """The app's lifecycle: builds the App on start-up (or records why it could not), closes it on shutdown."""

    settings: Settings
    build: Build = create_app
    _app: App | None = None
    _error: BaseException | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def start(self) -> None:
        """Build the App; while the database cannot be reached (it may start after the page: compose, a pod started
        during an outage), try again every `retry` seconds instead of serving errors until a restart."""
        retry = 2.0
        while True:
            try:
                self._app = await self.build(self.settings)
                break
            except StoreUnavailable as exc:
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
            asyncio.create_task(self._app.versions.apply_default_forever(self.settings.reconcile_seconds)),
            asyncio.create_task(self._app.predictions.replay_forever(self.settings.journal_replay_seconds)),
        ]
        logger.info("services started: TorchServe at %s", self._app.predictions.server.url)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self._app is not None:
            await self._app.close()
            self._app = None

    @property
    def started(self) -> App | None:
        """The App once start-up has built it (None before, or if it failed)."""
        return self._app

    async def app(self, *, timeout: float = 30.0) -> App:
        """The started App; waits for start-up (and re-raises what made it fail)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            why = f": {self._error}" if self._error else ""
            raise RuntimeError(f"the app's services did not start in time{why}") from exc
        if self._app is None:
            raise RuntimeError(f"the app's services failed to start: {self._error}") from self._error
        return self._app
