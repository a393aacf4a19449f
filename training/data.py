"""MNIST's four IDX files: find them (gz or raw) in a folder, or download them, and check their checksums.

The checksums are the md5s of the *uncompressed* bytes (the official ones), so a re-compressed .gz still passes.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_DTYPE = {0x08: np.uint8}


class DataError(RuntimeError):
    """The data set is missing, incomplete or corrupt; the message says what to do."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64


def read_idx(raw: bytes) -> np.ndarray:
    """Parse IDX bytes (magic: two zero bytes, a dtype code, the number of dimensions; then big-endian sizes)."""
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in IDX_DTYPE:
        raise DataError(f"not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=IDX_DTYPE[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"IDX file truncated: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _read_bytes(folder: Path, name: str) -> bytes | None:
    """The uncompressed contents of NAME or NAME.gz in folder, or None when neither exists."""
    raw, gz = folder / name, folder / f"{name}.gz"
    if raw.exists():
        return raw.read_bytes()
    if gz.exists():
        return gzip.decompress(gz.read_bytes())
    return None


def _check(name: str, raw: bytes) -> None:
    digest = hashlib.md5(raw).hexdigest()
    if digest != FILES[name]:
        raise DataError(f"{name}: md5 of the uncompressed bytes is {digest}, expected {FILES[name]}")


def download(folder: Path, *, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 30.0) -> None:
    """Fetch the missing files (as .gz) from the first mirror that has them, verifying each checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [name for name in FILES if _read_bytes(folder, name) is None]
    for name in missing:
        errors = []
        for mirror in mirrors:
            url = f"{mirror}{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    packed = response.read()
                _check(name, gzip.decompress(packed))
            except (urllib.error.URLError, OSError, EOFError, DataError) as exc:
                errors.append(f"{url}: {exc}")
                continue
            partial = folder / f"{name}.gz.part"
            partial.write_bytes(packed)
            shutil.move(partial, folder / f"{name}.gz")
            break
        else:
            raise DataError(
                f"could not download {name}.gz from any mirror ({'; '.join(errors)}). Offline? Put the four MNIST "
                f"files ({', '.join(FILES)}, raw or .gz) in {folder} and pass --data-dir {folder}."
            )


def load(folder: Path, *, allow_download: bool = True, mirrors: tuple[str, ...] = MIRRORS) -> dict[str, Split]:
    """{'train': Split, 'test': Split} from folder, downloading missing files first when allowed."""
    folder = Path(folder)
    if allow_download and any(_read_bytes(folder, name) is None for name in FILES):
        download(folder, mirrors=mirrors)
    arrays = {}
    for name in FILES:
        raw = _read_bytes(folder, name)
        if raw is None:
            raise DataError(
                f"{name} (or {name}.gz) is missing from {folder}; the four files needed: {', '.join(FILES)}"
            )
        _check(name, raw)
        arrays[name] = read_idx(raw)
    return {
        "train": Split(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"].astype(np.int64)),
        "test": Split(arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"].astype(np.int64)),
    }
