"""The JSON API's in-flight limits (app/limits.py InFlight) on stand-ins: a cookie is free to renew, so besides its
per-client limit (`api_max_in_flight`) a network of client addresses (IPv4 /24, IPv6 /64) has at most
`api_max_in_flight_per_network` predictions in flight, whatever cookies its requests show. The per-client limit
against the real servers: test_limits.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from nicegui import app
from nicegui.testing import User

from app.limits import Busy, InFlight

PNG = {"Content-Type": "image/png"}
SEVEN = b"\x89PNG\r\n\x1a\n a seven"


async def test_thirty_two_fresh_cookies_from_one_address_hold_no_more_than_the_networks_share_and_wait_to_be_refused(
    fake_app, user: User, monkeypatch
):
    release, entered = asyncio.Event(), []
    real_predict = fake_app.predictor.predict

    async def held(png, **kwargs):
        entered.append(png)
        await release.wait()
        return await real_predict(png, **kwargs)

    monkeypatch.setattr(fake_app.predictor, "predict", held)
    transport = httpx.ASGITransport(app)  # every request from 127.0.0.1
    clients = [httpx.AsyncClient(transport=transport, base_url="http://test") for _ in range(32)]
    try:
        for client in clients:  # a fresh, validly signed cookie each
            assert (await client.get("/api/history")).status_code == 200 and client.cookies.get("session")
        sent = asyncio.get_running_loop().time()
        posts = [
            asyncio.create_task(c.post("/api/predictions?save=false", content=SEVEN, headers=PNG)) for c in clients
        ]
        while len(entered) + sum(post.done() for post in posts) < 32:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # none more gets in
        assert len(entered) == 4
        # a refusal is answered after a second, not at once: retrying at once cannot make the page refuse hundreds of
        # requests a second
        assert asyncio.get_running_loop().time() - sent >= 0.9
        release.set()
        answers = await asyncio.gather(*posts)
        refused = [answer for answer in answers if answer.status_code == 429]
        assert len(refused) == 28 and sum(answer.status_code == 200 for answer in answers) == 4
        assert all(answer.headers["Retry-After"] == "1" for answer in refused)
        assert "at most 4 per network" in refused[0].json()["detail"]
        again = await clients[0].post("/api/predictions?save=false", content=SEVEN, headers=PNG)
        assert again.status_code == 200  # the slots are given back
    finally:
        for client in clients:
            await client.aclose()


def test_a_slot_is_the_clients_and_its_networks_and_both_are_given_back():
    limits = InFlight(2, per_network=3)
    with limits.slot("a", network="n"), limits.slot("a", network="n"):
        with pytest.raises(Busy) as client, limits.slot("a", network="n"):
            pass
        assert (client.value.per, client.value.limit) == ("client", 2)
        with limits.slot("b", network="n"):
            with pytest.raises(Busy) as network, limits.slot("c", network="n"):
                pass
            assert (network.value.per, network.value.limit) == ("network", 3)
            with limits.slot("c", network="m"), limits.slot("d"):  # another network; none known: per client only
                pass
    with limits.slot("c", network="n"), limits.slot("d", network="n"), limits.slot("e", network="n"):
        pass  # all given back
