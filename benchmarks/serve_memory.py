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
from typing import Any

import httpx
import numpy as np
from PIL import Image

from _common import add_smoke, memory_mb
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
    add_smoke(parser)
    args = parser.parse_args(argv)
    png, jpeg = (600, 600) if args.smoke else (6000, 5656)
    concurrent = 1 if args.smoke else args.concurrent
    report = {
        f"16-bit PNG {png}x{png}": attack(request(sixteen_bit_png(png)), concurrent),
        f"two JPEG headers of {jpeg}x{jpeg}": attack(
            request(jpeg_header(jpeg), jpeg_header(jpeg)), concurrent
        ),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
