"""Accuracy through the live TorchServe API: MNIST test images, canvas-style and pen-style drawings, sent as PNG.

    python -m training.evaluate --data-dir DIR [--canvas-count 1000] [--concurrency 8] [--out var/eval.json]

Starts a private TorchServe on free ports from model_store/ (so it runs beside `make run`), sends every image as a
raw PNG body through serving's sync client (serving/inference.py SyncInference: the inference key, re-read after a
refusal), and reports accuracy per set and per canvas style.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from deploy.torchserve import TorchServe, temporary
from serving.inference import Prediction, SyncInference
from training import canvas, data

ROOT = Path(__file__).resolve().parent.parent


def mnist_pngs(split: data.Split) -> list[bytes]:
    """Each 28x28 test digit as a PNG, white on black as MNIST stores it."""
    pngs = []
    for image in split.images:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def predict_all(
    client: SyncInference, pngs: Iterable[bytes], *, version: str | None, concurrency: int = 8
) -> list[Prediction]:
    """Each PNG's reading by `version` (default: TorchServe's), `concurrency` at a time, in order. A refused image
    (PredictionRejected) or an unavailable model (ModelUnavailable) stops the evaluation."""
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda png: client.predict(png, version=version), pngs))


def accuracy(answers: list[Prediction], labels: Iterable[int]) -> float:
    return float(np.mean([answer.digit == int(label) for answer, label in zip(answers, labels, strict=True)]))


def evaluate(
    server: TorchServe,
    splits: dict[str, data.Split],
    *,
    canvas_count: int,
    concurrency: int,
    version: str | None = None,
) -> dict:
    """Accuracy of one version (default: TorchServe's default version)."""
    test = splits["test"]
    with server.inference(timeout=60, connections=concurrency) as client:

        def read(pngs: Iterable[bytes]) -> list[Prediction]:
            return predict_all(client, pngs, version=version or None, concurrency=concurrency)

        report: dict = {"mnist_test": accuracy(read(mnist_pngs(test)), test.labels)}
        for kind, drawings in (("canvas", canvas.canvas_set), ("pen", canvas.pen_set)):
            drawn = list(drawings(test.images, test.labels, count=canvas_count, seed=2026))
            answers = read(png for png, _, _ in drawn)
            for style in canvas.STYLES:
                picked = [(answer, label) for answer, (_, label, s) in zip(answers, drawn, strict=True) if s == style]
                report[f"{kind}_{style}"] = accuracy([a for a, _ in picked], [label for _, label in picked])
            report[f"{kind}_all"] = accuracy(answers, [label for _, label, _ in drawn])
            report[f"{kind}_images"] = len(drawn)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--canvas-count", type=int, default=1000, help="test digits per canvas style")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "eval.json")
    parser.add_argument("--versions", help="comma-separated (default: every version config.properties loads)")
    args = parser.parse_args(argv)
    splits = data.load(args.data_dir, allow_download=False)
    with temporary(config_template=ROOT / "config.properties", model_store=args.model_store) as server:
        versions = args.versions.split(",") if args.versions else configured_versions(server.properties)
        reports = {
            version: evaluate(
                server, splits, canvas_count=args.canvas_count, concurrency=args.concurrency, version=version
            )
            for version in versions
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")
    names = list(next(iter(reports.values())))
    print(f"{'':28s}" + "".join(f"{version:>10s}" for version in versions))
    for name in names:
        cells = [reports[v][name] for v in versions]
        print(f"{name:28s}" + "".join(f"{c:10.2%}" if isinstance(c, float) else f"{c:10d}" for c in cells))


def configured_versions(properties: dict[str, str]) -> list[str]:
    """The versions of `mnist` in config.properties' models= setting."""
    return sorted(json.loads(properties.get("models", "{}")).get("mnist", {"": {}}))


if __name__ == "__main__":
    main()
