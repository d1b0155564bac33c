"""Choose the scale-quality action set by measurement (train images only).

For a candidate grid of formats x downscales x qualities, asks the cloud about every
action on the first ``--images`` images of the ``fit`` part of the train split, then
reports for several sub-grids: the per-image oracle's size ratio (smallest upload
whose answer keeps the reference top-1 in the top-5; sizes are shares of the q=75
JPEG reference's bytes), and the best fixed action at accuracy >= 0.99. A sub-grid
earns its place if its oracle is nearly as small as the full grid's with fewer
actions for the agent to learn.

    python benchmarks/research/action_grid.py [--backend lite0] [--images 150]
        [--formats jpeg webp] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from adacompress.core.datasets import imagenet_split
from adacompress.device.actions import REFERENCE_ACTION, Action
from adacompress.device.features import get_extractor
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import collect
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import add_smoke, limit_splits  # noqa: E402  (benchmarks/_common.py)

QUALITIES = tuple(range(5, 100, 10))
SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
CANDIDATES = {
    "paper (scale 1)": ("jpeg", (1.0,), QUALITIES),
    "{1, .5}": ("jpeg", (1.0, 0.5), QUALITIES),
    "{1, .75, .5, .35}": ("jpeg", (1.0, 0.75, 0.5, 0.35), QUALITIES),
    "all five scales": ("jpeg", SCALES, QUALITIES),
    "five scales x q<=75": ("jpeg", SCALES, QUALITIES[:8]),
    "{1, .5, .35, .25} x q<=75": ("jpeg", (1.0, 0.5, 0.35, 0.25), QUALITIES[:8]),
    "five scales x {5,15,35,55,75}": ("jpeg", SCALES, (5, 15, 35, 55, 75)),
    "five scales x {15,35,55,75}": ("jpeg", SCALES, (15, 35, 55, 75)),
    "{1, .5, .35, .25} x {15,35,55,75}": (
        "jpeg",
        (1.0, 0.5, 0.35, 0.25),
        (15, 35, 55, 75),
    ),
    "webp: all five scales": ("webp", SCALES, QUALITIES),
    "webp: five scales x {5,15,35,55,75}": ("webp", SCALES, (5, 15, 35, 55, 75)),
    "webp: five scales x {5,15,25,35,55}": ("webp", SCALES, (5, 15, 25, 35, 55)),
    "webp: five scales x {5,15,35,55}": ("webp", SCALES, (5, 15, 35, 55)),
    "webp: {1, .5, .35, .25} x {5,15,35,55}": (
        "webp",
        (1.0, 0.5, 0.35, 0.25),
        (5, 15, 35, 55),
    ),
    "jpeg+webp: five scales x {5,15,35,55,75}": (
        "jpeg+webp",
        SCALES,
        (5, 15, 35, 55, 75),
    ),
}
"""name -> (formats joined by +, scales, qualities)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="lite0")
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument(
        "--formats", nargs="+", default=["jpeg"], choices=("jpeg", "webp")
    )
    parser.add_argument("--json", type=Path)
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits(2)
    grid = [Action(q, s, f) for f in args.formats for s in SCALES for q in QUALITIES]
    paths = imagenet_split("fit")[: args.images]
    with open_env(
        CloudSettings(args.backend), actions=grid, extractor=get_extractor("confidence")
    ) as env:
        collected = collect(env, paths)
    outcomes = collected.outcomes
    reference = np.array([o[REFERENCE_ACTION].nbytes for o in outcomes], float)
    kept = {
        a: np.array([env.score(o[REFERENCE_ACTION], o[a]).accuracy for o in outcomes])
        for a in grid
    }
    nbytes = {a: np.array([o[a].nbytes for o in outcomes], float) for a in grid}
    rows = {}
    for name, (formats, scales, qualities) in CANDIDATES.items():
        if not set(formats.split("+")) <= set(args.formats):
            continue
        actions = [
            Action(q, s, f)
            for f in formats.split("+")
            for s in scales
            for q in qualities
        ]
        oracle = []
        for i in range(len(outcomes)):
            keeping = [nbytes[a][i] for a in actions if kept[a][i] == 1.0]
            oracle.append(min(keeping) if keeping else reference[i])
        fixed = [
            (nbytes[a].sum() / reference.sum(), a.key)
            for a in actions
            if kept[a].mean() >= 0.99
        ]
        best = min(fixed) if fixed else (float("nan"), None)
        rows[name] = {
            "n_actions": len(actions),
            "oracle_size_ratio": float(np.sum(oracle) / reference.sum()),
            "best_fixed_at_0.99": {"action": best[1], "size_ratio": float(best[0])},
        }
        oracle_ratio = rows[name]["oracle_size_ratio"]
        print(
            f"{name:42s} {len(actions):3d} actions  oracle {oracle_ratio:.3f}"
            f"  best fixed@0.99 {best[1]} {best[0]:.3f}"
        )
    per_scale = {
        f"{f}@{s:g}": {
            str(q): round(float(kept[Action(q, s, f)].mean()), 3) for q in QUALITIES
        }
        for f in args.formats
        for s in SCALES
    }
    print("accuracy by scale x quality:", json.dumps(per_scale))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "backend": args.backend,
            "n_images": len(outcomes),
            "candidates": rows,
            "accuracy": per_scale,
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
