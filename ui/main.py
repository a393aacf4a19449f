"""The NiceGUI app: the Runtime (start-up and shutdown of the AppContext), the routes, and `python -m ui.main`.

The process supervisor (`make run`) starts it with DATABASE_URL and the TorchServe settings in the environment.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from nicegui.storage import Storage

from app.networks import network_of
from settings import Settings, SettingsError, load
from ui import api, limits, sockets
from ui.admin import ADMIN_COOKIE
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
sockets.install()  # browsers' log messages escaped; element events only from the client's own socket


@ui.page("/")
async def index(request: Request) -> None:
    header()
    network = network_of(request.client.host if request.client else None)
    page = draw.DrawPage(await current(), browser_id=app.storage.browser["id"], network=network)
    await page.refresh_history()


@ui.page("/stats")
async def stats_page() -> None:
    header()
    await stats.build(await current())


@ui.page("/models")
async def models_page(request: Request) -> None:
    header()
    client = request.client.host if request.client else "unknown"
    context = await current()
    browser_id = app.storage.browser["id"]
    await models.build(context, client=client, browser_id=browser_id, session=request.cookies.get(ADMIN_COOKIE))


@app.get("/admin/session", include_in_schema=False)
async def admin_session(ticket: str = "") -> RedirectResponse:
    """The login form's one-time ticket in exchange for a new admin session cookie (ui/admin.py says why)."""
    context = await current()
    response = RedirectResponse("/models", status_code=303)
    token = await context.admin.start_session(ticket, browser_id=app.storage.browser["id"])
    if token:
        response.set_cookie(ADMIN_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


@app.get("/admin/logout", include_in_schema=False)
async def admin_logout(request: Request) -> RedirectResponse:
    """End the admin session (server-side) and remove its cookie."""
    context = await current()
    if token := request.cookies.get(ADMIN_COOKIE):
        await context.admin.end_session(token)
    response = RedirectResponse("/models", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def server_options(settings: Settings) -> dict:
    """What uvicorn needs besides the address: X-Forwarded-* are believed only from the configured proxies (uvicorn's
    default would trust 127.0.0.1, so anyone on the machine could choose their address for the admin login)."""
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


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
        **server_options(settings),
    )


if __name__ in {"__main__", "__mp_main__"}:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per TorchServe request (every 10 s) is noise
    try:
        run(load())
    except SettingsError as exc:
        raise SystemExit(f"the page does not start: {exc}") from None
