"""What deciding costs on the device: features + policy + encode, per image.

    python benchmarks/decision_cost.py [--agent lite0] [--actions paper] [--images 100]
        [--threads 2]

Images one at a time (as they arrive), from the held-out test split (or the photos
that ship with scikit-image if the data is absent). Decoding the original is reported
apart: an uploader pays it with or without the agent. Medians and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from adacompress.core.datasets import DatasetError, builtin_photos, imagenet_split
from adacompress.device.compressor import Compressor
from adacompress.device.features import get_extractor
from basekit.images import load_image
from basekit.threads import configure_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agent", default="lite0", help="a shipped agent's name or an agent file"
    )
    parser.add_argument(
        "--actions", default=None,
        help="with a backend's name: its agent over this action set (paper)",
    )  # fmt: skip
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--features",
        default=None,
        help="extractor to time (default: the shipped agent's)",
    )
    args = parser.parse_args(argv)
    threads = configure_threads(args.threads)
    compressor = Compressor.load(args.agent, actions=args.actions)
    own = str(compressor.metadata["features"])
    name = args.features or own
    extractor = get_extractor(name)
    try:
        paths = imagenet_split("test")[: args.images]
    except DatasetError:
        paths = builtin_photos()
    timings: dict[str, list[float]] = {
        "decode": [],
        "features": [],
        "policy": [],
        "encode": [],
        "decision": [],
    }
    for i, path in enumerate([paths[0], *paths]):  # first one warms up, not counted
        t0 = time.perf_counter()
        image = load_image(path)
        t1 = time.perf_counter()
        features = extractor.extract([image])
        t2 = time.perf_counter()
        choice = int(compressor.choose(features)[0]) if name == own else 0
        t3 = time.perf_counter()
        compressor.encode(image, compressor.actions[choice])
        t4 = time.perf_counter()
        if i == 0:
            continue
        for key, value in (
            ("decode", t1 - t0),
            ("features", t2 - t1),
            ("policy", t3 - t2),
            ("encode", t4 - t3),
            ("decision", t4 - t1),
        ):
            timings[key].append(value * 1000)
    result = {
        "agent": args.agent,
        "features": name,
        "threads": threads,
        "images": len(paths),
        "ms": {
            key: {"median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
            for key, v in timings.items()
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
