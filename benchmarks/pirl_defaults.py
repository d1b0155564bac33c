"""Do ``pirl train``'s defaults learn? The loss curve and kNN of candidate defaults.

A newcomer's first run: ``pirl train`` with its defaults on a seeded subset of
CIFAR-10 for a few epochs. Each variant changes only the settings it names (the
rest are ``TrainSettings``'s defaults at the time of the run); its logged loss
(every ``--log-every`` steps) and the kNN top-1 of its frozen encoder (fitted on
``--eval-train`` training images, scored on ``--eval-test`` test images) are
printed and written to the JSON. Variants:

- ``infonce``: InfoNCE.
- ``nce-running``: NCE with Z re-estimated every step (momentum 0.9).
- ``nce-first``: NCE with Z estimated on the first batch and kept (NPID, VISSL),
  the loss of the defaults before issue 36 (which also had jigsaw 48/12).

All three use the benchmark's jigsaw geometry 30/8 (``pirl_cifar10.py``), so
they differ in the loss alone. ``random`` scores the untrained encoder (no loss
curve), the floor to read kNN against.

    python benchmarks/pirl_defaults.py --threads 2 --json out/bench/pirl_defaults.json

Data: ``$ADACOMPRESS_DATA`` (default ``../shared/data``) or ``--data``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from _common import SMOKE_OUT, add_smoke
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads
from pirl.data import ImageSource
from pirl.evaluate import evaluate_encoder, load_encoder
from pirl.resnet import resnet
from pirl.train import TrainSettings, train

GEOMETRY = {"grid_size": 30, "patch_size": 8}  # the benchmark's (pirl_cifar10.py)
VARIANTS: dict[str, dict[str, Any]] = {
    "infonce": {"loss": "infonce", "z_momentum": None, **GEOMETRY},
    "nce-running": {"loss": "nce", "z_momentum": 0.9, **GEOMETRY},
    "nce-first": {"loss": "nce", "z_momentum": None, **GEOMETRY},
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    root = Path(os.environ.get("ADACOMPRESS_DATA", "../shared/data"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(root / "cifar10" / "cifar10-jpeg.zip"))
    p.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=[*VARIANTS, "random"],
    )
    p.add_argument("--images", type=int, default=2048, help="training subset")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--log-every", type=int, default=4)
    p.add_argument("--eval-train", type=int, default=5000)
    p.add_argument("--eval-test", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default="out/bench/pirl_defaults")
    p.add_argument("--json", default="out/bench/pirl_defaults.json")
    add_smoke(p)
    args = p.parse_args(argv)
    if args.smoke:  # one epoch of 128 images at the defaults (one step), one variant
        args.variants, args.images, args.epochs = ["infonce", "random"], 128, 1
        args.log_every, args.eval_train, args.eval_test = 1, 64, 32
        args.out_dir = str(SMOKE_OUT / "pirl_defaults")
        args.json = str(SMOKE_OUT / "pirl_defaults.json")
    return args


def logged(folder: Path) -> list[tuple[int, float]]:
    with (folder / "log.csv").open() as handle:
        return [
            (int(float(r["charts/step"])), float(r["losses/loss"]))
            for r in csv.DictReader(handle)
        ]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_threads(args.threads)
    eval_train = ImageSource(args.data, under="train", limit=args.eval_train, seed=1)
    eval_test = ImageSource(args.data, under="test", limit=args.eval_test, seed=1)
    report: dict[str, Any] = {
        "images": args.images,
        "epochs": args.epochs,
        "defaults": {
            k: v
            for k, v in vars(TrainSettings()).items()
            if k in ("arch", "width", "batch_size", "lr", "n_negatives", "lam")
        },
        "variants": {},
    }

    def knn(encoder: torch.nn.Module) -> dict[str, Any]:
        """kNN on the evaluation images, the same way for every variant."""
        return evaluate_encoder(
            encoder,
            eval_train,
            eval_test,
            linear_epochs=0,
            seed=args.seed,
            cache_dir=Path(args.out_dir) / "cache",
        )

    for name in args.variants:
        if name == "random":
            torch.manual_seed(args.seed)
            defaults = TrainSettings()
            encoder: torch.nn.Module = resnet(
                defaults.arch, width=defaults.width, cifar_stem=defaults.cifar_stem
            )
            scores = knn(encoder)
            report["variants"][name] = {"knn_top1": scores["knn_top1"]}
            print(f"{name:>12}: kNN {scores['knn_top1']:.4f}", flush=True)
            continue
        folder = Path(args.out_dir) / name
        settings = TrainSettings(
            data=args.data,
            under="train",
            limit=args.images,
            epochs=args.epochs,
            out=str(folder),
            seed=args.seed,
            log_every=args.log_every,
            cache_dir=str(Path(args.out_dir) / "cache"),
            **VARIANTS[name],
        )
        started = time.monotonic()
        summary = train(settings)
        minutes = (time.monotonic() - started) / 60
        curve = logged(folder)
        encoder, _ = load_encoder(summary["checkpoint"])
        scores = knn(encoder)
        report["variants"][name] = {
            "settings": VARIANTS[name],
            "first_loss": curve[0][1],
            "last_loss": curve[-1][1],
            "curve": curve,
            "knn_top1": scores["knn_top1"],
            "train_minutes": round(minutes, 2),
        }
        print(
            f"{name:>12}: loss {curve[0][1]:.3f} (step {curve[0][0]}) -> "
            f"{curve[-1][1]:.3f} (step {curve[-1][0]}), kNN {scores['knn_top1']:.4f}, "
            f"{minutes:.1f} min",
            flush=True,
        )
    atomic_write_json(Path(args.json), report)
    print(json.dumps({k: v for k, v in report.items() if k != "variants"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
