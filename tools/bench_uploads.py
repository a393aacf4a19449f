"""Picture bombs at the drawing page (docs/security.md P2), as a benchmark: what clients sending the dearest pictures to
the slate's picture route do to 4 normal users and to the page process's memory, through a running product.

    python -m tools.bench_uploads [--url http://127.0.0.1:8501] [--seconds 20] [--clients 3] [--pace 2] [--pid PID]
                                  [--dearest]

It starts nothing: run it against `make run` (the page's pid is read from var/ui.pid, else found by the port).
Phase 1: 4 normal users (own session cookies) predict a drawing one at a time through the JSON API for --seconds;
their median latency, and the page process's RSS.
Phase 2: the same beside --clients bomb clients. Each opens the drawing page once (its own cookie, its slate's picture
URL), then POSTs a bomb every --pace seconds, alternating: a progressive CMYK 8000x8000 JPEG (its coefficients alone
are 512 MB to decode) and a progressive 256x256 JPEG whose last scan is repeated to 1.5 MB (125,000 passes). The
route answers before decoding (202), so --pace is what keeps a client near one decode at a time when the page does
not. With --dearest, the pictures are instead the dearest the page accepts (app/uploads.py): a progressive 5100x4000
colour JPEG (63 MB of coefficients and pixels) and a 2800x2800 RGBA PNG of noise (60 MB with its premultiplied copy).
Reported: each normal user's median against phase 1's median (target <= 3x), and the page process's RSS growth
(peak during phase 2 and 10 s after, over its RSS before; target <= 300 MB), with the answers the pictures got.
Loopback only, bounded in time; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import psutil
from PIL import Image

from tools.bad_inputs import encode, scan_flood_jpeg
from tools.bench_hostile import LOOPBACK, client_loop, scribbles

PICTURE_URL = re.compile(r"/_slate/picture/[0-9a-f-]+/\d+")
TAIL_SECONDS = 10.0  # RSS is still sampled this long after phase 2: decodes started during it may still run


def cmyk_bomb() -> bytes:
    """A progressive CMYK 8000x8000 JPEG: small to send, 64 Mpx x 4 components of coefficients to decode."""
    return encode(Image.new("CMYK", (8000, 8000), (10, 200, 30, 0)), "JPEG", quality=5, progressive=True)


def scan_bomb(*, side: int = 256, size: int = 1_500_000) -> bytes:
    """A progressive JPEG whose last scan is repeated until the file is `size` bytes: one pass over every coefficient
    per copy (~12 s of CPU for 1.5 MB on this machine, before the page counted scans)."""
    progressive = encode(Image.new("L", (side, side), 170), "JPEG", quality=50, progressive=True)
    scan = progressive[progressive.rindex(b"\xff\xda") : -2]
    return scan_flood_jpeg(progressive, extra=size // len(scan))


def dearest_accepted() -> list[bytes]:
    """Pictures at the page's memory limit (MAX_DECODED_BYTES), each decoded in full: noise, so nothing is cheap."""
    noise = np.random.default_rng(0)
    colour = Image.fromarray(noise.integers(0, 255, (1000, 1275, 3), dtype=np.uint8)).resize((5100, 4000))
    alpha = Image.fromarray(noise.integers(0, 255, (22, 22, 4), dtype=np.uint8), "RGBA").resize((2800, 2800))
    return [encode(colour, "JPEG", quality=60, progressive=True), encode(alpha, "PNG")]


def page_pid(url: str, pid: int | None) -> int:
    """The page process: --pid, else var/ui.pid (make run writes it), else whoever listens on the URL's port."""
    if pid:
        return pid
    pid_file = Path(__file__).resolve().parents[1] / "var" / "ui.pid"
    if pid_file.exists():
        return int(pid_file.read_text())
    port = urlsplit(url).port or 80
    for connection in psutil.net_connections("tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return connection.pid
    raise SystemExit(f"no page process found listening on port {port}: give --pid")


async def sample_rss(process: psutil.Process, stop: asyncio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        await asyncio.sleep(0.1)


async def bomb_loop(url: str, bombs: list[bytes], deadline: float, pace: float, answers: Counter) -> None:
    """One attacker: its own page (cookie, slate), a bomb every `pace` seconds until the deadline."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        page = await client.get("/")
        target = PICTURE_URL.search(page.text)
        if target is None:
            answers["no slate on the page"] += 1
            return
        round_ = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = await client.post(target.group(0), content=bombs[round_ % len(bombs)])
                answers[str(response.status_code)] += 1
            except httpx.TransportError as exc:
                answers[type(exc).__name__] += 1
            round_ += 1
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))


async def users(url: str, drawing: bytes, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    times: list[list[float]] = [[] for _ in range(4)]
    errors: list[str] = []
    await asyncio.gather(*(client_loop(url, drawing, deadline, user, errors) for user in times))
    every = [t for user in times for t in user]
    return {
        "median_ms": round(statistics.median(every), 1) if every else None,
        "worst_user_median_ms": round(max(statistics.median(t) if t else seconds * 1000 for t in times), 1),
        "requests": len(every),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


async def attacked(url: str, drawing: bytes, args, process: psutil.Process) -> dict:
    bombs = dearest_accepted() if args.dearest else [cmyk_bomb(), scan_bomb()]
    rss_before = process.memory_info().rss
    peak, stop, answers = [rss_before], asyncio.Event(), Counter()
    sampler = asyncio.create_task(sample_rss(process, stop, peak))
    deadline = time.monotonic() + args.seconds
    orders = [bombs[i % 2 :] + bombs[: i % 2] for i in range(args.clients)]  # half the clients start with each
    attack = [bomb_loop(url, order, deadline, args.pace, answers) for order in orders]
    normal, *_ = await asyncio.gather(users(url, drawing, args.seconds), *attack)
    await asyncio.sleep(TAIL_SECONDS)
    stop.set()
    await sampler
    return {
        **normal,
        "bomb_answers": dict(answers),
        "bomb_bytes": [len(bomb) for bomb in bombs],
        "rss_before_mb": round(rss_before / 2**20),
        "rss_peak_mb": round(peak[0] / 2**20),
        "rss_growth_mb": round((peak[0] - rss_before) / 2**20),
        "rss_after_mb": round(process.memory_info().rss / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=3, help="bomb clients (1-8)")
    parser.add_argument("--pace", type=float, default=2.0, help="seconds between one client's bombs")
    parser.add_argument("--pid", type=int, help="the page process (default: var/ui.pid, else by the port)")
    parser.add_argument("--dearest", action="store_true", help="the dearest accepted pictures instead of bombs")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK or not 0 < args.seconds <= 120 or not 1 <= args.clients <= 8:
        print("error: loopback only, at most 120 s, 1-8 bomb clients", file=sys.stderr)
        return 2
    process = psutil.Process(page_pid(args.url, args.pid))
    drawing = scribbles(1)[0]
    alone = asyncio.run(users(args.url, drawing, args.seconds))
    alone["rss_mb"] = round(process.memory_info().rss / 2**20)
    beside = asyncio.run(attacked(args.url, drawing, args, process))
    ratio = beside["worst_user_median_ms"] / alone["median_ms"]
    passed = ratio <= 3 and beside["errors"] == 0 and beside["rss_growth_mb"] <= 300
    load = [round(value, 2) for value in psutil.getloadavg()]
    name = f"with_{args.clients}_{'dearest_picture' if args.dearest else 'bomb'}_clients"
    print(json.dumps({"alone": alone, name: beside, "ratio": round(ratio, 2), "passed": passed, "loadavg": load}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
