"""Model versions on the real TorchServe and the real Postgres: both shipped versions served, the default switched
and remembered, re-applied after TorchServe forgets it, a switch under load, register/unregister, and the CLI."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from app import cli
from db.defaults import DefaultVersions
from db.pool import open_pool
from records.errors import ManagementError
from serving.management import ModelManager
from serving.versions import promote, reconcile
from tests.conftest import SHIPPED_WEIGHTS
from training.archive import build

pytestmark = pytest.mark.integration


@pytest.fixture
def manager(torchserve):
    return ModelManager(management_url=torchserve.endpoints.management, key_file=torchserve.key_file)


@pytest.fixture
async def pool(database_url):
    pool = await open_pool(database_url, timeout=5)
    yield pool
    await pool.close()


@pytest.fixture(autouse=True)
def back_to_shipped_default(torchserve, database_url):
    """Whatever a test does, the next one starts with 1.0 as TorchServe's default and no remembered choice."""
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM model_defaults")
    headers = {"Authorization": f"Bearer {torchserve.keys()['management']}"}
    httpx.put(f"{torchserve.endpoints.management}/models/mnist/1.0/set-default", headers=headers, timeout=30)


def api(torchserve) -> httpx.Client:
    headers = {"Authorization": f"Bearer {torchserve.keys()['inference']}", "Content-Type": "image/png"}
    return httpx.Client(base_url=torchserve.endpoints.inference, headers=headers, timeout=30)


def served_version(torchserve, png: bytes, path: str = "/predictions/mnist") -> str:
    with api(torchserve) as client:
        response = client.post(path, content=png)
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def test_both_shipped_versions_answer_and_read_drawings(torchserve, canvas_pngs):
    with api(torchserve) as client:
        for version in ("1.0", "2.0"):
            hits = 0
            for png, label, _ in canvas_pngs[:20]:
                answer = client.post(f"/predictions/mnist/{version}", content=png).json()
                assert answer["model_version"] == version
                hits += answer["digit"] == label
            assert hits >= 19, f"{version}: {hits}/20"
    assert served_version(torchserve, canvas_pngs[0][0]) == "1.0"  # config.properties' default


async def test_versions_lists_both_with_workers_and_the_default(manager):
    async with manager:
        versions = await manager.versions()
    assert [v.version for v in versions] == ["1.0", "2.0"]
    assert [v.is_default for v in versions] == [True, False]
    assert all(v.ready_workers == 1 and v.batch_size == 16 for v in versions)
    assert {v.archive for v in versions} == {"mnist.mar", "mnist-v2.0.mar"}


async def test_promote_switches_the_next_prediction_and_is_remembered(torchserve, manager, pool, canvas_pngs):
    png = canvas_pngs[1][0]
    async with manager:
        await promote(manager, DefaultVersions(pool), "2.0", by="test")
        assert served_version(torchserve, png) == "2.0"
        chosen = await DefaultVersions(pool).current("mnist")
        assert (chosen.version, chosen.updated_by) == ("2.0", "test")
        # TorchServe forgets the choice when it restarts; simulate that and let the UI's reconciliation re-apply it
        await manager.set_default("1.0")
        assert served_version(torchserve, png) == "1.0"
        assert await reconcile(manager, DefaultVersions(pool)) == "2.0"
        assert served_version(torchserve, png) == "2.0"
        assert await reconcile(manager, DefaultVersions(pool)) is None  # already right: nothing to do
        await promote(manager, DefaultVersions(pool), "1.0", by="test")
        assert served_version(torchserve, png) == "1.0"


async def test_reconcile_without_a_remembered_choice_keeps_the_configured_default(torchserve, manager, pool):
    async with manager:
        assert await reconcile(manager, DefaultVersions(pool)) is None
        assert await manager.default_version() == "1.0"


async def test_promote_refuses_an_unknown_version_and_remembers_nothing(manager, pool):
    async with manager:
        with pytest.raises(ManagementError, match=r"version 3\.0 of mnist is not loaded \(loaded: 1\.0, 2\.0\)"):
            await promote(manager, DefaultVersions(pool), "3.0", by="test")
    assert await DefaultVersions(pool).current("mnist") is None


def test_switching_the_default_under_load_loses_no_request(torchserve, manager, canvas_pngs):
    """Eight clients predict without pause while the default flips between 1.0 and 2.0 six times."""
    stop, answers, failures = threading.Event(), [], []

    def client_loop(index: int) -> None:
        png = canvas_pngs[index][0]
        with api(torchserve) as client:
            while not stop.is_set():
                response = client.post("/predictions/mnist", content=png)
                if response.status_code == 200:
                    answers.append(response.json()["model_version"])
                else:
                    failures.append((response.status_code, response.text))

    async def flip() -> None:
        async with manager:
            for version in ("2.0", "1.0") * 3:
                await asyncio.sleep(0.3)
                await manager.set_default(version)
        await asyncio.sleep(0.3)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client_loop, i) for i in range(8)]
        try:
            asyncio.run(flip())
        finally:
            stop.set()
        for future in futures:
            future.result()
    assert failures == []
    assert len(answers) > 50 and set(answers) == {"1.0", "2.0"}


@pytest.fixture
def extra_archive(torchserve, model_store):
    """mnist-v9.9.mar (the 1.0 weights under another version number) in the test model store."""
    path = build(version="9.9", weights=SHIPPED_WEIGHTS, out=model_store)
    yield path.name
    headers = {"Authorization": f"Bearer {torchserve.keys()['management']}"}
    httpx.delete(f"{torchserve.endpoints.management}/models/mnist/9.9", headers=headers, timeout=30)
    path.unlink(missing_ok=True)


async def test_register_scale_and_unregister_a_non_default_version(torchserve, manager, extra_archive, canvas_pngs):
    png, label, _ = canvas_pngs[2]
    async with manager:
        await manager.register(extra_archive)
        assert [v.version for v in await manager.versions()] == ["1.0", "2.0", "9.9"]
        assert served_version(torchserve, png, "/predictions/mnist/9.9") == "9.9"
        with pytest.raises(ManagementError, match="already"):
            await manager.register(extra_archive)
        await manager.scale("9.9", workers=2)
        (extra,) = [v for v in await manager.versions() if v.version == "9.9"]
        assert extra.ready_workers == 2
        await manager.unregister("9.9")
        assert [v.version for v in await manager.versions()] == ["1.0", "2.0"]
    with api(torchserve) as client:
        assert client.post("/predictions/mnist/9.9", content=png).status_code == 404
        assert client.post("/predictions/mnist", content=png).json()["digit"] == label


async def test_the_default_version_cannot_be_unregistered(manager):
    async with manager:
        with pytest.raises(ManagementError, match=r"1\.0 is the default and cannot be unregistered: make 2\.0"):
            await manager.unregister("1.0")
        assert [v.version for v in await manager.versions()] == ["1.0", "2.0"]


# --- the CLI, as an operator runs it -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, torchserve, database_url, model_store):
    monkeypatch.setenv("TS_MANAGEMENT_PORT", torchserve.endpoints.management.rsplit(":", 1)[1])
    monkeypatch.setenv("TS_KEY_FILE", str(torchserve.key_file))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODEL_STORE", str(model_store))
    return monkeypatch


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_list_set_default_and_back(cli_env, capsys, torchserve, database_url, canvas_pngs):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "DEFAULT", "WORKERS"]
    assert lines[1].split()[:3] == ["1.0", "*", "1/1"] and lines[2].split()[:2] == ["2.0", "1/1"]
    code, out, _ = run_cli(capsys, "set-default", "2.0")
    assert (code, out) == (0, "mnist 2.0 is now the default (remembered across restarts)\n")
    assert served_version(torchserve, canvas_pngs[0][0]) == "2.0"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version, updated_by FROM model_defaults").fetchall() == [("2.0", "cli")]
    assert run_cli(capsys, "set-default", "1.0")[0] == 0
    assert served_version(torchserve, canvas_pngs[0][0]) == "1.0"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("set-default", "7.0"), "error: version 7.0 of mnist is not loaded (loaded: 1.0, 2.0)"),
        (("unregister", "1.0"), "error: version 1.0 is the default and cannot be unregistered: make 2.0 the default"),
        (("unregister", "7.0"), "error: version 7.0 of mnist is not loaded"),
        (("scale", "2.0", "--workers", "0"), "error: workers must be at least 1 (got 0)"),
        (("register", "nope.mar"), "error: no archive nope.mar"),
        (("register", "mnist.mar"), "error: mnist.mar: "),
    ],
)
def test_cli_error_paths(cli_env, capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith(message), err


def test_cli_says_when_torchserve_is_not_running(cli_env, capsys, tmp_path):
    cli_env.setenv("TS_MANAGEMENT_PORT", "9")
    code, _, err = run_cli(capsys, "list")
    assert code == 1 and "management API at http://127.0.0.1:9 is unreachable" in err
    cli_env.setenv("TS_KEY_FILE", str(tmp_path / "missing.json"))
    code, _, err = run_cli(capsys, "list")
    assert code == 1 and "the model server is not running (no key file yet)" in err


def test_cli_reviews_suggested_corrections_by_network_and_browser(cli_env, capsys, database_url):
    """What an operator runs after `make simulate`: the simulated writers' labels approved by their network."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM predictions")
        for browser, network, answer, label in [("sim-1", "127.0.0.0/24", 4, 9), ("sim-1", "127.0.0.0/24", 3, 3),
                                                ("other", "192.0.2.0/24", 7, 1)]:  # fmt: skip
            conn.execute(
                "INSERT INTO predictions (request_id, browser_id, model_name, model_version, predicted_digit, "
                "confidence, probabilities, canvas_png, latency_ms, true_digit, feedback_at, feedback_network) "
                "VALUES (gen_random_uuid(), %s, 'mnist', '4.0', %s, 0.9, array_fill(0.1::real, ARRAY[10]), "
                "'\\x89'::bytea, 1, %s, now(), %s::cidr)",
                (browser, answer, label, network),
            )
    assert run_cli(capsys, "review") == (
        0, "2 suggested correction(s) from 2 browser(s) in 2 network(s) wait for review (the admin page's Review "
        "queue shows them)\n", "",
    )  # fmt: skip
    assert run_cli(capsys, "approve", "--network", "127.0.0.0/24") == (0, "approved 2 label(s)\n", "")
    assert run_cli(capsys, "reject", "--browser", "other") == (0, "rejected 1 label(s)\n", "")
    with psycopg.connect(database_url) as conn:
        reviews = conn.execute("SELECT browser_id, review, reviewed_by FROM predictions ORDER BY id").fetchall()
        conn.execute("DELETE FROM predictions")
    assert reviews == [("sim-1", "approved", "cli"), ("sim-1", "approved", "cli"), ("other", "rejected", "cli")]
    with pytest.raises(SystemExit):
        cli.main(["approve"])  # says it needs --browser or --network
