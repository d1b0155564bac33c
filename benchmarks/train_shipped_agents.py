"""Train the agents that ship in the package, one per backend, on the 700-image train split.

    python benchmarks/train_shipped_agents.py [--backends lite0 lite1 lite2]

Settings come from the ``ours`` preset (src/adacompress/presets.py) except the reward
weight alpha, chosen per backend on the train split alone: for each candidate alpha,
agents are trained on ``fit`` (500 images, several seeds) and scored on ``val`` (200);
the smallest alpha whose mean val accuracy reaches --val-accuracy wins (a margin above
the 0.97 bar, since a backend's accuracy shifts between image sets). The final agent is
then trained on all of ``train``. The test split is never touched.

Writes src/adacompress/agents/<backend>.pt and the training log beside it, with the
selection table under "alpha_selection".
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from adacompress.evaluate import EvaluateSettings, evaluate
from adacompress.presets import preset
from adacompress.storage import atomic_write_json
from adacompress.threads import configure_threads
from adacompress.train import train

AGENTS = Path(__file__).resolve().parents[1] / "src" / "adacompress" / "agents"


def choose_alpha(
    backend: str, candidates: list[float], seeds: list[int], min_accuracy: float
) -> tuple[float, list[dict[str, Any]]]:
    """Smallest alpha whose mean val accuracy (agents trained on fit) >= min_accuracy."""
    table = []
    with TemporaryDirectory() as tmp:
        for alpha in candidates:
            accuracies, sizes = [], []
            for seed in seeds:
                base = preset("ours", backend=backend, split="fit", alpha=alpha,
                              out=f"{tmp}/agent.pt", progress=False)
                train(replace(base, dqn=replace(base.dqn, seed=seed)))
                report = evaluate(EvaluateSettings(
                    backend=backend, agent=f"{tmp}/agent.pt", split="val",
                    progress=False))
                accuracies.append(report["agent"]["accuracy"])
                sizes.append(report["agent"]["size_ratio"])
            table.append({"alpha": alpha, "val_accuracy": float(np.mean(accuracies)),
                          "val_size_ratio": float(np.mean(sizes))})
            print(f"  {backend} alpha={alpha}: {json.dumps(table[-1])}", flush=True)
    good = [row["alpha"] for row in table if row["val_accuracy"] >= min_accuracy]
    return (min(good) if good else max(candidates)), table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--alphas", nargs="+", type=float, default=[3.0, 4.0, 6.0, 8.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--val-accuracy", type=float, default=0.99)
    args = parser.parse_args(argv)
    configure_threads()
    for backend in args.backends:
        alpha, table = choose_alpha(backend, args.alphas, args.seeds, args.val_accuracy)
        out = Path(os.path.relpath(AGENTS / f"{backend}.pt"))
        log = train(preset("ours", backend=backend, split="train", alpha=alpha,
                           out=str(out), progress=False))
        log["alpha_selection"] = table
        atomic_write_json(out.with_suffix(".json"), log)
        last = log["history"][-1]
        print(f"{backend}: alpha {alpha}, {log['n_images']} images, final reward "
              f"{last['charts/reward']:.3f}, accuracy {last['charts/accuracy']:.3f} "
              f"-> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
