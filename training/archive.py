"""Package a trained version as a TorchServe archive.

    python -m training.archive --version 1.0 [--weights model_store/v1.0/weights.pt] [--out model_store]

The .mar holds the model definition (handler/model.py), the weights, the handler and the modules it imports
(preprocessing and its photo path, request parsing, explanations, refusal, reading numbers), the version's
metrics.json, so an archive carries its own accuracy figures, its architecture.json when the version's network is
not DigitNet's default (2.0: an ensemble of three), its refusal.json when the version answers "not a digit"
(handler/refusal.py), and its pairs.pt when it reads two touching digits in a number as one pair (training/pairs.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "handler"
MODEL_NAME = "mnist"


def archive_name(version: str) -> str:
    """mnist.mar for 1.0 (the default archive), mnist-v<version>.mar for later versions."""
    return f"{MODEL_NAME}.mar" if version == "1.0" else f"{MODEL_NAME}-v{version}.mar"


def build(*, version: str, weights: Path, out: Path) -> Path:
    """Run torch-model-archiver; return the path of the .mar it wrote."""
    if not weights.exists():
        raise FileNotFoundError(f"no weights at {weights}: train first (make train) or pass --weights")
    # every module the handler imports: inside the .mar they sit flat beside it
    extra = [HANDLER / name for name in ("preprocess.py", "errors.py", "photos.py", "components.py", "inputs.py",
                                         "explain.py", "refusal.py", "segmentation.py", "budget.py", "parts.py",
                                         "cuts.py", "candidates.py")]  # fmt: skip
    # metrics.json: the version's accuracy figures; architecture.json: DigitNet's arguments when not the defaults
    # refusal.json: when the version answers "not a digit" (handler/refusal.py)
    # pairs.pt: Number mode's pair reader, when the version reads touching pairs (training/pairs.py)
    extra += [weights.parent / name for name in ("metrics.json", "architecture.json", "refusal.json", "pairs.pt")
              if (weights.parent / name).exists()]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    name = archive_name(version)
    staging = out / f".{name}.staging"
    staging.mkdir(exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "torch-model-archiver"),
        "--model-name", MODEL_NAME,
        "--version", version,
        "--model-file", str(HANDLER / "model.py"),
        "--serialized-file", str(weights),
        "--handler", str(HANDLER / "mnist_handler.py"),
        "--extra-files", ",".join(str(path) for path in extra),
        "--export-path", str(staging),
        "--force",
    ]  # fmt: skip
    # The archiver assembles the archive in $TMPDIR/<model name>: a private TMPDIR keeps two builds running at the
    # same time (tests, a retraining run, make run) from deleting each other's files.
    scratch = staging / "tmp"
    scratch.mkdir(exist_ok=True)
    subprocess.run(command, check=True, env=dict(os.environ, TMPDIR=str(scratch)))
    target = out / name
    (staging / f"{MODEL_NAME}.mar").replace(target)  # atomic: a running TorchServe never sees half a file
    shutil.rmtree(staging)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default="1.0")
    parser.add_argument("--weights", type=Path, help="default: model_store/v<version>/weights.pt")
    parser.add_argument("--out", type=Path, default=ROOT / "model_store")
    args = parser.parse_args(argv)
    weights = args.weights or args.out / f"v{args.version}" / "weights.pt"
    try:
        print(build(version=args.version, weights=weights, out=args.out))
    except FileNotFoundError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
