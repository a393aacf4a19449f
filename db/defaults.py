"""The operator's chosen default version per model (model_defaults): TorchServe forgets set-default when it restarts,
so the choice is kept here and re-applied (serving/versions.py reconcile)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from psycopg_pool import AsyncConnectionPool

from db.pool import transaction


class DefaultVersion(NamedTuple):
    version: str
    updated_at: datetime
    updated_by: str


class DefaultVersions:
    """model_defaults, bound to a pool (serving.versions.RememberedDefault)."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def current(self, model_name: str) -> DefaultVersion | None:
        """The chosen default version of a model, when and by whom; None when none was ever chosen."""
        async with transaction(self.pool) as conn:
            cursor = await conn.execute(
                "SELECT version, updated_at, updated_by FROM model_defaults WHERE model_name = %s", (model_name,)
            )
            row = await cursor.fetchone()
        return DefaultVersion(*row) if row else None

    async def chosen(self, model_name: str) -> str | None:
        row = await self.current(model_name)
        return row.version if row else None

    async def remember(self, model_name: str, version: str, *, by: str) -> None:
        """Remember the operator's choice (applied to TorchServe by the caller and the page)."""
        async with transaction(self.pool) as conn:
            await conn.execute(
                """
                INSERT INTO model_defaults (model_name, version, updated_by) VALUES (%s, %s, %s)
                ON CONFLICT (model_name) DO UPDATE
                    SET version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()
                """,
                (model_name, version, by),
            )
