"""The page under NiceGUI's simulated user, wired to the real TorchServe and the real Postgres of the test session."""

import json

import pytest

FAKE_ADMIN_PASSWORD = "the stand-ins admin password"


@pytest.fixture(autouse=True)
def app_env(request, monkeypatch, tmp_path):
    """Environment that ui/main.py reads when the `user` fixture starts it (autouse: it must come first). Only tests
    that open the page (the `user` fixture) get the session's TorchServe and Postgres; the others start nothing.

    A test marked `model_server_down` gets a TorchServe address where nothing listens.
    """
    if "user" not in request.fixturenames or "fake_app" in request.fixturenames:
        return monkeypatch
    torchserve = request.getfixturevalue("torchserve")
    database_url = request.getfixturevalue("database_url")
    down = request.node.get_closest_marker("model_server_down") is not None
    inference = "9" if down else torchserve.endpoints.inference.rsplit(":", 1)[1]
    management = "9" if down else torchserve.endpoints.management.rsplit(":", 1)[1]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TS_INFERENCE_PORT", inference)
    monkeypatch.setenv("TS_MANAGEMENT_PORT", management)
    monkeypatch.setenv("TS_KEY_FILE", str(torchserve.key_file))
    monkeypatch.setenv("STORAGE_SECRET", "test-secret")
    monkeypatch.setenv("JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("TS_PROPERTIES", json.dumps({}))
    return monkeypatch


@pytest.fixture
def fake_app(monkeypatch, tmp_path):
    """The page on stand-ins (tests/support/fakes.py) instead of TorchServe and PostgreSQL: request it before `user`.
    The App wired on them replaces `current_app` (ui/deps.py), so nothing real starts. Returns the stand-ins (and
    `.app`), so a test can script the predictor and read the store."""
    from types import SimpleNamespace

    from nicegui import app

    from settings import Settings
    from tests.support.fakes import fake_app as wired
    from ui.deps import current_app

    monkeypatch.setenv("STORAGE_SECRET", "test-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nowhere.invalid/none")  # never opened
    settings = Settings(
        _env_file=None,
        storage_secret="test-secret",
        admin_password=FAKE_ADMIN_PASSWORD,
        database_url="postgresql://nowhere.invalid/none",
    )
    fake, services = wired(settings, tmp_path / "journal")

    async def override():
        return fake

    app.dependency_overrides[current_app] = override
    yield SimpleNamespace(app=fake, **vars(services))
    app.dependency_overrides.pop(current_app, None)
