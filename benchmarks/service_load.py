"""Loopback load test of ``adacompress serve``: requests/s and latency percentiles.

    python benchmarks/service_load.py [--backend lite0] [--requests 200] [--clients 4]
        [--batches 1 16] [--workers 1] [--json out/bench/service_load.json]

Starts the service as a subprocess on a free loopback port, waits for ``/healthz``,
then for each batch size sends a fixed number of ``images:annotate`` requests from N
concurrent clients (each a thread with its own connection) and stops the service.
Every request must succeed (status 200, one answer per image), else the script fails.
The image is a scikit-image photo encoded at q=75. Latency is per request, client side.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from _common import add_smoke, smoke_path
from adacompress.core.datasets import builtin_photos
from adacompress.device.actions import REFERENCE_ACTION
from adacompress.device.codec import encode
from basekit.images import load_image

ANNOTATE = "/v1/images:annotate"
START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become healthy in time")


def load(url: str, payload: bytes, n_images: int, requests: int, clients: int) -> dict:
    """``requests`` POSTs spread over ``clients`` threads; latencies in ms."""

    def worker(count: int) -> list[float]:
        latencies = []
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            for _ in range(count):
                start = time.perf_counter()
                response = http.post(
                    url + ANNOTATE,
                    content=payload,
                    headers={"content-type": "application/json"},
                )
                latencies.append((time.perf_counter() - start) * 1000)
                answers = response.json().get("responses", [])
                if response.status_code != 200 or len(answers) != n_images:
                    raise SystemExit(f"bad answer: {response.status_code}")
                if any("labelAnnotations" not in a for a in answers):
                    raise SystemExit("an image was not answered")
        return latencies

    shares = [requests // clients + (i < requests % clients) for i in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = np.concatenate(list(pool.map(worker, shares)))
    elapsed = time.perf_counter() - start
    return {
        "batch": n_images,
        "requests": requests,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(requests / elapsed, 1),
        "images_per_s": round(requests * n_images / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="lite0")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", default="out/bench/service_load.json")
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.clients, args.batches = 4, 2, [1, 2]
        args.json = str(smoke_path(args.json))

    photo = next(p for p in builtin_photos() if p.name == "chelsea.png")
    content = base64.b64encode(encode(load_image(photo), REFERENCE_ACTION)).decode()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "adacompress", "serve", "--backend", args.backend]
    command += ["--port", str(port), "--workers", str(args.workers)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    rows = []
    try:
        wait_healthy(url, process)
        for batch in args.batches:
            feature = {"type": "LABEL_DETECTION", "maxResults": 10}
            item = {"image": {"content": content}, "features": [feature]}
            payload = json.dumps({"requests": [item] * batch}).encode()
            load(url, payload, batch, min(args.clients, 4), args.clients)  # warm-up
            rows.append(load(url, payload, batch, args.requests, args.clients))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    result = {
        "backend": args.backend,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "image_bytes": len(base64.b64decode(content)),
        "rows": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(
        f"{args.backend}, {args.workers} worker(s), {args.clients} clients, "
        f"{result['image_bytes']} B image"
    )
    print("| batch | requests | req/s | images/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['batch']} | {row['requests']} | {row['requests_per_s']} | "
            f"{row['images_per_s']} | {row['p50_ms']} | {row['p99_ms']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
