"""One Settings object for the whole product, read from the environment and `.env`: the bottom of the dependency
order (pages (ui) -> app -> services (serving, db) -> settings; deploy and training on top). It imports nothing of ours.

TorchServe's own addresses live in config.properties; the TS_* variables here override them (the process
supervisor writes the effective copy TorchServe starts from, and clients read the same values).

The one way to obtain it is `load()` (a one-line SettingsError instead of pydantic's report); tests build
`Settings(...)` with explicit values.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent
MIN_SECRET_LENGTH = 16  # for STORAGE_SECRET and ADMIN_PASSWORD in production
SECRETS = ("storage_secret", "admin_password")


class SettingsError(ValueError):
    """The environment does not describe a product that can start; the message says what to set."""


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
    # Addresses (comma-separated IPs or networks, uvicorn's FORWARDED_ALLOW_IPS format) of the reverse proxies whose
    # X-Forwarded-For / X-Forwarded-Proto the page believes. Default: none, the client is the socket's peer (uvicorn's
    # own default would trust 127.0.0.1, where anyone on the machine can set the header).
    trusted_proxies: str = ""
    # Origins (comma-separated, e.g. https://digits.example.com) whose pages may send state-changing requests besides
    # the page's own (the scheme and Host the request was addressed to): needed only behind a proxy that changes the
    # Host header. A request with any other Origin is refused with 403 (ui/http.py OriginCheck); one without (a
    # script, curl) is not.
    allowed_origins: str = ""
    storage_secret: str | None = None  # signs the browser-id cookie; unset in dev: a random one kept in var/
    storage_secret_file: Path = ROOT / "var" / "storage_secret"
    ui_storage_dir: Path = ROOT / "var" / "nicegui"  # NiceGUI's server-side browser storage (the admin login)
    low_confidence: float = 0.6  # below this the page says "not sure"
    history_page_size: int = 10
    # The JSON API: predictions one client (its signed browser-id cookie, else its address) may have in flight; one
    # more is refused with 429 and Retry-After (ui/limits.py)
    api_max_in_flight: int = 2
    # ... and per network of the client's address (IPv4 /24, IPv6 /64), however many cookies it shows: fresh cookies
    # are free, so without this one address could take a slot per cookie
    api_max_in_flight_per_network: int = 4
    # Why? (app/explanations.py): explanations take at most this share of one TorchServe worker's time, whatever the
    # clients ask; one that cannot start within explain_wait_seconds is answered "busy"; the ten maps of this many
    # drawings are kept
    explain_share: float = Field(0.5, gt=0, le=1)
    explain_wait_seconds: float = 8.0
    explain_cache: int = 256

    # The admin page /models: its password (unset in dev: one generated into var/admin_password, printed by make run)
    admin_password: str | None = None
    admin_password_file: Path = ROOT / "var" / "admin_password"
    # Failed logins per client address (in PostgreSQL): the first admin_free_failures cost nothing, then each doubles
    # the wait before the next attempt, from admin_first_delay_seconds up to admin_max_delay_seconds; an address
    # without failures for admin_forget_seconds starts again
    admin_free_failures: int = 3
    admin_first_delay_seconds: float = 1.0
    admin_max_delay_seconds: float = 60.0
    admin_forget_seconds: float = 3600.0
    admin_idle_seconds: float = 1800.0  # an admin session without an admin action for this long has ended
    compare_drawings: int = 100  # compare mode: how many of the newest stored drawings to run through every version
    # Predictions and labels that could not be written to PostgreSQL wait in a journal (db/journal.py); while any
    # wait, a replay tries every journal_replay_seconds (each try waits for the pool's next connection: the writing
    # starts as soon as the database answers). Default: var/journal/<database>.jsonl, one file per database (host,
    # port, name), so that a test stack or a second instance never replays into another's database.
    journal_file: Path | None = None
    journal_dir: Path = ROOT / "var" / "journal"
    journal_replay_seconds: float = 1.0
    # What the journal may hold, in bytes: in all, per browser id and per network of the client's address (a browser
    # id costs nothing to renew); beyond, a write is refused with 503 "NOT saved" (a drawing is ~5-10 KB in it, a
    # number ~30 KB, the largest picture ~700 KB)
    journal_max_bytes: int = 100_000_000
    journal_max_bytes_per_client: int = 5_000_000
    journal_max_bytes_per_network: int = 10_000_000
    # How often the UI checks that TorchServe still uses the operator's chosen default version (after a restart)
    reconcile_seconds: float = 10.0

    @property
    def key_file(self) -> Path:
        return self.ts_key_file or self.ts_home / "key_file.json"

    @model_validator(mode="after")
    def _secrets_outside_dev(self) -> Settings:
        """Outside dev both secrets must be set and long enough: a generated one would differ per replica and could
        sit unnoticed in a container's var/."""
        if self.app_env == "dev":
            return self
        for name in SECRETS:
            value = getattr(self, name)
            if not value:
                raise ValueError(f"{name.upper()} is not set: APP_ENV={self.app_env} needs it in the environment")
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{name.upper()} is too short ({len(value)} characters): APP_ENV={self.app_env} needs at least "
                    f"{MIN_SECRET_LENGTH}, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
                )
        return self

    def secret(self, name: Literal["storage_secret", "admin_password"]) -> str:
        """STORAGE_SECRET (signs the browser-id cookie) or ADMIN_PASSWORD (the admin page). Outside dev they are
        validated at load; in dev an unset one is generated once and kept (mode 0600) in var/ (make run prints the
        admin password's file)."""
        value = getattr(self, name)
        if value:
            return value
        path: Path = getattr(self, f"{name}_file")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()


def load(**overrides) -> Settings:
    """The settings of this process: environment, then `.env`; SettingsError with one readable line if invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        messages = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise SettingsError(f"{messages} (see .env.example)") from None
