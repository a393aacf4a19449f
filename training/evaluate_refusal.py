"""What a version refuses, through the live TorchServe API: the issue's acceptance sets for "not a digit".

    python -m training.evaluate_refusal --data-dir DIR --pendigits FILE --unipen FILE --unipen-numbers FILE \
        --unipen-letters FILE [--version 5.0] [--out var/refusal_eval.json]

Starts a private TorchServe on free ports from model_store/ (as training/evaluate.py does) and sends each drawing as a
PNG to one version (default: TorchServe's default). Reports the share refused ("not a digit", or "no digit found in
the picture") of:

- letters in system fonts: every letter but the digit-like ones (training/unipen.py DIGIT_LIKE_LETTERS) in each
  TrueType font under /usr/share/fonts (DejaVu, Liberation on Debian), black on white, at three sizes; and apart, the
  fonts no head trained on (Liberation: training/font_letters.py);
- real handwritten letters of the UNIPEN files the heads never trained on (the held-out side of the split by file);
- two-digit (and longer) numbers of the held-out UNIPEN files, in every export style;
- scribbles and simple shapes made differently from the training ones (training/nondigits.py, part "heldout");
- real digits of unseen writers: pendigits' held-out writers and the UNIPEN files 4.0's gate held out
  (model_store/v4.0/unipen_files.json), in every export style;
- MNIST test as served: the share refused and the share answered right;
- in Number mode (X-Read: number), 300 each of the scribbles, shapes and real letters (refused when no number is read
  or a part is "not a digit"), and the held-out numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deploy.torchserve import temporary
from records.errors import PredictionRejected
from serving.inference import SyncInference
from training import data, font_letters, nondigits, pendigits, unipen
from training.evaluate import mnist_pngs, unipen_drawings
from training.refusal_head import HELDOUT_SEED, letter_sample, pngs_of

ROOT = Path(__file__).resolve().parent.parent
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
LETTERS = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in unipen.DIGIT_LIKE_LETTERS
)
SIZES = (120, 170, 220)  # the glyph's height on the 280 px slate, in px
TARGETS = {  # the acceptance: at least (a non-digit kind) or at most (real digits) this share refused
    "system_font_letters": 0.90,
    "real_letters": 0.85,
    "numbers": 0.90,
    "scribbles": 0.80,
    "shapes": 0.65,
    "unseen_writers_digits": 0.015,
    "mnist_test": 0.005,
}


def font_letter(font: Path, char: str, height: int) -> bytes:
    """One letter, black on a white slate, its ink `height` px tall and centred."""
    return nondigits.to_png(font_letters.glyph_mask(font, char, height), style="black_on_white")


def letters_in(fonts: list[Path]) -> list[bytes]:
    return [font_letter(font, char, size) for font in fonts for char in font_letters.LETTERS for size in SIZES]


def acceptance_sets(args: argparse.Namespace) -> dict[str, list[bytes]]:
    """Set name -> PNGs (MNIST test apart: its labels matter)."""
    sets = {"system_font_letters": letters_in(font_letters.fonts())}
    sets["heldout_font_letters"] = letters_in(font_letters.fonts("heldout"))  # fonts no head trained on
    letters = unipen.load_letters(args.unipen_letters)
    held = letter_sample(list(letters), args.letters, held=True, digit_like=False, seed=HELDOUT_SEED)
    sets["real_letters"] = pngs_of(pendigits.renderings(held, seed=HELDOUT_SEED, all_styles=False))
    _, numbers = unipen.split_by_file(unipen.load(args.unipen_numbers, numbers=True))
    longer = [n for n in numbers if len(n.label) >= 2]
    sets["numbers"] = pngs_of(pendigits.renderings(longer, seed=HELDOUT_SEED, all_styles=True))
    for kind in ("scribbles", "shapes"):
        made = nondigits.generate(kind, count=args.per_kind, seed=HELDOUT_SEED, part="heldout")
        sets[kind] = [d.png for d in made]
    _, pen_heldout = pendigits.split_by_writer(pendigits.load(args.pendigits))
    files = json.loads((ROOT / "model_store" / "v4.0" / "unipen_files.json").read_text())["heldout"]
    own = pendigits.renderings(pen_heldout, seed=HELDOUT_SEED, all_styles=True)
    sets["unseen_writers_digits"] = pngs_of(own) + [png for png, *_ in unipen_drawings(args.unipen, files=files)]
    return sets


def refused(client: SyncInference, pngs: list[bytes], *, version: str | None) -> np.ndarray:
    """Whether each PNG was refused: answered "not a digit", or rejected as having no digit (422)."""
    out = []
    for png in pngs:
        try:
            out.append(client.predict(png, version=version).not_a_digit)
        except PredictionRejected:
            out.append(True)
    return np.array(out, dtype=bool)


def number_refused(client: SyncInference, pngs: list[bytes], *, version: str | None) -> np.ndarray:
    """Whether Number mode (X-Read: number) refused each PNG: no number read, a part "not a digit", or rejected."""
    out = []
    for png in pngs:
        try:
            reading = client.read_number(png, version=version)
            out.append(reading.number is None or reading.not_a_digit)
        except PredictionRejected:
            out.append(True)
    return np.array(out, dtype=bool)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the four MNIST IDX files")
    for name in ("pendigits", "unipen", "unipen-numbers", "unipen-letters"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--version", default=None, help="default: TorchServe's default version")
    parser.add_argument("--letters", type=int, default=2000, help="held-out real letters measured")
    parser.add_argument("--per-kind", type=int, default=500, help="scribbles and shapes measured")
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "refusal_eval.json")
    args = parser.parse_args(argv)
    mnist = data.load(args.data_dir, allow_download=False)["test"]
    sets = acceptance_sets(args)
    report: dict = {}
    server = temporary(config_template=ROOT / "config.properties", model_store=args.model_store)
    with server as running, running.inference(timeout=60, connections=1) as client:
        for name, pngs in sets.items():
            report[name] = {
                "refused": float(refused(client, pngs, version=args.version).mean()),
                "count": len(pngs),
            }
        # Number mode: non-digits should be refused there too, real numbers read
        nondigit_sample = [png for kind in ("scribbles", "shapes", "real_letters") for png in sets[kind][:300]]
        for name, pngs in (("number_mode_nondigits", nondigit_sample), ("number_mode_numbers", sets["numbers"])):
            report[name] = {"refused": float(number_refused(client, pngs, version=args.version).mean()),
                            "count": len(pngs)}  # fmt: skip
        answers = [client.predict(png, version=args.version) for png in mnist_pngs(mnist)]
    no = np.array([a.not_a_digit for a in answers])
    right = np.array([a.digit == int(y) for a, y in zip(answers, mnist.labels, strict=True)])
    report["mnist_test"] = {"refused": float(no.mean()), "count": len(answers), "right": float(right.mean()),
                            "answered_right": float(right[~no].mean())}  # fmt: skip
    report["version"] = answers[0].model_version if answers else args.version
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, target in TARGETS.items():
        share = report[name]["refused"]
        met = share <= target if name in ("unseen_writers_digits", "mnist_test") else share >= target
        bound = "<=" if name in ("unseen_writers_digits", "mnist_test") else ">="
        print(f"{name:24s} {report[name]['count']:6d}  refused {share:7.2%}  (target {bound} {target:.1%}: "
              f"{'met' if met else 'NOT met'})")  # fmt: skip
    for name in ("number_mode_nondigits", "number_mode_numbers"):
        print(f"{name:24s} {report[name]['count']:6d}  refused {report[name]['refused']:7.2%}")
    mnist_test = report["mnist_test"]
    print(f"mnist_test right {mnist_test['right']:.2%}, answered right {mnist_test['answered_right']:.2%}")


if __name__ == "__main__":
    main()
