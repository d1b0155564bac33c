"""Which state does the agent need? Every feature extractor on every backend.

    python benchmarks/features.py [--backends lite0 lite1 lite2]
        [--extractors lite0 confidence stats pirl random]
        [--pirl out/pirl-imagenet/encoder.pt] [--target-accuracy 0.99]
        [--json out/features.json]

For each backend x extractor an agent (the ``shipped`` preset with that extractor) is
trained on the 700 train images with alpha calibrated for the same accuracy target
(5-fold cross-validation on train), then evaluated on the 300 held-out test images.
Calibrating every extractor to one target puts them at (nearly) equal accuracy, so
the size ratio says how good the state is. ``pirl`` is ``pirl:<--pirl>`` (made by
benchmarks/pirl_encoder.py); ``random`` is ``random:<--pirl>``, the same encoder
untrained. ``ms_per_image`` is the extractor alone, one image at a time, median over
50 test images on this machine (decode not counted).

The report also names, per backend, the best extractor (smallest size among those
within 0.01 of the target accuracy) and the cheapest one within 0.01 accuracy and 0.02
size ratio of it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import SMOKE_OVERRIDES, add_smoke, limit_splits, smoke_path
from adacompress.core.datasets import imagenet_split
from adacompress.device.features import get_extractor
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import evaluate
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.settings import EvaluateSettings
from adacompress.learning.train import train
from basekit.atomic import atomic_write_json
from basekit.images import load_image
from basekit.threads import configure_threads


def spec(name: str, pirl: Path) -> str:
    """The --features value of a benchmark row name."""
    return {"pirl": f"pirl:{pirl}", "random": f"random:{pirl}"}.get(name, name)


def ms_per_image(features: str, images: int = 50) -> float:
    extractor = get_extractor(features)
    decoded = [load_image(p) for p in imagenet_split("test")[: images + 1]]
    extractor.extract(decoded[:1])  # warm-up
    times = []
    for image in decoded[1:]:
        start = time.perf_counter()
        extractor.extract([image])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def cheapest(row: dict[str, dict[str, Any]], target: float) -> dict[str, Any]:
    """The best extractor (smallest size among those within 0.01 of the target
    accuracy) and the fastest one within 0.01 accuracy and 0.02 size of it."""
    eligible = {k: r for k, r in row.items() if r["accuracy"] >= target - 0.01} or row
    best_name = min(eligible, key=lambda k: eligible[k]["size_ratio"])
    best = row[best_name]
    close = [
        k
        for k, r in row.items()
        if r["accuracy"] >= best["accuracy"] - 0.01
        and r["size_ratio"] <= best["size_ratio"] + 0.02
    ]
    name = min(close, key=lambda k: row[k]["ms_per_image"])
    return {
        "best": best_name,
        "cheapest": name,
        "ms_per_image": row[name]["ms_per_image"],
    }


def table(report: dict[str, Any]) -> str:
    """The README table: size ratio (accuracy) per backend, ms per image."""
    backends = [b for b in report if b not in ("target_accuracy", "choice")]
    names = list(dict.fromkeys(name for b in backends for name in report[b]))
    lines = [
        "| extractor | dim | ms / image | "
        + " | ".join(f"{b}: size (acc)" for b in backends)
        + " |",
        "|---|---|---|" + "---|" * len(backends),
    ]
    for name in names:
        first = next(report[b][name] for b in backends if name in report[b])
        cells = [
            f"{report[b][name]['size_ratio']:.3f} ({report[b][name]['accuracy']:.3f})"
            if name in report[b]
            else "-"
            for b in backends
        ]
        lines.append(
            f"| {name} | {first['dim']} | {first['ms_per_image']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    choice = report.get("choice", {})
    lines.append("")
    lines.append(
        "Cheapest within 0.01 accuracy and 0.02 size of the best: "
        + "; ".join(
            f"{b}: {c['cheapest']} ({c['ms_per_image']:.1f} ms; best {c['best']})"
            for b, c in choice.items()
        )
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument(
        "--extractors",
        nargs="+",
        default=["lite0", "confidence", "stats", "pirl", "random"],
    )
    parser.add_argument(
        "--pirl", type=Path, default=Path("out/pirl-imagenet/encoder.pt")
    )
    parser.add_argument("--target-accuracy", type=float, default=0.99)
    parser.add_argument("--json", type=Path, default=Path("out/features.json"))
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    overrides: dict[str, Any] = {}
    if args.smoke:
        limit_splits()
        overrides = SMOKE_OVERRIDES
        args.backends, args.extractors = args.backends[:1], ["confidence", "stats"]
        args.json = smoke_path(args.json)
    out = args.json.parent / "features"
    timing = {
        name: ms_per_image(spec(name, args.pirl), 2 if args.smoke else 50)
        for name in args.extractors
    }
    report: dict[str, Any] = {"target_accuracy": args.target_accuracy}
    if args.json.is_file():  # add to an earlier run at the same target
        earlier = json.loads(args.json.read_text())
        if earlier.get("target_accuracy") == args.target_accuracy:
            report = earlier
    for backend in args.backends:
        row: dict[str, dict[str, Any]] = report.get(backend, {})
        for name in args.extractors:
            agent = out / f"{backend}-{name}.pt"
            log = train(
                TRAIN_PRESETS.get(
                    "shipped",
                    {
                        "cloud": {"backend": backend},
                        "data": {"split": "train"},
                        "features": spec(name, args.pirl),
                        "out": str(agent),
                        "target_accuracy": args.target_accuracy,
                        "progress": False,
                        **overrides,
                    },
                )
            )
            result = evaluate(
                EvaluateSettings(
                    cloud=CloudSettings(backend),
                    choice=AgentChoice(str(agent)),
                    progress=False,
                )
            )
            row[name] = {
                "size_ratio": result["agent"]["size_ratio"],
                "accuracy": result["agent"]["accuracy"],
                "ms_per_image": timing[name],
                "alpha": log["calibration"]["alpha"],
                "dim": get_extractor(spec(name, args.pirl)).dim,
            }
            print(f"{backend} {name}: {json.dumps(row[name])}", flush=True)
        report[backend] = row
        report["choice"] = {
            b: cheapest(report[b], args.target_accuracy)
            for b in report
            if b not in ("target_accuracy", "choice")
        }
        atomic_write_json(args.json, report)
    args.json.with_suffix(".md").write_text(table(report))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
