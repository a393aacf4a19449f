"""`make run`'s supervisor as a user runs it: start, serve, Ctrl-C stops everything; `stop` ends a background run."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from deploy.torchserve import free_ports, isolated_overrides

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


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
        TS_HOME=str(home / "torchserve"),
        MODEL_STORE=str(model_store),
        TS_INFERENCE_PORT=ports["inference_address"],
        TS_MANAGEMENT_PORT=ports["management_address"],
        TS_METRICS_PORT=ports["metrics_address"],
        TS_PROPERTIES=json.dumps(overrides),  # gRPC and worker ports
        PYTHONUNBUFFERED="1",
    )
    return env


def start_supervisor(env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return process, lines
    process.kill()
    pytest.fail("supervisor did not become ready:\n" + "".join(lines))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_serves_predictions_and_ctrl_c_stops_everything(tmp_path, model_store, canvas_pngs):
    env = supervisor_env(tmp_path, model_store)
    process, _ = start_supervisor(env)
    home = Path(env["TS_HOME"])
    torchserve_pid = int((home / "torchserve.pid").read_text())
    key = json.loads((home / "key_file.json").read_text())["inference"]["key"]
    url = f"http://127.0.0.1:{env['TS_INFERENCE_PORT']}/predictions/mnist"
    png, label, _ = canvas_pngs[5]
    response = httpx.post(url, content=png, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200 and response.json()["digit"] == label
    page = httpx.get(f"http://127.0.0.1:{env['UI_PORT']}/", timeout=30)
    assert page.status_code == 200 and "Digit recognizer" in page.text
    postgres_pid = int((Path(env["PG_HOME"]) / "data" / "postmaster.pid").read_text().split()[0])

    process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopped." in output
    deadline = time.monotonic() + 10
    while alive(torchserve_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(torchserve_pid)
    assert not alive(postgres_pid) or psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    assert not (home / "torchserve.pid").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url.replace("/predictions/mnist", "/ping"), timeout=2)


def test_stop_ends_a_background_run(tmp_path, model_store):
    env = supervisor_env(tmp_path, model_store)
    process, _ = start_supervisor(env)
    result = subprocess.run(
        [sys.executable, "-m", "deploy.run", "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "stopped supervisor" in result.stdout, result.stdout + result.stderr
    process.wait(timeout=30)
    again = subprocess.run(
        [sys.executable, "-m", "deploy.run", "stop"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "nothing was running" in again.stdout


def test_run_refuses_a_busy_port(tmp_path, model_store, torchserve):
    env = supervisor_env(tmp_path, model_store)
    env["TS_INFERENCE_PORT"] = torchserve.endpoints.inference.rsplit(":", 1)[1]  # taken by the test TorchServe
    result = subprocess.run([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "already in use" in result.stderr and "make stop" in result.stderr
