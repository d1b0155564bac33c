"""How predictable is "this image survives quality c" from what the device can see?

    python benchmarks/research/predictability.py [--backends lite0 lite1 lite2]

Train split only (never test). For q=5 and q=15 and each backend: the share of images
whose answer survives, and the ROC AUC of candidate signals for predicting it —
single signals (local classifier's top-1 score, log pixel count) scored on all 700 train
images, and an L2-regularised logistic regression on each feature set, fitted on ``fit``
and scored on ``val``. Needs the cache filled (benchmarks/warm_cache.py) or fills it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import logistic_fit
import numpy as np
import torch
from logistic_fit import fit_logits

from adacompress.core.datasets import imagenet_split
from adacompress.device.actions import Action, get_action_set
from adacompress.device.features import get_extractor
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import collect
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import add_smoke, limit_splits  # noqa: E402  (benchmarks/_common.py)

QUALITIES = (5, 15)


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative."""
    pos, neg = score[label == 1], score[label == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def logistic_auc(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    weight_decay: float = 1.0,
) -> float:
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-3
    torch.manual_seed(0)
    model = torch.nn.Linear(x_fit.shape[1], 1)
    inputs = torch.tensor((x_fit - mean) / std, dtype=torch.float32)
    targets = torch.tensor(y_fit, dtype=torch.float32)
    fit_logits(model, inputs, targets, weight_decay=weight_decay)
    with torch.no_grad():
        scores = model(torch.tensor((x_val - mean) / std, dtype=torch.float32))[:, 0]
    return auc(scores.numpy(), y_val)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits()
        logistic_fit.STEPS = 5
        args.backends = args.backends[:1]
    actions = get_action_set("paper")
    splits = {name: imagenet_split(name) for name in ("fit", "val")}
    results = {}
    for backend in args.backends:
        data = {}
        for name, paths in splits.items():
            features = {}
            for extractor in ("lite0", "confidence"):
                with open_env(
                    CloudSettings(backend),
                    actions=actions,
                    extractor=get_extractor(extractor),
                ) as env:
                    collected = collect(env, paths, progress=False)
                features[extractor] = np.stack([s.features for s in collected.samples])
            survives = {
                q: np.array(
                    [
                        env.score(o[Action(75)], o[Action(q)]).accuracy
                        for o in collected.outcomes
                    ]
                )
                for q in QUALITIES
            }
            data[name] = (features, survives)
        row = {}
        for q in QUALITIES:
            conf = np.concatenate([data[n][0]["confidence"] for n in splits])
            label = np.concatenate([data[n][1][q] for n in splits])
            (f_fit, s_fit), (f_val, s_val) = data["fit"], data["val"]
            row[f"q{q}"] = {
                "survive_rate_train": float(label.mean()),
                "auc_top1_score": auc(conf[:, 0], label),
                "auc_log_pixels": auc(conf[:, 10], label),
                "auc_logistic_lite0_val": logistic_auc(
                    f_fit["lite0"], s_fit[q], f_val["lite0"], s_val[q]
                ),
                "auc_logistic_confidence_val": logistic_auc(
                    f_fit["confidence"], s_fit[q], f_val["confidence"], s_val[q]
                ),
            }
        results[backend] = row
        print(backend, json.dumps(row, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
