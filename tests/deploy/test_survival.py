"""The product survives its parts: the whole product started as `make run` starts it (on free ports), then TorchServe's
Java and the private PostgreSQL killed with SIGKILL under it. The page must answer throughout, predictions must come
back through the page's JSON API, a version registered at run time and the chosen default must come back with
TorchServe, and saving must come back with PostgreSQL. Each test prints how long the recovery took (pytest -s)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from deploy.parts import TorchServePart
from serving.inference import NOT_ANSWERING, NOT_IN_TIME
from tools.stack import ROOT, start_supervisor, supervisor_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECOVERY_SECONDS = 90.0
PNG = {"Content-Type": "image/png"}


@dataclass
class Product:
    env: dict[str, str]
    supervisor: subprocess.Popen
    output: list[str]  # the supervisor's lines so far
    page: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.page = httpx.Client(base_url=f"http://127.0.0.1:{self.env['UI_PORT']}", timeout=30)

    def predict(self, png: bytes) -> httpx.Response:
        return self.page.post("/api/predictions", content=png, headers=PNG)

    def said(self) -> str:
        return "".join(self.output)

    def says(self, text: str, *, within: float = 10.0) -> bool:
        """Whether the supervisor prints `text`, waiting `within` s (it looks at its parts once a second: the page
        may serve before the supervisor says it is back)."""
        deadline = time.monotonic() + within
        while text not in self.said() and time.monotonic() < deadline:
            time.sleep(0.2)
        return text in self.said()


@pytest.fixture(scope="module")
def product(tmp_path_factory, model_store) -> Iterator[Product]:
    env = supervisor_env(tmp_path_factory.mktemp("survival"), model_store)
    supervisor, output = start_supervisor(env)
    product = Product(env, supervisor, output)
    try:
        yield product
    finally:
        product.page.close()
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=90)
        shutil.rmtree(env["PG_HOME"], ignore_errors=True)


@dataclass
class Watch:
    """What the page answered at each poll while a part was down, and when what was asked for came back."""

    page_failures: list[str] = field(default_factory=list)
    messages: set[str] = field(default_factory=set)  # the prediction errors' details
    seconds: float | None = None


def watch_until(product: Product, png: bytes, recovered: Callable[[httpx.Response], bool]) -> Watch:
    """Poll the page (GET /) and a prediction twice a second until `recovered(prediction)`, or RECOVERY_SECONDS."""
    watch, started = Watch(), time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        try:
            page = product.page.get("/")
            if page.status_code != 200:
                watch.page_failures.append(f"GET / answered {page.status_code}")
            prediction = product.predict(png)
        except httpx.HTTPError as exc:
            watch.page_failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.5)
            continue
        if recovered(prediction):
            watch.seconds = time.monotonic() - started
            return watch
        if prediction.status_code != 200:
            watch.messages.add(prediction.json()["detail"])
        time.sleep(0.5)
    return watch


def torchserve_java(env: dict[str, str]) -> psutil.Process:
    """The Java frontend among the children of the TorchServe process group `make run` started."""
    leader = psutil.Process(int((Path(env["TS_HOME"]) / "torchserve.pid").read_text()))
    (java,) = [p for p in leader.children(recursive=True) if p.name() == "java"]
    return java


def ui_process(env: dict[str, str]) -> int:
    return int((Path(env["TS_HOME"]).parent / "ui.pid").read_text())


def run_cli(env: dict[str, str], *argv: str) -> None:
    """The operator's command line (`make models ARGS=...`) against this product."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_killed_torchserve_comes_back_with_its_run_time_versions_and_the_page_answers_meanwhile(product, canvas_pngs):
    png = canvas_pngs[2][0]
    run_cli(product.env, "register", "mnist-v2.0.mar", "--set-default")  # not in config.properties' load_models
    assert product.predict(png).json()["model_version"] == "2.0"
    time.sleep(TorchServePart.OBSERVE_SECONDS + 1)  # the supervisor has looked at the versions since

    ui_pid = ui_process(product.env)
    torchserve_java(product.env).kill()
    back = watch_until(product, png, lambda r: r.status_code == 200)
    chosen = watch_until(product, png, lambda r: r.status_code == 200 and r.json()["model_version"] == "2.0")

    print(f"\npredictions back {back.seconds} s after the kill; 2.0 the default again {chosen.seconds} s later")
    assert back.seconds is not None, f"no prediction within {RECOVERY_SECONDS:.0f} s:\n{product.said()}"
    assert chosen.seconds is not None, f"2.0 did not answer again:\n{product.said()}"
    assert not back.page_failures and not chosen.page_failures, back.page_failures + chosen.page_failures
    assert NOT_ANSWERING in back.messages and back.messages <= {NOT_ANSWERING, NOT_IN_TIME}, back.messages
    assert product.says("TorchServe stopped unexpectedly") and product.says("TorchServe is back after")
    assert product.says("registered mnist 2.0 again (mnist-v2.0.mar)")
    assert ui_process(product.env) == ui_pid  # the same page process read TorchServe's new keys by itself


def postmaster_pid(env: dict[str, str]) -> int:
    return int((Path(env["PG_HOME"]) / "data" / "postmaster.pid").read_text().split()[0])


def test_killed_postgres_is_restarted_and_saving_comes_back(product, canvas_pngs):
    png = canvas_pngs[8][0]
    assert product.predict(png).json()["saved"] == "database"
    killed = postmaster_pid(product.env)

    os.kill(killed, signal.SIGKILL)
    saved = watch_until(product, png, lambda r: r.status_code == 200 and r.json()["saved"] == "database")

    print(f"\nsaving in the database back {saved.seconds} s after the kill")
    assert saved.seconds is not None, f"nothing saved within {RECOVERY_SECONDS:.0f} s:\n{product.said()}"
    assert not saved.page_failures, saved.page_failures
    assert postmaster_pid(product.env) != killed and product.says("PostgreSQL is back after")
    history = product.page.get("/api/history", params={"limit": 1})
    assert history.status_code == 200 and history.json()["total"] >= 2


def test_a_killed_ui_is_started_again_and_saves(product, canvas_pngs):
    png = canvas_pngs[9][0]
    killed = ui_process(product.env)

    os.killpg(killed, signal.SIGKILL)
    started, back = time.monotonic(), None
    while back is None and time.monotonic() - started < RECOVERY_SECONDS:
        try:
            back = product.predict(png)
        except httpx.TransportError:
            time.sleep(0.5)

    print(f"\nthe page back {time.monotonic() - started:.1f} s after the kill")
    assert back is not None and back.status_code == 200, product.said()
    assert back.json()["saved"] == "database" and ui_process(product.env) != killed
    assert product.says("the UI is back after")
