"""One Settings object for the whole product, read from the environment and `.env`.

TorchServe's own addresses live in config.properties; the TS_* variables here override them (the process
supervisor writes the effective copy TorchServe starts from, and clients read the same values).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_LENGTH = 16  # for STORAGE_SECRET and ADMIN_PASSWORD in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # "production" (compose, Kubernetes): the page refuses to start without STORAGE_SECRET and ADMIN_PASSWORD of at
    # least MIN_SECRET_LENGTH characters; "dev" (`make run`, tests) generates missing ones and keeps them in var/
    app_env: Literal["dev", "production"] = "dev"

    # TorchServe
    ts_config: Path = ROOT / "config.properties"  # the template of TorchServe's configuration
    ts_home: Path = ROOT / "var" / "torchserve"  # working directory: key_file.json, logs, the effective config
    model_store: Path = ROOT / "model_store"
    model_name: str = "mnist"
    ts_host: str | None = None  # override the host of all three TorchServe APIs (e.g. 0.0.0.0 in a container)
    ts_inference_port: int | None = None
    ts_management_port: int | None = None
    ts_metrics_port: int | None = None
    ts_key_file: Path | None = None  # default: key_file.json in ts_home
    # Any other config.properties key, as JSON: TS_PROPERTIES='{"grpc_inference_port": "17070"}'
    ts_properties: dict[str, str] = {}
    ts_start_timeout: float = 120.0

    # PostgreSQL: DATABASE_URL when set; else `make run` starts a private server with its data in pg_home
    database_url: str | None = None
    pg_home: Path = ROOT / "var" / "postgres"
    pg_port: int = 5433  # the private server's port on 127.0.0.1 (5432 is left to a system PostgreSQL)

    # The page
    ui_host: str = "127.0.0.1"
    ui_port: int = 8501
    storage_secret: str | None = None  # signs the browser-id cookie; unset in dev: a random one kept in var/
    storage_secret_file: Path = ROOT / "var" / "storage_secret"
    ui_storage_dir: Path = ROOT / "var" / "nicegui"  # NiceGUI's server-side browser storage (the admin login)
    low_confidence: float = 0.6  # below this the page says "not sure"
    history_page_size: int = 10

    # The admin page /models: its password (unset in dev: one generated into var/admin_password, printed by make run)
    admin_password: str | None = None
    admin_password_file: Path = ROOT / "var" / "admin_password"
    admin_max_failures: int = 5  # failed logins per client address within admin_lockout_seconds, then locked out
    admin_lockout_seconds: float = 300.0
    compare_drawings: int = 100  # compare mode: how many of the newest stored drawings to run through every version
    # Predictions and labels that could not be written to PostgreSQL wait in a journal (db/journal.py) and are
    # replayed every journal_replay_seconds once it is back. Default: var/journal/<database>.jsonl, one file per
    # database (host, port, name), so that a test stack or a second instance never replays into another's database.
    journal_file: Path | None = None
    journal_dir: Path = ROOT / "var" / "journal"
    journal_replay_seconds: float = 2.0
    # How often the UI checks that TorchServe still uses the operator's chosen default version (after a restart)
    reconcile_seconds: float = 10.0

    @property
    def key_file(self) -> Path:
        return self.ts_key_file or self.ts_home / "key_file.json"


@lru_cache
def get_settings() -> Settings:
    return Settings()
