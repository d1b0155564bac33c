"""Accuracy targets met by a survival model + threshold, scored on the test images.

    python benchmarks/survival_targets.py [--targets 0.95 0.97 0.99]
        [--json out/survival_targets.json]

The scale-quality issue allows two ways to meet a user's accuracy target: calibrate the
reward weight alpha (what ``train --target-accuracy`` does) or "a threshold on
predicted accuracy". This script measures the second, outside the product, to decide
whether it is worth building:

- a survival model (``target_bound.fit_survival``: a small MLP on the image's
  ``confidence-scales`` state and the action) predicts, per image and action, the
  probability that the cloud's answer survives the upload;
- the device sends the cheapest action whose probability clears a threshold tau,
  "cheapest" by the action's mean size ratio on train (no extra encodes), else q=75;
- tau is chosen per target on train only: on out-of-fold predictions (5-fold CV)
  the tau with the smallest size whose accuracy reaches the target;
- the model is then fitted on all 700 train images and applied with that tau to the
  300 held-out test images.

Compare with the alpha-calibrated DQN agents of ``targets.py`` (README table).
``--model per-action`` replaces the shared (state, action) model by the DQN agents'
shape, one network with an output per action, to see whether the agent's network
could simply be trained as a survival model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adacompress.cache import AnswerCache, default_cache_path
from adacompress.storage import atomic_write_json
from adacompress.threads import configure_threads
from logistic_fit import fit_logits
from target_bound import (
    BACKENDS,
    THRESHOLDS,
    Predictor,
    backend_table,
    fit_survival,
    survival_out_of_fold,
)


def fit_per_action(
    state: np.ndarray, probes: np.ndarray | None, kept: np.ndarray, seed: int
) -> Predictor:
    """The DQN agents' shape: state -> 32 hidden -> one survival logit per action."""
    mean, std = state.mean(0), state.std(0) + 1e-6
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(state.shape[1], 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, kept.shape[1]),
    )
    inputs = torch.tensor((state - mean) / std, dtype=torch.float32)
    targets = torch.tensor(kept, dtype=torch.float32)
    fit_logits(model, inputs, targets, weight_decay=1e-3)

    def predict(state: np.ndarray, probes: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            x = torch.tensor((state - mean) / std, dtype=torch.float32)
            return torch.sigmoid(model(x)).numpy()

    return predict


MODELS = {"shared": fit_survival, "per-action": fit_per_action}


def send(
    allowed: np.ndarray, t: dict[str, np.ndarray], cost: np.ndarray
) -> tuple[float, float]:
    """Accuracy and size ratio of sending the allowed action with the lowest
    ``cost`` (q=75, the reference, when none is allowed)."""
    n = len(t["ref"])
    choice = np.where(allowed, cost[None, :], np.inf).argmin(1)
    none = ~allowed.any(1)
    accuracy = np.where(none, 1.0, t["kept"][np.arange(n), choice])
    nbytes = np.where(none, t["ref"], t["nbytes"][np.arange(n), choice])
    return float(accuracy.mean()), float(nbytes.sum() / t["ref"].sum())


def choose_tau(
    probability: np.ndarray, t: dict[str, np.ndarray], cost: np.ndarray, target: float
) -> tuple[float, float, float]:
    """(tau, accuracy, size) with the smallest size at accuracy >= target; the
    largest tau when none reaches it."""
    best = None
    for tau in THRESHOLDS:
        accuracy, size = send(probability >= tau, t, cost)
        if accuracy >= target and (best is None or size < best[2]):
            best = (float(tau), accuracy, size)
    if best is None:
        tau = float(THRESHOLDS[-1])
        return (tau, *send(probability >= tau, t, cost))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.95, 0.97, 0.99])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=sorted(MODELS), default="shared")
    parser.add_argument("--json", type=Path, default=Path("out/survival_targets.json"))
    args = parser.parse_args(argv)
    configure_threads()
    fit = MODELS[args.model]
    report: dict[str, Any] = {
        "state": "confidence-scales",
        "model": args.model,
        "rows": [],
    }
    lines = [
        "| backend | target | tau (CV acc, size) | test acc | test size |",
        "|---|---|---|---|---|",
    ]
    with AnswerCache(default_cache_path()) as cache:
        for backend in BACKENDS:
            train = backend_table(cache, backend, "train")
            test = backend_table(cache, backend, "test")
            cost = (train["nbytes"] / train["ref"][:, None]).mean(0)
            oof = survival_out_of_fold(
                train["state"], None, train["kept"], args.seed, fit
            )
            predict = fit(train["state"], None, train["kept"], args.seed)
            probability = predict(test["state"], None)
            for target in args.targets:
                tau, cv_accuracy, cv_size = choose_tau(oof, train, cost, target)
                accuracy, size = send(probability >= tau, test, cost)
                row = {
                    "backend": backend,
                    "target": target,
                    "tau": round(tau, 4),
                    "cv_accuracy": round(cv_accuracy, 4),
                    "cv_size_ratio": round(cv_size, 4),
                    "test_accuracy": round(accuracy, 4),
                    "test_size_ratio": round(size, 4),
                }
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                lines.append(
                    f"| {backend} | {target} | {tau:.3f} ({cv_accuracy:.3f}, "
                    f"{cv_size:.3f}) | {accuracy:.3f} | {size:.3f} |"
                )
    atomic_write_json(args.json, report)
    print("\n".join(lines))
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
