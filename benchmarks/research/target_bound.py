"""How small can uploads get at an accuracy target, given what the device knows?

    python benchmarks/research/target_bound.py [--target 0.985]
        [--actions scale-quality] [--json out/target_bound.json]

Train split only (700 images, never test), every backend, one action set
(``--actions``: ``scale-quality``, ``webp-scale-quality`` ...). Each row is a
decision rule with a different amount of information, and its smallest size ratio
(bytes / q=75 reference bytes) at accuracy >= ``--target``:

- ``oracle``: knows every upload's answer (the bound no rule can beat).
- ``best fixed``: one (scale, quality) pair for every image.
- ``survival[STATE]``: a survival model — a small MLP on (image state, action one-hot,
  that action's probes) giving the probability that the answer survives — scored out
  of fold (5-fold CV); the rule sends the smallest action whose probability clears a
  threshold, and the threshold is swept (in-sample choice: optimistic). STATE is
  ``confidence`` (11 numbers, the paper agents' state), ``confidence-scales`` (the
  shipped scale-quality agents' state) or
  ``confidence+local-probes``: also the local classifier's answer on *every* candidate
  upload (25 extra EfficientNet-Lite0 forwards a decision, more than a phone would
  spend): the reference class's probability relative to the original's, whether the
  top-1 class is unchanged, whether the reference class is still in the top 5. The
  local classifier is EfficientNet-Lite0, the same network and preprocessing as the
  ``lite0`` service, so these are read from the ``lite0`` service's cached answers (on
  the ``lite0`` backend the probes *are* the cloud's answers: that row is exact).
- ``survival[confidence-scales+K probes]``: the shipped state plus the local probes
  of only K candidate uploads, the same K for every image (evenly spaced in the order
  of mean size): K forwards a decision instead of 25. Fixed positions, so a lower
  bound on what K probes chosen per image (by bisection from the survival model's
  choice) would keep.
- ``survival[confidence-scales+K bisected probes]``: the same, but each image's K
  probes chosen by bisection: the search starts at the shipped state's choice (out
  of fold, trusted at 0.9) and halves the cheaper candidates by what the local
  classifier says of each probed upload (monotone: kept at a candidate, kept above).
- ``survival[confidence+pooled PCA K]`` (``--pooled-pca K ...``): a student of the
  cloud on frozen features: the ``confidence`` state plus the first K principal
  components of Lite0's 1280 pooled features (224 px, the same forward), the
  components fitted without labels on the training photos and BSDS500's train and
  val photos; the survival model learns from the cloud's answers what in them
  predicts survival.
- ``cascade``: upload a small version first and keep the cloud's answer when its top-1
  score clears a threshold, else upload a second, larger version (best pair of actions
  and thresholds chosen in-sample: optimistic). Bytes of both uploads count.
- ``feedback``: the cascade with a learned trust rule (the cloud's own feedback, as
  FrugalML uses it): a logistic model, out of fold, of whether the first upload kept
  the answer, from what came back (top-1 score, the margin to the second label,
  whether the top-1 agrees with the device's own top-1: the local classifier's on the
  q=75 reference, read from the lite0 service's cache) and the
  device's state; the best pair of actions and threshold chosen in-sample. Both
  uploads' bytes count; ``calls`` is the mean number of calls a photo.

The rows say whether a target (the scale-quality issue asks 0.985 at <= 0.12) is out of
reach for lack of information rather than for lack of a better learner. Needs the
cache warm for scale-quality (``benchmarks/warm_cache.py --actions scale-quality``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import logistic_fit
import numpy as np
import torch
from logistic_fit import fit_logits

from adacompress.core.datasets import data_root, imagenet_split
from adacompress.core.efficientnet import LiteNetwork, preprocess_array
from adacompress.core.labels import Answer
from adacompress.device.actions import REFERENCE_ACTION, get_action_set
from adacompress.device.features import get_extractor
from adacompress.device.features.lite import CONFIDENCE_TOP
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import collect
from basekit.atomic import atomic_write_json
from basekit.images import load_image
from basekit.threads import configure_threads

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import (  # noqa: E402  (benchmarks/_common.py)
    add_smoke,
    limit_splits,
    smoke_path,
)

BACKENDS = ("lite0", "lite1", "lite2")
LOCAL = "lite0"  # the backend whose network is the device's local classifier
FOLDS = 5
THRESHOLDS = np.linspace(0.3, 0.999, 140)
CASCADE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def score_of(answer: Answer, class_id: int) -> float:
    return next((label.score for label in answer if label.class_id == class_id), 0.0)


def margin(answer: Answer) -> float:
    """The top-1 score's lead over the second label's."""
    second = answer[1].score if len(answer) > 1 else 0.0
    return answer[0].score - second


def backend_table(
    backend: str, actions: str, split: str = "train", paths: list[Path] | None = None
) -> dict[str, np.ndarray]:
    """Per image x action: survived, bytes, cloud top-1 score; plus the state. The
    images are ``split``'s, or ``paths`` when given."""
    with open_env(
        CloudSettings(backend),
        actions=get_action_set(actions),
        extractor=get_extractor("confidence-scales"),
    ) as env:
        photos = imagenet_split(split) if paths is None else paths
        collected = collect(env, photos, progress=False)
    rows = collected.outcomes
    ref_class = [o[REFERENCE_ACTION].answer[0].class_id for o in rows]
    ref_score = [o[REFERENCE_ACTION].answer[0].score for o in rows]
    return {
        "digest": np.array([s.digest for s in collected.samples]),
        "state": np.stack([s.features for s in collected.samples]),
        "ref": np.array([o[REFERENCE_ACTION].nbytes for o in rows], float),
        "nbytes": np.array([[o[a].nbytes for a in env.actions] for o in rows], float),
        "kept": np.array(
            [
                [env.score(o[REFERENCE_ACTION], o[a]).accuracy for a in env.actions]
                for o in rows
            ]
        ),
        "top1": np.array(
            [[o[a].answer[0].score for a in env.actions] for o in rows], float
        ),
        "margin": np.array(
            [[margin(o[a].answer) for a in env.actions] for o in rows], float
        ),
        "top1_class": np.array(
            [[o[a].answer[0].class_id for a in env.actions] for o in rows], int
        ),
        "same_top1": np.array(
            [
                [o[a].answer[0].class_id == c for a in env.actions]
                for o, c in zip(rows, ref_class, strict=True)
            ],
            float,
        ),
        "ref_share": np.array(
            [
                [score_of(o[a].answer, c) / max(ref_top, 1e-6) for a in env.actions]
                for o, c, ref_top in zip(rows, ref_class, ref_score, strict=True)
            ]
        ),
    }


def pooled_components(k_max: int) -> np.ndarray:
    """The first ``k_max`` principal components of Lite0's pooled features of the
    training photos, fitted on those and BSDS500's train and val photos (no labels).
    Shape: (training photos, k_max)."""
    network = LiteNetwork("lite0", 224, "pooled")

    def pooled(paths: list[Path]) -> np.ndarray:
        return np.concatenate(
            [network(preprocess_array([load_image(p)], 224)) for p in paths]
        )

    bsds = data_root() / "bsds500"
    extra = sorted((bsds / "train").glob("*.jpg")) + sorted(
        (bsds / "val").glob("*.jpg")
    )
    train = pooled(imagenet_split("train"))
    every = np.concatenate([train, pooled(extra)])
    mean = every.mean(0)
    _, _, components = np.linalg.svd(every - mean, full_matrices=False)
    return (train - mean) @ components[:k_max].T


def pick(allowed: np.ndarray, t: dict[str, np.ndarray]) -> tuple[float, float]:
    """Accuracy and size ratio of sending the smallest allowed action (else q=75)."""
    n = len(t["ref"])
    choice = np.where(allowed, t["nbytes"], np.inf).argmin(1)
    none = ~allowed.any(1)
    accuracy = np.where(none, 1.0, t["kept"][np.arange(n), choice])
    nbytes = np.where(none, t["ref"], t["nbytes"][np.arange(n), choice])
    return float(accuracy.mean()), float(nbytes.sum() / t["ref"].sum())


def best_at(points: list[tuple[float, float]], target: float) -> dict[str, Any]:
    """The smallest size among (accuracy, size) points that reach ``target``."""
    feasible = [(size, acc) for acc, size in points if acc >= target]
    if not feasible:
        return {"size_ratio": None, "accuracy": max(a for a, _ in points)}
    size, acc = min(feasible)
    return {"size_ratio": round(size, 4), "accuracy": round(acc, 4)}


def action_rows(
    state: np.ndarray, probes: np.ndarray | None, n_actions: int
) -> np.ndarray:
    """One row per (image, action): the image's state, the action one-hot and, if
    given, that action's local probes. Shape: (images * actions, columns)."""
    n = len(state)
    parts = [
        np.repeat(state[:, None, :], n_actions, axis=1),
        np.broadcast_to(np.eye(n_actions), (n, n_actions, n_actions)),
    ]
    if probes is not None:
        parts.append(probes)
    return np.concatenate(parts, axis=2).reshape(n * n_actions, -1).astype(np.float32)


Predictor = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def fit_survival(
    state: np.ndarray, probes: np.ndarray | None, kept: np.ndarray, seed: int
) -> Predictor:
    """A survival model: P(answer survives) per (image, action), fitted on these
    images; returns ``predict(state, probes) -> (images, actions)``.

    One small MLP over (image, action) rows shares what it learns across actions;
    with 700 images a model with one output per action overfits its rare failures.
    """
    n_actions = kept.shape[1]
    x = action_rows(state, probes, n_actions)
    mean, std = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
    )
    inputs = torch.tensor((x - mean) / std)
    targets = torch.tensor(kept.reshape(-1), dtype=torch.float32)
    fit_logits(model, inputs, targets, weight_decay=1e-3)

    def predict(state: np.ndarray, probes: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            held = torch.tensor((action_rows(state, probes, n_actions) - mean) / std)
            return torch.sigmoid(model(held)[:, 0]).numpy().reshape(len(state), -1)

    return predict


def survival_out_of_fold(
    state: np.ndarray,
    probes: np.ndarray | None,
    kept: np.ndarray,
    seed: int,
    fit: Callable[..., Predictor] = fit_survival,
) -> np.ndarray:
    """Out-of-fold P(answer survives) per image and action, 5-fold CV."""
    order = np.random.default_rng(seed).permutation(len(state))
    out = np.empty_like(kept)

    def part(values: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
        return None if values is None else values[index]

    for fold in np.array_split(order, FOLDS):
        train = np.setdiff1d(order, fold)
        predict = fit(state[train], part(probes, train), kept[train], seed)
        out[fold] = predict(state[fold], part(probes, fold))
    return out


def cascade(t: dict[str, np.ndarray], target: float) -> dict[str, Any]:
    """The best two-upload cascade, in-sample: the first upload's answer is kept if
    its top-1 score >= tau, else the second upload's is used."""
    mean_bytes = t["nbytes"].mean(0)
    best: dict[str, Any] = {"size_ratio": None, "accuracy": 0.0}
    for first, second in itertools.permutations(range(t["nbytes"].shape[1]), 2):
        if mean_bytes[first] >= mean_bytes[second]:
            continue
        for tau in CASCADE_THRESHOLDS:
            keep_first = t["top1"][:, first] >= tau
            accuracy = np.where(
                keep_first, t["kept"][:, first], t["kept"][:, second]
            ).mean()
            nbytes = t["nbytes"][:, first] + np.where(
                keep_first, 0.0, t["nbytes"][:, second]
            )
            size = float(nbytes.sum() / t["ref"].sum())
            if accuracy >= target and (
                best["size_ratio"] is None or size < best["size_ratio"]
            ):
                best = {
                    "size_ratio": round(size, 4),
                    "accuracy": round(float(accuracy), 4),
                    "first": int(first),
                    "tau": tau,
                    "second": int(second),
                }
    return best


def bisected(
    local_kept: np.ndarray, survival: np.ndarray, k: int, trust: float = 0.9
) -> np.ndarray:
    """Which candidates a K-probe bisection probes per image (candidates in
    ``local_kept``'s column order, cheapest first): from the cheapest candidate
    ``survival`` trusts (else the most likely), halving the cheaper ones by the local
    classifier's verdict on each probe. Shape: (images, actions) 0/1."""
    n, n_actions = local_kept.shape
    probed = np.zeros((n, n_actions))
    for i in range(n):
        trusted = np.flatnonzero(survival[i] >= trust)
        lo, hi = 0, int(trusted[0]) if len(trusted) else int(survival[i].argmax())
        for _ in range(k):
            if lo >= hi:
                break
            mid = (lo + hi) // 2
            probed[i, mid] = 1.0
            if local_kept[i, mid]:
                hi = mid
            else:
                lo = mid + 1
    return probed


def feedback(
    t: dict[str, np.ndarray],
    state: np.ndarray,
    device_top1: np.ndarray,
    target: float,
    seed: int,
) -> dict[str, Any]:
    """The best two-upload cascade with a logistic trust rule on the first upload's
    answer, fitted out of fold; pairs and threshold chosen in-sample."""
    n, n_actions = t["kept"].shape
    mean_bytes = t["nbytes"].mean(0)
    best: dict[str, Any] = {"size_ratio": None, "accuracy": 0.0}
    order = np.random.default_rng(seed).permutation(n)
    for first in range(n_actions):
        agree = (t["top1_class"][:, first] == device_top1).astype(float)
        x = np.column_stack(
            [t["top1"][:, first], t["margin"][:, first], agree, state]
        ).astype(np.float32)
        trust = np.empty(n)
        for fold in np.array_split(order, FOLDS):
            train = np.setdiff1d(order, fold)
            mean, std = x[train].mean(0), x[train].std(0) + 1e-6
            torch.manual_seed(seed)
            model = torch.nn.Linear(x.shape[1], 1)
            fit_logits(
                model,
                torch.tensor((x[train] - mean) / std),
                torch.tensor(t["kept"][train, first], dtype=torch.float32),
                weight_decay=1e-3,
            )
            with torch.no_grad():
                logits = model(torch.tensor((x[fold] - mean) / std))[:, 0]
                trust[fold] = torch.sigmoid(logits).numpy()
        for second in range(n_actions):
            if mean_bytes[first] >= mean_bytes[second]:
                continue
            for tau in THRESHOLDS:
                keep_first = trust >= tau
                accuracy = float(
                    np.where(
                        keep_first, t["kept"][:, first], t["kept"][:, second]
                    ).mean()
                )
                if accuracy < target:
                    continue
                nbytes = t["nbytes"][:, first] + np.where(
                    keep_first, 0.0, t["nbytes"][:, second]
                )
                size = float(nbytes.sum() / t["ref"].sum())
                if best["size_ratio"] is None or size < best["size_ratio"]:
                    best = {
                        "size_ratio": round(size, 4),
                        "accuracy": round(accuracy, 4),
                        "first": int(first),
                        "tau": round(float(tau), 3),
                        "second": int(second),
                        "calls": round(1 + float((~keep_first).mean()), 3),
                    }
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.985)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actions", default="scale-quality", help="action set")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--json", type=Path, default=Path("out/target_bound.json"))
    parser.add_argument(
        "--probes", type=int, nargs="*", default=[2, 4], help="K of the K-probe rows"
    )
    parser.add_argument(
        "--pooled-pca",
        type=int,
        nargs="*",
        default=[],
        help="K of the student rows: confidence + K pooled-feature components",
    )
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:  # ten images: five-fold cross-validation needs a few a fold
        limit_splits(10)
        logistic_fit.STEPS = 5
        args.backends, args.probes = [LOCAL], [2]
        args.json = smoke_path(args.json)
    keys = [a.key for a in get_action_set(args.actions)]
    backends = list(dict.fromkeys([LOCAL, *args.backends]))  # the probes need LOCAL
    tables = {b: backend_table(b, args.actions) for b in backends}
    local = tables[LOCAL]
    # The local classifier on every candidate upload (n, actions, 3).
    probes = np.stack([local["ref_share"], local["same_top1"], local["kept"]], axis=2)
    confidence = local["state"][:, : CONFIDENCE_TOP + 1]
    states = {
        "confidence": (confidence, None),
        "confidence-scales": (local["state"], None),
        "confidence+local-probes": (confidence, probes),
    }
    if args.pooled_pca:
        components = pooled_components(max(args.pooled_pca))
        for k in args.pooled_pca:
            states[f"confidence+pooled PCA {k}"] = (
                np.concatenate([confidence, components[:, :k]], axis=1),
                None,
            )
    by_size = np.argsort(local["nbytes"].mean(0))
    for k in args.probes:
        probed = np.zeros(len(keys))
        probed[by_size[np.linspace(0, len(keys) - 1, k).round().astype(int)]] = 1.0
        shown = np.concatenate(
            [
                probes * probed[None, :, None],
                np.broadcast_to(probed, probes.shape[:2])[:, :, None],
            ],
            axis=2,
        )
        states[f"confidence-scales+{k} probes"] = (local["state"], shown)
    device_top1 = local["top1_class"][:, keys.index(REFERENCE_ACTION.key)]

    report: dict[str, Any] = {
        "target": args.target,
        "actions": args.actions,
        "n_images": len(local["ref"]),
    }
    for backend, t in tables.items():
        assert (t["digest"] == local["digest"]).all(), "images out of step"
        oracle = np.where(t["kept"] == 1, t["nbytes"], np.inf).min(1)
        oracle = np.where(np.isinf(oracle), t["ref"], oracle)
        total = t["ref"].sum()
        fixed = [
            (float(t["kept"][:, a].mean()), float(t["nbytes"][:, a].sum() / total))
            for a in range(len(keys))
        ]
        row: dict[str, Any] = {
            "oracle": {
                "size_ratio": round(float(oracle.sum() / total), 4),
                "accuracy": 1.0,
            },
            "best fixed": best_at(fixed, args.target),
        }
        for name, (state, local_probes) in states.items():
            probability = survival_out_of_fold(
                state, local_probes, t["kept"], args.seed
            )
            points = [pick(probability >= tau, t) for tau in THRESHOLDS]
            row[f"survival[{name}]"] = best_at(points, args.target)
            if name == "confidence-scales":
                stage1 = probability
        for k in args.probes:  # the bisection walks candidates by mean size
            chosen = bisected(local["kept"][:, by_size], stage1[:, by_size], k)
            probed = np.empty_like(chosen)
            probed[:, by_size] = chosen
            shown = np.concatenate([probes * probed[:, :, None], probed[:, :, None]], 2)
            probability = survival_out_of_fold(
                local["state"], shown, t["kept"], args.seed
            )
            points = [pick(probability >= tau, t) for tau in THRESHOLDS]
            row[f"survival[confidence-scales+{k} bisected probes]"] = best_at(
                points, args.target
            )
        row["cascade"] = cascade(t, args.target)
        row["feedback"] = feedback(
            t, local["state"], device_top1, args.target, args.seed
        )
        for rule in ("cascade", "feedback"):
            if row[rule].get("first") is not None:
                row[rule]["first"] = keys[row[rule]["first"]]
                row[rule]["second"] = keys[row[rule]["second"]]
        report[backend] = row
        print(backend, json.dumps(row), flush=True)
    atomic_write_json(args.json, report)
    rules = list(report[LOCAL])
    lines = [
        f"size ratio at accuracy >= {args.target}, {args.actions} "
        f"(train, {report['n_images']} images)",
        "",
        "| rule | " + " | ".join(backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for rule in rules:
        cells = []
        for backend in backends:
            cell = report[backend][rule]
            size = cell["size_ratio"]
            cells.append(f"{size:.3f}" if size is not None else "not reached")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
