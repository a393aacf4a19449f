"""The warnings for a page behind a proxy it was not told about (ui/proxies.py): at start-up in production without
TRUSTED_PROXIES, and once when a request carries X-Forwarded-For that the page does not believe."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from ui.proxies import ForwardedWithoutTrust, warn_at_start


def test_production_without_trusted_proxies_warns_at_start(caplog):
    with caplog.at_level(logging.WARNING, logger="ui.proxies"):
        assert warn_at_start(trusted_proxies=[], production=True)
        assert not warn_at_start(trusted_proxies=["10.0.0.5"], production=True)
        assert not warn_at_start(trusted_proxies=[], production=False)  # dev: the page is on loopback
    assert [r.getMessage() for r in caplog.records] == [caplog.records[0].getMessage()]
    assert "TRUSTED_PROXIES is not set" in caplog.records[0].getMessage()


def app(*, trusted: bool) -> TestClient:
    made = FastAPI()
    made.add_api_route("/", lambda: {"ok": True})
    made.add_middleware(ForwardedWithoutTrust, trusted=trusted)
    return TestClient(made)


def test_a_forwarded_header_nobody_believes_is_logged_once(caplog):
    client = app(trusted=False)
    with caplog.at_level(logging.WARNING, logger="ui.proxies"):
        assert client.get("/").status_code == 200  # no header: nothing to say
        assert not caplog.records
        for _ in range(3):
            assert client.get("/", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    assert len(caplog.records) == 1 and "not in TRUSTED_PROXIES" in caplog.records[0].getMessage()


def test_with_trusted_proxies_the_header_is_expected(caplog):
    with caplog.at_level(logging.WARNING, logger="ui.proxies"):
        app(trusted=True).get("/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert not caplog.records
