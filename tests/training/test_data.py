"""IDX reading, checksums, and the download path (served from a loopback mirror; no internet here)."""

import functools
import gzip
import http.server
import struct
import threading

import numpy as np
import pytest

from tests.conftest import mnist_dir
from training import data


def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_read_idx_round_trips_shape_and_values():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.read_idx(idx_bytes(array)), array)


def test_truncated_or_foreign_idx_is_refused():
    raw = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(raw[:-5])
    with pytest.raises(data.DataError, match="not an IDX"):
        data.read_idx(b"\x89PNG" + raw[4:])


def test_missing_files_are_named_when_download_is_off(tmp_path):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
        data.load(tmp_path, allow_download=False)


def test_offline_download_fails_with_a_clear_message(tmp_path):
    closed = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once
    with pytest.raises(data.DataError, match=r"could not download .*Offline\? Put the four MNIST files"):
        data.load(tmp_path, mirrors=(closed,))


def test_corrupt_file_fails_its_checksum(tmp_path):
    for name in data.FILES:
        (tmp_path / name).write_bytes(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))
    with pytest.raises(data.DataError, match="md5"):
        data.load(tmp_path, allow_download=False)


@pytest.fixture
def loopback_mirror(mnist):
    """An HTTP server on 127.0.0.1 serving the real MNIST .gz files, like the public mirrors do."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mnist_dir()))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_fetches_verifies_and_loads(tmp_path, loopback_mirror, mnist):
    # one file is present already (raw, not gz): only the others are fetched
    raw_labels = gzip.decompress((mnist_dir() / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw_labels)
    splits = data.load(tmp_path, mirrors=("http://127.0.0.1:9/", loopback_mirror))  # first mirror is down
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["t10k-labels-idx1-ubyte"] + [f"{name}.gz" for name in data.FILES if name != "t10k-labels-idx1-ubyte"]
    )
    assert splits["train"].images.shape == (60000, 28, 28) and splits["test"].images.shape == (10000, 28, 28)
    counts = np.bincount(splits["train"].labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_a_mirror_serving_a_corrupt_file_is_skipped(tmp_path, loopback_mirror, mnist):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in data.FILES:
        (bad / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 8))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bad))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "data"
        data.download(target, mirrors=(f"http://127.0.0.1:{server.server_address[1]}/", loopback_mirror))
    finally:
        server.shutdown()
    assert data.load(target, allow_download=False)["test"].labels.shape == (10000,)


def test_every_canvas_rendering_holds_a_digit(mnist):
    """The canvas-style evaluation set never contains a blank drawing (thinning must not erase a digit)."""
    from handler.preprocess import prepare
    from training import canvas

    for png, _, _ in canvas.canvas_set(mnist["test"].images, mnist["test"].labels, count=200, seed=11):
        prepare(png)
