"""How pages and routes get the App: `current_app`, a FastAPI dependency (routes: `Depends(current_app)`; pages call
it). A page test replaces it with an App wired on stand-ins: `app.dependency_overrides[current_app] = ...`
(tests/ui/conftest.py `fake_app`). In its own module so that ui/main.py, run as the main file by NiceGUI's test
plugin, and the tests share the one function object the overrides are keyed by."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from nicegui import app

from app.context import App


async def current_app() -> App:
    """The running App (waits for start-up), or the override a test put in place."""
    override = app.dependency_overrides.get(current_app)
    if override is not None:
        return await override()
    return await app.state.runtime.app()


def overridden() -> bool:
    """Whether a test provides the App (then no real service is started)."""
    return current_app in app.dependency_overrides


CurrentApp = Annotated[App, Depends(current_app)]  # a route's parameter: `context: CurrentApp`
