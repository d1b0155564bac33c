"""Same-budget CIFAR-10 benchmark: PIRL vs covariant Jigsaw vs NPID vs random init.

Each method trains the same encoder for the same wall-clock budget on this machine
(``--budget-minutes`` each, cosine schedule ending with the budget), then its frozen
encoder is scored on the CIFAR-10 test set by kNN (k=200, t=0.1, cosine) and a linear
probe, both fitted on the (unaugmented) CIFAR-10 training images.

    python benchmarks/pirl_cifar10.py --budget-minutes 20 --json out/bench/pirl.json

Quick end-to-end check (a few minutes): ``--budget-minutes 1 --train-limit 10000
--eval-train-limit 10000 --test-limit 2000``. Data: ``$ADACOMPRESS_DATA`` (default
``../shared/data``) or ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads
from pirl.data import ImageSource
from pirl.evaluate import evaluate_encoder, load_encoder
from pirl.resnet import resnet
from pirl.train import TrainSettings, train

METHODS = ("pirl", "jigsaw", "npid", "random")


def parse(argv: list[str] | None) -> argparse.Namespace:
    root = Path(os.environ.get("ADACOMPRESS_DATA", "../shared/data"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-minutes", type=float, default=20.0)
    p.add_argument("--json", default="out/bench/pirl_cifar10.json")
    p.add_argument("--data", default=str(root / "cifar10" / "cifar10-jpeg.zip"))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--out-dir", default="out/bench/pirl_runs")
    p.add_argument("--arch", default="resnet10")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--grid-size", type=int, default=30)  # chosen with --validate
    p.add_argument("--patch-size", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--n-negatives", type=int, default=4096)
    p.add_argument("--lam", type=float, default=0.5)
    p.add_argument("--pretext-fraction", type=float, default=1.0)
    p.add_argument("--loss", default="infonce", choices=("nce", "infonce"))
    p.add_argument("--train-limit", type=int, default=None, help="train on a subset")
    p.add_argument("--eval-train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument(
        "--validate", type=int, default=None, metavar="N",
        help="evaluate on N held-out CIFAR-10 *training* images instead of the test "
        "set (for choosing settings; the rest is the training pool)",
    )  # fmt: skip
    p.add_argument("--linear-epochs", type=int, default=100)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sample(source: ImageSource, limit: int | None, seed: int) -> ImageSource:
    """A seeded ``limit``-image part of ``source`` (all of it without a limit)."""
    if limit is None or limit >= len(source):
        return source
    return source.split(limit, seed=seed)[1]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    threads = configure_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        print(f"unknown methods: {sorted(unknown)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    if args.validate:
        # Choosing settings: score on held-out *training* images, never on test.
        rest, test = ImageSource(args.data, under="train").split(
            args.validate, seed=args.seed
        )
        train_source = sample(rest, args.train_limit, args.seed)
        eval_train = sample(rest, args.eval_train_limit, args.seed)
    else:
        train_source = ImageSource(
            args.data, under="train", limit=args.train_limit, seed=args.seed
        )
        eval_train = ImageSource(
            args.data, under="train", limit=args.eval_train_limit, seed=args.seed
        )
        test = ImageSource(
            args.data, under="test", limit=args.test_limit, seed=args.seed
        )
    encoder_name = f"{args.arch}-w{args.width}-cifar-stem"
    report: dict[str, Any] = {
        "budget_minutes": args.budget_minutes,
        "encoder": encoder_name,
        "loss": args.loss,
        "images_seen": {},
        "knn_top1": {},
        "linear_top1": {},
        "images_per_s": {},
        "train_steps": {},
        "final_loss": {},
        "geometry": {
            "image_size": 32,
            "grid_size": args.grid_size,
            "patch_size": args.patch_size,
        },
        "n_train_ssl": len(train_source),
        "n_eval_train": len(eval_train),
        "n_test": len(test),
        "evaluated_on": f"{args.validate} held-out train images"
        if args.validate
        else "test",
        "threads": threads,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    for method in methods:
        if method == "random":
            torch.manual_seed(args.seed)
            encoder = resnet(args.arch, width=args.width, cifar_stem=True)
            report["images_seen"][method] = 0
        else:
            settings = TrainSettings(
                method=method,
                out=str(Path(args.out_dir) / method),
                arch=args.arch,
                width=args.width,
                grid_size=args.grid_size,
                patch_size=args.patch_size,
                batch_size=args.batch_size,
                lr=args.lr,
                n_negatives=args.n_negatives,
                lam=args.lam,
                pretext_fraction=args.pretext_fraction,
                loss=args.loss,
                epochs=10_000,  # the budget ends the run and the schedule
                budget_minutes=args.budget_minutes,
                workers=args.workers,
                seed=args.seed,
                log_every=50,
            )
            summary = train(settings, source=train_source)
            encoder, _ = load_encoder(summary["checkpoint"])
            report["images_seen"][method] = summary["images_seen"]
            report["images_per_s"][method] = round(summary["images_per_s"], 1)
            report["train_steps"][method] = summary["steps"]
            report["final_loss"][method] = summary["last_loss"]
        scores = evaluate_encoder(
            encoder,
            eval_train,
            test,
            linear_epochs=args.linear_epochs,
            workers=args.workers,
            seed=args.seed,
        )
        report["knn_top1"][method] = scores["knn_top1"]
        report["linear_top1"][method] = scores["linear_top1"]
        print(
            f"{method:>7}: images {report['images_seen'][method]:>7}  "
            f"kNN {scores['knn_top1']:.4f}  linear {scores['linear_top1']:.4f}",
            flush=True,
        )
    report["wall_minutes"] = round((time.monotonic() - started) / 60, 2)
    atomic_write_json(Path(args.json), report)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
