"""The red teams' acceptance figures, as a benchmark (`make bench-hostile`): what hostile clients do to 4 normal users,
through a running product.

    python -m tests.bench_hostile [--url http://127.0.0.1:8501] [--seconds 15] [--why]

Phase 1: 4 normal users (own session cookies) draw -> predict one at a time through the page's JSON API for
--seconds; their median latency.
Phase 2: the same beside the attack. Without --why (issue #12 item 3): 4 other clients (own cookies) send the dearest
accepted images back to back (each at most API_MAX_IN_FLIGHT in flight, as the page allows). With --why (issue #20
N1): one Chromium tab of the drawing page that draws a new digit, presses Predict and asks Why? for all ten digits
twice, every 0.5 s (tests/page_client.py). Target: each normal user's median within 3x of phase 1's median, and none
of their requests failing. Loopback only, bounded in time; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import time
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageDraw

from tests.bench_inputs import cases
from tests.page_client import flood_why

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def client_loop(url: str, body: bytes, deadline: float, times: list[float], errors: list[str]) -> None:
    """One client predicting back to back until the deadline; a request that fails (or times out after 30 s) counts
    with the time it took as well as an error."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.get("/api/history")  # the session cookie first, as a browser has it
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = await client.post("/api/predictions?save=false", content=body,
                                             headers={"Content-Type": "image/png"})  # fmt: skip
                status, text = response.status_code, response.text
            except httpx.TransportError as exc:
                status, text = 0, repr(exc)
            if status == 429:  # the page's own limit for the hostile clients is expected
                continue
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                errors.append(f"{status} {text[:100]}")


async def phase(url: str, drawing: bytes, hostile: list[bytes], seconds: float, *, why_tab: bool = False) -> dict:
    deadline = time.monotonic() + seconds
    users: list[list[float]] = [[] for _ in range(4)]
    normal_errors, hostile_times, hostile_errors = [], [], []
    tasks = [client_loop(url, drawing, deadline, times, normal_errors) for times in users]
    tasks += [client_loop(url, body, deadline, hostile_times, hostile_errors) for body in hostile]
    if why_tab:
        tasks.append(flood_why(url, scribbles(120), seconds))
    results = await asyncio.gather(*tasks)
    normal_times = [t for times in users for t in times]
    figures = {
        "normal_median_ms": round(statistics.median(normal_times), 1) if normal_times else None,
        # the slowest user's median: one user stalled behind the attack is not hidden by three fast ones
        "worst_user_median_ms": round(max(statistics.median(t) if t else seconds * 1000 for t in users), 1),
        "normal_p90_ms": round(statistics.quantiles(normal_times, n=10)[-1], 1) if len(normal_times) > 1 else None,
        "normal_requests": len(normal_times),
        "normal_errors": len(normal_errors),
        "hostile_answered": len(hostile_times),
        "hostile_errors": hostile_errors[:3],
    }
    if why_tab:
        figures["why_tab"] = results[-1]
    return figures


def scribbles(count: int, *, seed: int = 0) -> list[bytes]:
    """`count` different 280x280 slate drawings (a few random strokes each): every round asks about a new drawing,
    so no explanation can come from a cache."""
    rng = random.Random(seed)
    drawings = []
    for _ in range(count):
        image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        points = [(rng.randint(40, 240), rng.randint(40, 240)) for _ in range(rng.randint(3, 6))]
        draw.line(points, fill=(0, 0, 0, 255), width=18, joint="curve")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        drawings.append(buffer.getvalue())
    return drawings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--why", action="store_true", help="a tab flooding Why? instead of the 4 image clients")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK or not 0 < args.seconds <= 120:
        print("error: loopback only, at most 120 s", file=sys.stderr)
        return 2
    images = cases()
    drawing = images["slate drawing 280x280 RGBA (reference)"]
    dearest = [body for name, body in images.items() if not name.startswith("refused") and "drawing" not in name]
    alone = asyncio.run(phase(args.url, drawing, [], args.seconds))
    hostile = [] if args.why else (dearest * 4)[:4]
    attacked = asyncio.run(phase(args.url, drawing, hostile, args.seconds, why_tab=args.why))
    ratio = attacked["worst_user_median_ms"] / alone["normal_median_ms"]
    passed = ratio <= 3 and attacked["normal_errors"] == 0
    name = "with_a_tab_flooding_why" if args.why else "with_4_hostile_clients"
    print(json.dumps({"alone": alone, name: attacked, "ratio": round(ratio, 2), "passed": passed}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
