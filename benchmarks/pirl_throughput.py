"""End-to-end training images/s of PIRL / NPID / Jigsaw: the old and the new data path.

Each configuration trains the benchmark's encoder (pirl_cifar10.py's settings)
through ``pirl.train.train`` -- reading and augmenting the data, the model step, the
loss, the memory bank -- on a subset of the CIFAR-10 training images, and images/s
is read off the run log over ``--steps`` steps after ``--warmup``. A configuration
is ``PATH/wWORKERS/LAYOUT``: the ``files`` path decodes a JPEG from the zip and
augments it in PIL per image, the ``tensor`` path gathers the batch from the decoded
uint8 cache (built before timing; its time is printed apart) and augments it in
torch; ``nchw`` or ``nhwc`` (channels-last) is the encoder's memory layout. The
default compares the old default (``files/w1/nchw``) with the new one
(``tensor/w0/nhwc``) and the two steps between. Each round runs every configuration
once, the order reversed every other round, so other work on a shared machine slows
all of them alike; the load average is printed before and after.

    python benchmarks/pirl_throughput.py --rounds 2
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import add_smoke, smoke_path
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads
from pirl.data import ImageSource
from pirl.tensor_data import DecodedImages
from pirl.train import train
from pirl_cifar10 import add_training_options, smoke_training, training_settings

METHODS = ("pirl", "npid", "jigsaw")
CONFIGS = ("files/w1/nchw", "files/w1/nhwc", "tensor/w1/nhwc", "tensor/w0/nhwc")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), help="PATH/wWORKERS/LAYOUT"
    )
    p.add_argument("--limit", type=int, default=10_000, help="training images used")
    p.add_argument("--warmup", type=int, default=5, help="steps not timed")
    p.add_argument("--steps", type=int, default=30, help="steps timed")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--json", default="out/bench/pirl_throughput.json")
    add_training_options(p)
    add_smoke(p)
    args = p.parse_args(argv)
    if args.smoke:  # one method, the first and last configuration
        args.methods, args.configs = "pirl", [CONFIGS[0], CONFIGS[-1]]
        args.limit, args.warmup, args.steps, args.rounds = 64, 1, 2, 1
        args.json = str(smoke_path(args.json))
        smoke_training(args)
    args.methods = [x for x in args.methods.split(",") if x]
    for config in args.configs:
        path, workers, layout = config.split("/")
        if path not in ("files", "tensor") or layout not in ("nchw", "nhwc"):
            p.error(f"bad configuration {config!r}: PATH/wWORKERS/LAYOUT")
    return args


def timed_run(
    args: argparse.Namespace,
    method: str,
    config: str,
    source: ImageSource,
    folder: Path,
) -> float:
    """Images/s of one short training run, over the steps after the warm-up."""
    path, workers, layout = config.split("/")
    args.data_path, args.workers = path, int(workers.removeprefix("w"))
    settings = training_settings(args, method, out=folder, seed=0, lam=args.lam)
    settings.channels_last = layout == "nhwc"
    settings.max_steps = args.warmup + args.steps
    settings.log_every = 1
    summary = train(settings, source=source)
    if summary["data_path"] != path:
        raise RuntimeError(f"asked for the {path} path, got {summary['data_path']}")
    with (folder / "log.csv").open() as handle:
        elapsed = [float(row["charts/elapsed_s"]) for row in csv.DictReader(handle)]
    seconds = elapsed[-1] - elapsed[args.warmup - 1]
    return args.steps * args.batch_size / seconds


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = configure_threads(args.threads)
    source = ImageSource(args.data, under="train", limit=args.limit)
    start = time.perf_counter()
    DecodedImages.open(source, side=32, cache_dir=args.cache_dir)
    decode_s = time.perf_counter() - start
    load_before = os.getloadavg()
    names = list(args.configs)
    rates: dict[str, dict[str, list[float]]] = {m: {} for m in args.methods}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for method in args.methods:
                for config in order:
                    folder = Path(tmp) / f"{method}-{config.replace('/', '-')}"
                    rate = timed_run(args, method, config, source, folder)
                    rates[method].setdefault(config, []).append(rate)
                    print(f"{method} {config}: {rate:.0f} images/s", flush=True)
    load_after = os.getloadavg()
    print(
        f"\n{threads} threads, batch {args.batch_size}, {args.arch} w{args.width}, "
        f"jigsaw {args.grid_size}/{args.patch_size}; mean images/s over "
        f"{args.rounds} round(s) of {args.steps} steps; load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; decoding "
        f"{len(source)} images into the cache took {decode_s:.1f} s"
    )
    print("| method | " + " | ".join(names) + " | last / first |")
    print("|---" * (len(names) + 2) + "|")
    report: dict[str, Any] = {
        "threads": threads,
        "load_average": {"before": load_before, "after": load_after},
        "decode_seconds": round(decode_s, 2),
        "n_images": len(source),
        "images_per_second": {},
        "speedup_last_over_first": {},
    }
    for method in args.methods:
        means = {n: statistics.fmean(rates[method][n]) for n in names}
        report["images_per_second"][method] = {
            n: {"mean": round(means[n], 1), "runs": [round(r, 1) for r in rs]}
            for n, rs in rates[method].items()
        }
        ratio = means[names[-1]] / means[names[0]]
        report["speedup_last_over_first"][method] = round(ratio, 2)
        cells = " | ".join(f"{means[n]:.0f}" for n in names)
        print(f"| {method} | {cells} | {ratio:.2f}x |")
    atomic_write_json(Path(args.json), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
