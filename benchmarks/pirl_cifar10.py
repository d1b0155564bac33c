"""CIFAR-10 benchmark: PIRL vs covariant Jigsaw vs NPID vs random init, over seeds.

Two protocols. **Equal epochs** (``--epochs E``, the paper's protocol and the one for
the claims): every method trains the same encoder for E epochs of the training set,
cosine schedule over them. **Equal wall clock** (``--budget-minutes B``): every method
trains for B minutes on this machine, the schedule ending with the budget; it shows
the cost side. Then each frozen encoder (and a randomly initialised one) is scored by
kNN (k=200, t=0.1, cosine) and a linear probe, both fitted on the unaugmented
CIFAR-10 training images and scored on the test set.

    python benchmarks/pirl_cifar10.py --epochs 10 --seeds 0 1 2 \\
        --json out/bench/pirl_cifar10_epochs.json
    python benchmarks/pirl_cifar10.py --epochs 10 --lams 0 0.25 0.5 0.75 1 --resume \\
        --json out/bench/pirl_lambda.json          # the lambda ablation, one seed
    python benchmarks/pirl_cifar10.py --budget-minutes 20 --json out/bench/pirl.json

A seed sets the model's initialisation, the data order, every augmentation, the
memory bank's draws and the linear probe; the data (subsets, the validation split)
stay the same for every seed. The JSON holds, per method, the mean, the sample
standard deviation (null for one run) and every run; ``images_per_second`` and
``minutes`` are of the self-supervised training alone, averaged over the seeds;
``welch_vs_<first method>`` holds Welch's t (and degrees of freedom) of the first
method's mean against each other's.
``--lams`` trains PIRL at each lambda instead of ``--methods`` (lambda = 0 is NPID:
its patches would get no gradient, so none are encoded). Each run leaves its
checkpoint and ``result.json`` in ``--out-dir``; ``--resume`` reuses finished runs
and continues unfinished ones from their checkpoints; the lambda ablation reuses the
methods run's npid (lambda = 0) and pirl (the default lambda) of the same seed.

Choosing settings: ``--validate N`` scores on N held-out *training* images instead of
the test set. Quick end-to-end check (a few minutes): ``--epochs 1 --train-limit
5000 --eval-train-limit 5000 --test-limit 1000 --linear-epochs 10``. Data:
``$ADACOMPRESS_DATA`` (default ``../shared/data``) or ``--data``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from _common import SMOKE_OUT, add_smoke
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads
from pirl.data import ImageSource
from pirl.evaluate import evaluate_encoder, load_encoder
from pirl.resnet import resnet
from pirl.tensor_data import DATA_PATHS
from pirl.train import TrainSettings, train

METHODS = ("pirl", "jigsaw", "npid", "random")
DATA_SEED = 0
"""Seed of the data subsets and of the validation split: the same for every seed."""


def add_training_options(p: argparse.ArgumentParser) -> None:
    """The encoder and training options (shared with pirl_throughput.py)."""
    root = Path(os.environ.get("ADACOMPRESS_DATA", "../shared/data"))
    p.add_argument("--data", default=str(root / "cifar10" / "cifar10-jpeg.zip"))
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
    p.add_argument("--data-path", default="auto", choices=DATA_PATHS)
    p.add_argument("--cache-dir", default=None, help="decoded datasets (tensor path)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="loader processes (default: 1 on the files path, 0 on the tensor path)",
    )
    p.add_argument("--threads", type=int, default=None)


def smoke_training(args: argparse.Namespace) -> None:
    """A smoke run's encoder and training options: tiny (with 64 images)."""
    args.width, args.batch_size, args.n_negatives = 8, 16, 64


def training_settings(
    args: argparse.Namespace, method: str, *, out: Path, seed: int, lam: float
) -> TrainSettings:
    """The benchmark's settings for one method; the protocol is set by the caller."""
    return TrainSettings(
        method=method,
        out=str(out),
        arch=args.arch,
        width=args.width,
        grid_size=args.grid_size,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        lr=args.lr,
        n_negatives=args.n_negatives,
        lam=lam if method == "pirl" else 0.0,  # the others ignore it
        pretext_fraction=args.pretext_fraction,
        loss=args.loss,
        data_path=args.data_path,
        cache_dir=args.cache_dir,
        workers=args.workers,
        seed=seed,
        log_every=50,
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    protocol = p.add_mutually_exclusive_group()
    protocol.add_argument("--epochs", type=int, default=None, help="(default 10)")
    protocol.add_argument("--budget-minutes", type=float, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument(
        "--lams",
        type=float,
        nargs="+",
        default=None,
        help="the lambda ablation: PIRL at each lambda (0 = NPID) instead of --methods",
    )
    p.add_argument("--json", default="out/bench/pirl_cifar10.json")
    p.add_argument("--out-dir", default="out/bench/pirl_runs")
    p.add_argument("--resume", action="store_true", help="reuse finished runs")
    add_training_options(p)
    p.add_argument("--train-limit", type=int, default=None, help="train on a subset")
    p.add_argument("--eval-train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument(
        "--validate",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on N held-out CIFAR-10 *training* images instead of the test "
        "set (for choosing settings; the rest is the training pool)",
    )
    p.add_argument("--linear-epochs", type=int, default=100)
    add_smoke(p)
    args = p.parse_args(argv)
    if args.smoke:  # one epoch of 64 images, a tiny encoder and bank, two methods
        args.epochs, args.budget_minutes, args.seeds = 1, None, [0]
        args.methods, args.lams = "pirl,random", None
        args.train_limit = args.eval_train_limit = 64
        args.test_limit, args.linear_epochs = 32, 1
        smoke_training(args)
        args.json = str(SMOKE_OUT / "pirl_cifar10.json")
        args.out_dir = str(SMOKE_OUT / "pirl_runs")
    if args.epochs is None and args.budget_minutes is None:
        args.epochs = 10
    return args


def sample(source: ImageSource, limit: int | None) -> ImageSource:
    """A seeded ``limit``-image part of ``source`` (all of it without a limit)."""
    if limit is None or limit >= len(source):
        return source
    return source.split(limit, seed=DATA_SEED)[1]


def runs_to_train(args: argparse.Namespace) -> list[tuple[str, str, str, float]]:
    """``(label, folder, method, lambda)`` of every encoder to compare.

    A lambda run that trains what the methods run trains (lambda = 0 is npid, the
    default lambda is pirl) shares its folder, so ``--resume`` reuses it."""
    if args.lams is None:
        return [(m, m, m, args.lam) for m in args.methods.split(",") if m]
    runs = []
    for lam in args.lams:
        method = "npid" if lam == 0 else "pirl"
        folder = method if lam in (0, args.lam) else f"lam={lam:g}"
        runs.append((f"lam={lam:g}", folder, method, lam))
    return runs


def spread(values: list[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value) and the values."""
    present = [v for v in values if v is not None]
    if len(present) < len(values):  # no linear probe (--linear-epochs 0)
        return {"mean": None, "sd": None, "runs": values}
    return {
        "mean": round(statistics.fmean(present), 4),
        "sd": round(statistics.stdev(present), 4) if len(present) > 1 else None,
        "runs": [round(v, 4) for v in present],
    }


def welch(a: list[Any], b: list[Any]) -> dict[str, float] | None:
    """Welch's t of mean(a) - mean(b) and its degrees of freedom (None without a
    spread to compare or without values)."""
    if len(a) < 2 or len(b) < 2 or None in a or None in b:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return None
    t = (statistics.fmean(a) - statistics.fmean(b)) / (va + vb) ** 0.5
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return {"t": round(t, 2), "df": round(df, 1)}


def run_one(
    args: argparse.Namespace,
    folder_name: str,
    method: str,
    lam: float,
    seed: int,
    sources: dict[str, ImageSource],
) -> dict[str, Any]:
    """Train (unless random), evaluate and record one encoder."""
    folder = Path(args.out_dir) / folder_name / f"seed{seed}"
    settings: TrainSettings | None = None
    if method != "random":
        settings = training_settings(args, method, out=folder, seed=seed, lam=lam)
        if args.budget_minutes is not None:
            settings.epochs = 10_000  # the budget ends the run and the schedule
            settings.budget_minutes = args.budget_minutes
        else:
            settings.epochs = args.epochs
    recipe = {
        "encoder": [args.arch, args.width],
        "settings": None if settings is None else asdict(settings),
        "data": {k: [len(s), s.path.name] for k, s in sources.items()},
        "validate": args.validate,
        "linear_epochs": args.linear_epochs,
    }
    result_file = folder / "result.json"
    if args.resume and result_file.exists():
        previous = json.loads(result_file.read_text())
        if previous.get("recipe") == json.loads(json.dumps(recipe)):
            print(f"{folder_name} seed {seed}: reusing {result_file}", flush=True)
            return dict(previous)
    result: dict[str, Any] = {"recipe": recipe}
    encoder: torch.nn.Module
    if settings is None:
        torch.manual_seed(seed)
        encoder = resnet(args.arch, width=args.width, cifar_stem=True)
    else:
        settings.resume = args.resume and (folder / "checkpoint.pt").exists()
        summary = train(settings, source=sources["ssl"])
        encoder, _ = load_encoder(summary["checkpoint"])
        result["train"] = {k: v for k, v in summary.items() if k != "skipped"}
    scores = evaluate_encoder(
        encoder,
        sources["eval_train"],
        sources["test"],
        linear_epochs=args.linear_epochs,
        workers=1 if args.workers is None else args.workers,
        seed=seed,
        data_path=args.data_path,
        cache_dir=args.cache_dir,
    )
    result.update(knn_top1=scores["knn_top1"], linear_top1=scores["linear_top1"])
    atomic_write_json(result_file, result)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    configure_threads(args.threads)
    runs = runs_to_train(args)
    unknown = {method for _, _, method, _ in runs} - set(METHODS)
    if unknown:
        print(f"unknown methods: {sorted(unknown)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    pool = ImageSource(args.data, under="train")
    if args.validate:
        # Choosing settings: score on held-out *training* images, never on test.
        pool, test = pool.split(args.validate, seed=DATA_SEED)
    else:
        test = sample(ImageSource(args.data, under="test"), args.test_limit)
    sources = {
        "ssl": sample(pool, args.train_limit),
        "eval_train": sample(pool, args.eval_train_limit),
        "test": test,
    }
    results: dict[str, list[dict[str, Any]]] = {}
    for name, folder_name, method, lam in runs:
        for seed in args.seeds:
            result = run_one(args, folder_name, method, lam, seed, sources)
            results.setdefault(name, []).append(result)
            train_part = result.get("train", {})
            print(
                f"{name:>9} seed {seed}: kNN {result['knn_top1']:.4f}  "
                f"linear {result['linear_top1']:.4f}  "
                f"images/s {train_part.get('images_per_s', 0):.0f}  "
                f"train {train_part.get('elapsed_s', 0) / 60:.1f} min  "
                f"({(time.monotonic() - started) / 60:.1f} min in all)",
                flush=True,
            )
    trained = [name for name, _, method, _ in runs if method != "random"]

    def mean_of(name: str, key: str, scale: float = 1.0) -> float:
        """Mean over the seeds of a training summary's ``key``."""
        return statistics.fmean(r["train"][key] / scale for r in results[name])

    report: dict[str, Any] = {
        "protocol": "epochs" if args.budget_minutes is None else "budget",
        **(
            {"epochs": args.epochs}
            if args.budget_minutes is None
            else {"budget_minutes": args.budget_minutes}
        ),
        "seeds": args.seeds,
        "encoder": f"{args.arch}-w{args.width}-cifar-stem",
        "images_per_second": {n: round(mean_of(n, "images_per_s"), 1) for n in trained},
        "minutes": {n: round(mean_of(n, "elapsed_s", 60), 2) for n in trained},
        "knn_top1": {
            n: spread([r["knn_top1"] for r in rs]) for n, rs in results.items()
        },
        "linear_top1": {
            n: spread([r["linear_top1"] for r in rs]) for n, rs in results.items()
        },
    }
    first = next(iter(results))
    report["welch_vs_" + first] = {
        key: {
            n: welch([r[key] for r in results[first]], [r[key] for r in rs])
            for n, rs in results.items()
            if n != first
        }
        for key in ("knn_top1", "linear_top1")
    }
    if args.validate:
        report["evaluated_on"] = f"{args.validate} held-out training images"
    atomic_write_json(Path(args.json), report)
    print(json.dumps(report))
    print(f"{(time.monotonic() - started) / 60:.1f} minutes in all -> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
