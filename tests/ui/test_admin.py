"""Admin login without TorchServe: the slowing delay per client address, kept in PostgreSQL (ui/admin.py), and which
forwarded headers the page believes (ui/main.py's uvicorn options)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import uvicorn
from nicegui import app
from nicegui.storage import Storage

from app.admin import AdminLogin, LoginRefused, backoff_delay
from app.limits import address_block
from db.admin import AdminStore
from db.pool import open_pool
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]

PASSWORD = "correct horse battery staple"


def test_backoff_doubles_after_the_free_failures_and_is_capped():
    delays = [backoff_delay(n, free=3, first=1, cap=60) for n in range(1, 12)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60]


async def refused(admin: AdminLogin, address: str, password: str) -> str:
    with pytest.raises(LoginRefused) as caught:
        await admin.check_login(address, password, browser_id="b")
    return str(caught.value)


async def test_failures_slow_down_one_address_are_shared_and_survive_a_restart(database_url):
    settings = Settings(_env_file=None, admin_password=PASSWORD, admin_free_failures=2, admin_first_delay_seconds=0.5)
    pool = await open_pool(database_url, timeout=5)
    try:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM admin_login_failures")
        admin = AdminLogin(settings, AdminStore(pool))
        assert await refused(admin, "203.0.113.7", "guess") == "Wrong password."
        assert await refused(admin, "203.0.113.7", "guess") == "Wrong password."
        assert await refused(admin, "203.0.113.7", "guess") == "Wrong password. Wait 1 s before the next attempt."
        # the right password is not even checked while the address waits, also by another process (or after a restart)
        another_process = AdminLogin(settings, AdminStore(pool))
        assert (await refused(another_process, "203.0.113.7", PASSWORD)).startswith("Too many failed")
        assert await refused(admin, "198.51.100.2", "guess") == "Wrong password."  # another address is not slowed
        await asyncio.sleep(0.6)
        assert await admin.check_login("203.0.113.7", PASSWORD, browser_id="b")  # a ticket; the count starts again
        assert await refused(admin, "203.0.113.7", "guess") == "Wrong password."
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("addresses", "elsewhere"),
    [
        ([f"2001:db8:0:7::{n:x}" for n in range(1, 5)], "2001:db8:0:8::1"),  # fresh addresses in one IPv6 /64
        ([f"203.0.113.{n}" for n in range(1, 5)], "203.0.114.1"),  # and in one IPv4 /24
    ],
)
async def test_a_fresh_address_in_the_same_network_buys_no_fresh_attempts(database_url, addresses, elsewhere):
    """Each attempt counts against its address and its network; the wait is the larger of the two, so rotating
    addresses inside a /64 (an IPv6 client has at least that many) slows down like one address. Another network is
    not slowed; a right password clears both counts."""
    settings = Settings(_env_file=None, admin_password=PASSWORD, admin_free_failures=2, admin_first_delay_seconds=0.5)
    pool = await open_pool(database_url, timeout=5)
    try:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM admin_login_failures")
        admin = AdminLogin(settings, AdminStore(pool))
        answers = [await refused(admin, address, "guess") for address in addresses]
        assert answers[:3] == [
            "Wrong password.",
            "Wrong password.",
            "Wrong password. Wait 1 s before the next attempt.",
        ]
        assert answers[3].startswith("Too many failed attempts")
        assert await refused(admin, elsewhere, "guess") == "Wrong password."
        await asyncio.sleep(0.6)
        assert await admin.check_login(addresses[0], PASSWORD, browser_id="b")
        assert await refused(admin, addresses[3], "guess") == "Wrong password."  # the network's count starts again
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("203.0.113.7", "203.0.113.0/24"),
        ("::ffff:203.0.113.7", "203.0.113.0/24"),  # an IPv4 client on a dual-stack socket
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", None),
    ],
)
def test_a_login_counts_against_the_addresses_ipv6_64_or_ipv4_24(address, network):
    """app/limits.py address_block, which the in-flight limit of the JSON API counts by too."""
    assert address_block(address) == network


async def test_twenty_simultaneous_wrong_passwords_check_no_more_than_the_policy_allows(database_url):
    """Issue #20 N4: 20 tabs pressing Log in at the same moment had all 20 passwords checked. Counted before the
    check and one at a time, only the free failures and one more are checked (3 + 1); the rest wait, and the right
    password among them is refused too."""
    settings = Settings(_env_file=None, admin_password=PASSWORD)  # 3 free failures, then 1 s, doubling
    pool = await open_pool(database_url, timeout=5, max_size=10)
    try:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM admin_login_failures")
        admins = [AdminLogin(settings, AdminStore(pool)) for _ in range(20)]  # as if from several UI processes
        answers = await asyncio.gather(*(refused(admin, "192.0.2.50", f"guess {i}") for i, admin in enumerate(admins)))
        checked = [a for a in answers if a.startswith("Wrong password.")]
        assert len(checked) == 4, answers
        assert sum(a.startswith("Too many failed attempts") for a in answers) == 16
        assert (await refused(admins[0], "192.0.2.50", PASSWORD)).startswith("Too many failed attempts")
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT failures FROM admin_login_failures WHERE address = '192.0.2.50'")
            assert (await cursor.fetchone())[0] == 4  # the waiting ones are not counted: the wait does not grow
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("trusted", "seen"), [("", "127.0.0.1"), ("10.0.0.5", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")]
)
async def test_forwarded_headers_are_believed_only_from_configured_proxies(monkeypatch, trusted, seen):
    """What ui.main.run() hands uvicorn, applied by uvicorn itself: X-Forwarded-For from 127.0.0.1 sets the client's
    address only when 127.0.0.1 is a configured proxy (uvicorn's default trusts it)."""
    # importing ui.main registers its routes and middleware: on copies, so that nothing stays for the next test
    monkeypatch.setattr(app, "middleware_stack", None)
    monkeypatch.setattr(app, "user_middleware", list(app.user_middleware))
    monkeypatch.setattr(app.router, "routes", list(app.router.routes))
    monkeypatch.delitem(sys.modules, "ui.main", raising=False)
    from ui import main

    options = {}
    monkeypatch.setattr(main.ui, "run", lambda **kwargs: options.update(kwargs))
    monkeypatch.setattr(app, "on_startup", lambda _: None)
    monkeypatch.setattr(app, "on_shutdown", lambda _: None)
    monkeypatch.setattr(app.state, "runtime", None, raising=False)
    monkeypatch.setattr(Storage, "path", Storage.path)
    main.run(Settings(_env_file=None, trusted_proxies=trusted, storage_secret="s" * 16))
    clients = []

    async def echo(scope, receive, send):
        clients.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    uvicorn_options = {k: options[k] for k in ("proxy_headers", "forwarded_allow_ips") if k in options}
    config = uvicorn.Config(echo, **uvicorn_options)
    config.load()
    scope = {
        "type": "http", "method": "POST", "path": "/", "headers": [(b"x-forwarded-for", b"203.0.113.9")],
        "client": ("127.0.0.1", 5000), "scheme": "http", "query_string": b"", "asgi": {"version": "3.0"},
    }  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(_):
        pass

    await config.loaded_app(scope, receive, send)
    assert clients == [seen]


def test_the_versions_table_shows_a_retrained_versions_gate_and_what_it_learned_from():
    """The candidate beside the default on /models: its held-out browsers' figure against the default's, and the
    default's most frequent errors then and now (from the version's metrics.json)."""
    from app.report import ModelReport
    from ui.pages.admin import gate_detail, gate_text, learned_detail, learned_text, per_digit_detail, per_digit_text

    metrics = {
        "gate": {
            "candidate": {"heldout_browsers": 0.9839, "mnist_test": 0.9963},
            "default": {"version": "1.0", "heldout_browsers": 0.9385, "mnist_test": 0.9962},
            "counts": {"heldout_browsers": 1495},
        },
        "confusions_heldout_browsers": {"candidate": {"9->3": 10}, "default": {"9->3": 23, "4->6": 9, "1->7": 9}},
        "learned_from": {"labelled_drawings": 7494, "browsers": 31, "excluded_browsers": {"abcd1234": "poisoned"}},
        "per_digit_heldout_browsers": {"0": 0.9936, "1": 1.0, "8": 0.9371, "9": 0.9231, "6": 0.9861},
        "per_digit_heldout_browsers_default": {"0": 0.9936, "1": 0.8974, "8": 0.9301, "9": 0.8042, "6": 0.9722},
    }
    report = ModelReport.from_json(metrics)
    assert gate_text(report) == "98.4% (1.0: 93.8%)"  # short, in the cell; the words on hover:
    assert gate_detail(report) == (
        "On 1,495 drawings from browsers it never learned from: 98.4%, against 93.8% for 1.0, the default when it "
        "was made. MNIST test: 99.63% against 99.62%. 1.0's most frequent mistakes there (its count, then this "
        "version's): 9 read as 3: 23 → 10, 4 read as 6: 9 → 0, 1 read as 7: 9 → 0."
    )
    assert per_digit_text(report) == "9: 92.3%, 8: 93.7%, 6: 98.6%"
    assert per_digit_detail(report) == "9: 92.3% vs 80.4% for 1.0, 8: 93.7% vs 93.0% for 1.0, 6: 98.6% vs 97.2% for 1.0"
    assert learned_text(report) == "7,494 drawings"
    assert learned_detail(report) == (
        "7,494 drawings labelled by people in 31 browsers; 1 browser(s) left out (their labels looked poisoned)"
    )
    untrained = ModelReport.from_json({"test_accuracy": 0.9962})
    assert gate_text(untrained) == gate_detail(untrained) == learned_text(None) == ""  # 1.0 and 2.0: not retrained
    assert per_digit_text(untrained) == per_digit_detail(untrained) == ""
    del metrics["per_digit_heldout_browsers_default"]  # a version's metrics from before the default's were kept
    assert per_digit_detail(ModelReport.from_json(metrics), count=1) == "9: 92.3%"


def test_the_shipped_retrained_version_shows_its_per_digit_figures():
    """3.0's metrics.json carries its and 1.0's per-digit figures on the held-out browsers."""
    from app.report import ModelReport
    from ui.pages.admin import per_digit_detail

    report = ModelReport.load(ROOT / "model_store" / "v3.0")
    assert per_digit_detail(report).startswith("9: 92.3% vs 80.4% for 1.0, 8: 93.7% vs 93.0% for 1.0")
