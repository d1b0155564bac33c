"""Would more training photos win bytes? The survival model's bound against how many
pictures it learns from.

    python benchmarks/research/learning_curve.py [--views 2] [--draws 2]
        [--json out/learning_curve.json]

Train split only (700 photos, never test). Five folds by source photo; each fold's
held-out photos (the originals only) are scored by a survival model (the one of
``target_bound.py``: a small MLP on state, action one-hot) fitted on part of the
other four folds: a fraction (1/8, 1/4, 1/2, all) of their photos, redrawn
``--draws`` times, and then all of them plus their ``--views`` random views each
(crop of 35-100% of the area, aspect 3/4-4/3, rescaled by 0.6-1, mirrored half the
time; saved once as JPEG q=95 under ``out/learning_curve/views``: new photos for the
cloud, each with its own 26 answers). Views of a held-out photo are never trained
on, so no photo straddles folds. Each point is the smallest size ratio (bytes /
q=75 bytes) at accuracy >= ``--target`` over a swept threshold (in-sample choice,
as in ``target_bound.py``: optimistic by the same amount at every point).

Two states: ``confidence`` (the local Lite0's top-10 probabilities and entropy, the
state of today's default agents) and ``confidence-scales`` (the same at four
scales: a richer state). If the bound falls as pictures are added, a student taught
on many more photos can win bytes; if it is flat, more photos will not help that
state. Needs the answer cache warm for the train split (``benchmarks/warm_cache.py
--actions scale-quality``); the views' answers are asked the first time (minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import logistic_fit
import numpy as np
from PIL import Image
from target_bound import (
    BACKENDS,
    FOLDS,
    THRESHOLDS,
    backend_table,
    best_at,
    fit_survival,
    pick,
)

from adacompress.core.datasets import imagenet_split
from adacompress.device.features.lite import CONFIDENCE_TOP
from basekit.atomic import atomic_write, atomic_write_json
from basekit.images import load_image
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import add_smoke, limit_splits, smoke_path  # noqa: E402

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
VIEW_FOLDER = Path("out/learning_curve/views")


def make_views(
    photos: list[Path], per_photo: int, seed: int, root: Path = VIEW_FOLDER
) -> list[Path]:
    """``per_photo`` random views of each photo, written once under ``root`` (the
    same seed gives the same pixels): photo i's views are items ``i*per_photo ...``
    of the list."""
    folder = root / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    views = []
    for index, photo in enumerate(photos):
        rng = np.random.default_rng([seed, index])
        image: Image.Image | None = None
        for view in range(per_photo):
            path = folder / f"{index:04d}-{photo.stem}-v{view}.jpg"
            area, aspect = rng.uniform(0.35, 1.0), np.exp(rng.uniform(-0.29, 0.29))
            scale, mirror = rng.uniform(0.6, 1.0), rng.random() < 0.5
            views.append(path)
            if path.exists():
                continue
            if image is None:
                image = load_image(photo)
            width, height = image.size
            w = min(width, round(np.sqrt(area * width * height * aspect)))
            h = min(height, round(np.sqrt(area * width * height / aspect)))
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            crop = image.crop((left, top, left + w, top + h))
            crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))))
            if mirror:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            atomic_write(path, partial(crop.save, format="JPEG", quality=95))
    return views


def states(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The two states compared, from a table's ``confidence-scales`` features."""
    return {
        "confidence": table["state"][:, : CONFIDENCE_TOP + 1],
        "confidence-scales": table["state"],
    }


def curve(
    photos: dict[str, np.ndarray],
    views: dict[str, np.ndarray] | None,
    per_photo: int,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Points of one backend and state: out-of-fold probabilities on the photos for
    each training size, then the bound at the target."""
    n = len(photos["ref"])
    folds = np.array_split(np.random.default_rng(args.seed).permutation(n), FOLDS)
    settings: list[tuple[float, int, int]] = [
        (f, draw, 0) for f in FRACTIONS for draw in range(args.draws if f < 1 else 1)
    ]
    if views is not None:
        settings += [(1.0, 0, v) for v in range(1, per_photo + 1)]
    points: dict[tuple[float, int], list[dict[str, Any]]] = {}
    for fraction, draw, n_views in settings:
        probability = np.empty_like(photos["kept"])
        trained = 0
        for fold in folds:
            rest = np.setdiff1d(np.arange(n), fold)
            rng = np.random.default_rng([args.seed, draw, int(fraction * 1000)])
            chosen = np.sort(
                rng.permutation(rest)[: max(2, round(fraction * len(rest)))]
            )
            state, kept = photos["x"][chosen], photos["kept"][chosen]
            if n_views and views is not None:
                rows = (chosen[:, None] * per_photo + np.arange(n_views)).reshape(-1)
                state = np.concatenate([state, views["x"][rows]])
                kept = np.concatenate([kept, views["kept"][rows]])
            predict = fit_survival(state, None, kept, args.seed)
            probability[fold] = predict(photos["x"][fold], None)
            trained += len(state)
        found = [pick(probability >= tau, photos) for tau in THRESHOLDS]
        point = best_at(found, args.target)
        point.update(
            pictures_per_fold=round(trained / FOLDS),
            photos_per_fold=len(chosen),
            views_per_photo=n_views,
            draw=draw,
        )
        points.setdefault((fraction, n_views), []).append(point)
    merged = []
    for (_, n_views), draws in points.items():
        sizes = [p["size_ratio"] for p in draws if p["size_ratio"] is not None]
        merged.append(
            {
                "photos_per_fold": draws[0]["photos_per_fold"],
                "views_per_photo": n_views,
                "pictures_per_fold": draws[0]["pictures_per_fold"],
                "size_ratio": round(float(np.mean(sizes)), 4) if sizes else None,
                "draws": [p["size_ratio"] for p in draws],
                "accuracy": [p["accuracy"] for p in draws],
            }
        )
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actions", default="scale-quality", help="action set")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--views", type=int, default=2, help="views per photo")
    parser.add_argument("--draws", type=int, default=2, help="subsets per fraction")
    parser.add_argument("--json", type=Path, default=Path("out/learning_curve.json"))
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:  # ten photos: five folds need a few each
        limit_splits(10)
        logistic_fit.STEPS = 5
        args.backends, args.views, args.draws = ["lite0"], 1, 1
        args.json = smoke_path(args.json)
    photos = imagenet_split("train")
    root = smoke_path(VIEW_FOLDER) if args.smoke else VIEW_FOLDER
    view_paths = make_views(photos, args.views, args.seed, root) if args.views else []
    report: dict[str, Any] = {
        "target": args.target,
        "actions": args.actions,
        "photos": len(photos),
        "views_per_photo": args.views,
    }
    for backend in args.backends:
        table = backend_table(backend, args.actions, paths=photos)
        view_table = (
            backend_table(backend, args.actions, paths=view_paths)
            if view_paths
            else None
        )
        if len(table["ref"]) != len(photos) or (
            view_table is not None and len(view_table["ref"]) != len(view_paths)
        ):
            raise SystemExit("some photos or views could not be used: see the log")
        report[backend] = {}
        for name, x in states(table).items():
            table["x"] = x
            if view_table is not None:
                view_table["x"] = states(view_table)[name]
            report[backend][name] = curve(table, view_table, args.views, args)
            print(backend, name, json.dumps(report[backend][name]), flush=True)
    atomic_write_json(args.json, report)
    print(format_table(report, args.backends))
    return 0


def format_table(report: dict[str, Any], backends: list[str]) -> str:
    """Markdown: one row per state and training size, one column per backend."""
    lines = [
        f"size ratio at accuracy >= {report['target']}, out of fold "
        f"(train, {report['photos']} photos)",
        "",
        "| state | photos + views a fold | " + " | ".join(backends) + " |",
        "|---|---|" + "---|" * len(backends),
    ]
    for name in report[backends[0]]:
        for i, point in enumerate(report[backends[0]][name]):
            size = f"{point['photos_per_fold']}"
            if point["views_per_photo"]:
                size += f" + {point['pictures_per_fold'] - point['photos_per_fold']}"
            cells = []
            for backend in backends:
                value = report[backend][name][i]["size_ratio"]
                cells.append("not reached" if value is None else f"{value:.3f}")
            lines.append(f"| {name} | {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
