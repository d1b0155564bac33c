"""What hostile images cost the service in memory: ``adacompress serve`` on loopback,
requests whose images are small files but large decodes, sent at once.

    python benchmarks/serve_memory.py [--concurrent 4]

Two attacks, each on a fresh server after one ordinary request: 36-megapixel
16-bit PNGs (a few hundred KB each, one a request) and requests of two truncated
JPEGs whose headers claim 5656 x 5656 pixels (under 2 KB a request). Reports the
status codes, the server's resident memory after the ordinary request, its peak
(VmHWM) and what it keeps afterwards, in MB. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from served import serving

ANNOTATE = "/v1/images:annotate"


def request(*images: bytes) -> dict[str, Any]:
    return {
        "requests": [
            {
                "image": {"content": base64.b64encode(data).decode()},
                "features": [{"type": "LABEL_DETECTION"}],
            }
            for data in images
        ]
    }


def sixteen_bit_png(side: int = 6000) -> bytes:
    ramp = (np.arange(side, dtype=np.uint32) * 65535 // side).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(np.tile(ramp, (side, 1))).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_header(side: int = 5656) -> bytes:
    """The first bytes of a large JPEG: a header claiming ``side``² and a little
    scan data."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 150)).save(buffer, "JPEG", quality=5)
    return buffer.getvalue()[:900]


def memory_mb(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def attack(payload: dict[str, Any], concurrent: int) -> dict[str, Any]:
    with serving() as (base, server):
        small = io.BytesIO()
        Image.new("RGB", (320, 240), (200, 30, 40)).save(small, "JPEG")
        httpx.post(base + ANNOTATE, json=request(small.getvalue()), timeout=120)
        before = memory_mb(server.pid)["VmRSS"]
        codes: list[int] = []

        def send() -> None:
            codes.append(
                httpx.post(base + ANNOTATE, json=payload, timeout=300).status_code
            )

        threads = [threading.Thread(target=send) for _ in range(concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = memory_mb(server.pid)
        return {
            "codes": sorted(codes),
            "rss_before_mb": round(before),
            "peak_mb": round(after["VmHWM"]),
            "rss_after_mb": round(after["VmRSS"]),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args(argv)
    report = {
        "16-bit PNG 6000x6000": attack(request(sixteen_bit_png()), args.concurrent),
        "two JPEG headers of 5656x5656": attack(
            request(jpeg_header(), jpeg_header()), args.concurrent
        ),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
