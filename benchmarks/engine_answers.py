"""A cold ``evaluate`` on each engine, side by side, and how often the emulated
cloud's answers differ between them.

    python benchmarks/engine_answers.py [--backend lite2] [--images 60] [--threads 2]

Both runs start from an empty answer cache (one file; each engine's answers are
cached under its own name) over the first N held-out test photos: the seconds of
each, their ratio, and the share of (photo, upload) answers whose top-5 labels (as a
set, and in order) or top-1 label differ between ONNX Runtime and eager PyTorch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import add_smoke
from adacompress.cli import main as cli
from adacompress.core.datasets import imagenet_split
from adacompress.core.engine import ENGINE_ENV
from basekit.threads import configure_threads


def answers(cache: Path, service: str) -> dict[tuple[str, str], list[int]]:
    with contextlib.closing(sqlite3.connect(cache)) as db:
        rows = db.execute(
            "SELECT image_hash, action, labels FROM answers WHERE service = ?",
            (service,),
        ).fetchall()
    return {
        (h, a): [int(label[0]) for label in json.loads(text)] for h, a, text in rows
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="lite2")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.backend, args.images = "lite0", 1
    threads = configure_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp, "photos.txt")
        listing.write_text("\n".join(map(str, imagenet_split("test")[: args.images])))
        cache = Path(tmp, "answers.sqlite")
        seconds = {}
        for engine in ("onnx", "torch"):
            os.environ[ENGINE_ENV] = engine
            start = time.perf_counter()
            command = ["evaluate", "--backend", args.backend, "--images", str(listing)]
            command += ["--cache", str(cache), "--quiet", "--threads", str(threads)]
            with contextlib.redirect_stdout(io.StringIO()):
                cli(command)
            seconds[engine] = time.perf_counter() - start
        onnx = answers(cache, f"{args.backend}+onnx")
        eager = answers(cache, args.backend)
    shared = sorted(set(onnx) & set(eager))
    differ = {
        "top5_set": sum(set(onnx[k][:5]) != set(eager[k][:5]) for k in shared),
        "top5_order": sum(onnx[k][:5] != eager[k][:5] for k in shared),
        "top1": sum(onnx[k][0] != eager[k][0] for k in shared),
    }
    result = {
        "backend": args.backend,
        "images": args.images,
        "threads": threads,
        "cold_evaluate_s": seconds,
        "speedup": seconds["torch"] / seconds["onnx"],
        "answers_compared": len(shared),
        "answers_differing": differ,
        "share_differing": {k: v / max(1, len(shared)) for k, v in differ.items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
