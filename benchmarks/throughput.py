"""Photos a second through ``compress_many`` and ``compress`` (one photo at a time)
against a plain decode + re-encode at q=75 of the same photos, in one process and
run, on each engine.

    python benchmarks/throughput.py [--agent lite0] [--actions paper] [--images 150]
        [--photos LIST_OR_FOLDER] [--threads 2] [--engines onnx torch] [--repeats 2]

``--photos`` takes another collection (a folder or a ``.txt`` list): the 12 MP one
that ``benchmarks/upscaled.py`` writes, say. The baseline is what an uploader without
the agent does (decode the file, encode it
at JPEG quality 75). Also timed on ONNX Runtime: the feature pass of training and
evaluate (``CompressionEnv.prepare``: read, hash, decode, featurise) from an empty
cache. Each pass is repeated and the fastest kept; the report gives
photos/s and each path's time as a multiple of the baseline's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

from _common import add_smoke
from adacompress.core.datasets import DatasetError, builtin_photos, resolve_images
from adacompress.core.engine import ENGINE_ENV
from adacompress.device.compressor import Compressor
from adacompress.exchange.cache import CACHE_ENV
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from basekit.images import load_image
from basekit.threads import configure_threads


def reencode(paths: list[Path]) -> None:
    for path in paths:
        load_image(path).save(io.BytesIO(), format="JPEG", quality=75)


def fastest(work: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def feature_pass(compressor: Compressor, paths: list[Path], repeats: int) -> float:
    """Fastest seconds of ``prepare`` over ``paths``, each time from an empty cache."""

    def once() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ[CACHE_ENV] = str(Path(tmp) / "cache.sqlite")
            with open_env(
                CloudSettings(compressor.card.backend),
                actions=compressor.actions,
                extractor=compressor.extractor,
            ) as env:
                env.prepare(paths, progress=False)

    return fastest(once, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="lite0")
    parser.add_argument("--actions", default=None)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument(
        "--photos", default=None, help="a folder or .txt list (default: test split)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engines", nargs="+", default=["onnx", "torch"])
    parser.add_argument("--repeats", type=int, default=2)
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.repeats = 3, 1
    threads = configure_threads(args.threads)
    try:
        paths = resolve_images(args.photos, "test")[: args.images]
    except DatasetError:
        paths = builtin_photos()
    compressors = {}
    for engine in args.engines:
        os.environ[ENGINE_ENV] = engine
        compressors[engine] = Compressor.load(args.agent, actions=args.actions)
        compressors[engine].compress_many(paths[:2])  # warm up
    baseline = fastest(lambda: reencode(paths), args.repeats)
    result = {
        "agent": args.agent,
        "actions": args.actions,
        "threads": threads,
        "images": len(paths),
        "reencode_q75": {"photos_per_s": len(paths) / baseline},
    }
    for engine, compressor in compressors.items():
        seconds = fastest(lambda c=compressor: c.compress_many(paths), args.repeats)
        result[f"compress_many[{engine}]"] = {
            "photos_per_s": len(paths) / seconds,
            "x_reencode": seconds / baseline,
        }
        seconds = fastest(
            lambda c=compressor: [c.compress(path) for path in paths], args.repeats
        )
        result[f"compress[{engine}]"] = {
            "photos_per_s": len(paths) / seconds,
            "x_reencode": seconds / baseline,
        }
    if "onnx" in compressors:
        seconds = feature_pass(compressors["onnx"], paths, args.repeats)
        result["feature_pass[onnx]"] = {
            "photos_per_s": len(paths) / seconds,
            "x_reencode": seconds / baseline,
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
