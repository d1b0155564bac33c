"""What deciding costs on the device: features + policy + encode, per image, on
each engine side by side.

    python benchmarks/decision_cost.py [--agent lite0] [--actions paper] [--images 100]
        [--threads 2] [--engines onnx torch exported] [--features NAME]

Images one at a time (as they arrive), from the held-out test split (or the photos
that ship with scikit-image if the data is absent). Each image is decoded once and
handed to every engine in turn (the order rotating from photo to photo: the first
to touch a fresh decode pays for it), so the engines and the decode share the
machine's state; the report gives medians and p90 in milliseconds and each median as a
multiple of the decode's (an uploader pays the decode with or without the agent).
``exported`` is what a device runs: the agent written by ``adacompress export`` (its
state and policy graphs on ONNX Runtime, no torch); ``onnx`` is the agent file with
its features on ONNX Runtime and its policy in torch; ``torch`` is eager throughout.
For a one-forward Lite0 state (``confidence@N``, ``lite0``) on ONNX Runtime the
features are also timed in parts: the network's view (crop and resize), the input
array, the forward.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import add_smoke
from adacompress.core.datasets import DatasetError, builtin_photos, imagenet_split
from adacompress.core.efficientnet import model_input, model_view
from adacompress.core.engine import ENGINE_ENV
from adacompress.device.compressor import Compressor
from adacompress.device.export import export_agent
from adacompress.device.features import LiteFeatures, get_extractor
from basekit.images import load_image
from basekit.threads import configure_threads

PARTS = ("features", "policy", "encode", "decision")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agent", default="lite0", help="a shipped agent's name or an agent file"
    )
    parser.add_argument(
        "--actions",
        default=None,
        help="with a backend's name: its agent over this action set (paper)",
    )
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["onnx", "torch", "exported"],
        default=["exported", "onnx", "torch"],
    )
    parser.add_argument(
        "--features",
        default=None,
        help="extractor to time (default: the shipped agent's)",
    )
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.images = 3
    threads = configure_threads(args.threads)
    deciders = {}
    exports = tempfile.TemporaryDirectory()
    for engine in args.engines:
        os.environ[ENGINE_ENV] = "onnx" if engine == "exported" else engine
        compressor = Compressor.load(args.agent, actions=args.actions)
        if engine == "exported":
            folder = Path(exports.name) / "agent"
            export_agent(compressor, folder)
            compressor = Compressor.load(folder)
        own = args.features in (None, compressor.card.features)
        extractor = compressor.extractor if own else get_extractor(args.features)
        deciders[engine] = (compressor, extractor, own)
    try:
        paths = imagenet_split("test")[: args.images]
    except DatasetError:
        paths = builtin_photos()
    decode: list[float] = []
    timings: dict[str, dict[str, list[float]]] = {
        e: {part: [] for part in PARTS} for e in deciders
    }
    lite = deciders.get("onnx", (None, None, False))[1]
    feature_parts: dict[str, list[float]] = {"view": [], "input": [], "forward": []}
    for i, path in enumerate([paths[0], *paths]):  # first one warms up, not counted
        t0 = time.perf_counter()
        image = load_image(path)
        if i:
            decode.append(1000 * (time.perf_counter() - t0))
        engines = list(deciders)
        turn = i % len(engines)  # rotated: the first after the decode pays for it
        for engine in engines[turn:] + engines[:turn]:
            compressor, extractor, own = deciders[engine]
            t1 = time.perf_counter()
            features = extractor.extract([image])
            t2 = time.perf_counter()
            choice = int(compressor.choose(features)[0]) if own else 0
            t3 = time.perf_counter()
            compressor.encode(image, compressor.actions[choice])
            t4 = time.perf_counter()
            if i:
                for part, ms in zip(
                    PARTS, (t2 - t1, t3 - t2, t4 - t3, t4 - t1), strict=True
                ):
                    timings[engine][part].append(1000 * ms)
        if isinstance(lite, LiteFeatures):
            t1 = time.perf_counter()
            view = model_view(image, lite.input_size)
            t2 = time.perf_counter()
            batch = model_input([view])
            t3 = time.perf_counter()
            lite.network(batch)
            t4 = time.perf_counter()
            if i:
                for part, ms in zip(
                    feature_parts, (t2 - t1, t3 - t2, t4 - t3), strict=True
                ):
                    feature_parts[part].append(1000 * ms)
    decode_median = float(np.median(decode))
    result = {
        "agent": args.agent,
        "actions": args.actions,
        "features": args.features or next(iter(deciders.values()))[0].card.features,
        "threads": threads,
        "images": len(paths),
        "decode_ms": {"median": decode_median, "p90": float(np.percentile(decode, 90))},
        "engines": {
            engine: {
                part: {
                    "median": float(np.median(v)),
                    "p90": float(np.percentile(v, 90)),
                    "x_decode": float(np.median(v)) / decode_median,
                }
                for part, v in parts.items()
            }
            for engine, parts in timings.items()
        },
    }
    if feature_parts["forward"]:
        result["onnx_feature_parts"] = {
            part: {
                "median": float(np.median(v)),
                "x_decode": float(np.median(v)) / decode_median,
            }
            for part, v in feature_parts.items()
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
