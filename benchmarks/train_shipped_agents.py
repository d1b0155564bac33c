"""Train the agents that ship in the package, one per backend, on the train split.

    python benchmarks/train_shipped_agents.py [--backends lite0 lite1 lite2]

Settings come from the ``ours`` preset (src/adacompress/presets.py) except the reward
weight alpha, chosen per backend on the train split alone by 5-fold cross-validation:
the smallest alpha whose cross-validated accuracy reaches --cv-accuracy wins (a margin
above the 0.97 bar, since a backend's accuracy shifts between image sets). The final
agent is then trained on all of ``train``. The test split is never touched.

Writes src/adacompress/agents/<backend>.pt and the training log beside it, with the
cross-validation table under "alpha_selection".
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

from adacompress.datasets import imagenet_split
from adacompress.evaluate import EvaluateSettings, evaluate
from adacompress.presets import preset
from adacompress.storage import atomic_write_json
from adacompress.threads import configure_threads
from adacompress.train import train

FOLD_SEED = 7
AGENTS = Path(__file__).resolve().parents[1] / "src" / "adacompress" / "agents"


def choose_alpha(
    backend: str, candidates: list[float], folds: int, min_accuracy: float
) -> tuple[float, list[dict[str, Any]]]:
    """Smallest alpha whose cross-validated accuracy on train reaches min_accuracy.

    The 700 train images are cut into ``folds`` seeded folds; for each fold an agent
    (seed = fold index) trains on the others and is scored on it, so every train image
    is scored once per alpha.
    """
    paths = imagenet_split("train")
    order = np.random.default_rng(FOLD_SEED).permutation(len(paths))
    parts = np.array_split(order, folds)
    table = []
    with TemporaryDirectory() as tmp:
        for alpha in candidates:
            correct = kept_bytes = reference_bytes = 0.0
            for k, held in enumerate(parts):
                fit = Path(tmp, "fit.txt")
                held_out = Path(tmp, "held.txt")
                fit.write_text("\n".join(str(paths[i]) for i in order if i not in held))
                held_out.write_text("\n".join(str(paths[i]) for i in held))
                base = preset(
                    "ours",
                    backend=backend,
                    images=str(fit),
                    alpha=alpha,
                    out=f"{tmp}/agent.pt",
                    progress=False,
                )
                train(replace(base, dqn=replace(base.dqn, seed=k)))
                report = evaluate(
                    EvaluateSettings(
                        backend=backend,
                        agent=f"{tmp}/agent.pt",
                        images=str(held_out),
                        progress=False,
                    )
                )
                n = report["n_images"]
                correct += report["agent"]["accuracy"] * n
                # size_ratio is bytes/reference bytes; weight folds by their q=75 bytes
                ref = report["reference_bytes"]
                kept_bytes += report["agent"]["size_ratio"] * ref
                reference_bytes += ref
            table.append(
                {
                    "alpha": alpha,
                    "cv_accuracy": correct / len(paths),
                    "cv_size_ratio": kept_bytes / reference_bytes,
                }
            )
            print(f"  {backend} alpha={alpha}: {json.dumps(table[-1])}", flush=True)
    good = [row["alpha"] for row in table if row["cv_accuracy"] >= min_accuracy]
    return (min(good) if good else max(candidates)), table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--alphas", nargs="+", type=float, default=[3.0, 4.0, 6.0, 8.0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cv-accuracy", type=float, default=0.99)
    args = parser.parse_args(argv)
    configure_threads()
    for backend in args.backends:
        alpha, table = choose_alpha(backend, args.alphas, args.folds, args.cv_accuracy)
        out = Path(os.path.relpath(AGENTS / f"{backend}.pt"))
        log = train(
            preset(
                "ours",
                backend=backend,
                split="train",
                alpha=alpha,
                out=str(out),
                progress=False,
            )
        )
        log["alpha_selection"] = table
        atomic_write_json(out.with_suffix(".json"), log)
        last = log["history"][-1]
        print(
            f"{backend}: alpha {alpha}, {log['n_images']} images, final reward "
            f"{last['charts/reward']:.3f}, accuracy {last['charts/accuracy']:.3f} "
            f"-> {out}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
