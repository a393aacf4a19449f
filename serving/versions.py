"""The version policy: which version answers /predictions/<model>, and how that choice survives restarts.

TorchServe forgets `set-default` when it restarts (it does not reload its snapshot when started with --ts-config), so
the operator's chosen default is remembered elsewhere (PostgreSQL's model_defaults, through
db.defaults.DefaultVersions) and re-applied: by the page at start and whenever it sees TorchServe's default differ
(`reconcile`). The admin page and the CLI promote through the same function.
"""

from __future__ import annotations

from typing import Protocol

from records.versions import Version


class DefaultSwitch(Protocol):
    """TorchServe's side of the default (serving.management.ModelManager)."""

    model_name: str

    async def versions(self) -> list[Version]: ...

    async def default_version(self) -> str | None: ...

    async def require(self, version: str) -> list[Version]: ...

    async def set_default(self, version: str) -> None: ...


class RememberedDefault(Protocol):
    """Where the operator's choice is kept (db.defaults.DefaultVersions; an in-memory fake in page tests)."""

    async def chosen(self, model_name: str) -> str | None: ...

    async def remember(self, model_name: str, version: str, *, by: str) -> None: ...


async def promote(manager: DefaultSwitch, remembered: RememberedDefault, version: str, *, by: str) -> None:
    """Make a version the default now and after restarts: check it is loaded, remember it, then apply it.

    Remembering first means that if applying fails, the page's reconciliation applies it later; the other order could
    leave TorchServe on a version that the page would soon switch back.
    """
    await manager.require(version)
    await remembered.remember(manager.model_name, version, by=by)
    await manager.set_default(version)


async def reconcile(manager: DefaultSwitch, remembered: RememberedDefault) -> str | None:
    """Re-apply the remembered default when TorchServe's differs (it restarted); returns the version applied.

    Does nothing when no default was ever chosen (config.properties' defaultVersion stands) or when the remembered
    version is not loaded (an operator unloaded it outside this tool; TorchServe keeps its own default).
    """
    chosen = await remembered.chosen(manager.model_name)
    if chosen is None:
        return None
    current = await manager.default_version()
    if current is None or current == chosen:
        return None
    if chosen not in {v.version for v in await manager.versions()}:
        return None
    if await remembered.chosen(manager.model_name) != chosen:  # an operator promoted meanwhile: theirs stands
        return None
    await manager.set_default(chosen)
    return chosen
