"""The golden set (issue 20): fixed, versioned drawings that no user can change, for the retraining gate.

    from training import golden
    drawings = golden.load()         # [(png, label), ...]: every digit drawn in every export style
    golden.VERSION                   # "golden-v1"

    python -m training.golden --pendigits FILE --unipen FILE --build   # make the file again (a new version)

Why: the gate measured candidates only on what users sent, so free browser ids could poison both the training data
and the held-out data that judged it (issue 20, N2). The golden set is shipped with the training code and never
comes from the database: a candidate must not read it worse than the default.

What: the pen strokes (not images) of 1,500 digits, 150 of each, half from the pendigits *training* writers and half
from the UNIPEN *training* files (never a held-out writer or file: those measure new people), picked at random with a
fixed seed. Each stroke is stored as integer points 0..1000 in its digit's bounding box (aspect kept), simplified to
within 2 units (0.2% of the digit's size, well under a pixel on the slate). `load()` draws every digit the way the
slate does (training/pendigits.py: a random size, place and pen width from a generator seeded by the digit's index,
so the same drawings every time) in each of the three export styles: 4,500 drawings.

The file's sha256 is checked on every load (GoldenError when it differs): a changed golden set is a new VERSION and a
new file, never an edit, so gate figures of different versions are never compared.

Data credits (both CC BY 4.0, which allows shipping these strokes with the credit):
- E. Alpaydin, F. Alimoglu, "Pen-Based Recognition of Handwritten Digits", UCI Machine Learning Repository (1998).
- I. Guyon, L. Schomaker, R. Plamondon, M. Liberman, S. Janet, "UNIPEN project of on-line data exchange and
  recognizer benchmarks", ICPR 1994; UNIPEN train_r01_v07 (Zenodo, doi 10.5281/zenodo.1195803).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import canvas, pendigits, unipen

FOLDER = Path(__file__).resolve().parent / "golden"
VERSION = "golden-v1"
FILE = FOLDER / f"{VERSION}.json.gz"
SHA256 = "5e3047eb8643863dd0916a9655f911d7b6402be6cd8d9ad05a4f354442cd7d7e"
PER_DIGIT = 150  # half pendigits, half UNIPEN
SEED = 20  # issue 20
RENDER_SEED = 2020
SCALE = 1000  # stored points are integers 0..SCALE
TOLERANCE = 2.0  # simplification, in stored units
CREDIT = {
    "pendigits": 'E. Alpaydin, F. Alimoglu, "Pen-Based Recognition of Handwritten Digits", UCI Machine Learning '
    "Repository (1998), CC BY 4.0",
    "unipen": 'I. Guyon, L. Schomaker, R. Plamondon, M. Liberman, S. Janet, "UNIPEN project of on-line data exchange '
    'and recognizer benchmarks", ICPR 1994; UNIPEN train_r01_v07 (doi 10.5281/zenodo.1195803), CC BY 4.0',
}


class GoldenError(RuntimeError):
    """The golden file is missing or is not the one this code's VERSION names."""


@dataclass(frozen=True)
class GoldenDigit:
    """One digit of the set (the fields the slate renderer reads)."""

    label: int
    writer: str  # "pendigits:<writer>" or "unipen:<file>"
    strokes: tuple[np.ndarray, ...]  # (n, 2) float, 0..SCALE, y down


# ---- building the file -------------------------------------------------------------------------------------------


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the fewest points whose polyline stays within `tolerance` of the original."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        start, end = points[first], points[last]
        direction = end - start
        length = float(np.hypot(*direction))
        inner = points[first + 1 : last] - start
        if length == 0:
            distance = np.hypot(inner[:, 0], inner[:, 1])
        else:
            distance = np.abs(direction[0] * inner[:, 1] - direction[1] * inner[:, 0]) / length
        farthest = int(np.argmax(distance))
        if distance[farthest] > tolerance:
            keep[first + 1 + farthest] = True
            stack += [(first, first + 1 + farthest), (first + 1 + farthest, last)]
    return points[keep]


def encode(strokes: Sequence[np.ndarray]) -> list[list[int]]:
    """Strokes -> flat integer lists [x0, y0, x1, y1, ...] in 0..SCALE of the bounding box's longer side."""
    points = np.concatenate(strokes)
    low, span = points.min(0), max(float((points.max(0) - points.min(0)).max()), 1e-6)
    out = []
    for stroke in strokes:
        scaled = np.round((stroke - low) / span * SCALE)
        out.append(simplify(scaled, TOLERANCE).astype(int).ravel().tolist())
    return out


def pick(digits: Sequence, *, count: int, rng: np.random.Generator) -> list:
    """`count` of these digits for each label, at random."""
    chosen = []
    for label in range(10):
        pool = [d for d in digits if d.label == label]
        chosen += [pool[i] for i in sorted(rng.choice(len(pool), size=count, replace=False))]
    return chosen


def build(*, pendigits_file: Path | None, unipen_file: Path | None, out: Path = FILE) -> str:
    """Write the golden file from the training writers only; return its sha256."""
    rng = np.random.default_rng(SEED)
    pen_train, _ = pendigits.split_by_writer(pendigits.load(pendigits_file))
    uni_train, _ = unipen.split_by_file(unipen.load(unipen_file))
    rows = [("pendigits", d) for d in pick(pen_train, count=PER_DIGIT // 2, rng=rng)]
    rows += [("unipen", d) for d in pick(uni_train, count=PER_DIGIT - PER_DIGIT // 2, rng=rng)]
    document = {
        "version": VERSION,
        "about": "Pen strokes of handwritten digits by training writers only; points are integers 0..1000 in each "
        "digit's bounding box, y down. Rendered by training/golden.py.",
        "licence": "CC BY 4.0",
        "credit": CREDIT,
        "digits": [
            {"label": d.label, "source": source, "writer": str(d.writer), "strokes": encode(d.strokes)}
            for source, d in rows
        ],
    }
    raw = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), mtime=0)  # mtime 0: the same bytes
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


# ---- reading it ----------------------------------------------------------------------------------------------------


def digits(path: Path = FILE, *, sha256: str = SHA256) -> list[GoldenDigit]:
    """The set's digits, after checking the file is this VERSION's."""
    if not path.exists():
        raise GoldenError(f"{path} not found: the golden set ships with the training code")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise GoldenError(f"{path} is not {VERSION} (sha256 differs): a new golden set needs a new VERSION")
    document = json.loads(gzip.decompress(raw))
    return [
        GoldenDigit(
            label=int(row["label"]),
            writer=f"{row['source']}:{row['writer']}",
            strokes=tuple(np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in row["strokes"]),
        )
        for row in document["digits"]
    ]


def render(chosen: Sequence[GoldenDigit]) -> list[tuple[bytes, int]]:
    """(png, label) for each digit in each export style (canvas.STYLES); digit i is drawn from its own generator
    (RENDER_SEED, i), so a prefix of the set renders the same as the set's first drawings."""
    drawn = pendigits.renderings(chosen, count=1, seed=RENDER_SEED, all_styles=True)
    return [(png, label) for png, label, _, _ in drawn]


def load(path: Path = FILE, *, sha256: str = SHA256) -> list[tuple[bytes, int]]:
    """(png, label) for every digit in every export style, the same drawings on every call (~30 s on one core)."""
    return render(digits(path, sha256=sha256))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pendigits", type=Path, default=None, help="the pendigits file (default: $PENDIGITS_FILE)")
    parser.add_argument("--unipen", type=Path, default=None, help="the UNIPEN digits file (default: $UNIPEN_FILE)")
    parser.add_argument("--build", action="store_true", help=f"write {FILE.name} from the training writers")
    args = parser.parse_args(argv)
    if args.build:
        try:
            digest = build(pendigits_file=args.pendigits, unipen_file=args.unipen)
        except (pendigits.PendigitsError, unipen.UnipenError) as exc:
            parser.exit(2, f"error: {exc}\n")
        print(f"wrote {FILE} ({FILE.stat().st_size:,} bytes), sha256 {digest}: set SHA256 in training/golden.py")
        return
    drawn = load()
    print(f"{VERSION}: {len(drawn)} drawings ({len(drawn) // len(canvas.STYLES)} digits x {len(canvas.STYLES)} styles)")


if __name__ == "__main__":
    main()
