"""Benchmarks (`make bench`): speed lives here, never as timing asserts in tests.

    python -m tests.bench --data-dir DIR [--requests 2000] [--out var/bench.json]

Measured in one run on the same 280x280 canvas PNGs (the machine is shared and noisy, so ratios are only meaningful
within a run): in-process preprocessing alone, preprocessing + forward one image at a time and in batches of 32
(the limit), and the TorchServe REST API at concurrency 1, 8 and 32 with the shipped config.properties.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch

from deploy.torchserve import TorchServe, temporary
from handler.model import DigitNet
from handler.preprocess import prepare
from training import canvas, data

ROOT = Path(__file__).resolve().parent.parent


def in_process(pngs: list[bytes], model: DigitNet) -> list[dict]:
    rows = []
    started = time.perf_counter()
    for png in pngs:
        prepare(png)
    seconds = time.perf_counter() - started
    rows.append({"what": "preprocessing only", "per_s": len(pngs) / seconds, "ms_each": 1000 * seconds / len(pngs)})
    with torch.inference_mode():
        started = time.perf_counter()
        for png in pngs:
            model(prepare(png).tensor().unsqueeze(0))
        seconds = time.perf_counter() - started
        rows.append({"what": "preprocess + forward, 1 at a time", "per_s": len(pngs) / seconds})
        started = time.perf_counter()
        for start in range(0, len(pngs), 32):
            model(torch.stack([prepare(png).tensor() for png in pngs[start : start + 32]]))
        seconds = time.perf_counter() - started
        rows.append({"what": "preprocess + forward, batches of 32", "per_s": len(pngs) / seconds})
    return rows


def rest(server: TorchServe, pngs: list[bytes], *, concurrency: int, requests: int) -> dict:
    url = f"{server.endpoints.inference}/predictions/mnist"
    headers = {"Authorization": f"Bearer {server.keys()['inference']}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies, errors = [], 0
    with httpx.Client(headers=headers, limits=limits, timeout=30) as client:

        def send(index: int) -> tuple[float, bool]:
            started = time.perf_counter()
            response = client.post(url, content=pngs[index % len(pngs)])
            return time.perf_counter() - started, response.status_code == 200

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, range(min(requests, 50))))  # warm up connections and the worker
            started = time.perf_counter()
            for latency, ok in pool.map(send, range(requests)):
                latencies.append(latency)
                errors += not ok
            seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "what": f"TorchServe REST, concurrency {concurrency}",
        "per_s": requests / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors,
    }


def table(rows: list[dict]) -> str:
    lines = ["| measurement | per second | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        p50 = f"{row['p50_ms']:.1f}" if "p50_ms" in row else (f"{row['ms_each']:.2f}" if "ms_each" in row else "")
        p99 = f"{row['p99_ms']:.1f}" if "p99_ms" in row else ""
        lines.append(f"| {row['what']} | {row['per_s']:.0f} | {p50} | {p99} | {row.get('errors', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    parser.add_argument("--images", type=int, default=200, help="distinct canvas PNGs (x3 styles)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per REST measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench.json")
    args = parser.parse_args(argv)
    test = data.load(args.data_dir, allow_download=False)["test"]
    pngs = [png for png, _, _ in canvas.canvas_set(test.images, test.labels, count=args.images, seed=11)]
    model = DigitNet()
    model.load_state_dict(torch.load(args.model_store / "v1.0" / "weights.pt", map_location="cpu"))
    model.eval()
    rows = in_process(pngs, model)
    with temporary(config_template=ROOT / "config.properties", model_store=args.model_store) as server:
        rows += [rest(server, pngs, concurrency=c, requests=args.requests) for c in (1, 8, 32)]
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch_threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
