"""Load test (`make load`): N simulated users draw -> predict -> give feedback for T seconds against the whole product.

    python -m tools.load --data-dir DIR [--users 32] [--seconds 60] [--think 0.5] [--out var/load.json]
    python -m tools.load --data-dir DIR --url http://127.0.0.1:8501 --database-url postgresql://...

Without --url it starts the whole product the way `make run` does (PostgreSQL, TorchServe, the UI) on free ports in
a folder of its own, so it runs beside a `make run`, and stops it at the end. Each user is a client with its own
session cookie that loops: pick an MNIST test digit drawn as a 280x280 canvas, POST it to the page's JSON API
(/api/predictions, with an Idempotency-Key), PUT the true digit as its label, wait a little (--think: a uniform pause
of 0..2x that many seconds), repeat. Afterwards every answered prediction is looked up in PostgreSQL by its request
id: a "lost row" is one the app answered but did not store (or stored without its label).

Loopback only and bounded: --url must be on 127.0.0.1/localhost, at most 256 users and 600 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from training import canvas, data

ROOT = Path(__file__).resolve().parent.parent
MAX_USERS, MAX_SECONDS = 256, 600
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Tally:
    predict_ms: list[float] = field(default_factory=list)
    label_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answered: dict[str, int] = field(default_factory=dict)  # request_id -> the label given
    journaled: int = 0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def user(
    base_url: str, drawings: list[tuple[bytes, int]], deadline: float, think: float, tally: Tally, *, index: int = 0
) -> None:
    rng = random.Random()
    # each user from a network of its own (loopback has all of 127.0.0.0/8): the page limits predictions in flight per
    # network as well as per client, and 32 people are not one office behind one address
    transport = httpx.AsyncHTTPTransport(local_address=f"127.1.{index % 256}.1")
    timeout = httpx.Timeout(30, connect=5)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport) as client:
        # the session cookie first, as a browser has it: cookie-less requests are counted by address (ui/limits.py),
        # and 32 users starting together from 127.0.0.1 would share that address's 2 predictions in flight
        await client.get("/api/history")

        async def timed(step: str, times: list[float], request) -> httpx.Response | None:
            """One request: its time in `times`; None (and the error in the tally) unless it answered 200."""
            started = time.perf_counter()
            try:
                response = await request
            except httpx.HTTPError as exc:
                tally.errors.append(f"{step}: {type(exc).__name__}: {exc}")
                return None
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                tally.errors.append(f"{step}: {response.status_code} {response.text[:200]}")
                return None
            return response

        while time.monotonic() < deadline:
            png, label = rng.choice(drawings)
            key = str(uuid.uuid4())
            headers = {"Content-Type": "image/png", "Idempotency-Key": key}
            answer = await timed(
                "predict", tally.predict_ms, client.post("/api/predictions", content=png, headers=headers)
            )
            if answer is None:
                continue
            tally.journaled += answer.json()["saved"] == "journal"
            labelled = await timed(
                "label", tally.label_ms, client.put(f"/api/predictions/{key}/label", json={"digit": label})
            )
            if labelled is None:
                continue
            tally.answered[key] = label
            await asyncio.sleep(rng.uniform(0, 2 * think))


def lost_rows(database_url: str, answered: dict[str, int], *, wait: float = 30.0) -> list[str]:
    """Request ids the app answered whose row (with its label) is not in the database. Journaled rows are
    written a moment later, so this waits up to `wait` seconds for them."""
    deadline = time.monotonic() + wait
    while True:
        with psycopg.connect(database_url) as conn:
            found = dict(
                conn.execute(
                    "SELECT request_id::text, true_digit FROM predictions WHERE request_id = ANY(%s::uuid[])",
                    (list(answered),),
                ).fetchall()
            )
        lost = [key for key, label in answered.items() if found.get(key) != label]
        if not lost or time.monotonic() > deadline:
            return lost
        time.sleep(1)


async def run_load(
    base_url: str, database_url: str, drawings: list[tuple[bytes, int]], *, users: int, seconds: float, think: float
) -> dict:
    """Run the load and return the report (also the shape of --out)."""
    host = urlsplit(base_url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"the load test runs against loopback only, not {host}")
    if not 1 <= users <= MAX_USERS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"need 1..{MAX_USERS} users and 0..{MAX_SECONDS} seconds, got {users} and {seconds}")
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(user(base_url, drawings, deadline, think, tally, index=i) for i in range(users)))
    elapsed = time.monotonic() - started
    lost = lost_rows(database_url, tally.answered)

    def summary(values: list[float]) -> dict:
        return {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "mean_ms": statistics.fmean(values) if values else None,
        }

    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "think_seconds": think,
        "predictions_answered": len(tally.predict_ms),
        "rounds_completed": len(tally.answered),
        "throughput_per_s": round(len(tally.predict_ms) / elapsed, 1),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:10],
        "lost_rows": len(lost),
        "lost_samples": lost[:10],
        "journaled": tally.journaled,
        "predict": summary(tally.predict_ms),
        "label": summary(tally.label_ms),
    }


def drawings_from(data_dir: Path, count: int = 300) -> list[tuple[bytes, int]]:
    split = data.load(data_dir, allow_download=False)["test"]
    return [(png, label) for png, label, _ in canvas.canvas_set(split.images, split.labels, count=count // 3, seed=5)]


def format_report(report: dict) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    lines = [
        f"{report['users']} users x {report['seconds']} s (think {report['think_seconds']} s): "
        f"{report['predictions_answered']} predictions, {report['rounds_completed']} labelled, "
        f"{report['throughput_per_s']} predictions/s",
        f"  errors     {report['errors']}",
        f"  lost rows  {report['lost_rows']}" + (f" (journaled then written: {report['journaled']})" * bool(
            report["journaled"])),
        f"  predict    p50 {ms(report['predict']['p50_ms'])}, p99 {ms(report['predict']['p99_ms'])}",
        f"  label      p50 {ms(report['label']['p50_ms'])}, p99 {ms(report['label']['p99_ms'])}",
    ]  # fmt: skip
    lines += [f"  error: {sample}" for sample in report["error_samples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="the MNIST IDX files (test split)")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between a user's rounds (s)")
    parser.add_argument("--url", help="a running page (default: start the whole product on free ports)")
    parser.add_argument("--database-url", help="its database (required with --url)")
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "load.json")
    args = parser.parse_args(argv)
    if args.url and not args.database_url:
        parser.error("--url needs --database-url (to check that no row is lost)")
    drawings = drawings_from(args.data_dir)
    if args.url:
        report = asyncio.run(
            run_load(args.url, args.database_url, drawings, users=args.users, seconds=args.seconds, think=args.think)
        )
    else:
        with product(args.model_store) as (url, database_url):
            report = asyncio.run(
                run_load(url, database_url, drawings, users=args.users, seconds=args.seconds, think=args.think)
            )
    print(format_report(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["errors"] == 0 and report["lost_rows"] == 0 else 1


class product:
    """The whole product started like `make run`, on free ports in a temporary folder (context manager)."""

    def __init__(self, model_store: Path):
        self.model_store = model_store

    def __enter__(self) -> tuple[str, str]:
        from db.embedded import PrivateServer
        from tools.stack import start_supervisor, supervisor_env

        self.home = Path(tempfile.mkdtemp(prefix="digits-load-"))
        env = supervisor_env(self.home, self.model_store)
        self.process, self.lines = start_supervisor(env)
        self.pg_home = Path(env["PG_HOME"])
        database_url = PrivateServer(home=self.pg_home, port=int(env["PG_PORT"])).url
        return f"http://127.0.0.1:{env['UI_PORT']}", database_url

    def __exit__(self, *exc_info) -> None:
        self.process.send_signal(2)  # Ctrl-C: the supervisor stops everything
        try:
            self.process.wait(timeout=60)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.rmtree(self.pg_home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
