"""The red teams' acceptance figures, as a benchmark (`make bench-hostile`): what hostile clients do to 4 normal users,
through a running product.

    python -m tools.bench_hostile [--url http://127.0.0.1:8501] [--seconds 15] [--why | --numbers [--networks 1] |
                                   --journal | --cookies 32]

Phase 1: 4 normal users (own session cookies) draw -> predict one at a time through the page's JSON API for
--seconds; their median latency.
Phase 2: the same beside the attack. Without --why (the dearest accepted images, docs/security.md's first red-team
pass): 4 other clients (own cookies) send the dearest accepted images back to back (each at most API_MAX_IN_FLIGHT in
flight, as the page allows). With --why (docs/security.md N1, Why? floods): one Chromium tab of the drawing page that
draws a new digit, presses Predict and asks Why? for all ten digits twice, every 0.5 s (tools/page_client.py).
Target: each normal user's median within 3x of phase 1's median, and none of their requests failing. Loopback only,
bounded in time; prints one JSON line.

--numbers (docs/security.md P3, Number mode starvation): the normal users are 4 reading numbers (/api/numbers, an
840x280 drawing of 1704: every number takes the large-image lane) and 4 predicting digits; the attack is 8 clients
(own cookies) sending the dearest drawings for the number reader (tools/bad_inputs.py zigzag_number, two kinds in
turn) back to back, each with one in flight (--loops 2: two, beyond its network's limit: 429s), from one address of
another network than the users' (127.0.1.1: a /24 of its own), or --networks N addresses of N networks. Each kind of
user is judged against its own median alone.

--cookies N (docs/security.md P6, fresh cookies against the per-client limit): the attack is N connections from one
address of another network (127.0.1.1), each with a cookie of its own, each predicting a slate drawing back to back
(429s retried at once).

--journal (docs/security.md P4, the journal flood), against `make run`'s private PostgreSQL: 4 users saving drawings
(own cookies) alone with the database up; then the database held down (its postmaster stopped with SIGSTOP, the page's
connections ended with SIGTERM, as a host that stops answering) and the users alone; then one address of another network
(127.0.1.1) flooding saves of a 300x300 noise PNG (360 KB, the most a drawing below the large-image lane keeps) without
cookies, 8 in flight, for --seconds; then the database back (SIGCONT). Figures: the journal's peak size, the users'
medians, how long after the database came back the journal was drained, and whether every drawing answered to the users
is in their history afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
from PIL import Image, ImageDraw

from tools.bad_inputs import noise_png, zigzag_number
from tools.bench_inputs import ROOT, cases, number_drawing
from tools.page_client import flood_why

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def client_loop(url: str, body: bytes, deadline: float, times: list[float], errors: list[str], *,
                      route: str = "/api/predictions", address: str | None = None, loops: int = 1,
                      bodies: list[bytes] | None = None) -> None:  # fmt: skip
    """One client predicting back to back until the deadline (`loops` requests in flight; from the local `address`;
    `bodies` in turn instead of `body`); a request that fails (or times out after 30 s) counts with the time it took
    as well as an error."""
    transport = httpx.AsyncHTTPTransport(local_address=address) if address else None
    async with httpx.AsyncClient(base_url=url, timeout=30, transport=transport) as client:
        await client.get("/api/history")  # the session cookie first, as a browser has it
        await asyncio.gather(*(_requests(client, bodies or [body], deadline, times, errors, route=route, first=i)
                               for i in range(loops)))  # fmt: skip


async def _requests(client: httpx.AsyncClient, bodies: list[bytes], deadline: float, times: list[float],
                    errors: list[str], *, route: str, first: int) -> None:  # fmt: skip
    turn = first
    while time.monotonic() < deadline:
        body, turn = bodies[turn % len(bodies)], turn + 1
        started = time.perf_counter()
        try:
            response = await client.post(f"{route}?save=false", content=body, headers={"Content-Type": "image/png"})
            status, text = response.status_code, response.text
        except httpx.TransportError as exc:
            status, text = 0, repr(exc)
        if status == 429:  # the page's own limit for the hostile clients is expected: they try again at once
            await asyncio.sleep(0.02)  # (a little later: a loop spinning on 429s would be this script's own load)
            continue
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            errors.append(f"{status} {text[:100]}")


async def phase(url: str, drawing: bytes, hostile: list[bytes], seconds: float, *, why_tab: bool = False,
                hostile_address: str | None = None) -> dict:  # fmt: skip
    deadline = time.monotonic() + seconds
    users: list[list[float]] = [[] for _ in range(4)]
    normal_errors, hostile_times, hostile_errors = [], [], []
    tasks = [client_loop(url, drawing, deadline, times, normal_errors) for times in users]
    tasks += [client_loop(url, body, deadline, hostile_times, hostile_errors, address=hostile_address)
              for body in hostile]  # fmt: skip
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


async def numbers_phase(url: str, seconds: float, *, attack: bool, networks: int = 1, loops: int = 1) -> dict:
    """4 users reading numbers and 4 predicting digits (127.0.0.1) for `seconds`, beside 8 clients sending the
    reader's dearest drawings from `networks` other networks when `attack`, `loops` in flight each (one: the 8 fill
    their network's in-flight limit; more only adds 429s)."""
    deadline = time.monotonic() + seconds
    number, digit = number_drawing(), cases()["slate drawing 280x280 RGBA (reference)"]
    readers: list[list[float]] = [[] for _ in range(4)]
    drawers: list[list[float]] = [[] for _ in range(4)]
    errors: list[str] = []
    hostile_times: list[float] = []
    hostile_errors: list[str] = []
    tasks = [client_loop(url, number, deadline, times, errors, route="/api/numbers") for times in readers]
    tasks += [client_loop(url, digit, deadline, times, errors) for times in drawers]
    if attack:
        worst = [zigzag_number(), zigzag_number(step=22, amplitude=200, pen=5)]  # before the budget; with it
        tasks += [client_loop(url, b"", deadline, hostile_times, hostile_errors, route="/api/numbers", loops=loops,
                              bodies=worst, address=f"127.0.{1 + i % networks}.1") for i in range(8)]  # fmt: skip
    await asyncio.gather(*tasks)
    return {
        "numbers": users_figures(readers, seconds),
        "digits": users_figures(drawers, seconds),
        "normal_errors": errors[:3] + ([f"... {len(errors)} in all"] if len(errors) > 3 else []),
        "hostile_answered": len(hostile_times),
        "hostile_median_ms": round(statistics.median(hostile_times), 1) if hostile_times else None,
        "hostile_errors": sorted({error[:60] for error in hostile_errors})[:3],
    }


def users_figures(users: list[list[float]], seconds: float) -> dict:
    everyone = [t for times in users for t in times]
    return {
        "median_ms": round(statistics.median(everyone), 1) if everyone else None,
        "worst_user_median_ms": round(max(statistics.median(t) if t else seconds * 1000 for t in users), 1),
        "p90_ms": round(statistics.quantiles(everyone, n=10)[-1], 1) if len(everyone) > 1 else None,
        "requests": len(everyone),
    }


def numbers_bench(url: str, seconds: float, *, networks: int, loops: int) -> int:
    alone = asyncio.run(numbers_phase(url, seconds, attack=False))
    attacked = asyncio.run(numbers_phase(url, seconds, attack=True, networks=networks, loops=loops))
    ratios = {kind: round(attacked[kind]["worst_user_median_ms"] / alone[kind]["median_ms"], 2)
              for kind in ("numbers", "digits")}  # fmt: skip
    passed = max(ratios.values()) <= 3 and not attacked["normal_errors"]
    name = f"with_8_clients_sending_zigzags_from_{networks}_network{'s' if networks > 1 else ''}"
    print(json.dumps({"alone": alone, name: attacked, "ratios": ratios, "passed": passed}))
    return 0 if passed else 1


@dataclass
class Saver:
    """A user saving drawings back to back: the time each took and the request ids of those answered."""

    times: list[float] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    client: httpx.AsyncClient | None = None


async def save_loop(saver: Saver, body: bytes, until: asyncio.Event) -> None:
    assert saver.client is not None
    while not until.is_set():
        started = time.perf_counter()
        try:
            response = await saver.client.post("/api/predictions", content=body, headers={"Content-Type": "image/png"})
            status, text = response.status_code, response.text
        except httpx.TransportError as exc:
            status, text = 0, repr(exc)
        saver.times.append((time.perf_counter() - started) * 1000)
        if status == 200:
            saver.kept.append(response.json()["request_id"])
        else:
            saver.errors.append(f"{status} {text[:120]}")


async def flood_loop(url: str, body: bytes, until: asyncio.Event, answers: Counter, messages: set[str]) -> None:
    """Saves without a cookie (a fresh browser id each time) from 127.0.1.1, back to back."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.1.1")
    async with httpx.AsyncClient(base_url=url, timeout=30, transport=transport) as client:
        while not until.is_set():
            client.cookies.clear()
            try:
                response = await client.post("/api/predictions", content=body, headers={"Content-Type": "image/png"})
            except httpx.TransportError as exc:
                answers["transport error"] += 1
                messages.add(repr(exc)[:100])
                continue
            answers[str(response.status_code)] += 1
            if response.status_code == 429:
                await asyncio.sleep(0.02)
            elif response.status_code != 200:
                messages.add(f"{response.status_code} {response.text[:200]}")


def journal_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.jsonl") if path.exists())


def hold_database(pid_file: Path) -> psutil.Process:
    """Stop the private PostgreSQL from answering: its postmaster stopped (SIGSTOP: new connections hang until their
    timeout), the backends serving clients ended (SIGTERM, as pg_terminate_backend does: the page's pooled
    connections fail). The other server processes stay as they are."""
    postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
    postmaster.suspend()
    for child in postmaster.children():
        if re.search(r"\(\d+\)|\[local\]", " ".join(child.cmdline())):  # "postgres: user db 127.0.0.1(5432) idle"
            child.terminate()
    return postmaster


async def history_ids(saver: Saver) -> set[str]:
    assert saver.client is not None
    found: set[str] = set()
    offset = 0
    while True:
        response = await saver.client.get("/api/history", params={"limit": 100, "offset": offset})
        response.raise_for_status()
        page = response.json()
        found.update(item["request_id"] for item in page["predictions"])
        offset += 100
        if offset >= page["total"]:
            return found


async def journal_bench(url: str, seconds: float, *, journal_dir: Path, pid_file: Path) -> dict:
    drawing = cases()["slate drawing 280x280 RGBA (reference)"]
    savers = [Saver(client=httpx.AsyncClient(base_url=url, timeout=60)) for _ in range(4)]
    for saver in savers:
        await saver.client.get("/api/history")  # type: ignore[union-attr]  # the session cookie first

    async def users_for(duration: float, *also) -> list[float]:
        until, start = asyncio.Event(), [len(saver.times) for saver in savers]
        tasks = [asyncio.create_task(save_loop(saver, drawing, until)) for saver in savers]
        tasks += [asyncio.create_task(task(until)) for task in also]
        await asyncio.sleep(duration)
        until.set()
        await asyncio.gather(*tasks)
        return [statistics.median(saver.times[begin:]) for saver, begin in zip(savers, start, strict=True)]

    figures: dict = {"database_up_alone_ms": [round(m, 1) for m in await users_for(seconds / 2)]}
    postmaster = hold_database(pid_file)
    peak, answers, messages = [0], Counter[str](), set[str]()
    try:
        figures["outage_alone_ms"] = [round(m, 1) for m in await users_for(seconds / 2)]
        noise = noise_png(300, 300)

        async def watch(until: asyncio.Event) -> None:
            while not until.is_set():
                peak[0] = max(peak[0], journal_bytes(journal_dir))
                await asyncio.sleep(0.2)

        floods = [functools.partial(flood_loop, url, noise, answers=answers, messages=messages) for _ in range(8)]
        figures["outage_with_flood_ms"] = [round(m, 1) for m in await users_for(seconds, watch, *floods)]
    finally:
        postmaster.resume()
    back = time.monotonic()
    while journal_bytes(journal_dir) and time.monotonic() - back < 120:
        await asyncio.sleep(0.1)
    figures["drained_after_s"] = round(time.monotonic() - back, 1) if not journal_bytes(journal_dir) else None
    figures["journal_peak_mb"] = round(peak[0] / 1e6, 1)
    figures["flood_answers"] = dict(answers)
    figures["flood_refusals"] = sorted(messages)[:3]
    missing = 0
    for saver in savers:
        missing += len(set(saver.kept) - await history_ids(saver))
        await saver.client.aclose()  # type: ignore[union-attr]
    figures["users_answered"] = sum(len(saver.kept) for saver in savers)
    figures["users_missing_from_history"] = missing
    figures["users_errors"] = sorted({e for saver in savers for e in saver.errors})[:3]
    alone = statistics.median(figures["outage_alone_ms"])
    figures["ratio"] = round(max(figures["outage_with_flood_ms"]) / alone, 2)
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
    parser.add_argument("--numbers", action="store_true", help="number and digit users beside 8 zigzag senders")
    parser.add_argument("--networks", type=int, default=1, help="--numbers: the senders' networks (1-8)")
    parser.add_argument("--loops", type=int, default=1, help="--numbers: requests in flight per sender (1-2)")
    parser.add_argument("--journal", action="store_true", help="a flood of saves while the database is down")
    parser.add_argument("--cookies", type=int, default=0, help="N connections from one address, a fresh cookie each")
    parser.add_argument("--journal-dir", type=Path, default=ROOT / "var" / "journal")
    parser.add_argument("--postgres-pid-file", type=Path, default=ROOT / "var" / "postgres" / "data" / "postmaster.pid")
    args = parser.parse_args(argv)
    if urlsplit(args.url).hostname not in LOOPBACK or not 0 < args.seconds <= 120 or not 1 <= args.networks <= 8:
        print("error: loopback only, at most 120 s, 1-8 networks", file=sys.stderr)
        return 2
    if args.numbers:
        return numbers_bench(args.url, args.seconds, networks=args.networks, loops=min(max(args.loops, 1), 2))
    if args.journal:
        figures = asyncio.run(journal_bench(args.url, args.seconds, journal_dir=args.journal_dir,
                                            pid_file=args.postgres_pid_file))  # fmt: skip
        drained = figures["drained_after_s"] is not None and figures["drained_after_s"] <= 10
        passed = (figures["journal_peak_mb"] <= 100 and figures["ratio"] <= 3 and not figures["users_errors"]
                  and figures["users_missing_from_history"] == 0 and drained)  # fmt: skip
        print(json.dumps(figures | {"passed": passed}))
        return 0 if passed else 1
    images = cases()
    drawing = images["slate drawing 280x280 RGBA (reference)"]
    dearest = [body for name, body in images.items() if not name.startswith("refused") and "drawing" not in name]
    alone = asyncio.run(phase(args.url, drawing, [], args.seconds))
    hostile = [] if args.why else (dearest * 4)[:4]
    address = None
    if args.cookies:  # a slate drawing each, one in flight per connection, all from one address of another network
        hostile, address = [drawing] * min(args.cookies, 64), "127.0.1.1"
    attacked = asyncio.run(phase(args.url, drawing, hostile, args.seconds, why_tab=args.why, hostile_address=address))
    ratio = attacked["worst_user_median_ms"] / alone["normal_median_ms"]
    passed = ratio <= 3 and attacked["normal_errors"] == 0
    name = "with_a_tab_flooding_why" if args.why else "with_4_hostile_clients"
    if args.cookies:
        name = f"with_{len(hostile)}_fresh_cookies_from_one_address"
    print(json.dumps({"alone": alone, name: attacked, "ratio": round(ratio, 2), "passed": passed}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
