"""Benchmarks (`make bench`): speed lives here, never as timing asserts in tests.

    python -m tools.bench --data-dir DIR [--requests 2000] [--pg-rows 100000] [--out var/bench.json]
    python -m tools.bench --data-dir DIR --numbers-only     # just the numbers rows (a few minutes)

Everything is measured in one run on the same 280x280 canvas PNGs, so the ratios are meaningful even on a shared,
noisy machine (absolute figures are not):
  the limit       in-process preprocessing, and preprocessing + forward one image at a time and in batches of 32
  TorchServe      REST at concurrency 1, 8 and 32 for several serving configurations (batching off / on, workers,
                  torch threads per worker), with a light asyncio client (aiohttp, connections reused)
  the page        the page's predict path (TorchServe client -> TorchServe -> Postgres insert), one user at a time
  Postgres        inserts/s through the app's insert, and the history query on a table of --pg-rows rows
  training        seconds to reach 99.5% MNIST test accuracy, from the shipped metrics.json
  numbers         numbers of 4 digits (X-Read: number, 840x280 slates composed from the pendigits validation
                  writers: --pendigits or $PENDIGITS_FILE; left out without it): in-process cost per number, and
                  through TorchServe (shipped config) at concurrency 8 (target p99 <= 80 ms), digits per second
                  beside single digits per second
Client and servers share this machine's cores: the load generator's CPU is part of every REST figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import numpy as np
import psycopg
import torch

from db.embedded import start_private_server
from db.pool import SCHEMA_FILE, open_pool
from db.predictions import PredictionStore
from deploy.torchserve import TorchServe, free_ports, temporary
from handler.model import for_inference
from handler.preprocess import prepare
from records.predictions import Prediction, StoredPrediction
from serving.auth import authorization
from serving.endpoints import read_properties
from serving.inference import Predictor
from training import canvas, data, finetune
from training.segmentation_eval import InProcessReader

ROOT = Path(__file__).resolve().parent.parent
MODEL = "mnist"


def shipped_default() -> tuple[str, str]:
    """(version, archive) of the version config.properties makes the default (the first archive of load_models): what
    the alternatives are measured with."""
    properties = read_properties((ROOT / "config.properties").read_text())
    first = properties["load_models"].split(",")[0]
    versions = json.loads(properties["models"])[MODEL]
    return next((version, first) for version, spec in versions.items() if spec["marName"] == first)


SERVED = shipped_default()


def _models(batch_size: int, delay_ms: int, workers: int) -> dict[str, str]:
    """Overrides serving only the default version with these settings (the first of load_models is the default)."""
    version, archive = SERVED
    models = {MODEL: {version: {"defaultVersion": True, "marName": archive, "minWorkers": workers,
                                "maxWorkers": workers, "batchSize": batch_size, "maxBatchDelay": delay_ms,
                                "responseTimeout": 30}}}  # fmt: skip
    return {"load_models": archive, "models": json.dumps(models)}


# name -> (config.properties overrides, TORCH_NUM_THREADS)
CONFIGS = {
    "no batching, 1 worker, 2 threads": (_models(1, 0, 1), "2"),
    "no batching, 2 workers, 1 thread": (_models(1, 0, 2), "1"),
    "batch 8 / 5 ms, 1 worker, 2 threads": (_models(8, 5, 1), "2"),
    "batch 16 / 2 ms, 1 worker, 2 threads": (_models(16, 2, 1), "2"),
    "batch 16 / 2 ms, 1 worker, 1 thread": (_models(16, 2, 1), "1"),
    "batch 16 / 2 ms, 2 workers, 1 thread": (_models(16, 2, 2), "1"),
    f"shipped config.properties (every version it loads, {SERVED[0]} the default)": ({}, None),
}


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def limit(pngs: list[bytes], model: Callable[[torch.Tensor], torch.Tensor]) -> list[dict]:
    """In-process: the same work TorchServe's worker does, without HTTP or queues (model: the forward pass the
    handler runs, handler.model.for_inference)."""
    rows = []
    started = time.perf_counter()
    for png in pngs:
        prepare(png)
    seconds = time.perf_counter() - started
    rows.append({"what": "preprocessing only (ms each in p50 column)", "per_s": len(pngs) / seconds,
                 "p50_ms": 1000 * seconds / len(pngs)})  # fmt: skip
    with torch.inference_mode():
        started = time.perf_counter()
        for png in pngs:
            model(prepare(png).tensor().unsqueeze(0))
        seconds = time.perf_counter() - started
        rows.append({"what": "limit: preprocess + forward, 1 at a time", "per_s": len(pngs) / seconds})
        started = time.perf_counter()
        for start in range(0, len(pngs), 32):
            model(torch.stack([prepare(png).tensor() for png in pngs[start : start + 32]]))
        seconds = time.perf_counter() - started
        rows.append({"what": "limit: preprocess + forward, batches of 32", "per_s": len(pngs) / seconds})
    return rows


async def _load(
    server: TorchServe, pngs: list[bytes], *, concurrency: int, requests: int, headers: dict | None = None
) -> dict:
    url = f"{server.endpoints.inference}/predictions/{MODEL}"
    # aiohttp, not serving's httpx client: the load generator's own CPU is part of every figure, so it stays light
    headers = {**authorization(server.key_file, "inference"), "Content-Type": "image/png"} | (headers or {})
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))

    async def user(session: aiohttp.ClientSession, record: bool) -> None:
        nonlocal errors
        for index in counter:
            started = time.perf_counter()
            async with session.post(url, data=pngs[index % len(pngs)], headers=headers) as response:
                await response.read()
                ok = response.status == 200
            if record:
                latencies.append(time.perf_counter() - started)
                errors += not ok

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        counter = iter(range(min(100, requests)))  # warm-up: connections, worker, caches
        await asyncio.gather(*(user(session, False) for _ in range(concurrency)))
        counter = iter(range(requests))
        started = time.perf_counter()
        await asyncio.gather(*(user(session, True) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"per_s": requests / seconds, **percentiles(latencies), "errors": errors}


def serving(pngs: list[bytes], *, requests: int, model_store: Path) -> list[dict]:
    rows = []
    for name, (overrides, threads) in CONFIGS.items():
        with (
            _torch_threads(threads),
            temporary(
                config_template=ROOT / "config.properties", model_store=model_store, overrides=overrides
            ) as server,
        ):
            for concurrency in (1, 8, 32):
                result = asyncio.run(_load(server, pngs, concurrency=concurrency, requests=requests))
                rows.append({"what": f"TorchServe: {name}, concurrency {concurrency}", **result})
                print(f"  {rows[-1]['what']}: {result['per_s']:.0f}/s p50 {result['p50_ms']:.1f} ms", flush=True)
    return rows


@contextmanager
def _torch_threads(threads: str | None):
    previous = os.environ.get("TORCH_NUM_THREADS")
    if threads is None:
        os.environ.pop("TORCH_NUM_THREADS", None)
    else:
        os.environ["TORCH_NUM_THREADS"] = threads
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_NUM_THREADS", None)
        else:
            os.environ["TORCH_NUM_THREADS"] = previous


@contextmanager
def private_postgres():
    home = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    try:
        (port,) = free_ports(1)
        server = start_private_server(home=home, port=port)
        try:
            with psycopg.connect(server.url, autocommit=True) as conn:
                conn.execute(SCHEMA_FILE.read_text())
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _record(png: bytes, prediction: Prediction, *, browser: str) -> StoredPrediction:
    return StoredPrediction(request_id=uuid.uuid4(), browser_id=browser, answer=prediction, canvas_png=png)


async def _page_path(server: TorchServe, database_url: str, pngs: list[bytes], *, count: int) -> dict:
    """What the page does on Predict, one user: ask TorchServe (with the preview), then insert the row."""
    predictor = Predictor(inference_url=server.endpoints.inference, key_file=server.key_file)
    pool = await open_pool(database_url)
    latencies = []
    try:
        for index in range(count + 20):
            started = time.perf_counter()
            png = pngs[index % len(pngs)]
            prediction = await predictor.predict(png)
            await PredictionStore(pool).insert(_record(png, prediction, browser="bench-page"))
            if index >= 20:  # the first ones warm up connections
                latencies.append(time.perf_counter() - started)
    finally:
        await predictor.close()
        await pool.close()
    return {"what": "page predict path: TorchServe + Postgres insert, 1 user", "per_s": count / sum(latencies),
            **percentiles(latencies)}  # fmt: skip


async def _postgres(database_url: str, pngs: list[bytes], *, rows: int) -> list[dict]:
    pool = await open_pool(database_url)
    answer = Prediction(digit=7, confidence=0.9, probabilities=[0.1] * 10, model_name=MODEL, model_version="1.0",
                        preview_png=None, latency_ms=5.0, closest_digit=7)  # fmt: skip
    template = StoredPrediction(request_id=uuid.uuid4(), browser_id="x", answer=answer, canvas_png=pngs[0])
    try:
        count, started = 2000, time.perf_counter()
        for index in range(count):
            browser = f"browser-{index % 100}"
            record = {**template.__dict__, "request_id": uuid.uuid4(), "browser_id": browser,
                      "canvas_png": pngs[index % len(pngs)]}  # fmt: skip
            await PredictionStore(pool).insert(StoredPrediction(**record))
        insert_rate = count / (time.perf_counter() - started)
        await _bulk_fill(database_url, pngs, rows=rows - count)
        latencies = []
        for index in range(300):
            started = time.perf_counter()
            await PredictionStore(pool).history(browser_id=f"browser-{index % 100}", limit=10, offset=0)
            await PredictionStore(pool).history_count(browser_id=f"browser-{index % 100}")
            await PredictionStore(pool).accuracy_by_version(browser_id=f"browser-{index % 100}")
            latencies.append(time.perf_counter() - started)
        stats_started = time.perf_counter()
        await PredictionStore(pool).stats()
        stats_ms = 1000 * (time.perf_counter() - stats_started)
    finally:
        await pool.close()
    per_browser = rows // 100
    return [
        {"what": "Postgres: inserts through the app (one transaction each)", "per_s": insert_rate},
        {"what": f"Postgres: history page + count + accuracy, {rows:,} rows ({per_browser:,} per browser)",
         "per_s": 300 / sum(latencies), **percentiles(latencies)},
        {"what": f"Postgres: stats page queries over {rows:,} rows (ms in p50 column)", "per_s": 1000 / stats_ms,
         "p50_ms": stats_ms},
    ]  # fmt: skip


async def _bulk_fill(database_url: str, pngs: list[bytes], *, rows: int) -> None:
    """Make the table big quickly (COPY); a third of the rows labelled, as users' feedback would."""
    rng = np.random.default_rng(0)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        columns = ("request_id, browser_id, model_name, model_version, predicted_digit, confidence, probabilities, "
                   "true_digit, feedback_at, canvas_png, latency_ms")  # fmt: skip
        async with conn.cursor().copy(f"COPY predictions ({columns}) FROM STDIN") as copy:
            for index in range(rows):
                digit = int(rng.integers(10))
                labelled = index % 3 == 0
                await copy.write_row((
                    uuid.uuid4(), f"browser-{index % 100}", MODEL, "1.0", digit, 0.9, [0.1] * 10,
                    digit if labelled else None, "now()" if labelled else None, pngs[index % len(pngs)], 5.0,
                ))  # fmt: skip
        await conn.execute("ANALYZE predictions")
        await conn.commit()


def number_pngs(pendigits_file: Path | None, *, count: int) -> list[bytes]:
    """Numbers of 4 digits composed from the pendigits validation writers (15% with a touching pair); [] without the
    file."""
    from training import pendigits, segmentation_eval

    try:
        _, heldout = pendigits.split_by_writer(pendigits.load(pendigits_file))
    except pendigits.PendigitsError as exc:
        print(f"numbers left out: {exc}")
        return []
    cases = segmentation_eval.composed_set(
        heldout, count=count, seed=22, spec=segmentation_eval.NumberSpec(lengths=(4, 4))
    )
    return [case.png for case in cases]


def number_limit(pngs: list[bytes], reader: InProcessReader) -> list[dict]:
    """In-process: what the handler does for one number request (decode, segment, every candidate in one forward
    pass, the wide ones through the pair reader when the version has one, choose), one number at a time."""
    latencies, digits = [], 0
    for png in pngs:
        started = time.perf_counter()
        answer = reader.read_png(png)
        latencies.append(time.perf_counter() - started)
        digits += len(answer["digits"])
    candidates = reader.spent["inputs"]
    return [{"what": f"numbers of 4 digits in-process, 1 at a time ({candidates / len(pngs):.1f} model inputs each)",
             "per_s": len(pngs) / sum(latencies), **percentiles(latencies),
             "digits_per_s": digits / sum(latencies)}]  # fmt: skip


def number_serving(numbers: list[bytes], digits: list[bytes], *, requests: int, model_store: Path) -> list[dict]:
    """Through TorchServe as config.properties ships it: numbers of 4 digits and single digits at concurrency 8."""
    rows = []
    with temporary(config_template=ROOT / "config.properties", model_store=model_store) as server:
        for name, pngs, headers, per_request in (
            ("numbers of 4 digits (X-Read: number)", numbers, {"X-Read": "number"}, 4),
            ("single digits", digits, {}, 1),
        ):
            result = asyncio.run(_load(server, pngs, concurrency=8, requests=requests, headers=headers))
            rows.append({"what": f"TorchServe, shipped config: {name}, concurrency 8", **result,
                         "digits_per_s": result["per_s"] * per_request})  # fmt: skip
            print(f"  {rows[-1]['what']}: {result['per_s']:.0f}/s p99 {result['p99_ms']:.1f} ms", flush=True)
    return rows


def training_row(model_store: Path) -> dict:
    metrics = json.loads((model_store / "v1.0" / "metrics.json").read_text())
    return {
        "what": "training: seconds to 99.5% MNIST test (shipped v1.0, 2 cores)",
        "seconds": metrics["seconds_to_99_5"],
        "total_seconds": metrics["train_seconds"],
    }


def table(rows: list[dict]) -> str:
    lines = ["| measurement | per second | p50 ms | p99 ms | errors | digits/s |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "seconds" in row:
            lines.append(f"| {row['what']} | {row['seconds']:.0f} s (of {row['total_seconds']:.0f} s) | | | | |")
            continue
        p50 = f"{row['p50_ms']:.1f}" if "p50_ms" in row else ""
        p99 = f"{row['p99_ms']:.1f}" if "p99_ms" in row else ""
        digits = f"{row['digits_per_s']:.0f}" if "digits_per_s" in row else ""
        lines.append(f"| {row['what']} | {row['per_s']:.0f} | {p50} | {p99} | {row.get('errors', '')} | {digits} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--images", type=int, default=200, help="distinct canvas PNGs (x3 styles)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per REST measurement")
    parser.add_argument("--page-requests", type=int, default=500)
    parser.add_argument("--pg-rows", type=int, default=100_000)
    parser.add_argument("--pendigits", type=Path, default=None, help="for the numbers rows (default $PENDIGITS_FILE)")
    parser.add_argument("--numbers", type=int, default=200, help="distinct numbers of 4 digits")
    parser.add_argument("--numbers-only", action="store_true", help="measure only the numbers rows")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench.json")
    args = parser.parse_args(argv)
    test = data.load(args.data_dir, allow_download=False)["test"]
    pngs = [png for png, _, _ in canvas.canvas_set(test.images, test.labels, count=args.images, seed=11)]
    model = finetune.load_model(args.model_store / f"v{SERVED[0]}")  # with its refusal head, if it has one
    forward = for_inference(model)  # the forward pass the handler runs
    numbers = number_pngs(args.pendigits, count=args.numbers)
    weights = args.model_store / f"v{SERVED[0]}" / "weights.pt"
    number_rows = number_limit(numbers, InProcessReader.load(weights)) if numbers else []
    if numbers:
        number_rows += number_serving(numbers, pngs, requests=args.requests, model_store=args.model_store)
    if args.numbers_only:
        print(table(number_rows))
        return
    rows = limit(pngs, forward) + number_rows
    rows += serving(pngs, requests=args.requests, model_store=args.model_store)
    with private_postgres() as database_url:
        with temporary(config_template=ROOT / "config.properties", model_store=args.model_store) as server:
            rows.append(asyncio.run(_page_path(server, database_url, pngs, count=args.page_requests)))
        rows += asyncio.run(_postgres(database_url, pngs, rows=args.pg_rows))
    rows.append(training_row(args.model_store))
    print(table(rows))
    one_at_a_time = next(r["per_s"] for r in rows if r["what"].startswith("limit: preprocess + forward, 1"))
    summary = {"png_bytes_mean": float(np.mean([len(p) for p in pngs])), "limit_one_at_a_time_per_s": one_at_a_time}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
