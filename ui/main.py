"""The NiceGUI app: the Runtime (start-up and shutdown of the AppContext), the routes, and `python -m ui.main`.

The process supervisor (`make run`) starts it with DATABASE_URL and the TorchServe settings in the environment.
"""

from __future__ import annotations

import logging

from fastapi import Request
from nicegui import app, ui
from nicegui.storage import Storage

from settings import Settings, SettingsError, load
from ui import api, limits
from ui.context import Runtime, current
from ui.pages import draw, models, stats

logger = logging.getLogger(__name__)


def header() -> None:
    with ui.header().classes("items-center justify-between bg-slate-800"):
        ui.label("Digit recognizer").classes("text-xl font-bold")
        with ui.row():
            ui.link("Draw", "/").classes("text-white")
            ui.link("Stats", "/stats").classes("text-white")
            ui.link("Models", "/models").classes("text-white")


api.register()
# Every request body, on every route (the API's, NiceGUI's own): refused by Content-Length, or cut off at the cap
app.add_middleware(limits.BodyLimit, max_body=api.MAX_BODY)


@ui.page("/")
async def index() -> None:
    header()
    page = draw.DrawPage(await current(), browser_id=app.storage.browser["id"])
    await page.refresh_history()


@ui.page("/stats")
async def stats_page() -> None:
    header()
    await stats.build(await current())


@ui.page("/models")
async def models_page(request: Request) -> None:
    header()
    client = request.client.host if request.client else "unknown"
    await models.build(await current(), client=client)


def run(settings: Settings) -> None:
    """Register start-up/shutdown and serve the app (in tests, NiceGUI's user simulation takes over here)."""
    # app.storage.user (the admin login) is kept in files: under var/, not in the working directory
    Storage.path = settings.ui_storage_dir.resolve()
    runtime = Runtime(settings)
    app.state.runtime = runtime
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    ui.run(
        host=settings.ui_host,
        port=settings.ui_port,
        title="Digit recognizer",
        favicon="✍️",
        storage_secret=settings.secret("storage_secret"),
        reload=False,
        show=False,
    )


if __name__ in {"__main__", "__mp_main__"}:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(load())
    except SettingsError as exc:
        raise SystemExit(f"the page does not start: {exc}") from None
