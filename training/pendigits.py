"""Real pen-drawn digits (UCI "pendigits" raw trajectories, UNIPEN format): a loader, a writer split, and a renderer
that draws the trajectories the way the page's slate does.

    python -m training.pendigits --pendigits FILE --out var/pendigits-sample   # a few renderings to look at

Data: E. Alpaydin, F. Alimoglu, "Pen-Based Recognition of Handwritten Digits", UCI Machine Learning Repository
(1998), CC BY 4.0. 7,494 digits by 30 writers, sampled every 100 ms with a stylus on a tablet. For training and
validation only: the running product never reads it, and it never enters the repository. The file's path comes from
`--pendigits` or the PENDIGITS_FILE environment variable (`make simulate` and `make test` pass PENDIGITS).

The slate (ui/widgets/slate.js) draws each stroke as a polyline with a round pen (lineCap and lineJoin "round") of the
width the page's slider sets (6..36 px, default 18) on a 280x280 area, anti-aliased, and exports it as a 280x280 PNG.
We draw the same union of round-capped segments at 4x and area-downsample, which is the coverage anti-aliasing a
canvas does, then export in one of the styles the handler accepts (training.canvas.STYLES).
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from training import canvas

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "PENDIGITS_FILE"
# Every fifth writer id, fixed before any model was measured on them: ~1,500 digits of 6 people nobody trains on.
VALIDATION_WRITERS = (5, 10, 15, 20, 25, 30)
SUPERSAMPLE = 4  # drawing at 4x then area-averaging gives 17 coverage levels per pixel edge, like canvas AA


class PendigitsError(RuntimeError):
    """The pendigits file is missing or not in the expected UNIPEN format; the message says which."""


@dataclass(frozen=True)
class PenDigit:
    label: int
    writer: int  # 1..30, the 2nd field of .COMMENT
    strokes: tuple[np.ndarray, ...]  # each (n, 2) float32 x, y in tablet units, y grows *downwards* (image order)


def default_path() -> Path | None:
    """PENDIGITS_FILE, when set (there is no built-in location: the data is never part of the project)."""
    return Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None


def parse(text: str) -> list[PenDigit]:
    """UNIPEN text -> digits. Unknown dot-commands are skipped; y is flipped so that it grows downwards."""
    digits: list[PenDigit] = []
    label = writer = None
    strokes: list[np.ndarray] = []
    points: list[tuple[int, int]] | None = None

    def finish() -> None:
        if label is not None and strokes:
            digits.append(PenDigit(label=label, writer=writer, strokes=tuple(strokes)))

    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] == ".SEGMENT":
            finish()
            label, writer, strokes = _label(fields, number), None, []
        elif fields[0] == ".COMMENT" and label is not None:
            writer = int(fields[2])
        elif fields[0] == ".PEN_DOWN":
            points = []
        elif fields[0] == ".PEN_UP" and points is not None:
            if points:
                xy = np.asarray(points, dtype=np.float32)
                xy[:, 1] = -xy[:, 1]  # UNIPEN's y grows upwards; images' grows downwards
                strokes.append(xy)
            points = None
        elif not fields[0].startswith(".") and points is not None:
            points.append((int(fields[0]), int(fields[1])))
    finish()
    if any(d.writer is None for d in digits):
        raise PendigitsError("a .SEGMENT without a .COMMENT line naming its writer")
    return digits


def _label(fields: list[str], number: int) -> int:
    quoted = fields[-1].strip('"')
    if not quoted.isdigit() or len(quoted) != 1:
        raise PendigitsError(f"line {number}: .SEGMENT label {fields[-1]} is not a quoted digit")
    return int(quoted)


def load(path: Path | None = None) -> list[PenDigit]:
    """All digits of the file (gz or plain text, latin-1)."""
    path = path or default_path()
    if path is None:
        raise PendigitsError(f"no pendigits file given: pass --pendigits FILE or set {ENV_VAR}")
    path = Path(path)
    if not path.exists():
        raise PendigitsError(f"{path} not found: pass --pendigits FILE or set {ENV_VAR}")
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("latin-1")
    return parse(text)


def split_by_writer(
    digits: Sequence[PenDigit], validation: Sequence[int] = VALIDATION_WRITERS
) -> tuple[list[PenDigit], list[PenDigit]]:
    """(training, validation): whole writers on one side only, so validation measures *new* people."""
    held = set(validation)
    return [d for d in digits if d.writer not in held], [d for d in digits if d.writer in held]


# ---- the slate --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlateSpec:
    """How people draw on the slate: the ranges a rendering's size and pen width are drawn from."""

    size: int = 280  # ui/widgets/slate.js default, and what the page uses
    stroke_widths: tuple[int, int] = (6, 36)  # the page's pen-width slider (ui/draw_page.py)
    default_width: int = 18  # most people never touch the slider
    default_width_p: float = 0.4
    heights: tuple[int, int] = (40, 250)  # the digit's height on the slate, px
    # Small digits with a thick pen close loops (9 -> 3, 4 -> 6): they happen, but a 40 px digit drawn with a 36 px pen
    # is a blob nobody would submit, so the width is capped at this fraction of the digit's height.
    max_pen_ratio: float = 0.6
    margin: int = 2  # px kept free at the slate's edge


SLATE = SlateSpec()
# A harder spread, to check robustness: any pen width on any size, even where loops close up.
STRESS = SlateSpec(default_width_p=0.0, max_pen_ratio=10.0)


def render(digit: PenDigit, *, rng: np.random.Generator, style: str, spec: SlateSpec = SLATE) -> Image.Image:
    """One pen digit drawn on the slate at a random size, place and pen width, in an export style."""
    height = float(rng.uniform(*spec.heights))
    width = min(pen_width(rng, spec), max(spec.stroke_widths[0], spec.max_pen_ratio * height))
    xy = np.concatenate(digit.strokes)
    low, span = xy.min(0), np.maximum(xy.max(0) - xy.min(0), 1.0)  # (2,) x, y
    room = spec.size - 2 * spec.margin - width  # the pen's radius on both sides must stay on the slate
    scale = min(height / span[1], room / span[0], room / span[1])
    free = np.maximum(room - span.astype(np.float64) * scale, 0.0)  # (2,) slack left in x and y
    offset = rng.uniform(0, free + 1e-9) + spec.margin + width / 2  # random placement
    mask = draw_strokes(
        [(s - low) * scale + offset for s in digit.strokes], width=width, size=spec.size
    )  # (size, size) uint8
    image = canvas.styled(mask, style)
    # The browser's toDataURL() gives an opaque RGBA PNG for dark-on-white; export the same bytes' kind.
    return image.convert("RGBA") if style == "black_on_white" else image


def pen_width(rng: np.random.Generator, spec: SlateSpec = SLATE) -> float:
    """A pen width as people pick it on the page: mostly the default, else anywhere on the slider."""
    if rng.random() < spec.default_width_p:
        return float(spec.default_width)
    return float(rng.uniform(*spec.stroke_widths))


def draw_strokes(strokes: Sequence[np.ndarray], *, width: float, size: int | tuple[int, int]) -> np.ndarray:
    """Strokes ((n, 2) x, y in slate px) drawn with a round pen -> (height, width) uint8 ink coverage, 255 = full.
    size: the side of a square slate, or (width, height) of a wide one (the Number mode's)."""
    columns, rows = (size, size) if isinstance(size, int) else size
    big = Image.new("L", (columns * SUPERSAMPLE, rows * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    radius = width * SUPERSAMPLE / 2
    for stroke in strokes:
        points = [tuple(p) for p in (stroke * SUPERSAMPLE + (SUPERSAMPLE - 1) / 2).tolist()]
        if len(points) > 1:
            draw.line(points, fill=255, width=round(width * SUPERSAMPLE))
        for x, y in points:  # round caps and joins: a disc at every vertex (a tap is a dot)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(big.resize((columns, rows), Image.Resampling.BOX))


def renderings(
    digits: Sequence[PenDigit],
    *,
    count: int = 1,
    seed: int = 0,
    all_styles: bool = True,
    spec: SlateSpec = SLATE,
    processes: int = 1,
) -> list[tuple[bytes, int, int, str]]:
    """(png, label, writer, style) for each digit: `count` drawings in each export style (all_styles), or `count`
    drawings in random styles. Digit i draws from its own generator (seed, i): the same drawings whatever the
    number of processes."""
    tasks = [(digit, (seed, index), count, all_styles, spec) for index, digit in enumerate(digits)]
    if processes > 1 and len(tasks) > 64:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            drawn = pool.map(_draw, tasks, chunksize=32)
    else:
        drawn = [_draw(task) for task in tasks]
    return [row for rows in drawn for row in rows]


def _draw(task: tuple) -> list[tuple[bytes, int, int, str]]:
    digit, seed, count, all_styles, spec = task
    rng = np.random.default_rng(seed)
    styles = [s for s in canvas.STYLES for _ in range(count)] if all_styles else rng.choice(canvas.STYLES, count)
    return [
        (canvas.to_png(render(digit, rng=rng, style=str(style), spec=spec)), digit.label, digit.writer, str(style))
        for style in styles
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pendigits", type=Path, default=None, help=f"the UNIPEN file (default: ${ENV_VAR})")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "pendigits-sample")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args(argv)
    digits = load(args.pendigits)
    training, validation = split_by_writer(digits)
    print(f"{len(digits)} digits by {len({d.writer for d in digits})} writers: {len(training)} training, "
          f"{len(validation)} validation (writers {', '.join(map(str, VALIDATION_WRITERS))})")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    for index, (png, label, writer, style) in enumerate(renderings(digits[: args.count])):
        (args.out / f"{index:03d}-digit{label}-writer{writer}-{style}.png").write_bytes(png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
