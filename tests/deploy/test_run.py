"""`make run`'s supervisor as a user runs it: start, serve, Ctrl-C stops everything; `stop` ends a background run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tools.stack import ROOT, start_supervisor, supervisor_env

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_serves_predictions_and_ctrl_c_stops_everything(tmp_path, model_store, canvas_pngs):
    env = supervisor_env(tmp_path, model_store)
    process, lines = start_supervisor(env)
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
    process.wait(timeout=60)
    time.sleep(0.5)  # let the reader thread take the last lines
    output = "".join(lines)
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
    shutil.rmtree(env["PG_HOME"], ignore_errors=True)


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
    shutil.rmtree(env["PG_HOME"], ignore_errors=True)


def test_run_refuses_a_busy_port(tmp_path, model_store, torchserve):
    env = supervisor_env(tmp_path, model_store)
    env["TS_INFERENCE_PORT"] = torchserve.endpoints.inference.rsplit(":", 1)[1]  # taken by the test TorchServe
    result = subprocess.run([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "already in use" in result.stderr and "make stop" in result.stderr


def test_run_in_production_without_secrets_refuses_before_starting_anything(tmp_path, model_store):
    env = supervisor_env(tmp_path, model_store)
    env.update(APP_ENV="production", ADMIN_PASSWORD="long enough admin password")
    env.pop("STORAGE_SECRET")
    result = subprocess.run([sys.executable, "-m", "deploy.run"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "STORAGE_SECRET is not set" in result.stderr and ".env.example" in result.stderr
    assert "starting PostgreSQL" not in result.stdout and not (tmp_path / "torchserve").exists()


def test_the_chosen_default_version_survives_a_restart_of_the_whole_product(tmp_path, model_store, canvas_pngs):
    """`models set-default 4.0` on a running product, Ctrl-C, `make run` again (TorchServe starts with 5.0 as
    config.properties says): the first prediction through the page is already answered by 4.0."""
    env = supervisor_env(tmp_path, model_store)
    png = canvas_pngs[6][0]

    def page_prediction() -> str:
        with httpx.Client(base_url=f"http://127.0.0.1:{env['UI_PORT']}", timeout=30) as client:
            response = client.post("/api/predictions", content=png, headers={"Content-Type": "image/png"})
        assert response.status_code == 200, response.text
        return response.json()["model_version"]

    def stop(process) -> None:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0

    process = None
    try:
        process, _ = start_supervisor(env)
        assert page_prediction() == "5.0"  # the shipped default
        cli = subprocess.run(
            [sys.executable, "-m", "app.cli", "set-default", "4.0"], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert page_prediction() == "4.0"
        stop(process)
        process, _ = start_supervisor(env)  # same database folder: the choice is in it
        assert page_prediction() == "4.0"
    finally:
        if process is not None and process.poll() is None:
            stop(process)
        shutil.rmtree(env["PG_HOME"], ignore_errors=True)
