"""Where a training step's time goes: cProfile over a few steps of one method.

Trains the benchmark's encoder (pirl_cifar10.py's settings) for ``--warmup`` steps,
then profiles ``--steps`` more on a subset of the CIFAR-10 training images, and
prints the functions that took the most time of their own. Profiling slows the
Python parts more than the torch kernels, so shares of draws and bookkeeping are
upper bounds.

    python benchmarks/pirl_profile.py --method pirl --steps 30
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from _common import add_smoke
from basekit.threads import configure_threads
from pirl.data import ImageSource
from pirl.train import train
from pirl_cifar10 import add_training_options, smoke_training, training_settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="pirl", choices=("pirl", "npid", "jigsaw"))
    p.add_argument("--limit", type=int, default=10_000, help="training images used")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--top", type=int, default=15)
    add_training_options(p)
    add_smoke(p)
    args = p.parse_args(argv)
    if args.smoke:
        args.limit, args.warmup, args.steps, args.top = 64, 1, 2, 5
        smoke_training(args)
    threads = configure_threads(args.threads)
    source = ImageSource(args.data, under="train", limit=args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        for name, steps, profile in (
            ("warm", args.warmup, False),
            ("timed", args.steps, True),
        ):
            settings = training_settings(
                args, args.method, out=Path(tmp) / name, seed=0, lam=args.lam
            )
            settings.max_steps = steps
            profiler = cProfile.Profile()
            start = time.perf_counter()
            if profile:
                profiler.enable()
            train(settings, source=source)
            profiler.disable()
            seconds = time.perf_counter() - start
    print(
        f"{args.method}: {args.steps} steps of {args.batch_size} in {seconds:.2f} s "
        f"under the profiler ({args.steps * args.batch_size / seconds:.0f} images/s, "
        f"set-up included), {threads} threads"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
