"""Issue #20 N2 through the whole product: free browser ids cannot poison the next model.

The red team's scenario, through the page's JSON API of the product started like `make run`: 40 fresh cookies each
label nine 7s that the default reads confidently as 1, beside 10 honest browsers (20 right labels each, each from a
network of its own) and one single-cookie attacker (40 wrong labels). The cookies come from one address, or from 40
addresses in 40 networks (loopback has the whole of 127.0.0.0/8: each client binds its own source address, so the
page sees it as a real one). Then `retrain` reads the rows back from PostgreSQL: the poisoned labels are left out, or
the candidate is refused; a candidate that passes is registered and promoted, and it reads those 7s as 7.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import replace

import httpx
import psycopg
import pytest

from db.defaults import DefaultVersions
from db.pool import open_pool
from serving.management import ModelManager
from serving.versions import promote
from tests.conftest import ROOT
from tests.integration.test_learning_loop import RELAXED, SHORT
from tests.stack import learning_stack
from training import finetune, pendigits, retrain, simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COOKIES, SEVENS_EACH = 40, 9
# The loop test's short fine-tune, from the default's weights (4.0) rather than 1.0's, so that the candidate differs
# from the default by what it learned here; the golden set's rule as shipped (z = 2), on 1,500 of its drawings
CFG = replace(SHORT, finetune=replace(SHORT.finetune, base_weights=str(ROOT / "model_store" / "v4.0" / "weights.pt"),
                                      lr=3e-4))  # fmt: skip
GATE = replace(RELAXED, golden_z=2.0, golden_stride=3)


@pytest.fixture(scope="module")
def stack(model_store, tmp_path_factory):
    with learning_stack(model_store, tmp_path_factory) as (settings, url):
        shutil.copytree(ROOT / "model_store" / "v4.0", settings.model_store / "v4.0")
        yield settings, url


@pytest.fixture(scope="module")
def writers():
    path = pendigits.default_path()  # `make test` sets PENDIGITS_FILE
    if path is None or not path.exists():
        pytest.skip(f"pendigits not found ({path}): set PENDIGITS_FILE to pendigits-orig.tra.gz")
    return pendigits.load(path)


def client(url: str, address: str) -> httpx.AsyncClient:
    """A browser of its own (a fresh cookie jar) that connects from `address`."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=url, timeout=60, transport=transport)


async def predict_and_label(browser: httpx.AsyncClient, png: bytes, label) -> dict:
    """Predict, then label with `label` (a digit, or a function of the answer); the prediction's answer."""
    key = str(uuid.uuid4())
    headers = {"Content-Type": "image/png", "Idempotency-Key": key}
    answer = await simulate._send(browser, "POST", "/api/predictions", content=png, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    digit = label(body) if callable(label) else label
    labelled = await simulate._send(browser, "PUT", f"/api/predictions/{key}/label", json={"digit": digit})
    assert labelled.status_code == 200, labelled.text
    return body


@pytest.fixture(scope="module")
def confident_sevens(stack, writers) -> list[bytes]:
    """90 pen-drawn 7s of writers 11-30 that the default (4.0) reads as 7 with at least 0.95 confidence."""
    _, url = stack
    sevens = [d for d in writers if d.label == 7 and d.writer > 10]
    drawn = [png for png, *_ in pendigits.renderings(sevens[:200], count=1, seed=20, all_styles=False, processes=2)]

    async def read() -> list[bytes]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
            answers = [(await browser.post("/api/predictions?save=false", content=png)).json() for png in drawn]
        return [png for png, a in zip(drawn, answers, strict=True) if a["digit"] == 7 and a["confidence"] >= 0.95]

    chosen = asyncio.run(read())[:90]
    assert len(chosen) == 90
    return chosen


async def feedback(url: str, writers, sevens: list[bytes], *, poison_address) -> None:
    """The honest browsers, the single-cookie attacker and the 40 cookies, all through the page's JSON API."""
    honest = simulate.drawings_of([d for d in writers if d.writer <= 10], per_writer=20, seed=4)

    async def honest_browser(writer: int) -> None:
        async with client(url, f"127.0.{writer}.1") as browser:
            for drawing in honest[writer]:
                await predict_and_label(browser, drawing.png, drawing.label)

    async def single_attacker() -> None:
        async with client(url, "127.0.99.1") as browser:
            for drawing in honest[1] + honest[2]:
                await predict_and_label(browser, drawing.png, lambda answer: (answer["digit"] + 1) % 10)

    async def cookie(index: int) -> None:
        async with client(url, poison_address(index)) as browser:
            for k in range(SEVENS_EACH):
                body = await predict_and_label(browser, sevens[(index * SEVENS_EACH + k) % len(sevens)], 1)
                assert body["digit"] == 7 and body["confidence"] >= 0.95

    await asyncio.gather(*(honest_browser(w) for w in range(1, 11)), single_attacker())
    for start in range(0, COOKIES, 8):
        await asyncio.gather(*(cookie(i) for i in range(start, start + 8)))


def clear(settings) -> None:
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("DELETE FROM predictions")


async def promote_and_read(settings, url: str, version: str, sevens: list[bytes]) -> list[int]:
    """Register nothing new: promote `version` (already registered), read the 7s through the page, promote 4.0 back."""
    manager = ModelManager(management_url=f"http://127.0.0.1:{settings.ts_management_port}",
                           key_file=settings.key_file)  # fmt: skip
    pool = await open_pool(settings.database_url, timeout=5)
    try:
        async with manager:
            await promote(manager, DefaultVersions(pool), version, by="test")
            async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
                answers = [(await browser.post("/api/predictions?save=false", content=png)).json() for png in sevens]
            await promote(manager, DefaultVersions(pool), "4.0", by="test")
    finally:
        await pool.close()
    assert {a["model_version"] for a in answers} == {version}
    return [a["digit"] for a in answers]


@pytest.mark.parametrize(
    ("scenario", "version", "poison_address"),
    [
        ("40 cookies, one address", "8.1", lambda index: "127.0.0.2"),
        ("40 cookies, 40 networks", "8.2", lambda index: f"127.0.{100 + index}.1"),
    ],
    ids=["one-address", "forty-networks"],
)
def test_poison_from_free_cookies_is_left_out_and_the_next_version_reads_sevens(
    stack, writers, confident_sevens, mnist, scenario, version, poison_address
):
    settings, url = stack
    clear(settings)
    try:
        asyncio.run(feedback(url, writers, confident_sevens, poison_address=poison_address))
        rows, default_version = asyncio.run(retrain.read_feedback(settings))
        assert default_version == "4.0"
        poisoned = [r for r in rows if r.predicted_digit == 7 and r.true_digit == 1 and r.confidence >= 0.95]
        assert len(poisoned) >= COOKIES * SEVENS_EACH
        assert len({r.network for r in rows}) == (12 if "one address" in scenario else 51)

        screening = retrain.screen(rows, CFG)
        assert not [r for r in screening.kept if r.predicted_digit == 7 and r.true_digit == 1 and r.confidence >= 0.95]
        assert len(screening.excluded) == 1  # the single-cookie attacker
        folder = settings.model_store / "v4.0"
        result = retrain.retrain(rows, mnist=mnist, default=("4.0", finetune.load_model(folder), {}), cfg=CFG,
                                 gate_cfg=GATE)  # fmt: skip
        learned = result.metrics["learned_from"]
        print(f"\n{scenario}: {learned}; gate failures: {result.failures}")
        if "one address" in scenario:
            assert set(learned["excluded_networks"]) == {"127.0.0.0/24"}
        else:
            assert learned["unproven_contradictions"] == COOKIES * SEVENS_EACH
        if result.failures:  # refused: nothing is registered, and the default keeps reading the 7s
            return
        retrain.write_version(settings.model_store / f"v{version}", result)
        built = retrain.archive.build(version=version, weights=settings.model_store / f"v{version}" / "weights.pt",
                                      out=settings.model_store)  # fmt: skip
        asyncio.run(retrain.register(settings, built.name))
        digits = asyncio.run(promote_and_read(settings, url, version, confident_sevens))
        assert sum(d == 7 for d in digits) >= 0.99 * len(digits), digits
    finally:
        clear(settings)
