"""Simulated users (`make simulate`): real pen-drawn digits drawn on the slate and sent through the running product's
JSON API, as people would, so that the rows in PostgreSQL are exactly a real user's.

    python -m training.simulate [--url http://127.0.0.1:8501] [--writers 1-30] [--per-writer 250] [--browsers 4]
    python -m training.simulate --unipen FILE --files validation       # UNIPEN session files as the browsers
    python -m training.simulate --numbers 20 [--writers 1-30] [--browsers 4]     # numbers instead of single digits

One browser per writer (its own session cookie, so its own browser_id in the database): for each of the writer's
digits it draws the trajectory as a slate export (training/pendigits.py: round pen, the page's pen widths, the three
export styles), POSTs it to /api/predictions with an Idempotency-Key, then PUTs the true digit as the label, which
confirms a right answer or corrects a wrong one. That is the feedback `make retrain` learns from.

Two sources of writers. pendigits: `--writers` picks them by number. UNIPEN (`--unipen`): one browser per session
file (about one writer's session); `--files` picks the fixed validation split (training/unipen.py: files that neither
3.0 nor 4.0's base training ever saw, so a version retrained on some of them can be gated on the others), the
training split, or all. Each digit is drawn once, in a random export style.

With --numbers N (pendigits writers), each writer's browser writes N numbers instead (2-6 of the writer's own digits
side by side on the Number mode's wide slate, some touching: training/segmentation_eval.py composes them), POSTs each to
/api/numbers and PUTs the true number as its label; when the number was split into as many digits as were written, each
digit's crop is then a labelled drawing for `make retrain` too (app/numbers.py).

Loopback only and bounded: the URL must be on 127.0.0.1/localhost, at most 400 digits per writer and 12,000 in all, a
few browsers at a time, and a refused request is retried a bounded number of times (429: the page's per-client limit).
Data, read from the options or their environment variables, never shipped: UCI pendigits (E. Alpaydin, F. Alimoglu;
CC BY 4.0; --pendigits or $PENDIGITS_FILE) and UNIPEN train_r01_v07 (I. Guyon et al.; CC BY 4.0; --unipen or
$UNIPEN_FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm

from training import pendigits, segmentation_eval, unipen

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_PER_WRITER = 400
MAX_DRAWINGS = 12_000  # 30 pendigits writers x 400: what one simulation may send in all
MAX_NUMBERS_PER_WRITER = 100
UNIPEN_FILES = ("validation", "training", "all")
MAX_BROWSERS = 8
RETRIES = 5  # a 429 or 503 is retried after Retry-After (at most this many times)


class SimulationError(RuntimeError):
    """The simulation cannot run as asked (not loopback, out of bounds, the page not answering)."""


@dataclass(frozen=True)
class Drawing:
    png: bytes
    label: int
    writer: int | str  # a pendigits writer's number, or a UNIPEN session file's name
    style: str


@dataclass(frozen=True)
class NumberDrawing:
    png: bytes
    label: str  # the digits written, left to right
    writer: int
    touching: int  # neighbours whose strokes touch


@dataclass
class Tally:
    sent: int = 0
    correct: int = 0
    labelled: int = 0
    digits_labelled: int = 0  # numbers only: the digit crops that got their label
    errors: list[str] = field(default_factory=list)
    by_writer: Counter = field(default_factory=Counter)
    confusions: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)


def drawings_of(
    digits: Sequence[pendigits.PenDigit | unipen.UnipenDigit], *, per_writer: int, seed: int
) -> dict[int | str, list[Drawing]]:
    """Each writer's first `per_writer` digits drawn once on the slate, in random export styles (writer -> drawings).
    A writer is a pendigits writer or a UNIPEN session file: anything with label, writer and strokes."""
    by_writer: dict[int | str, list] = {}
    for digit in digits:
        by_writer.setdefault(digit.writer, []).append(digit)
    chosen = [digit for own in by_writer.values() for digit in own[:per_writer]]
    if len(chosen) > MAX_DRAWINGS:
        raise SimulationError(f"{len(chosen)} drawings asked, at most {MAX_DRAWINGS} per simulation")
    drawn: dict[int | str, list[Drawing]] = {}
    for png, label, writer, style in pendigits.renderings(chosen, count=1, seed=seed, all_styles=False, processes=2):
        drawn.setdefault(writer, []).append(Drawing(png, label, writer, style))
    return drawn


def numbers_of(digits: list[pendigits.PenDigit], *, per_writer: int, seed: int) -> dict[int, list[NumberDrawing]]:
    """`per_writer` numbers composed from each writer's own digits (writer -> drawings)."""
    by_writer: dict[int, list[pendigits.PenDigit]] = {}
    for digit in digits:
        by_writer.setdefault(digit.writer, []).append(digit)
    return {
        writer: [NumberDrawing(case.png, case.number.label, writer, case.number.touching)
                 for case in segmentation_eval.composed_set(own, count=per_writer, seed=seed * 1000 + writer)]
        for writer, own in by_writer.items()
    }  # fmt: skip


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs) -> httpx.Response:
    """One request, retried after the page's Retry-After when it says 429 (too many in flight) or 503."""
    for _ in range(RETRIES):
        response = await client.request(method, url, **kwargs)
        if response.status_code not in (429, 503):
            return response
        await asyncio.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
    return response


async def browser(base_url: str, drawings: list[Drawing], tally: Tally, progress: tqdm) -> None:
    """One writer's browser: predict then label each drawing, in order, with one session cookie."""
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, connect=5)) as client:
        for drawing in drawings:
            key = str(uuid.uuid4())
            headers = {"Content-Type": "image/png", "Idempotency-Key": key}
            answer = await _send(client, "POST", "/api/predictions", content=drawing.png, headers=headers)
            tally.sent += 1
            progress.update()
            if answer.status_code != 200:
                tally.errors.append(f"writer {drawing.writer} predict: {answer.status_code} {answer.text[:120]}")
                continue
            body = answer.json()
            digit = body.get("digit")
            tally.versions[str(body.get("model_version"))] += 1
            tally.correct += digit == drawing.label
            tally.by_writer[drawing.writer] += digit == drawing.label
            if digit != drawing.label:
                tally.confusions[f"{drawing.label}->{digit}"] += 1
            label = await _send(client, "PUT", f"/api/predictions/{key}/label", json={"digit": drawing.label})
            if label.status_code != 200:
                tally.errors.append(f"writer {drawing.writer} label: {label.status_code} {label.text[:120]}")
                continue
            tally.labelled += 1


async def number_browser(base_url: str, drawings: list[NumberDrawing], tally: Tally, progress: tqdm) -> None:
    """One writer's browser in Number mode: read then label each number, in order, with one session cookie."""
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, connect=5)) as client:
        for drawing in drawings:
            key = str(uuid.uuid4())
            headers = {"Content-Type": "image/png", "Idempotency-Key": key}
            answer = await _send(client, "POST", "/api/numbers", content=drawing.png, headers=headers)
            tally.sent += 1
            progress.update()
            if answer.status_code != 200:
                tally.errors.append(f"writer {drawing.writer} number: {answer.status_code} {answer.text[:120]}")
                continue
            body = answer.json()
            read = body.get("number")
            tally.versions[str(body.get("model_version"))] += 1
            tally.correct += read == drawing.label
            tally.by_writer[drawing.writer] += read == drawing.label
            if read != drawing.label:
                tally.confusions[f"{drawing.label}->{read}"] += 1
            label = await _send(client, "PUT", f"/api/numbers/{key}/label", json={"number": drawing.label})
            if label.status_code != 200:
                tally.errors.append(f"writer {drawing.writer} number label: {label.status_code} {label.text[:120]}")
                continue
            tally.labelled += 1
            tally.digits_labelled += label.json().get("digits_labelled") or 0


Visit = Callable[[str, list, Tally, tqdm], Awaitable[None]]


async def simulate(
    base_url: str, drawn: dict[int | str, Sequence[Drawing | NumberDrawing]], *, browsers: int, visit: Visit = browser
) -> Tally:
    """Every writer's browser, `browsers` at a time; `visit` is what one browser does (single digits, or
    number_browser)."""
    if urlsplit(base_url).hostname not in LOOPBACK:
        raise SimulationError(f"simulated users only visit loopback, not {urlsplit(base_url).hostname}")
    if not 1 <= browsers <= MAX_BROWSERS:
        raise SimulationError(f"--browsers must be 1..{MAX_BROWSERS}, got {browsers}")
    tally, limit = Tally(), asyncio.Semaphore(browsers)
    total = sum(len(d) for d in drawn.values())
    with tqdm(total=total, unit="drawing", desc="simulated users") as progress:

        async def one(drawings: Sequence[Drawing | NumberDrawing]) -> None:
            async with limit:
                await visit(base_url, list(drawings), tally, progress)

        await asyncio.gather(*(one(drawings) for drawings in drawn.values()))
    return tally


def parse_writers(text: str) -> list[int]:
    """ "1-30", "1,2,5", "3-6,9" -> writer ids."""
    writers = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        writers += range(int(low), int(high or low) + 1)
    return writers


def unipen_writers(path: Path | None, *, files: str) -> list[unipen.UnipenDigit]:
    """The UNIPEN digits of the chosen split's session files (training/unipen.py's fixed split by file)."""
    if files not in UNIPEN_FILES:
        raise SimulationError(f"--files must be one of {', '.join(UNIPEN_FILES)}, not {files!r}")
    digits = unipen.load(path)
    training, validation = unipen.split_by_file(digits)
    return {"validation": validation, "training": training, "all": digits}[files]


def report(tally: Tally, *, writers: int, source: str, numbers: bool = False) -> dict:
    """The run in figures; with numbers, `accuracy` is the share of numbers read exactly."""
    return {
        "source": source,
        "writers": writers,
        "what": "numbers" if numbers else "digits",
        "sent": tally.sent,
        "labelled": tally.labelled,
        **({"digit_crops_labelled": tally.digits_labelled} if numbers else {}),
        "accuracy": round(tally.correct / max(1, tally.sent), 4),
        "answered_by": dict(tally.versions),
        "top_confusions": [f"{pair}: {count}" for pair, count in tally.confusions.most_common(8)],
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the running page (loopback only)")
    parser.add_argument("--pendigits", type=Path, default=None, help="the UNIPEN file (default: $PENDIGITS_FILE)")
    parser.add_argument("--writers", default="1-30", help='pendigits writer ids, e.g. "1-30" or "1,4,7-9"')
    parser.add_argument("--unipen", type=Path, default=None, help="UNIPEN digits as the writers (one per file)")
    parser.add_argument("--files", default="validation", choices=UNIPEN_FILES, help="with --unipen: which files")
    parser.add_argument("--per-writer", type=int, default=MAX_PER_WRITER, help="digits per writer (at most 400)")
    parser.add_argument(
        "--numbers", type=int, default=0, help=f"numbers per writer instead of digits (1..{MAX_NUMBERS_PER_WRITER})"
    )
    parser.add_argument("--browsers", type=int, default=4, help="browsers drawing at the same time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here too")
    args = parser.parse_args(argv)
    try:
        if not 1 <= args.per_writer <= MAX_PER_WRITER:
            raise SimulationError(f"--per-writer must be 1..{MAX_PER_WRITER}")
        if not 0 <= args.numbers <= MAX_NUMBERS_PER_WRITER:
            raise SimulationError(f"--numbers must be 1..{MAX_NUMBERS_PER_WRITER}")
        if args.unipen:
            if args.numbers:
                raise SimulationError("--numbers composes pendigits writers' numbers: not with --unipen")
            source = f"unipen {args.files} files"
            digits: list = unipen_writers(args.unipen, files=args.files)
        else:
            source, wanted = "pendigits", set(parse_writers(args.writers))
            digits = [d for d in pendigits.load(args.pendigits) if d.writer in wanted]
        if args.numbers:
            drawn: dict = numbers_of(digits, per_writer=args.numbers, seed=args.seed)
            tally = asyncio.run(simulate(args.url, drawn, browsers=args.browsers, visit=number_browser))
        else:
            drawn = drawings_of(digits, per_writer=args.per_writer, seed=args.seed)
            tally = asyncio.run(simulate(args.url, drawn, browsers=args.browsers))
    except (SimulationError, pendigits.PendigitsError, unipen.UnipenError, httpx.HTTPError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = report(tally, writers=len(drawn), source=source, numbers=bool(args.numbers))
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if not tally.errors else 1


if __name__ == "__main__":
    sys.exit(main())
