"""The NiceGUI app: `startup()` registers the pages and the JSON API on the App that `create_app` wires
(app/context.py), and `python -m ui.main` serves them.

The process supervisor (`make run`) starts it with DATABASE_URL and the TorchServe settings in the environment.
Pages and routes get the App from `current_app` (ui/deps.py), a FastAPI dependency: a page test replaces it with an
App wired on stand-ins, and then nothing real starts.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from nicegui.client import ClientConnectionTimeout
from nicegui.storage import Storage

from app.addresses import network_of
from app.admin import ADMIN_COOKIE
from app.context import Build, Runtime, create_app
from settings import Settings, SettingsError, load
from ui import api, connections, http, proxies, sockets
from ui.api.common import MAX_BODY
from ui.deps import CurrentApp, current_app, overridden
from ui.pages import admin, draw, stats
from ui.theme import frame
from ui.widgets import slate

logger = logging.getLogger(__name__)


# How long a page waits for its browser's socket before reading what it shows (a browser connects within a second; a
# script or a health check that only GETs the page never does, and its page must not wait for ever).
CONNECT_SECONDS = 30.0
# An idle kept-alive connection is closed after this long (uvicorn's default, said here beside the head deadline).
KEEP_ALIVE_SECONDS = 5


async def shown() -> bool:
    """Whether the page reached a browser: pages are sent first and read the database after, so that one waiting for
    a database in trouble never makes NiceGUI's 3 s limit for building a page answer a 500."""
    try:
        await ui.context.client.connected(timeout=CONNECT_SECONDS)
    except ClientConnectionTimeout:
        return False
    return True


def client_network(request: Request) -> str | None:
    return network_of(request.client.host if request.client else None)


async def index(request: Request) -> None:
    await _draw_page(request, mode=draw.DIGIT)


async def number_page(request: Request) -> None:
    """The drawing page in Number mode: a wider slate, every digit read."""
    await _draw_page(request, mode=draw.NUMBER)


async def _draw_page(request: Request, *, mode: draw.Mode) -> None:
    with frame("/"):  # both modes are the Draw page of the header's nav
        page = draw.DrawPage(
            await current_app(), browser_id=app.storage.browser["id"], network=client_network(request), mode=mode
        )
    if await shown():
        await page.refresh_history()


async def stats_page() -> None:
    with frame("/stats"):
        page = stats.StatsPage(await current_app())
    if await shown():
        await page.load()


async def admin_page(request: Request) -> None:
    with frame("/models"):
        address = request.client.host if request.client else "unknown"
        if not await shown():
            return
        await admin.AdminPage.show(
            await current_app(),
            address=address,
            browser_id=app.storage.browser["id"],
            session=request.cookies.get(ADMIN_COOKIE),
        )


async def admin_session(context: CurrentApp, ticket: str = "") -> RedirectResponse:
    """The login form's one-time ticket in exchange for a new admin session cookie (app/admin.py says why)."""
    response = RedirectResponse("/models", status_code=303)
    token = await context.admin.start_session(ticket, browser_id=app.storage.browser["id"])
    if token:
        response.set_cookie(ADMIN_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


async def admin_logout(request: Request, context: CurrentApp) -> RedirectResponse:
    """End the admin session (server-side) and remove its cookie."""
    if token := request.cookies.get(ADMIN_COOKIE):
        await context.admin.end_session(token)
    response = RedirectResponse("/models", status_code=303)
    response.delete_cookie(ADMIN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def trusted_proxies(settings: Settings) -> list[str]:
    return [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]


def startup(*, allowed_origins: str = "") -> None:
    """Register the pages, the JSON API, the body limit, the Origin check and the socket handlers (once per app);
    `allowed_origins`: ALLOWED_ORIGINS (settings.py)."""
    ui.page("/", title="Draw a digit · Digit recognizer")(index)
    ui.page("/number", title="Write a number · Digit recognizer")(number_page)
    ui.page("/stats", title="Statistics · Digit recognizer")(stats_page)
    ui.page("/models", title="Model versions · Digit recognizer")(admin_page)
    slate.register()
    app.add_api_route("/admin/session", admin_session, methods=["GET"], include_in_schema=False)
    app.add_api_route("/admin/logout", admin_logout, methods=["GET"], include_in_schema=False)
    api.register()  # the JSON API and the history's thumbnails (/drawings/{id}, /numbers/{id}/drawing)
    # Every request body, on every route (the API's, NiceGUI's own): refused by Content-Length, or cut off at the cap
    app.add_middleware(http.BodyLimit, max_body=MAX_BODY, larger={slate.PICTURE_PATH: slate.MAX_PICTURE_BYTES})
    # Outside it (added last): another site's page cannot make a visitor's browser post here, nor frame the page
    app.add_middleware(http.OriginCheck, allowed=http.parse_origins(allowed_origins))
    sockets.install()  # browsers' log messages escaped; element events only from the client's own socket


def server_options(settings: Settings) -> dict:
    """What uvicorn needs besides the address: X-Forwarded-* are believed only from the configured proxies (uvicorn's
    default would trust 127.0.0.1, so anyone on the machine could choose their address for the admin login); every
    connection must finish its request head in time and only so many are kept open (ui/connections.py: uvicorn's
    keep-alive timeout never closes a connection that has not been answered yet)."""
    proxies = trusted_proxies(settings)
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "http": connections.GuardedProtocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


def run(settings: Settings, *, build: Build = create_app) -> None:
    """Register everything, start-up and shutdown, and serve (in tests, NiceGUI's user simulation takes over here).
    Without an override of current_app, the Runtime builds the real App at start-up."""
    # app.storage.user is kept in files: under var/, not in the working directory
    Storage.path = settings.ui_storage_dir.resolve()
    # Quasar's bar over every fetch (a thumbnail, a picture sent) is a progress bar without a name for screen readers
    # (axe: serious); the page's own spinners say what is going on
    app.config.quasar_config["loadingBar"]["skipHijack"] = True
    startup(allowed_origins=settings.allowed_origins)
    trusted = trusted_proxies(settings)
    app.add_middleware(proxies.ForwardedWithoutTrust, trusted=bool(trusted))
    proxies.warn_at_start(trusted_proxies=trusted, production=settings.app_env == "production")
    runtime = Runtime(settings, build=build)
    app.state.runtime = runtime
    if not overridden():
        app.on_startup(runtime.start)
        app.on_shutdown(runtime.stop)
    ui.run(
        host=settings.ui_host,
        port=settings.ui_port,
        title="Digit recognizer",
        language="en-US",  # <html lang>: screen readers pick the voice by it
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
