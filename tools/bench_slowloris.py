"""Slowloris at the page (docs/security.md P7), as a benchmark: connections that never finish their request head,
against a running product.

    ulimit -n 8192; python -m tools.bench_slowloris [--url http://127.0.0.1:8501] [--connections 3000] [--seconds 40]

It starts nothing. Opens --connections connections, sends each half a request head ("GET / HTTP/1.1", a Host line,
no blank line) and nothing more, then waits up to --seconds for the server to close them (EOF or reset), while one
normal client GETs the page every second. Reported: how many the server closed, when (median, 90th percentile, last),
and the normal client's answers and slowest time. Target: >= 90% closed within 40 s, the page still answering.
Loopback only, bounded in time and count; prints one JSON line. Each connection is a file descriptor here: raise
`ulimit -n` above --connections first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import psutil

from tools.bench_hostile import LOOPBACK

HALF_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # no end of line, no blank line: the head never ends


async def half_sent(host: str, port: int, started: float, deadline: float) -> float | str:
    """One connection: half a head, then wait. The seconds until the server closed it, or why not."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return f"connect: {type(exc).__name__}"
    try:
        writer.write(HALF_HEAD)
        await writer.drain()
        while True:
            data = await asyncio.wait_for(reader.read(4096), max(0.01, deadline - time.monotonic()))
            if not data:
                return time.monotonic() - started  # EOF: the server closed it (it may have answered first)
    except TimeoutError:
        return "still open"
    except OSError:  # reset by the server
        return time.monotonic() - started
    finally:
        writer.close()


async def normal_client(url: str, stop: asyncio.Event) -> dict:
    answers, times = Counter(), []
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each time, as a new visitor's
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=fresh) as client:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                answers[str((await client.get("/api/history")).status_code)] += 1
                times.append((time.perf_counter() - began) * 1000)
            except httpx.HTTPError as exc:
                answers[type(exc).__name__] += 1
            await asyncio.sleep(1)
    return {"answers": dict(answers), "slowest_ms": round(max(times), 1) if times else None}


async def attack(url: str, count: int, seconds: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    started = time.monotonic()
    deadline = started + seconds
    stop = asyncio.Event()
    normal = asyncio.create_task(normal_client(url, stop))
    outcomes = []
    for batch in range(0, count, 250):  # opened in batches, as fast as the listen backlog takes them
        size = min(250, count - batch)
        outcomes.append(asyncio.gather(*(half_sent(host, port, started, deadline) for _ in range(size))))
        await asyncio.sleep(0.05)
    results = [result for batch in await asyncio.gather(*outcomes) for result in batch]
    stop.set()
    closed = sorted(result for result in results if isinstance(result, float))
    return {
        "connections": count,
        "closed_by_server": len(closed),
        "closed_share": round(len(closed) / count, 3),
        "close_median_s": round(statistics.median(closed), 1) if closed else None,
        "close_p90_s": round(closed[int(len(closed) * 0.9) - 1], 1) if len(closed) >= 10 else None,
        "close_last_s": round(closed[-1], 1) if closed else None,
        "not_closed": dict(Counter(result for result in results if isinstance(result, str))),
        "normal_client": await normal,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK or not 0 < args.seconds <= 120 or not 1 <= args.connections <= 5000:
        print("error: loopback only, at most 120 s and 5000 connections", file=sys.stderr)
        return 2
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < args.connections + 100:
        print(f"error: raise the file limit first (ulimit -n {args.connections + 1000})", file=sys.stderr)
        return 2
    figures = asyncio.run(attack(args.url, args.connections, args.seconds))
    passed = figures["closed_share"] >= 0.9 and "200" in figures["normal_client"]["answers"]
    load = [round(value, 2) for value in psutil.getloadavg()]
    print(json.dumps({**figures, "seconds": args.seconds, "passed": passed, "loadavg": load}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
