"""Red-team item 3's acceptance, as a benchmark (`make bench-hostile`): what 4 clients sending the dearest images
the product accepts do to 4 normal users, through the page's JSON API of a running product.

    python -m tests.bench_hostile [--url http://127.0.0.1:8501] [--seconds 15]

Phase 1: 4 normal users (own session cookies) draw -> predict one at a time for --seconds; their median latency.
Phase 2: the same while 4 other clients (own cookies) send the dearest accepted images back to back (each at most
API_MAX_IN_FLIGHT in flight, as the page allows). Target: the normal users' median within 3x of phase 1's, and none
of their requests failing. Loopback only, bounded in time; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from urllib.parse import urlsplit

import httpx

from tests.bench_inputs import cases

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def client_loop(url: str, body: bytes, deadline: float, times: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.get("/api/history")  # the session cookie first, as a browser has it
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.post("/api/predictions?save=false", content=body,
                                         headers={"Content-Type": "image/png"})  # fmt: skip
            if response.status_code == 200:
                times.append((time.perf_counter() - started) * 1000)
            elif response.status_code != 429:  # the page's own limit for the hostile clients is expected
                errors.append(f"{response.status_code} {response.text[:100]}")


async def phase(url: str, drawing: bytes, hostile: list[bytes], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    normal_times, normal_errors, hostile_times, hostile_errors = [], [], [], []
    tasks = [client_loop(url, drawing, deadline, normal_times, normal_errors) for _ in range(4)]
    tasks += [client_loop(url, body, deadline, hostile_times, hostile_errors) for body in hostile]
    await asyncio.gather(*tasks)
    return {
        "normal_median_ms": round(statistics.median(normal_times), 1) if normal_times else None,
        "normal_requests": len(normal_times),
        "normal_errors": len(normal_errors),
        "hostile_answered": len(hostile_times),
        "hostile_errors": hostile_errors[:3],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK or not 0 < args.seconds <= 120:
        print("error: loopback only, at most 120 s", file=sys.stderr)
        return 2
    images = cases()
    drawing = images["slate drawing 280x280 RGBA (reference)"]
    dearest = [body for name, body in images.items() if not name.startswith("refused") and "drawing" not in name]
    alone = asyncio.run(phase(args.url, drawing, [], args.seconds))
    attacked = asyncio.run(phase(args.url, drawing, (dearest * 4)[:4], args.seconds))
    ratio = attacked["normal_median_ms"] / alone["normal_median_ms"]
    passed = ratio <= 3 and attacked["normal_errors"] == 0
    print(json.dumps({"alone": alone, "with_4_hostile_clients": attacked, "ratio": round(ratio, 2), "passed": passed}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
