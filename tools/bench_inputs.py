"""What one request costs the worker (`make bench-inputs`): the dearest images the handler still accepts against a
drawing from the slate, and what it refuses. Speed lives here, never as timing asserts in tests.

    python -m tools.bench_inputs [--repeat 15] [--numbers [--pendigits FILE] [--unipen-numbers FILE]]

Per image, in this process with one torch thread (as a worker runs): reading the request, preprocessing, the model
input and a batch-1 forward pass of 1.0, in CPU milliseconds (median and best of --repeat runs). The ratio to the
drawing is what matters: a shared machine makes absolute figures move.

--numbers: the Number mode's reader instead (handler/segmentation.py, then 4.0's forward pass over the candidates):
a number against the zigzag (tools/bad_inputs.py zigzag_number), with the work budget and without it, and the
work counted (its units against CPU time) for the real numbers (--unipen-numbers, default $UNIPEN_NUMBERS_FILE) and
numbers composed from pendigits' writers (--pendigits, default $PENDIGITS_FILE), when given; `make bench-inputs` passes
the Makefile's data paths.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from handler import preprocess, segmentation
from handler.inputs import parse_request
from handler.model import DigitNet
from handler.preprocess import PreprocessError, prepare
from tools.bad_inputs import (
    chunk_flood_png,
    comment_flood_jpeg,
    encode,
    metadata_bomb_png,
    noise_png,
    scan_flood_jpeg,
    zigzag_number,
)

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUEST_SIZE = 4 * 1024 * 1024  # config.properties: larger bodies never reach the handler


def slate_drawing(side: int = 280) -> bytes:
    """A 7 as the slate exports it: dark strokes on an opaque white RGBA canvas."""
    image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    scale = side / 280
    points = [(60 * scale, 50 * scale), (200 * scale, 50 * scale), (100 * scale, 240 * scale)]
    ImageDraw.Draw(image).line(points, fill=(0, 0, 0, 255), width=round(18 * scale), joint="curve")
    return encode(image)


def number_drawing() -> bytes:
    """1704 as the Number slate exports it: 840 x 280, transparent, dark strokes of a 12 px pen, the digits apart."""
    image = Image.new("RGBA", (840, 280), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    zero = [(465 + 45 * np.sin(a), 140 - 80 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)]
    strokes = [[(136, 82), (150, 60), (150, 220)], [(260, 60), (350, 60), (290, 220)], zero,
               [(640, 60), (600, 160), (695, 160)], [(670, 100), (670, 220)]]  # fmt: skip
    for stroke in strokes:
        draw.line(stroke, fill=(0, 0, 0, 255), width=12, joint="curve")
    return encode(image)


def photo(width: int, height: int) -> Image.Image:
    """A grey 'paper' photo with sensor noise and one dark stroke."""
    generator = np.random.default_rng(0)
    paper = np.full((height, width), 170.0) + generator.normal(0, 12, (height, width))
    paper[height // 4 : 3 * height // 4, width // 2 - width // 40 : width // 2 + width // 40] = 40
    return Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")


def paper_photo(width: int, height: int) -> Image.Image:
    """A photo of squared paper (the dearest kind for the photo path: a rule every 5% of the side, both ways) under
    light falling off to one side, with sensor noise and a blue 7: what the handler's photo path works on."""
    generator = np.random.default_rng(1)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1.0 - 0.4 * xs / width  # (h, w)
    grid = ((xs % (width / 20)) < width / 400) | ((ys % (height / 20)) < height / 400)
    paper = np.where(grid[..., None], (150.0, 170.0, 200.0), (240.0, 238.0, 232.0)) * light[..., None]
    image = Image.fromarray(np.clip(paper + generator.normal(0, 6, paper.shape), 0, 255).astype(np.uint8))
    points = [(0.3 * width, 0.3 * height), (0.7 * width, 0.3 * height), (0.45 * width, 0.75 * height)]
    ImageDraw.Draw(image).line(points, fill=(40, 60, 150), width=max(2, width // 60), joint="curve")
    return image


def largest_jpeg(image: Image.Image, limit: int, **options) -> bytes:
    """The image as a JPEG of the highest quality that fits in `limit` bytes."""
    low, high, best = 1, 100, encode(image, "JPEG", quality=1, **options)
    while low <= high:
        quality = (low + high) // 2
        data = encode(image, "JPEG", quality=quality, **options)
        if len(data) <= limit:
            best, low = data, quality + 1
        else:
            high = quality - 1
    return best


def cases() -> dict[str, bytes]:
    drawing = slate_drawing()
    rgba = int((preprocess.MAX_PNG_SAMPLE_BYTES / 4) ** 0.5)  # the largest square RGBA PNG accepted
    grey16 = int((preprocess.MAX_PNG_SAMPLE_BYTES / 2) ** 0.5)
    big = photo(4096, 4096)
    side = int(preprocess.MAX_PROGRESSIVE_JPEG_PIXELS**0.5)
    progressive = largest_jpeg(photo(side, side), preprocess.MAX_PROGRESSIVE_JPEG_BYTES, progressive=True)
    coarse = encode(Image.new("L", (side, side), 170), "JPEG", progressive=True)  # small scans: 16 fit the bytes
    rgb = int((preprocess.MAX_PNG_SAMPLE_BYTES / 3) ** 0.5)  # the largest square RGB PNG accepted
    return {
        "slate drawing 280x280 RGBA (reference)": drawing,
        "drawing 840x840 RGBA": slate_drawing(840),
        "photo of squared paper 1200x900 JPEG q85": encode(paper_photo(1200, 900), "JPEG", quality=85),
        f"photo of squared paper 4096x4096 at {preprocess.MAX_JPEG_BYTES // 1024} KiB": largest_jpeg(
            paper_photo(4096, 4096), preprocess.MAX_JPEG_BYTES
        ),
        f"photo of squared paper PNG {rgb}x{rgb} RGB": encode(paper_photo(rgb, rgb)),
        f"PNG {rgba}x{rgba} RGBA 8-bit noise, Paeth": noise_png(rgba, rgba),
        f"PNG {rgba}x{rgba} RGBA 8-bit noise, interlaced": noise_png(rgba, rgba, interlace=True),
        f"PNG {grey16}x{grey16} grey 16-bit noise, interlaced": noise_png(
            grey16, grey16, bit_depth=16, color_type=0, interlace=True
        ),
        "refused: PNG 1024x1024 RGBA noise": noise_png(1024, 1024),
        "drawing + 60 zTXt + 60 iCCP of 1 MB each": metadata_bomb_png(drawing),
        f"baseline JPEG 4096x4096 at {preprocess.MAX_JPEG_BYTES // 1024} KiB": largest_jpeg(
            big, preprocess.MAX_JPEG_BYTES
        ),
        f"progressive JPEG {side}x{side} at {preprocess.MAX_PROGRESSIVE_JPEG_BYTES // 1024} KiB": progressive,
        f"progressive JPEG {side}x{side}, {preprocess.MAX_JPEG_SCANS} scans": scan_flood_jpeg(
            coarse, extra=preprocess.MAX_JPEG_SCANS - coarse.count(b"\xff\xda")
        ),
        "refused: PNG 4096x4096 RGBA (84 KB)": slate_drawing(4096),
        "refused: drawing + 300,000 empty chunks": chunk_flood_png(drawing),
        "refused: JPEG + 100,000 comments": comment_flood_jpeg(encode(photo(280, 280), "JPEG")),
        "refused: progressive JPEG, 2000 scans": scan_flood_jpeg(progressive),
        "refused: progressive JPEG 4096x4096": largest_jpeg(
            big, preprocess.MAX_PROGRESSIVE_JPEG_BYTES, progressive=True
        ),
        "refused: baseline JPEG 4032x3024 photo at q90": encode(photo(4032, 3024), "JPEG", quality=90),
    }


def cpu_ms(step: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        step()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times), min(times)


def numbers_bench(repeat: int, sets: dict[str, list[bytes]]) -> None:
    """The Number mode's reader on a number and on the zigzag, with and without the work budget; the work of real
    and composed numbers."""
    from handler.model import for_inference

    model = DigitNet()
    model.load_state_dict(torch.load(ROOT / "model_store" / "v4.0" / "weights.pt", weights_only=True))
    forward = for_inference(model.eval())

    def read(body: bytes, limit: float | None) -> tuple[str, float]:
        work = segmentation.Work(limit=limit)
        try:
            plan = segmentation.prepare_number(body, work=work)
        except PreprocessError as exc:
            return f"{exc.status} {str(exc)[:40]}", work.done
        with torch.inference_mode():
            segmentation.reading(plan, forward(plan.tensors())[:, :10].float().numpy())
        return f"200, {len(plan.candidates)} candidates", work.done

    print(f"{'drawing':42} {'work':>8} {'median ms':>10} {'best ms':>8}  answer")
    for name, body, limit in [("number 1704, 840x280", number_drawing(), segmentation.MAX_WORK),
                              ("zigzag 840x280", zigzag_number(), segmentation.MAX_WORK),
                              ("zigzag 840x280, no budget (as before)", zigzag_number(), None)]:  # fmt: skip
        answer, work = read(body, limit)
        median, best = cpu_ms(lambda body=body, limit=limit: read(body, limit), repeat)
        print(f"{name:42} {work:>8,.0f} {median:>10.1f} {best:>8.1f}  {answer}")
    for name, drawings in sets.items():
        spent = [(read(body, None)[1], cpu_ms(lambda body=body: read(body, None), 1)[0]) for body in drawings]
        work, ms = np.array([w for w, _ in spent]), np.array([t for _, t in spent])
        print(
            f"{name}: {len(spent)} numbers, work median {np.median(work):,.0f} max {work.max():,.0f} "
            f"({np.count_nonzero(work > segmentation.MAX_WORK)} over MAX_WORK); ms median {np.median(ms):.1f} "
            f"max {ms.max():.1f}; ms per 1,000 units beyond 10 ms: {np.median((ms - 10) / work * 1000):.2f}"
        )


def number_sets(real: Path | None, strokes: Path | None) -> dict[str, list[bytes]]:
    """Real numbers (UNIPEN's, from `real`) and numbers composed from pendigits' writers (`strokes`), for the files
    given that exist."""
    from training import pendigits, segmentation_eval

    sets: dict[str, list[bytes]] = {}
    if real is not None and real.exists():
        sets["UNIPEN numbers"] = [
            case.png for case in segmentation_eval.real_set(segmentation_eval.load_unipen_numbers(real), seed=3)
        ]
    if strokes is not None and strokes.exists():
        training, _ = pendigits.split_by_writer(pendigits.load(strokes))
        long = segmentation_eval.NumberSpec(lengths=(7, 10), touching=0.4, per_pair=True)
        sets["composed, 7-10 digits, 40% of pairs touching"] = [
            case.png for case in segmentation_eval.composed_set(training, count=200, seed=5, spec=long)
        ]
    return sets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--numbers", action="store_true", help="the Number mode's reader: a number and the zigzag")
    parser.add_argument(
        "--pendigits",
        type=Path,
        default=os.environ.get("PENDIGITS_FILE") or None,
        help="--numbers: pendigits-orig.tra.gz, for composed numbers (default $PENDIGITS_FILE)",
    )
    parser.add_argument(
        "--unipen-numbers",
        type=Path,
        default=os.environ.get("UNIPEN_NUMBERS_FILE") or None,
        help="--numbers: unipen-numbers-train.jsonl.gz, real numbers (default $UNIPEN_NUMBERS_FILE)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.numbers:
        numbers_bench(args.repeat, number_sets(args.unipen_numbers, args.pendigits))
        return
    model = DigitNet()
    model.load_state_dict(torch.load(ROOT / "model_store" / "v1.0" / "weights.pt", weights_only=True))
    model.eval()

    def request(body: bytes) -> str:
        try:
            image, _ = parse_request({"body": body})
            tensor = prepare(image).tensor()
        except PreprocessError as exc:
            return f"{exc.status} {str(exc)[:60]}"
        with torch.inference_mode():
            model(tensor.unsqueeze(0))
        return "200"

    reference = None
    print(f"{'image':55} {'bytes':>10} {'median ms':>10} {'best ms':>8} {'x drawing':>9}  answer")
    for name, body in cases().items():
        answer = request(body)
        median, best = cpu_ms(lambda body=body: request(body), args.repeat)
        reference = reference or median
        over = "  (over max_request_size: never reaches the handler)" if len(body) > MAX_REQUEST_SIZE else ""
        print(f"{name:55} {len(body):>10,} {median:>10.1f} {best:>8.1f} {median / reference:>9.1f}  {answer}{over}")


if __name__ == "__main__":
    main()
