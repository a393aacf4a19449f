"""Shared fixtures: MNIST from ../shared (skipped with a reason when absent), canvas PNGs, a real TorchServe."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from db.embedded import PrivateServer, start_private_server
from deploy.torchserve import free_ports
from training import canvas, data

pytest_plugins = ["nicegui.testing.user_plugin"]

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = ROOT / "model_store" / "v1.0" / "weights.pt"
SHIPPED_V2_WEIGHTS = ROOT / "model_store" / "v2.0" / "weights.pt"
SHIPPED_V3_WEIGHTS = ROOT / "model_store" / "v3.0" / "weights.pt"
SHIPPED_V4_WEIGHTS = ROOT / "model_store" / "v4.0" / "weights.pt"
SHIPPED_V5_WEIGHTS = ROOT / "model_store" / "v5.0" / "weights.pt"


def mnist_dir() -> Path:
    return Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist() -> dict[str, data.Split]:
    folder = mnist_dir()
    if not all((folder / f"{name}.gz").exists() or (folder / name).exists() for name in data.FILES):
        pytest.skip(f"MNIST files not found in {folder} (set MNIST_DIR to the folder with the four IDX files)")
    return data.load(folder, allow_download=False)


def _fingerprint(*arrays: np.ndarray, **options) -> str:
    digest = hashlib.sha256(repr(sorted(options.items())).encode())
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(repr((contiguous.shape, contiguous.dtype.str)).encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def inputs_prepared_once() -> Iterator[None]:
    """What the retrains and the live evaluations prepare again and again the same way, prepared once a session:
    training.finetune.mnist_as_served (60,000 MNIST training and 10,000 test digits through the handler's
    preprocessing, ~1 ms a digit: a minute and more a retrain), training.golden.load (1,500 pen drawings rendered,
    ~30 s a retrain), training.canvas.canvas_set / pen_set (the drawings each version is evaluated on), and
    training.retrain's evaluation_sets (those and the golden set prepared, ~8 s a retrain) and heldout_nondigits (1,250
    non-digits drawn and prepared, ~15 s a refusing retrain). Each depends
    on its arguments alone (the drawings on their seed); the real functions still run, once for each set of
    arguments, and each caller gets its own copy."""
    from training import canvas, finetune, golden, retrain

    real = {"served": finetune.mnist_as_served, "golden": golden.load, "canvas": canvas.canvas_set,
            "pen": canvas.pen_set, "nondigits": retrain.heldout_nondigits, "sets": retrain.evaluation_sets}  # fmt: skip
    done: dict[tuple[str, str], object] = {}

    def once(kind: str, key: str, make):
        if (kind, key) not in done:
            done[kind, key] = make()
        return done[kind, key]

    def mnist_as_served(split: data.Split, *, processes: int = 2) -> np.ndarray:
        key = _fingerprint(split.images)
        return once("served", key, lambda: real["served"](split, processes=processes)).copy()

    def load(path: Path = golden.FILE, *, sha256: str = golden.SHA256) -> list[tuple[bytes, int]]:
        return list(once("golden", f"{path}:{sha256}", lambda: real["golden"](path, sha256=sha256)))

    def drawn(kind: str):
        def drawings(images: np.ndarray, labels: np.ndarray, *, count: int, seed: int = 0) -> Iterator:
            key = _fingerprint(images, labels, count=count, seed=seed)
            return iter(once(kind, key, lambda: list(real[kind](images, labels, count=count, seed=seed))))

        return drawings

    def digest(pngs) -> str:
        return hashlib.sha256(b"".join(hashlib.sha256(png).digest() for png in pngs)).hexdigest()

    def heldout_nondigits(
        *, mnist: dict[str, data.Split], processes: int, heldout_pngs=(), per_kind: int = 250
    ) -> dict[str, np.ndarray]:
        key = _fingerprint(mnist["test"].images, mnist["test"].labels, pairs=digest(heldout_pngs), per_kind=per_kind)
        options = {"mnist": mnist, "processes": processes, "heldout_pngs": heldout_pngs, "per_kind": per_kind}
        made = once("nondigits", key, lambda: real["nondigits"](**options))
        return {kind: images.copy() for kind, images in made.items()}  # type: ignore[attr-defined]

    def evaluation_sets(mnist: dict[str, data.Split], heldout, *, gate_cfg, processes: int) -> dict:
        people = (digest(e.png for e in heldout), [(e.label, e.group) for e in heldout])
        key = _fingerprint(mnist["test"].images, mnist["test"].labels, heldout=repr(people), cfg=repr(gate_cfg))
        made = once("sets", key, lambda: real["sets"](mnist, heldout, gate_cfg=gate_cfg, processes=processes))
        return {name: (images.copy(), labels.copy()) for name, (images, labels) in made.items()}  # type: ignore[attr-defined]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finetune, "mnist_as_served", mnist_as_served)
        patch.setattr(retrain, "heldout_nondigits", heldout_nondigits)
        patch.setattr(retrain, "evaluation_sets", evaluation_sets)
        patch.setattr(golden, "load", load)
        patch.setattr(canvas, "canvas_set", drawn("canvas"))
        patch.setattr(canvas, "pen_set", drawn("pen"))
        yield


@pytest.fixture(scope="session")
def canvas_pngs(mnist) -> list[tuple[bytes, int, str]]:
    """(png, label, style): 20 MNIST test digits drawn as 280x280 canvases in each of the three styles."""
    return list(canvas.canvas_set(mnist["test"].images, mnist["test"].labels, count=20, seed=7))


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """A model store holding mnist.mar (1.0) and mnist-v2.0.mar to mnist-v5.0.mar, built now from the handler code and
    the committed weights (2.0 and 3.0 are no longer loaded by config.properties; the suite's pinned TorchServe still
    serves 2.0, and the handler's tests read 3.0's archive)."""
    from training.archive import build

    store = tmp_path_factory.mktemp("model_store")
    build(version="1.0", weights=SHIPPED_WEIGHTS, out=store)
    build(version="2.0", weights=SHIPPED_V2_WEIGHTS, out=store)
    build(version="3.0", weights=SHIPPED_V3_WEIGHTS, out=store)  # tests/handler/test_numbers.py reads it
    build(version="4.0", weights=SHIPPED_V4_WEIGHTS, out=store)
    build(version="5.0", weights=SHIPPED_V5_WEIGHTS, out=store)
    return store


@pytest.fixture(scope="session")
def torchserve(model_store, tmp_path_factory) -> Iterator:
    """A real TorchServe serving both shipped versions on free ports (1.0 the default, as config.properties says),
    stopped at the end of the session."""
    with running_torchserve(tmp_path_factory.mktemp("torchserve"), model_store) as server:
        yield server


def pinned_versions() -> dict[str, str]:
    """config.properties' serving settings for 1.0 and 2.0 only, 1.0 the default: the versions whose answers the
    suite pins (the shipped configuration, 4.0 the default, runs in tests/deploy/test_run.py, tests/integration/
    test_load.py and test_learning_loop.py, which start the whole product as `make run` does)."""
    from serving.endpoints import read_properties

    models = json.loads(read_properties((ROOT / "config.properties").read_text())["models"])
    versions = {"1.0": models["mnist"]["1.0"] | {"defaultVersion": True}, "2.0": models["mnist"]["2.0"]}
    return {"load_models": "mnist.mar,mnist-v2.0.mar", "models": json.dumps({"mnist": versions})}


@contextmanager
def running_torchserve(home: Path, model_store: Path) -> Iterator:
    """A real TorchServe as config.properties configures it (serving 1.0 and 2.0: pinned_versions), on free ports,
    in `home`; stopped on exit. Its keys are renewed as `make run` renews them: they expire after an hour
    (token_expiration_min), and a suite on a busy machine runs longer than that."""
    from deploy.torchserve import KeyRenewal, TorchServe, isolated_overrides

    server = TorchServe(
        home=home,
        config_template=ROOT / "config.properties",
        model_store=model_store,
        overrides=isolated_overrides() | pinned_versions(),
    )
    server.start()
    stop = threading.Event()
    renewal = KeyRenewal(server)

    def renew() -> None:
        while not stop.wait(5):
            if (problem := renewal.tick()) is not None:
                print(problem, file=sys.stderr)

    renewing = threading.Thread(target=renew, name="key-renewal", daemon=True)
    try:
        server.wait_ready(models=("mnist",), timeout=180)
        renewing.start()
        yield server
    finally:
        stop.set()
        if renewing.is_alive():
            renewing.join()
        server.stop()


def blank_png(size: int = 280, *, mode: str = "RGBA", color=(0, 0, 0, 0)) -> bytes:
    from PIL import Image

    return canvas.to_png(Image.new(mode, (size, size), color))


def free_port() -> int:
    (port,) = free_ports(1)
    return port


@contextmanager
def fresh_database(server_url: str, *, prefix: str) -> Iterator[str]:
    """An empty database on the server at server_url, dropped on exit; yields its conninfo."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            # FORCE: a test that failed midway may leave a connection open
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def running_server(**kwargs) -> Iterator[PrivateServer]:
    """A private server on a free port in a new folder, stopped and removed on exit.

    The folder is not under pytest's tmp root: pytest makes that root 0700 again at every session start, which would
    lock the server's account (as root: postgres) out of the data folder of a concurrently running session.
    """
    home = Path(tempfile.mkdtemp(prefix="digits-pg-"))
    try:
        server = start_private_server(home=home, port=free_port(), **kwargs)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(home)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A real PostgreSQL for the session: TEST_DATABASE_URL, else a private server (stopped at the end)."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    with running_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def database_url(server_url) -> Iterator[str]:
    """A database of its own for the page and end-to-end tests, with the schema applied."""
    with fresh_database(server_url, prefix="test_app") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((ROOT / "db" / "init.sql").read_text())
        yield url
