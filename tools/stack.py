"""The whole product started the way `make run` starts it, on free ports: for `make load` and the tests that need
all of it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploy.torchserve import free_ports, isolated_overrides

ROOT = Path(__file__).resolve().parents[1]


def supervisor_env(home: Path, model_store: Path) -> dict[str, str]:
    """Everything on free ports and in a folder of its own, so it runs beside a `make run`."""
    overrides = isolated_overrides()
    ports = {key: overrides.pop(key).rsplit(":", 1)[1] for key in list(overrides) if key.endswith("_address")}
    ui_port, pg_port = free_ports(2)
    # PYTEST_CURRENT_TEST would make NiceGUI in the UI process believe it runs under a test
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL" and not key.startswith("PYTEST_")}
    env.update(
        PG_HOME=str(Path(tempfile.mkdtemp(prefix="digits-run-pg-"))),  # not under pytest's 0700 tmp root
        PG_PORT=str(pg_port),
        UI_PORT=str(ui_port),
        STORAGE_SECRET="test-secret",
        ADMIN_PASSWORD="test-admin-password",
        JOURNAL_DIR=str(home / "journal"),
        TS_HOME=str(home / "torchserve"),
        MODEL_STORE=str(model_store),
        TS_INFERENCE_PORT=ports["inference_address"],
        TS_MANAGEMENT_PORT=ports["management_address"],
        TS_METRICS_PORT=ports["metrics_address"],
        TS_PROPERTIES=json.dumps(overrides),  # gRPC and worker ports
        PYTHONUNBUFFERED="1",
    )
    return env


def _hear_ctrl_c() -> None:
    """In the child before it runs Python: SIGINT back to its default. A shell running the tests in the background
    makes its children ignore SIGINT, and Python then never turns it into Ctrl-C: the stack outlived the tests."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_supervisor(env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, preexec_fn=_hear_ctrl_c,
    )  # fmt: skip
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            threading.Thread(target=_drain, args=(process, lines), daemon=True).start()
            return process, lines
    process.kill()
    pytest.fail("supervisor did not become ready:\n" + "".join(lines))


def _drain(process: subprocess.Popen, lines: list[str]) -> None:
    """Keep reading the supervisor's output so that a full pipe never blocks it (or the UI it started)."""
    for line in process.stdout:
        lines.append(line)


@contextmanager
def learning_stack(model_store: Path, tmp_path_factory) -> Iterator[tuple]:
    """The whole product on free ports with a model store of its own (the learning loop adds archives to it), and the
    Settings `make retrain` would use with it: yields (settings, the page's URL)."""
    from db.embedded import PrivateServer
    from settings import Settings

    own_store = tmp_path_factory.mktemp("loop_store")
    for archive in model_store.glob("*.mar"):
        shutil.copy(archive, own_store)
    home = tmp_path_factory.mktemp("loop")
    env = supervisor_env(home, own_store)
    process, _ = start_supervisor(env)
    settings = Settings(
        _env_file=None,
        database_url=PrivateServer(home=Path(env["PG_HOME"]), port=int(env["PG_PORT"])).url,
        ts_home=Path(env["TS_HOME"]),
        model_store=own_store,
        ts_inference_port=int(env["TS_INFERENCE_PORT"]),
        ts_management_port=int(env["TS_MANAGEMENT_PORT"]),
        ts_metrics_port=int(env["TS_METRICS_PORT"]),
        ts_properties=json.loads(env["TS_PROPERTIES"]),
    )
    try:
        yield settings, f"http://127.0.0.1:{env['UI_PORT']}"
    finally:
        process.send_signal(2)
        process.wait(timeout=60)
        shutil.rmtree(env["PG_HOME"], ignore_errors=True)
