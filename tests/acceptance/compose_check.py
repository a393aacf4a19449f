"""`make compose-check`: build the images and run docker-compose.yml for real with podman, then use it as a user would.

    python -m tests.acceptance.compose_check [--keep-up]

Made for a Debian bookworm machine, run as root, that reaches Debian's mirror and PyPI but no container registry
(docs/deployment.md, docs/containers.md). In order:
  1. installs podman, runc and debootstrap (apt-get) and podman-compose (pip) when missing; podman runs with runc and
     lowered rlimits from a containers.conf under var/compose-check/ (CONTAINERS_CONF), the host's is not changed;
  2. makes a Python 3.11 base image from Debian packages (debootstrap + podman import; kept between runs);
  3. builds the stand-in postgres image and the images of docker-compose.yml from their Dockerfiles, with the host's
     CA bundle and the folder of the CPU torch wheel (pip's find-links) mounted into the build;
  4. runs docker-compose.yml with podman-compose and deploy/docker/compose-check.yml laid over it, as its own project
     (a deployment named `digits` on the same machine is not touched), and waits for every health check;
  5. checks, through the published page and inside the containers, what docs/containers.md lists;
  6. tears everything down (containers, network, volumes; the images stay as a cache) and prints one summary line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from PIL import Image, ImageDraw

from serving.endpoints import read_properties

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "var" / "compose-check"
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "deploy" / "docker" / "compose-check.yml"
POSTGRES_DOCKERFILE = ROOT / "deploy" / "docker" / "postgres-standin.Dockerfile"
PROJECT = "digits-compose-check"  # not docker-compose.yml's `digits`: `down -v` here must never take a user's data
BASE_IMAGE = "localhost/digits-python:3.11-bookworm"
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-pip,python3-venv,ca-certificates"
APT_PACKAGES = ("podman", "runc", "debootstrap")
# The operator CLI, run inside the page's container: the one place to change when it moves to its own package
SET_DEFAULT = ["python", "-m", "app.cli", "set-default"]


def shipped_default() -> str:
    """The version config.properties makes TorchServe's default: the first archive of load_models."""
    properties = read_properties((ROOT / "config.properties").read_text())
    first = properties["load_models"].split(",")[0]
    versions = json.loads(properties["models"])["mnist"]
    return next(version for version, spec in versions.items() if spec["marName"] == first)


def rollback_version() -> str:
    """The newest other version config.properties loads: what the check makes the default, as an operator rolling
    back would."""
    properties = read_properties((ROOT / "config.properties").read_text())
    loaded = properties["load_models"].split(",")
    versions = json.loads(properties["models"])["mnist"]
    others = [version for version, spec in versions.items() if spec["marName"] in loaded and version != SHIPPED]
    return max(others, key=lambda version: tuple(int(part) for part in version.split(".")))


SHIPPED = shipped_default()
OTHER = rollback_version()
TORCH_WHEEL = "torch-2.13.0+cpu-*.whl"
# Bookworm's podman (4.3) cannot start containers with the host's rlimits, and its default crun stops with "cgroups
# in hybrid mode not supported".
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""


class CheckFailed(RuntimeError):
    """A step or a check did not do what it should; the message says what was seen."""


def log(message: str) -> None:
    print(f"compose-check: {message}", file=sys.stderr, flush=True)


def run(command: list[str], *, check: bool = True, input: bytes | None = None, quiet: bool = True, **kwargs):
    """Run a command; its output is captured when `quiet` (and shown when it fails)."""
    output = subprocess.PIPE if quiet else None
    result = subprocess.run(command, input=input, stdout=output, stderr=output, check=False, **kwargs)
    if check and result.returncode != 0:
        shown = b"".join(part or b"" for part in (result.stdout, result.stderr)).decode(errors="replace")[-3000:]
        raise CheckFailed(f"`{' '.join(command)}` exited with {result.returncode}\n{shown}")
    return result


# --- 1. tools -------------------------------------------------------------------------------------------------------


def install_tools() -> None:
    """apt-get the missing podman, runc, debootstrap; pip install podman-compose into this Python when missing."""
    missing = [name for name in APT_PACKAGES if not _dpkg_installed(name)]
    if missing:
        if os.geteuid() != 0:
            raise CheckFailed(f"{', '.join(missing)} not installed, and apt-get needs root: run as root")
        log(f"installing {', '.join(missing)} (apt-get)")
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", *missing], env=env)
    if importlib.util.find_spec("podman_compose") is None:
        log("installing podman-compose (pip)")
        run([sys.executable, "-m", "pip", "install", "--quiet", "podman-compose>=1.6,<2"])


def _dpkg_installed(package: str) -> bool:
    result = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
    return result.returncode == 0 and result.stdout.decode().endswith("installed")


def podman_environment() -> dict[str, str]:
    """This process's environment with CONTAINERS_CONF naming our containers.conf, and none of the variables
    docker-compose.yml reads (podman-compose lets the environment win over the env file)."""
    STATE.mkdir(parents=True, exist_ok=True)
    conf = STATE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    names = set(_env_file(ROOT / ".env.example"))
    return {key: value for key, value in os.environ.items() if key not in names} | {"CONTAINERS_CONF": str(conf)}


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


# --- 2. and 3. images -----------------------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 .sources files or sources.list)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != "#")
            suites = fields.get("Suites", "").split()
            if DEBIAN_SUITE in suites and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0]
    sources = Path("/etc/apt/sources.list")
    for line in sources.read_text().splitlines() if sources.exists() else []:
        words = [word for word in line.split() if not word.startswith("[")]
        if len(words) >= 3 and words[0] == "deb" and words[2] == DEBIAN_SUITE:
            return words[1]
    return "http://deb.debian.org/debian"


def base_image(env: dict[str, str]) -> bool:
    """The Python 3.11 base image, made from Debian packages unless present; True when it was made now."""
    if run(["podman", "image", "exists", BASE_IMAGE], check=False, env=env).returncode == 0:
        return False
    rootfs = STATE / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    mirror = debian_mirror()
    log(f"making {BASE_IMAGE} with debootstrap from {mirror} (~1 min)")
    run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", DEBIAN_SUITE, str(rootfs), mirror])
    _like_the_python_image(rootfs)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
               'CMD ["python3"]']  # fmt: skip
    command = ["podman", "import", *(f"--change={change}" for change in changes), "-", BASE_IMAGE]
    imported = subprocess.run(command, stdin=tar.stdout, capture_output=True, env=env, check=False)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    if imported.returncode != 0 or tar.returncode != 0:
        raise CheckFailed(f"podman import failed: {imported.stderr.decode(errors='replace')[-2000:]}")
    return True


def _like_the_python_image(rootfs: Path) -> None:
    """What the Dockerfiles expect of python:3.11-slim: `python` and `pip` on PATH, and pip allowed to install into
    the system's Python (Debian marks it externally managed, PEP 668)."""
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
        link = rootfs / "usr/local/bin" / name
        if not (rootfs / "usr/bin" / name).exists() and not link.exists():
            link.symlink_to(target)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def pip_setting(name: str) -> str | None:
    """A value of `pip config list` (PIP_* variables included), e.g. cert or find-links."""
    listed = run([sys.executable, "-m", "pip", "config", "list"], check=False).stdout.decode()
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.rsplit(".", 1)[-1] == name:
            return value.strip().strip("'\"")
    return None


def build_mounts() -> tuple[list[str], list[str]]:
    """podman build's -v options and build arguments: the host's CA bundle over the image's (pip reaches the index
    only with it here) and the folder with the CPU torch wheel (pip's find-links) at /wheels."""
    volumes, build_args = [], []
    cert = pip_setting("cert")
    if cert and Path(cert).is_file():
        volumes += ["-v", f"{cert}:/etc/ssl/certs/ca-certificates.crt:ro"]
    for folder in (pip_setting("find-links") or "").split():
        if list(Path(folder).glob(TORCH_WHEEL)):
            volumes += ["-v", f"{folder}:/wheels:ro"]
            build_args += ["--build-arg", "TORCH_WHEELS=/wheels"]
            break
    else:
        log(f"no {TORCH_WHEEL} in pip's find-links: torch comes from the Dockerfile's TORCH_INDEX_URL")
    return volumes, build_args


def compose_images() -> dict[str, tuple[str, Path]]:
    """service -> (image, Dockerfile) of docker-compose.yml's services that are built, and the stand-in postgres."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    images = {
        name: (service["image"], ROOT / service["build"]["context"] / service["build"]["dockerfile"])
        for name, service in services.items()
        if "build" in service
    }
    images["postgres"] = (yaml.safe_load(OVERRIDE.read_text())["services"]["postgres"]["image"], POSTGRES_DOCKERFILE)
    return images


def build_images(env: dict[str, str]) -> None:
    """Build (layers cached) every image; the image a tag named before is removed when nothing else uses it."""
    volumes, build_args = build_mounts()
    for service, (image, dockerfile) in compose_images().items():
        log(f"building {image} from {dockerfile.relative_to(ROOT)}")
        before = _image_id(image, env)
        arguments = ["--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
        if service == "torchserve":
            arguments += build_args
        run(["podman", "build", "--layers", *volumes, *arguments, "-f", str(dockerfile), "-t", image, str(ROOT)],
            env=env)  # fmt: skip
        if before and before != _image_id(image, env):  # the previous build: kept when tagged elsewhere or in use
            run(["podman", "rmi", before], env=env, check=False)


def _image_id(image: str, env: dict[str, str]) -> str:
    return (
        run(["podman", "image", "inspect", "--format", "{{.Id}}", image], env=env, check=False).stdout.decode().strip()
    )


def archives_in_model_store(env: dict[str, str]) -> list[str]:
    """docker-compose.yml mounts model_store/ into TorchServe: copy the archives the image built from the committed
    weights there when they are missing (what `make archive` would make); the names copied."""
    image = compose_images()["torchserve"][0]
    properties = (ROOT / "config.properties").read_text().splitlines()
    load = next(line.split("=", 1)[1] for line in properties if line.startswith("load_models="))
    missing = [name for name in load.split(",") if name and not (ROOT / "model_store" / name).exists()]
    if missing:
        holder = run(["podman", "create", image], env=env).stdout.decode().strip()
        try:
            for name in missing:
                run(["podman", "cp", f"{holder}:/srv/model_store/{name}", str(ROOT / "model_store" / name)], env=env)
        finally:
            run(["podman", "rm", holder], env=env, check=False)
    return missing


# --- 4. compose ----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_env_file(port: int) -> Path:
    """.env.example with fresh secrets and the page on the loopback interface at `port`, as a user's .env would be."""
    values = _env_file(ROOT / ".env.example") | {"UI_PORT": str(port), "UI_PUBLISH_ADDRESS": "127.0.0.1"}
    for name in ("POSTGRES_PASSWORD", "STORAGE_SECRET", "ADMIN_PASSWORD"):
        values[name] = secrets.token_urlsafe(24)
    path = STATE / "env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    return path


@dataclass
class Compose:
    """podman-compose on docker-compose.yml + the override, as project PROJECT, and the containers it made."""

    env: dict[str, str]
    env_file: Path
    port: int

    def __call__(self, *arguments: str, check: bool = True):
        command = [sys.executable, "-m", "podman_compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE),
                   "--env-file", str(self.env_file), *arguments]  # fmt: skip
        return run(command, env=self.env, cwd=ROOT, check=check)

    def containers(self) -> dict[str, dict]:
        """service -> `podman ps` entry of this project's containers."""
        label = f"label=io.podman.compose.project={PROJECT}"
        listed = run(["podman", "ps", "-a", "--format", "json", "--filter", label], env=self.env)
        return {entry["Labels"]["com.docker.compose.service"]: entry for entry in json.loads(listed.stdout or b"[]")}

    def id(self, service: str) -> str:
        return self.containers()[service]["Id"]

    def exec(self, service: str, *command: str, check: bool = True):
        return run(["podman", "exec", self.id(service), *command], env=self.env, check=check)

    def logs(self, service: str, tail: int = 40) -> str:
        result = run(["podman", "logs", "--tail", str(tail), self.id(service)], env=self.env, check=False)
        return (result.stdout + result.stderr).decode(errors="replace")


def wait_healthy(compose: Compose, *, timeout: float = 300) -> float:
    """Run every container's health check until all pass; the seconds it took. Podman 4.3 schedules health checks
    with systemd timers, and there is no systemd here: the check runs them itself (`podman healthcheck run`)."""
    start = time.monotonic()
    pending = {name for name, entry in compose.containers().items() if _has_healthcheck(compose, entry["Id"])}
    while pending:
        for service in sorted(pending):
            entry = compose.containers()[service]
            if entry["State"] != "running" and entry["State"] != "created":
                raise CheckFailed(f"{service} is {entry['State']}:\n{compose.logs(service)}")
            if run(["podman", "healthcheck", "run", entry["Id"]], env=compose.env, check=False).returncode == 0:
                pending.discard(service)
        if pending and time.monotonic() - start > timeout:
            raise CheckFailed(f"not healthy after {timeout:.0f} s: {sorted(pending)}\n{compose.logs(min(pending))}")
        time.sleep(2 if pending else 0)
    return time.monotonic() - start


def _has_healthcheck(compose: Compose, container: str) -> bool:
    shown = run(["podman", "inspect", "--format", "{{json .Config.Healthcheck}}", container], env=compose.env)
    return shown.stdout.strip() not in (b"", b"null", b"{}")


def wait_for_page(client: httpx.Client, compose: Compose, *, timeout: float = 120) -> None:
    start = time.monotonic()
    while True:
        try:
            if client.get("/").status_code == 200:
                return
        except httpx.TransportError:
            pass  # the server in the container is not listening yet
        if time.monotonic() - start > timeout:
            raise CheckFailed(
                f"the page does not answer on {client.base_url} after {timeout:.0f} s\n{compose.logs('ui')}"
            )
        time.sleep(1)


def start_order() -> list[list[str]]:
    """docker-compose.yml's services in two groups: those another waits for (`condition: service_healthy`), the rest."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    awaited = {
        name
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for name, condition in service["depends_on"].items()
        if condition.get("condition") == "service_healthy"
    }
    return [sorted(awaited), sorted(set(services) - awaited)]


def up(compose: Compose, client: httpx.Client) -> float:
    """`up -d` in start_order(), waiting for the health checks after each group, then for the page; the seconds it
    took. podman-compose ignores `condition: service_healthy` on podman < 4.6 (bookworm has 4.3) and would start the
    page together with PostgreSQL; Docker Compose waits, and so does this."""
    start = time.monotonic()
    for group in start_order():
        compose("up", "-d", "--no-build", *group)
        wait_healthy(compose)
    wait_for_page(client, compose)
    return time.monotonic() - start


# --- 5. checks ------------------------------------------------------------------------------------------------------


def digit_png() -> bytes:
    """A 280x280 canvas with a thick vertical stroke, as the page's canvas exports it: a 1."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(140, 50), (140, 230)], fill=0, width=22)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def predict(client: httpx.Client, *, timeout: float = 0) -> dict:
    """POST a drawing to the page's JSON API; retried on 503 (the model unavailable) for `timeout` seconds."""
    start = time.monotonic()
    while True:
        response = client.post("/api/predictions", content=digit_png(), headers={"Content-Type": "image/png"})
        if response.status_code == 200:
            return response.json()
        if response.status_code != 503 or time.monotonic() - start > timeout:
            raise CheckFailed(f"POST /api/predictions answered {response.status_code}: {response.text[:300]}")
        time.sleep(1)


def psql(compose: Compose, sql: str) -> str:
    """A query run with psql inside the postgres container, as the database's owner."""
    env = _env_file(compose.env_file)
    result = compose.exec("postgres", "psql", "-U", env["POSTGRES_USER"], "-d", env["POSTGRES_DB"], "-tAc", sql)
    return result.stdout.decode().strip()


def torchserve_predictions(compose: Compose) -> int:
    """How many predictions TorchServe in its container has answered (its own metrics, read inside the container)."""
    port = _env_file(compose.env_file)["TS_METRICS_PORT"]
    code = (
        "import httpx; print(sum(float(line.rsplit(' ', 1)[1]) for line in httpx.get("
        f"'http://127.0.0.1:{port}/metrics').text.splitlines() if line.startswith('ts_inference_requests_total')))"
    )
    return int(float(compose.exec("torchserve", "python", "-c", code).stdout.decode().strip() or 0))


def key_file(compose: Compose) -> dict:
    """TorchServe's keys, as the page reads them (TS_KEY_FILE in its container)."""
    return json.loads(compose.exec("ui", "sh", "-c", 'cat "$TS_KEY_FILE"').stdout)


@dataclass
class Checks:
    """The checks, run in order against one running stack; the first failure stops them."""

    compose: Compose
    client: httpx.Client
    passed: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)

    def run(self, name: str, check: Callable[[], None]) -> None:
        log(f"check {name}")
        check()
        self.passed.append(name)

    def cpu_torch(self) -> None:
        code = "import torch; assert torch.version.cuda is None, torch.version.cuda; print(torch.__version__)"
        version = self.compose.exec("torchserve", "python", "-c", code).stdout.decode().strip()
        nvidia = self.compose.exec("torchserve", "sh", "-c", "pip list 2>/dev/null | grep -ci nvidia", check=False)
        if not version.endswith("+cpu") or nvidia.stdout.strip() not in (b"", b"0"):
            raise CheckFailed(f"torch {version} in the TorchServe image, nvidia packages: {nvidia.stdout!r}")

    def only_the_page_is_published(self) -> None:
        published = {service: entry.get("Ports") or [] for service, entry in self.compose.containers().items()}
        mappings = [(service, port) for service, ports in published.items() for port in ports]
        expected = [("ui", "127.0.0.1", self.compose.port, self.compose.port)]
        seen = [(s, p.get("host_ip"), p.get("host_port"), p.get("container_port")) for s, p in mappings]
        if seen != expected:
            raise CheckFailed(f"published: {seen}; expected only {expected}")
        if self.client.get("/").status_code != 200:
            raise CheckFailed("the page does not answer GET /")

    def prediction_by_torchserve(self) -> None:
        before = torchserve_predictions(self.compose)
        answer = predict(self.client, timeout=30)
        after = torchserve_predictions(self.compose)
        if (answer["model_name"], answer["model_version"], answer["digit"]) != ("mnist", SHIPPED, 1) or after <= before:
            raise CheckFailed(f"answer {answer}; TorchServe's request count {before} -> {after}")
        self.request_ids.append(answer["request_id"])

    def row_in_postgres(self) -> None:
        request_id = str(uuid.UUID(self.request_ids[-1]))
        row = psql(self.compose, f"SELECT model_version, predicted_digit FROM predictions "
                                 f"WHERE request_id = '{request_id}'")  # fmt: skip
        if row != f"{SHIPPED}|1":
            raise CheckFailed(f"row of {request_id} in PostgreSQL: {row!r}")

    def set_default(self) -> None:
        self.compose.exec("ui", *SET_DEFAULT, OTHER)
        answer = predict(self.client)
        self.request_ids.append(answer["request_id"])
        if answer["model_version"] != OTHER:
            raise CheckFailed(f"after set-default {OTHER} the page answered with {answer['model_version']}")

    def torchserve_restart(self) -> None:
        keys = key_file(self.compose)
        start = time.monotonic()
        self.compose("restart", "torchserve")
        wait_healthy(self.compose, timeout=240)
        answer = predict(self.client, timeout=60)
        self.figures["recovery"] = time.monotonic() - start
        self.request_ids.append(answer["request_id"])
        if key_file(self.compose) == keys:
            raise CheckFailed("TorchServe's keys did not change when it restarted")
        version_deadline = time.monotonic() + 30  # the page re-applies the operator's default (reconcile, 10 s)
        while answer["model_version"] != OTHER and time.monotonic() < version_deadline:
            time.sleep(2)
            answer = predict(self.client)
            self.request_ids.append(answer["request_id"])
        if answer["model_version"] != OTHER:
            raise CheckFailed(
                f"after the restart the page answers with {answer['model_version']}, not the default {OTHER}"
            )

    def down_up_keeps_rows(self) -> None:
        rows = psql(self.compose, "SELECT count(*) FROM predictions")
        self.compose("down")
        self.figures["restart"] = up(self.compose, self.client)
        history = self.client.get("/api/history", params={"limit": 100}).json()
        ids = {prediction["request_id"] for prediction in history["predictions"]}
        if psql(self.compose, "SELECT count(*) FROM predictions") != rows or not set(self.request_ids) <= ids:
            raise CheckFailed(f"{rows} rows before down, history after up: {history['total']}")


def run_checks(checks: Checks) -> None:
    checks.run("cpu-torch", checks.cpu_torch)
    checks.run("only-page-published", checks.only_the_page_is_published)
    checks.run("predict-via-torchserve", checks.prediction_by_torchserve)
    checks.run("row-in-postgres", checks.row_in_postgres)
    checks.run("set-default", checks.set_default)
    checks.run("torchserve-restart", checks.torchserve_restart)
    checks.run("down-up-keeps-rows", checks.down_up_keeps_rows)


CHECK_COUNT = 7


# --- main -----------------------------------------------------------------------------------------------------------


def timed(figures: dict[str, float], name: str, step: Callable[[], object]):
    """Run a step and keep its duration under `name`; its result."""
    start = time.monotonic()
    result = step()
    figures[name] = time.monotonic() - start
    return result


def check(figures: dict[str, float], passed: list[str], *, keep_up: bool) -> None:
    """Every step of the module docstring, filling in the figures and the names of the checks passed."""
    timed(figures, "tools", install_tools)
    env = podman_environment()
    if not timed(figures, "base", lambda: base_image(env)):
        figures["base"] = 0.0  # cached
    timed(figures, "build", lambda: build_images(env))
    if copied := archives_in_model_store(env):
        log(f"copied {', '.join(copied)} from the TorchServe image into model_store/ (compose mounts it)")
    port = free_port()
    compose = Compose(env=env, env_file=write_env_file(port), port=port)
    compose("down", "-v", check=False)  # what an interrupted run left
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(30, connect=5)) as client:
            checks = Checks(compose, client, passed=passed, figures=figures)
            timed(figures, "start", lambda: up(compose, client))
            timed(figures, "checks", lambda: run_checks(checks))
    finally:
        if not keep_up:
            compose("down", "-v", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.acceptance.compose_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keep-up", action="store_true", help="leave the stack running (tear down: `down -v` by hand)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures: dict[str, float] = {}
    passed: list[str] = []
    failure = None
    try:
        check(figures, passed, keep_up=args.keep_up)
    except (CheckFailed, httpx.HTTPError, KeyError, ValueError) as exc:  # an answer not as expected is a failure too
        failure = exc
    print(summary(figures, passed, failure, total=time.monotonic() - started), flush=True)
    if failure:
        print(f"compose-check: FAILED: {failure}", file=sys.stderr)
    return 1 if failure else 0


def summary(figures: dict[str, float], passed: list[str], failure: Exception | None, *, total: float) -> str:
    """The one line a run ends with: the outcome, the checks passed, the figures."""

    def seconds(name: str) -> str:
        return f"{figures[name]:.0f} s" if name in figures else "-"

    outcome = "PASS" if failure is None and len(passed) == CHECK_COUNT else "FAIL"
    base = seconds("base") if figures.get("base") else "cached"
    return (
        f"compose-check {outcome}: {len(passed)}/{CHECK_COUNT} checks passed ({', '.join(passed) or 'none'}); "
        f"tools {seconds('tools')}, base image {base}, build {seconds('build')}, start {seconds('start')}, "
        f"checks {seconds('checks')} (TorchServe restart to answer {seconds('recovery')}, "
        f"down+up {seconds('restart')}), "
        f"total {total:.0f} s"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
