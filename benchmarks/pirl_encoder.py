"""A label-free encoder for the agent: PIRL on the train split of imagenet-samples.

    python benchmarks/pirl_encoder.py [--budget-minutes 16] [--out out/pirl-imagenet]

Trains ``pirl train`` on the 700 train images only (no labels: the folder holds the
files and nothing else; the test split is never seen), then exports the encoder to
``<out>/encoder.pt`` for ``--features pirl:<out>/encoder.pt``; ``random:<same path>`` is
its untrained control. Geometry: 64-px views with the ImageNet stem (16x16 maps after
it), jigsaw from a 96-px crop in 32-px cells with 24-px patches -- the paper's 0.75
patch/cell ratio at a size two cores train at ~100+ images/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import SMOKE_OUT, add_smoke, limit_splits
from adacompress.core.datasets import imagenet_split
from basekit.threads import configure_threads
from pirl.evaluate import export_encoder
from pirl.train import TrainSettings, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-minutes", type=float, default=16.0)
    parser.add_argument("--out", type=Path, default=Path("out/pirl-imagenet"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--arch", default="resnet10")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    tiny: dict[str, Any] = {}
    if args.smoke:  # one epoch of six images, a tiny encoder
        limit_splits()
        args.out, args.width = SMOKE_OUT / "pirl-imagenet", 8
        tiny = {"epochs": 1, "budget_minutes": None, "batch_size": 4}
        tiny["n_negatives"] = 4
    with tempfile.TemporaryDirectory() as tmp:
        for path in imagenet_split("train"):
            Path(tmp, path.name).symlink_to(path.resolve())
        settings = TrainSettings(
            data=tmp,
            out=str(args.out),
            method="pirl",
            arch=args.arch,
            width=args.width,
            cifar_stem=False,
            image_size=args.image_size,
            grid_size=96,
            patch_size=24,
            batch_size=64,
            n_negatives=512,
            loss="infonce",
            epochs=1000,
            budget_minutes=args.budget_minutes,
            seed=args.seed,
            progress=True,
        )
        settings = replace(settings, **tiny)
        result = train(settings)
    meta = export_encoder(args.out / "checkpoint.pt", args.out / "encoder.pt")
    print(json.dumps({"train": result, "export": meta}, default=str)[:2000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
