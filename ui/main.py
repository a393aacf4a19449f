"""The NiceGUI app: start/stop of the shared services, the routes, and `python -m ui.main` to serve it.

The process supervisor (`make run`) starts it with DATABASE_URL and the TorchServe settings in the environment.
"""

from __future__ import annotations

import logging

from fastapi import Request
from nicegui import app, ui
from nicegui.storage import Storage

from ui import api, draw_page, models_page, services, stats_page
from ui.settings import Settings

logger = logging.getLogger(__name__)


def header() -> None:
    with ui.header().classes("items-center justify-between bg-slate-800"):
        ui.label("Digit recognizer").classes("text-xl font-bold")
        with ui.row():
            ui.link("Draw", "/").classes("text-white")
            ui.link("Stats", "/stats").classes("text-white")
            ui.link("Models", "/models").classes("text-white")


api.register()


@ui.page("/")
async def index() -> None:
    header()
    page = draw_page.DrawPage(await services.get(), browser_id=app.storage.browser["id"])
    await page.refresh_history()


@ui.page("/stats")
async def stats() -> None:
    header()
    await stats_page.build(await services.get())


@ui.page("/models")
async def models(request: Request) -> None:
    header()
    client = request.client.host if request.client else "unknown"
    await models_page.build(await services.get(), client=client)


def run(settings: Settings) -> None:
    """Register startup/shutdown and serve the app (in tests, NiceGUI's user simulation takes over here)."""
    # Outside dev both secrets must be set: refuse to start (MissingSecret) instead of serving without them
    storage_secret = services.storage_secret(settings)
    # app.storage.user (the admin login) is kept in files: under var/, not in the working directory
    Storage.path = settings.ui_storage_dir.resolve()
    if settings.app_env != "dev":
        services.admin_password(settings)  # in dev it is generated when first needed

    async def startup() -> None:
        await services.start(settings)

    app.on_startup(startup)
    app.on_shutdown(services.stop)
    ui.run(
        host=settings.ui_host,
        port=settings.ui_port,
        title="Digit recognizer",
        favicon="✍️",
        storage_secret=storage_secret,
        reload=False,
        show=False,
    )


if __name__ in {"__main__", "__mp_main__"}:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(Settings())
    except services.MissingSecret as exc:
        raise SystemExit(f"the page does not start: {exc}") from None
