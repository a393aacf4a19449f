"""The whole product for the real-browser tests, started once for all of tests/e2e (it takes a minute: PostgreSQL,
TorchServe with three versions, the page), and Debian's Chromium driven by Playwright (never `playwright install`).
Without /usr/bin/chromium every test here is skipped with the reason.

E2E_APP_URL (with E2E_ADMIN_PASSWORD) runs them against a product you started yourself instead (a `make run`): quicker
while working on the page, but the tests leave their drawings in its database."""

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.stack import ROOT, start_supervisor, supervisor_env

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
SHOTS = ROOT / "var" / "e2e"
ADMIN_PASSWORD = os.environ.get("E2E_ADMIN_PASSWORD", "test-admin-password")  # tools/stack.py
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="package")
def app_url(tmp_path_factory, model_store) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    if url := os.environ.get("E2E_APP_URL"):
        yield url
        return
    env = supervisor_env(tmp_path_factory.mktemp("e2e"), model_store)
    process, _ = start_supervisor(env)
    try:
        yield f"http://127.0.0.1:{env['UI_PORT']}"
    finally:
        # SIGTERM, which deploy/run.py handles like Ctrl-C: a shell running the tests in the background makes its
        # children ignore SIGINT, and the stack then outlived the tests
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        shutil.rmtree(env["PG_HOME"], ignore_errors=True)


@pytest.fixture(scope="package")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def opened(browser, url: str, **options):
    """A new browser context (its own cookies: a new visitor) with the drawing page open."""
    context = browser.new_context(**options)
    page = context.new_page()
    page.goto(url)
    page.locator("canvas").first.wait_for()
    return page


@pytest.fixture
def page(browser, app_url):
    page = opened(browser, app_url, viewport={"width": 1280, "height": 1000})
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, app_url):
    page = opened(browser, app_url, **PHONE)
    yield page
    page.context.close()
