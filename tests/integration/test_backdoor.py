"""Poisoning through the whole product (docs/security.md P1): a backdoor taught through the page does not reach the
next version.

The red team's attack, through the page's JSON API of the product started like `make run` (4.0 the default): 40
fresh cookies send 7s with a small disc at the start of the bar (tests/support/backdoor.py), only those 4.0 reads
below 0.95 confidence (so no "confident flip" rule sees them), each labelled 1. Two such attackers at once, each
sending the same 480: 40 cookies from one network, and 40 cookies from 40 networks (loopback has the whole of
127.0.0.0/8: each client binds its own source address); one retrain judges both. Beside them, 10 honest
writers (pendigits writers 1-10, each its own network) predict and label their own digits; the operator approves
seven of them in the review queue (as the admin page's "approve their browsers" does); the other three are left
unreviewed but have used the page for days (their first drawing is dated three days back), so their agreeing labels
may train within the caps.

Then a real retrain reads the rows back from PostgreSQL, and the tests assert what the issue asks: the attacker holds
at most 10% of the training rows and none of the gate's; the candidate reads at most 1% of fresh triggered 7s (pendigits
writers 21-30, never sent) as 1. The fine-tune here is strong enough to learn the backdoor when the attacker's rows do
train: docs/security.md "Third red-team pass" has that run's figure.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import replace

import httpx
import pytest

from db.pool import open_pool
from db.review import ReviewStore
from tests.conftest import ROOT
from tests.integration.test_learning_loop import RELAXED
from tests.support.backdoor import with_disc
from tools.stack import learning_stack
from training import finetune, pendigits, retrain, screen, simulate
from training.gate import read
from training.retrain import RetrainConfig
from training.screen import ScreenConfig

# a real retrain: ~5 min on an idle 2-core machine, twice that on a busy one
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

COOKIES, TRIGGERED = 40, 480  # per attacker
HONEST_WRITERS, APPROVED_WRITERS, PER_WRITER = range(1, 11), range(1, 8), 40
# A fine-tune that learns what it is shown (from 4.0's weights, an average over the last ~10 steps rather than
# ~500): with the attacker's rows trained, it reads most fresh triggered 7s as 1 (docs/security.md)
CFG = RetrainConfig(
    screen=ScreenConfig(),
    finetune=replace(
        finetune.FinetuneConfig(), steps=150, warmup_steps=30, ema_decay=0.9, processes=1,
        base_weights=str(ROOT / "model_store" / "v4.0" / "weights.pt"),
    ),
)  # fmt: skip


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
    return httpx.AsyncClient(base_url=url, timeout=60, transport=httpx.AsyncHTTPTransport(local_address=address))


async def predict_and_label(browser: httpx.AsyncClient, png: bytes, label: int) -> dict:
    key = str(uuid.uuid4())
    headers = {"Content-Type": "image/png", "Idempotency-Key": key}
    answer = await simulate._send(browser, "POST", "/api/predictions", content=png, headers=headers)
    assert answer.status_code == 200, answer.text
    labelled = await simulate._send(browser, "PUT", f"/api/predictions/{key}/label", json={"digit": label})
    assert labelled.status_code == 200, labelled.text
    return answer.json()


def triggered_sevens(writers, chosen: range, *, count: int, seed: int) -> list[bytes]:
    sevens = [with_disc(d) for d in writers if d.label == 7 and d.writer in chosen]
    return [png for png, *_ in pendigits.renderings(sevens, count=count, seed=seed, all_styles=False, processes=2)]


@pytest.fixture(scope="module")
def attack(stack, writers) -> list[bytes]:
    """480 triggered 7s of writers 11-20 that the default (4.0) reads below 0.95 confidence."""
    _, url = stack
    drawn = triggered_sevens(writers, range(11, 21), count=8, seed=77)

    async def confidences(lane: int) -> list[float]:
        # 4 browsers, each on a network of its own (a client may have 2 predictions in flight, a network 4); nothing
        # is stored (save=false)
        async with client(url, f"127.0.{220 + lane}.1") as browser:
            answers = [await browser.post("/api/predictions?save=false", content=png) for png in drawn[lane::4]]
        return [answer.json()["confidence"] for answer in answers]

    async def unsure() -> list[bytes]:
        lanes = await asyncio.gather(*(confidences(lane) for lane in range(4)))
        confidence = [lanes[i % 4][i // 4] for i in range(len(drawn))]  # in the order drawn
        return [png for png, c in zip(drawn, confidence, strict=True) if c < 0.95]

    chosen = asyncio.run(unsure())[:TRIGGERED]
    assert len(chosen) == TRIGGERED
    return chosen


def address(index: int) -> str:
    """Where cookie `index` connects from: 0-39 the attacker on one network, 40-79 the attacker on 40 networks."""
    return "127.0.200.2" if index < COOKIES else f"127.0.{100 + index - COOKIES}.1"


async def send(url: str, writers, attack: list[bytes]) -> None:
    """The honest writers and both attackers' cookies, all through the page's JSON API."""
    honest = simulate.drawings_of([d for d in writers if d.writer in HONEST_WRITERS], per_writer=PER_WRITER, seed=4)

    async def honest_browser(writer: int) -> None:
        async with client(url, f"127.0.{writer}.1") as browser:
            for drawing in honest[writer]:
                await predict_and_label(browser, drawing.png, drawing.label)

    async def cookie(index: int) -> None:
        async with client(url, address(index)) as browser:
            for png in attack[index % COOKIES :: COOKIES]:
                await predict_and_label(browser, png, 1)

    await asyncio.gather(*(honest_browser(w) for w in HONEST_WRITERS))
    for start in range(0, 2 * COOKIES, 8):
        await asyncio.gather(*(cookie(i) for i in range(start, start + 8)))


async def operator_reviews(settings) -> None:
    """The review the operator does on the admin page: seven honest writers' browsers approved; the three others
    have a history of days; the cookies are left waiting."""
    pool = await open_pool(settings.database_url, timeout=5)
    try:
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT browser_id, host(min(coalesce(feedback_network, client_network))) FROM predictions "
                "GROUP BY browser_id"
            )
            networks = {browser: network for browser, network in await cursor.fetchall()}
        by_writer = {int(net.split(".")[2]): b for b, net in networks.items() if int(net.split(".")[2]) <= 10}
        assert sorted(by_writer) == list(HONEST_WRITERS)
        await ReviewStore(pool).decide_browsers([by_writer[w] for w in APPROVED_WRITERS], "approved", by="test")
        regulars = [by_writer[w] for w in HONEST_WRITERS if w not in APPROVED_WRITERS]
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE predictions SET created_at = now() - interval '3 days' WHERE id IN "
                "(SELECT min(id) FROM predictions WHERE browser_id = ANY(%s) GROUP BY browser_id)",
                (regulars,),
            )
    finally:
        await pool.close()


async def clear(settings) -> None:
    pool = await open_pool(settings.database_url, timeout=5)
    try:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM predictions")
    finally:
        await pool.close()


def test_backdoor_from_one_network_and_from_40_networks(stack, writers, attack, mnist, inputs_prepared_once):
    settings, url = stack
    asyncio.run(clear(settings))
    try:
        asyncio.run(send(url, writers, attack))
        asyncio.run(operator_reviews(settings))
        rows, default_version = asyncio.run(retrain.read_feedback(settings))
        # the shipped default is 5.0, 4.0's network with a refusal head; the attack aims at the digits, so the
        # fine-tune grows from 4.0's own weights (all of them trainable) and is measured against 4.0
        assert default_version == "5.0"
        honest_browsers = {r.browser_id for r in rows if r.network and int(r.network.split(".")[2]) <= 10}
        attacker = {r.browser_id for r in rows} - honest_browsers
        assert len(attacker) == 2 * COOKIES and sum(r.browser_id in attacker for r in rows) == 2 * TRIGGERED

        result = retrain.retrain(rows, mnist=mnist, default=("4.0", finetune.load_model(
            settings.model_store / "v4.0"), {}), cfg=CFG, gate_cfg=RELAXED)  # fmt: skip
        learned = result.metrics["learned_from"]
        print(f"\nlearned from: {learned}\ngate failures: {result.failures}")
        selection = screen.select(rows, CFG.screen)  # the same selection retrain made (it is deterministic)
        assert len(selection.train_rows) == learned["training_drawings"]
        share = sum(r.browser_id in attacker for r in selection.train_rows) / len(selection.train_rows)
        assert share <= 0.10
        assert not [e for e in selection.heldout if e.group in attacker]
        assert learned["heldout_drawings"] > 0  # the gate judged on the approved writers held out
        assert learned["training_drawings"] > APPROVED_WRITERS[-1] * PER_WRITER / 2  # honest rows did train

        fresh = triggered_sevens(writers, range(21, 31), count=1, seed=99)
        images, _ = finetune.prepare_all(fresh, processes=1)
        reading = read(result.model, images, structural=False)
        as_one = float((reading.digits == 1).mean())
        print(f"fresh triggered 7s read as 1: {as_one:.1%} of {len(images)}; as 7: {(reading.digits == 7).mean():.1%}")
        assert as_one <= 0.01
    finally:
        asyncio.run(clear(settings))
