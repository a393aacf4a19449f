"""Accuracy through the live TorchServe API: MNIST test images, canvas-style and pen-style drawings, sent as PNG.

    python -m training.evaluate --data-dir DIR [--canvas-count 1000] [--concurrency 8] [--out var/eval.json]
    python -m training.evaluate --data-dir DIR --unipen FILE --versions 4.0,3.0    # + the held-out UNIPEN files
    python -m training.evaluate --data-dir DIR --unipen FILE --unipen-files model_store/v4.0/unipen_files.json

Starts a private TorchServe on free ports from model_store/ (so it runs beside `make run`), sends every image as a raw
PNG body through serving's sync client (serving/inference.py SyncInference: the inference key, re-read after a refusal),
and reports accuracy per set and per canvas style. With `--unipen`, also the UNIPEN files of the fixed validation split
(training/unipen.py: writers no shipped version trained on), each digit drawn as a slate drawing once in each export
style (the drawings training/base_training.py measures in-process), overall, per style and per digit; a refused drawing
counts as wrong. 4.0 learned from half of those files through the loop: `--unipen-files` keeps the other half (the files
its gate held out, listed in model_store/v4.0/unipen_files.json).
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from deploy.torchserve import TorchServe, temporary
from records.predictions import Prediction
from serving.inference import SyncInference
from training import canvas, data, unipen

# The held-out UNIPEN drawings: the seed training/base_training.py's in-process figures use (EVAL_SEED), so both
# measure the same
UNIPEN_SEED = 2026

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


def unipen_drawings(path: Path, *, files: Collection[str] | None = None) -> list[tuple[bytes, int, str, str]]:
    """(png, label, file, style): each digit of the UNIPEN validation files (or of those of them named in `files`)
    drawn once in each export style."""
    _, validation = unipen.split_by_file(unipen.load(path))
    if files is not None:
        validation = [digit for digit in validation if digit.writer in set(files)]
        if not validation:
            raise unipen.UnipenError("none of the files named is among the UNIPEN validation files")
    return unipen.renderings(validation, count=1, seed=UNIPEN_SEED, all_styles=True, processes=2)


def unipen_figures(answers: list[Prediction], drawn: list[tuple[bytes, int, str, str]]) -> dict:
    """Accuracy over the held-out UNIPEN drawings, per export style and per digit (a refusal counts as wrong)."""
    labels = [label for _, label, _, _ in drawn]
    report: dict = {"unipen_heldout": accuracy(answers, labels), "unipen_images": len(drawn)}
    for style in canvas.STYLES:
        picked = [(answer, row[1]) for answer, row in zip(answers, drawn, strict=True) if row[3] == style]
        report[f"unipen_{style}"] = accuracy([a for a, _ in picked], [label for _, label in picked])
    for digit in sorted(set(labels)):
        picked = [answer for answer, label in zip(answers, labels, strict=True) if label == digit]
        report[f"unipen_digit_{digit}"] = accuracy(picked, [digit] * len(picked))
    return report


def evaluate(
    server: TorchServe,
    splits: dict[str, data.Split],
    *,
    canvas_count: int,
    concurrency: int,
    version: str | None = None,
    unipen_drawn: list[tuple[bytes, int, str, str]] | None = None,
) -> dict:
    """Accuracy of one version (default: TorchServe's default version)."""
    test = splits["test"]
    with server.inference(timeout=60, connections=concurrency) as client:

        def read(pngs: Iterable[bytes]) -> list[Prediction]:
            return predict_all(client, pngs, version=version or None, concurrency=concurrency)

        report: dict = {"mnist_test": accuracy(read(mnist_pngs(test)), test.labels)}
        if unipen_drawn:
            report |= unipen_figures(read(png for png, *_ in unipen_drawn), unipen_drawn)
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
    parser.add_argument("--unipen", type=Path, default=None, help="UNIPEN digits: add its held-out files' digits")
    parser.add_argument(
        "--unipen-files", type=Path, default=None,
        help='only these validation files: a JSON file with a "heldout" list (model_store/v4.0/unipen_files.json)',
    )  # fmt: skip
    args = parser.parse_args(argv)
    splits = data.load(args.data_dir, allow_download=False)
    try:
        files = json.loads(args.unipen_files.read_text())["heldout"] if args.unipen_files else None
        drawn = unipen_drawings(args.unipen, files=files) if args.unipen else None
    except (unipen.UnipenError, OSError, KeyError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    with temporary(config_template=ROOT / "config.properties", model_store=args.model_store) as server:
        versions = args.versions.split(",") if args.versions else configured_versions(server.properties)
        options = dict(canvas_count=args.canvas_count, concurrency=args.concurrency, unipen_drawn=drawn)
        reports = {version: evaluate(server, splits, version=version, **options) for version in versions}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")
    names = list(next(iter(reports.values())))
    print(f"{'':28s}" + "".join(f"{version:>10s}" for version in versions))
    for name in names:
        cells = [reports[v][name] for v in versions]
        print(f"{name:28s}" + "".join(f"{c:10.2%}" if isinstance(c, float) else f"{c:10d}" for c in cells))


def configured_versions(properties: dict[str, str]) -> list[str]:
    """The versions of `mnist` that config.properties loads: those of its models= setting whose archive load_models
    names (a version may keep its settings there without being loaded, as 2.0 does)."""
    loaded = set(properties.get("load_models", "").split(","))
    models = json.loads(properties.get("models", "{}")).get("mnist", {})
    return sorted(version for version, spec in models.items() if spec.get("marName") in loaded)


if __name__ == "__main__":
    main()
