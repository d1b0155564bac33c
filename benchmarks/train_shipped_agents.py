"""Train the agents that ship in the package, one per backend, on the train split.

    python benchmarks/train_shipped_agents.py [--backends lite0 lite1 lite2]
        [--target-accuracy 0.99] [--features confidence@160]

Settings come from the ``ours`` preset (src/adacompress/presets.py); the reward weight
alpha is calibrated per backend for the accuracy target by 5-fold cross-validation on
the train split alone (``adacompress train --target-accuracy``, see
src/adacompress/calibrate.py), then the agent is trained on all of ``train``. The test
split is never touched. (The scale-quality agents ship from benchmarks/targets.py.)

Writes src/adacompress/agents/<backend>.pt and the training log beside it, with the
cross-validation table under "calibration".
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from adacompress.presets import preset
from adacompress.threads import configure_threads
from adacompress.train import train

AGENTS = Path(__file__).resolve().parents[1] / "src" / "adacompress" / "agents"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--target-accuracy", type=float, default=0.99)
    parser.add_argument(
        "--features", default="confidence@160",
        help="state extractor (confidence@160: as good as confidence at 224 px for "
        "the agent and ~2x cheaper, benchmarks/features.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    configure_threads()
    for backend in args.backends:
        out = Path(os.path.relpath(AGENTS / f"{backend}.pt"))
        log = train(
            preset(
                "ours",
                backend=backend,
                split="train",
                features=args.features,
                target_accuracy=args.target_accuracy,
                out=str(out),
                progress=False,
            )
        )
        calibration = log["calibration"]
        last = log["history"][-1]
        print(
            f"{backend}: alpha {calibration['alpha']:.2f} (target "
            f"{args.target_accuracy}, reached on CV: {calibration['reached']}), "
            f"{log['n_images']} images, final training accuracy "
            f"{last['charts/accuracy']:.3f} -> {out}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
