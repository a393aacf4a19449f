"""A tab of the drawing page that floods Why? (`make bench-hostile ARGS="--why"`), as the red team did (docs/security.md
N1): a real Chromium tab (Debian's /usr/bin/chromium, through Playwright) whose own socket sends the element events a
user's clicks would, faster than any user: draw a new digit, Predict, then Why? for all ten digits twice, every 0.5 s.

The events are NiceGUI's {"id", "client_id", "listener_id", "args"} messages, sent with the page's own socket; the
element ids and listeners come from the page's HTML. Loopback tools only: never part of the product.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence

ENTITIES = (("&#36;", "$"), ("&#96;", "`"), ("&gt;", ">"), ("&lt;", "<"), ("&amp;", "&"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def page_elements(html: str) -> dict[str, dict]:
    """The elements (by id) of a NiceGUI page, from the HTML it serves."""
    raw = re.search(r"parseElements\(String\.raw`(.*?)`\)", html, re.S).group(1)
    for entity, text in ENTITIES:
        raw = raw.replace(entity, text)
    return json.loads(raw)


def listener(elements: dict[str, dict], *, tag: str, event: str, label: str | None = None) -> dict:
    """{"id", "listener_id"} of `event` on the first element with this tag (and button label)."""
    for key, element in elements.items():
        if element["tag"] != tag or (label is not None and element.get("props", {}).get("label") != label):
            continue
        for found in element.get("events", []):
            if found["type"] == event:
                return {"id": int(key), "listener_id": found["listener_id"]}
    raise LookupError(f"no {tag} {label or ''} listening to {event}")


FLOOD = """([slate, predict, digits, drawings, period]) => {
  const send = (target, ...args) => window.socket.emit("event", {id: target.id, client_id: window.clientId,
      listener_id: target.listener_id, args: args.map((arg) => JSON.stringify(arg))});
  let round = 0;
  window.floodRounds = 0;
  window.flood = setInterval(() => {
    send(slate, {png: drawings[round++ % drawings.length], strokes: 1});
    send(predict);
    for (let twice = 0; twice < 2; twice++) for (let digit = 0; digit < 10; digit++) send(digits, digit);
    window.floodRounds = round;
  }, period);
}"""


async def flood_why(url: str, drawings: Sequence[bytes], seconds: float, *, period_ms: int = 500) -> dict:
    """One tab floods Why? for `seconds`, opening the page again whenever it reloads itself (its socket dropped, as
    NiceGUI's page does when a server is starved): {"rounds", "reloads", "console"}."""
    import asyncio
    import time

    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    urls = ["data:image/png;base64," + base64.b64encode(png).decode() for png in drawings]
    deadline = time.monotonic() + seconds
    rounds, reloads, console, counted = 0, -1, [], 0
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.on("console", lambda message: console.append(message.text[:200]))
            while time.monotonic() < deadline:
                reloads += 1
                await _start_flood(page, url, urls, period_ms)
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    try:
                        sent = await page.evaluate("window.floodRounds ?? -1")
                    except PlaywrightError:  # navigating: the page is reloading itself
                        sent = -1
                    if sent < 0:
                        break  # the page reloaded: open it again and go on
                    counted = sent
                rounds += counted
        finally:
            await browser.close()
    return {"rounds": rounds, "reloads": reloads, "console": console[-5:]}


async def _start_flood(page, url: str, urls: list[str], period_ms: int) -> None:
    response = await page.goto(url)
    elements = page_elements(await response.text())
    await page.wait_for_function("window.did_handshake === true")
    targets = [
        listener(elements, tag="nicegui-slate", event="change"),
        listener(elements, tag="q-btn", event="click", label="Predict"),
        listener(elements, tag="q-btn-toggle", event="update:modelValue"),
    ]
    await page.evaluate(FLOOD, [*targets, urls, period_ms])
