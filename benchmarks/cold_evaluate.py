"""A cold ``evaluate`` now against the same command under an older commit, side by
side in one run.

    python benchmarks/cold_evaluate.py [--base 1655b6b] [--backend lite2]
        [--split test] [--threads 2]

Each run starts from an empty answer cache (its own file) and evaluates the
backend's default agent on the split, with this environment and each tree's
sources (``PYTHONPATH``); the ONNX graphs, built once per machine, are built
before timing. The default base, 1655b6b, is the last commit before ONNX Runtime
(eager PyTorch, the four-forward state, each photo decoded several times).

Also timed: the cloud's own forward (ONNX Runtime, batches of 8), and the seconds
that forward alone takes for every upload of the split (photos x actions): the floor
of any cold evaluate with a faithful fp32 cloud.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SMOKE_OUT, add_smoke
from base_tree import ROOT, checked_out

FORWARD_REPEATS = 5


def cold_evaluate(
    src: Path, backend: str, images: list[str], env: dict[str, str]
) -> float:
    """Seconds of ``adacompress evaluate`` from an empty answer cache; ``images``:
    its options that say which (``--split test``)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(Path(sys.executable).parent / "adacompress"), "evaluate"]
        command += ["--quiet", "--backend", backend, *images]
        start = time.perf_counter()
        subprocess.run(
            command,
            env={
                **env,
                "PYTHONPATH": str(src),
                "ADACOMPRESS_CACHE": str(Path(tmp) / "cache.sqlite"),
            },
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="1655b6b", help="the commit to compare with")
    parser.add_argument("--backend", default="lite2")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    add_smoke(parser)
    args = parser.parse_args(argv)
    from adacompress.core.datasets import DATA_ENV, data_root, imagenet_split
    from adacompress.core.efficientnet import VARIANTS, LiteNetwork
    from adacompress.device.actions import get_action_set
    from adacompress.device.zoo import DEFAULT_ACTIONS
    from basekit.threads import configure_threads

    configure_threads(args.threads)
    env = {
        **os.environ,
        "ADACOMPRESS_THREADS": str(args.threads),
        DATA_ENV: str(data_root()),  # the old tree finds it beside its own root
    }
    here = ROOT / "src"

    size = VARIANTS[args.backend].image_size
    cloud = LiteNetwork(args.backend, size, "answer")  # built before timing
    batch = np.random.default_rng(0).random((8, 3, size, size), dtype=np.float32)
    cloud(batch)
    start = time.perf_counter()
    for _ in range(FORWARD_REPEATS):
        cloud(batch)
    forward_ms = 1000 * (time.perf_counter() - start) / (FORWARD_REPEATS * len(batch))
    photos = imagenet_split(args.split)
    images = ["--split", args.split]
    if args.smoke:  # two photos, against this commit's tree
        photos, args.base, args.backend = photos[:2], "HEAD", "lite0"
        listing = SMOKE_OUT / "cold_evaluate.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("".join(f"{p}\n" for p in photos))
        images = ["--images", str(listing.resolve())]
    uploads = len(photos) * len(get_action_set(DEFAULT_ACTIONS))
    seconds = {"here": cold_evaluate(here, args.backend, images, env)}
    print(f"here: {seconds['here']:.1f} s", flush=True)
    with checked_out(args.base) as base:
        seconds[args.base] = cold_evaluate(base, args.backend, images, env)
    report = {
        "backend": args.backend,
        "split": args.split,
        "threads": args.threads,
        "cold_evaluate_s": seconds,
        "speedup": seconds[args.base] / seconds["here"],
        "cloud_forward_ms_per_upload": forward_ms,
        "uploads": uploads,
        "forward_floor_s": uploads * forward_ms / 1000,
        "speedup_ceiling": seconds[args.base] / (uploads * forward_ms / 1000),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
