"""Shared fixtures: MNIST from ../shared (skipped with a reason when absent), canvas PNGs, a real TorchServe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training import canvas, data

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = ROOT / "model_store" / "v1.0" / "weights.pt"


def mnist_dir() -> Path:
    return Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist() -> dict[str, data.Split]:
    folder = mnist_dir()
    if not all((folder / f"{name}.gz").exists() or (folder / name).exists() for name in data.FILES):
        pytest.skip(f"MNIST files not found in {folder} (set MNIST_DIR to the folder with the four IDX files)")
    return data.load(folder, allow_download=False)


@pytest.fixture(scope="session")
def canvas_pngs(mnist) -> list[tuple[bytes, int, str]]:
    """(png, label, style): 20 MNIST test digits drawn as 280x280 canvases in each of the three styles."""
    return list(canvas.canvas_set(mnist["test"].images, mnist["test"].labels, count=20, seed=7))


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """A model store holding mnist.mar built now from the handler code and the shipped weights."""
    from training.archive import build

    store = tmp_path_factory.mktemp("model_store")
    build(version="1.0", weights=SHIPPED_WEIGHTS, out=store)
    return store


@pytest.fixture(scope="session")
def torchserve(model_store, tmp_path_factory) -> Iterator:
    """A real TorchServe serving the shipped model on free ports, stopped at the end of the session."""
    from deploy.torchserve import TorchServe, isolated_overrides

    server = TorchServe(
        home=tmp_path_factory.mktemp("torchserve"),
        config_template=ROOT / "config.properties",
        model_store=model_store,
        overrides=isolated_overrides(),
    )
    server.start()
    try:
        server.wait_ready(models=("mnist",), timeout=180)
        yield server
    finally:
        server.stop()


def blank_png(size: int = 280, *, mode: str = "RGBA", color=(0, 0, 0, 0)) -> bytes:
    from PIL import Image

    return canvas.to_png(Image.new(mode, (size, size), color))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
