"""Fill the cache: every image of imagenet-samples x every action x backend.

Optional: train/evaluate fill the cache themselves. Running this first once (about
15-25 minutes on 2 cores) makes every later benchmark rerun in seconds.

    python benchmarks/warm_cache.py [--backends lite0 lite1 lite2] [--split all]
"""

from __future__ import annotations

import argparse
import time

from _common import add_smoke, limit_splits
from adacompress.core.datasets import imagenet_split
from adacompress.device.actions import get_action_set
from adacompress.device.features import get_extractor
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import collect
from basekit.threads import configure_threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--split", default="all")
    parser.add_argument("--actions", default="paper")
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits()
        args.backends = args.backends[:1]
    paths = imagenet_split(args.split)
    extractor = get_extractor("lite0")
    for backend in args.backends:
        start = time.perf_counter()
        with open_env(
            CloudSettings(backend),
            actions=get_action_set(args.actions),
            extractor=extractor,
        ) as env:
            collected = collect(env, paths)
            print(
                f"{backend}: {len(collected.samples)} images, "
                f"{len(collected.skipped)} skipped, new={env.calls().new} "
                f"cached={env.calls().cached}, {time.perf_counter() - start:.0f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
