"""The threshold on P(not a digit) for photos and scans of paper (refusal.json "photo_threshold", handler/refusal.py).

    python -m training.photo_threshold --version model_store/v5.0 [--share 0.005] [--write]

A refusal head learns from drawings; digits photographed on paper (faint, pencil, blurred, small, JPEG: training/
photos.py's synthetic set, its held-out pendigits writers and MNIST test digits, plain and under the hard conditions)
look less like them, and 5.0's head at its drawings' threshold refused 2.7% of them. This chooses the lowest
threshold that refuses at most `--share` of the photo digits of the set's even half (the half photos.py tunes on) and
reports the odd half (held out) at it, and at the drawings' threshold. Only pictures that take the photo path count
(Prepared.photo). `--write` puts it into the version's refusal.json; rebuild the archive after (make archive).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from handler.preprocess import PreprocessError, prepare
from handler.refusal import REFUSAL_FILE
from training import finetune, photos
from training.gate import choose_threshold, read

ROOT = Path(__file__).resolve().parent.parent


def photo_views(samples: list[photos.Sample]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 views of the digit pictures that take the photo path, and whether each is in the even half."""
    even = photos.halves(samples)
    views, halves = [], []
    for sample, in_even in zip(samples, even, strict=True):
        if sample.label < 0:
            continue
        try:
            prepared = prepare(sample.data)
        except PreprocessError:
            continue  # "no digit found": photos.py counts it; no threshold changes it
        if prepared.photo:
            views.append(np.round(prepared.ink * 255).astype(np.uint8))
            halves.append(in_even)
    return np.stack(views), np.array(halves, dtype=bool)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", type=Path, default=ROOT / "model_store" / "v5.0", help="the version's folder")
    parser.add_argument("--pendigits", type=Path, default=os.environ.get("PENDIGITS_FILE"))
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MNIST_DIR"), help="default: $MNIST_DIR")
    parser.add_argument("--pen-count", type=int, default=600, help="held-out pen digits photographed")
    parser.add_argument("--mnist-count", type=int, default=600, help="MNIST test digits photographed")
    parser.add_argument("--hard-count", type=int, default=900, help="digits again, under the hard conditions")
    parser.add_argument("--share", type=float, default=0.005, help="of the even half's photo digits, at most refused")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "photos-cache")
    parser.add_argument("--write", action="store_true", help="write photo_threshold into the version's refusal.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    spec_path = args.version / REFUSAL_FILE
    if not spec_path.exists():
        parser.exit(2, f"error: {spec_path} is missing: the version refuses nothing\n")
    spec = json.loads(spec_path.read_text())
    made = argparse.Namespace(pendigits=args.pendigits, data_dir=args.data_dir, pen_count=args.pen_count,
                              mnist_count=args.mnist_count, empty_count=0, hard_count=args.hard_count,
                              hard_empty_count=0, cache=args.cache, processes=1, seed=23)  # fmt: skip
    views, even = photo_views(photos.cached_set(made))
    p = read(finetune.load_model(args.version), views, structural=False).not_a_digit
    threshold = min(1.0, choose_threshold((p[even], args.share)))
    drawings = spec["not_a_digit_threshold"]
    for name, t in (("drawings' threshold", drawings), ("photo threshold", threshold)):
        print(f"{name} {t:.4f}: photo digits refused, even half {np.mean(p[even] >= t):.2%} of {even.sum()}, "
              f"odd half (held out) {np.mean(p[~even] >= t):.2%} of {(~even).sum()}")  # fmt: skip
    if args.write:
        spec["photo_threshold"] = round(max(threshold, drawings), 6)  # never below the drawings' own
        spec_path.write_text(json.dumps(spec) + "\n")
        print(f"wrote {spec_path}")


if __name__ == "__main__":
    main()
