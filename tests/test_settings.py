"""Outside dev (APP_ENV=production: compose, Kubernetes) the page needs STORAGE_SECRET and ADMIN_PASSWORD from the
environment, at least 16 characters each, and refuses to start without them; in dev it generates missing ones into
var/. Unit tests of settings.py (the validator and Settings.secret), and `python -m ui.main` refusing to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from settings import MIN_SECRET_LENGTH, SECRETS, Settings, SettingsError, load
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
GOOD = "x" * MIN_SECRET_LENGTH


def settings(tmp_path: Path, **values) -> Settings:
    files = {"storage_secret_file": tmp_path / "storage_secret", "admin_password_file": tmp_path / "admin_password"}
    defaults = {"storage_secret": None, "admin_password": None}  # explicit: the test process's environment is ignored
    return Settings(_env_file=None, **(files | defaults | values))


def test_dev_generates_missing_secrets_once_and_keeps_them_private(tmp_path):
    dev = settings(tmp_path)
    assert dev.app_env == "dev"
    secret, password = dev.secret("storage_secret"), dev.secret("admin_password")
    assert len(secret) >= MIN_SECRET_LENGTH and len(password) >= MIN_SECRET_LENGTH and secret != password
    for path in (dev.storage_secret_file, dev.admin_password_file):
        assert path.stat().st_mode & 0o777 == 0o600
    assert (dev.secret("storage_secret"), dev.secret("admin_password")) == (secret, password)
    assert settings(tmp_path, storage_secret="short").secret("storage_secret") == "short"  # dev accepts what it gets


@pytest.mark.parametrize("name", SECRETS)
def test_production_refuses_a_missing_or_short_secret_and_generates_nothing(tmp_path, name):
    other = {"admin_password" if name == "storage_secret" else "storage_secret": GOOD}
    with pytest.raises(pydantic.ValidationError, match=f"{name.upper()} is not set: APP_ENV=production needs it"):
        settings(tmp_path, app_env="production", **other)
    with pytest.raises(pydantic.ValidationError, match=f"{name.upper()} is not set"):
        settings(tmp_path, app_env="production", **other, **{name: ""})
    short = "y" * (MIN_SECRET_LENGTH - 1)
    with pytest.raises(pydantic.ValidationError, match=f"{name.upper()} is too short \\(15 characters\\)"):
        settings(tmp_path, app_env="production", **other, **{name: short})
    assert list(tmp_path.iterdir()) == []
    assert settings(tmp_path, app_env="production", **other, **{name: GOOD}).secret(name) == GOOD
    assert list(tmp_path.iterdir()) == []


def test_load_says_what_is_wrong_in_one_line(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("STORAGE_SECRET", GOOD)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    with pytest.raises(SettingsError) as caught:
        load()
    expected = "ADMIN_PASSWORD is not set: APP_ENV=production needs it in the environment (see .env.example)"
    assert str(caught.value) == expected


def test_app_env_is_read_from_the_environment_and_checked(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    assert Settings(_env_file=None, storage_secret=GOOD, admin_password=GOOD).app_env == "production"
    monkeypatch.setenv("APP_ENV", "prod")
    with pytest.raises(pydantic.ValidationError, match="app_env"):
        Settings(_env_file=None)


def start_page(tmp_path: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m ui.main` in an empty folder (no .env), with exactly these settings in its environment."""
    names = {name.upper() for name in Settings.model_fields}
    # nor PYTEST_*/NICEGUI_*: with those ui.run believes it runs under pytest
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in names and not key.startswith(("PYTEST_", "NICEGUI_"))
    }
    env |= {
        "PYTHONPATH": str(ROOT),
        "UI_PORT": str(free_port()),
        "STORAGE_SECRET_FILE": str(tmp_path / "storage_secret"),
        "ADMIN_PASSWORD_FILE": str(tmp_path / "admin_password"),
        **environment,
    }
    # Were the check missing, the page would serve until the timeout (TimeoutExpired: the test fails)
    return subprocess.run(
        [sys.executable, "-m", "ui.main"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "STORAGE_SECRET is not set: APP_ENV=production needs it"),
        ({"STORAGE_SECRET": GOOD}, "ADMIN_PASSWORD is not set: APP_ENV=production needs it"),
        ({"STORAGE_SECRET": GOOD, "ADMIN_PASSWORD": "hunter2"}, "ADMIN_PASSWORD is too short (7 characters)"),
    ],
    ids=["no-storage-secret", "no-admin-password", "short-admin-password"],
)
def test_the_page_does_not_start_in_production_without_its_secrets(tmp_path, environment, message):
    result = start_page(tmp_path, {"APP_ENV": "production", **environment})
    assert result.returncode == 1
    assert f"the page does not start: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "storage_secret").exists() and not (tmp_path / "admin_password").exists()
