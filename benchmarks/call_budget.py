"""Fewer paid calls: agents learned from a few cloud answers per training image.

    python benchmarks/call_budget.py [--backends lite0 lite1 lite2]
        [--budgets 1 2 4 8] [--target 0.99] [--json out/call_budget.json]

Per backend, the survival policy (scale-quality actions, the ``confidence-scales``
state, the ``survival`` training preset) is trained on the 700 train images from a
survey of ``k`` calls per training image (``train --call-budget 700k``, the
references counted, every answer counted as a call as a first training against a
new cloud would pay: ``--budget-counts-cached``), calibrated for the target by
5-fold cross-validation on the survey, and scored on the 300 held-out test images --
beside the same policy trained with full information (every action's answer: 25
calls an image). Also reported, on the train images: how often survival is not
monotone, and how often each survey's implied outcomes are wrong.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from _common import SMOKE_OVERRIDES, add_smoke, limit_splits, smoke_path
from adacompress.core.datasets import imagenet_split
from adacompress.device.actions import get_action_set
from adacompress.device.features import get_extractor
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.environment import open_env
from adacompress.exchange.monotone import dominance, violations
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import evaluate
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.settings import EvaluateSettings, TrainSettings
from adacompress.learning.survey import survey
from adacompress.learning.train import survey_for, train
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads

ACTIONS, FEATURES = "scale-quality", "confidence-scales"
OVERRIDES: dict[str, Any] = {}
"""More training overrides (a smoke run's few steps)."""


def settings_for(
    backend: str, budget: int | None, target: float, out: Path, check: bool = True
) -> TrainSettings:
    return TRAIN_PRESETS.get(
        "survival",
        {
            "cloud": {"backend": backend},
            "actions": ACTIONS,
            "features": FEATURES,
            "data": {"split": "train"},
            "target_accuracy": target,
            "answers": {
                "call_budget": budget,
                "budget_counts_cached": True,
                "full_information": True,
            },
            "out": str(out),
            "progress": False,
            **OVERRIDES,
        },
    )


def monotone_report(
    backend: str, budgets: list[int], target: float, check: bool = True
) -> dict[str, Any]:
    """Violations of monotonicity (full information) and how often each survey's
    implied outcomes are wrong, on the train images."""
    cloud = CloudSettings(backend)
    with open_env(
        cloud, actions=get_action_set(ACTIONS), extractor=get_extractor(FEATURES)
    ) as env:
        samples, _ = env.prepare(imagenet_split("train"), progress=False)
        full = survey(env, samples, queries=None)
        up = dominance(env.actions)
        broken = violations(full.kept, up)
        truth = {s.digest: row for s, row in zip(full.samples, full.kept, strict=True)}
        implied: dict[str, Any] = {}
        for k in budgets:
            asked = settings_for(backend, k * 700, target, Path("unused.pt"), check)
            found = survey_for(env, samples, asked)
            rows = np.array([truth[s.digest] for s in found.samples])
            guessed = ~np.isnan(found.kept) & ~found.asked
            wrong = (found.kept != rows) & guessed
            implied[str(k)] = {
                "images": len(found.samples),
                "calls_per_image": found.calls / len(samples),
                "known_share": float((~np.isnan(found.kept)).mean()),
                "implied_share": float(guessed.mean()),
                "implied_wrong": float(wrong.sum() / max(1, guessed.sum())),
            }
    pairs = up & ~np.eye(len(up), dtype=bool)
    return {
        "images_with_a_violation": float((broken > 0).mean()),
        "violating_pairs_share": float(broken.sum() / (len(samples) * pairs.sum())),
        "implied": implied,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--json", type=Path, default=Path("out/call_budget.json"))
    parser.add_argument(
        "--no-check-choice",
        action="store_true",
        help="surveys by weighted bisection alone (train --no-check-choice)",
    )
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits(4)
        OVERRIDES.update(SMOKE_OVERRIDES)
        args.backends, args.budgets = args.backends[:1], [1]
        args.json = smoke_path(args.json)
    out = args.json.parent / "call_budget"
    report: dict[str, Any] = {"target": args.target, "budgets": args.budgets}
    for backend in args.backends:
        rows: dict[str, Any] = {}
        for k in [*args.budgets, None]:
            name = "full" if k is None else str(k)
            agent = out / f"{backend}-{name}.pt"
            budget = None if k is None else k * 700
            log = train(
                settings_for(
                    backend, budget, args.target, agent, not args.no_check_choice
                )
            )
            result = evaluate(
                EvaluateSettings(
                    cloud=CloudSettings(backend),
                    choice=AgentChoice(str(agent)),
                    progress=False,
                )
            )
            survey_log = log.get("survey", {})
            rows[name] = {
                "calls_per_image": (
                    survey_log["calls_per_image"] if k is not None else None
                ),
                "surveyed_images": survey_log.get("images", log["n_images"]),
                "cv": {
                    key: row
                    for key, row in zip(
                        ("threshold", "cv_accuracy", "cv_size_ratio"),
                        _chosen(log["calibration"]),
                        strict=True,
                    )
                },
                "accuracy": result["agent"]["accuracy"],
                "size_ratio": result["agent"]["size_ratio"],
            }
            print(f"{backend} {name}: {json.dumps(rows[name])}", flush=True)
        report[backend] = {
            "agents": rows,
            "monotone": monotone_report(
                backend, args.budgets, args.target, not args.no_check_choice
            ),
        }
        atomic_write_json(args.json, report)
    text = table(report)
    args.json.with_suffix(".md").write_text(text)
    print(text)
    return 0


def _chosen(calibration: dict[str, Any]) -> tuple[float, float, float]:
    row = next(
        r for r in calibration["table"] if r["threshold"] == calibration["threshold"]
    )
    return row["threshold"], row["cv_accuracy"], row["cv_size_ratio"]


def table(report: dict[str, Any]) -> str:
    names = [*map(str, report["budgets"]), "full"]
    backends = [b for b in report if isinstance(report[b], dict)]
    lines = [
        f"target {report['target']}: test size (accuracy) by calls per training image",
        "",
        "| backend | "
        + " | ".join(
            f"{n} call{'s' if n != '1' else ''}/image"
            if n != "full"
            else "full information (25/image)"
            for n in names
        )
        + " |",
        "|---|" + "---|" * len(names),
    ]
    for backend in backends:
        agents = report[backend]["agents"]
        cells = [
            f"{agents[n]['size_ratio']:.3f} ({agents[n]['accuracy']:.3f})"
            for n in names
        ]
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| backend | images with a violation | violating pairs | "
        + " | ".join(f"wrong implied at {k}/image" for k in report["budgets"])
        + " |",
        "|---|---|---|" + "---|" * len(report["budgets"]),
    ]
    for backend in backends:
        mono = report[backend]["monotone"]
        wrong = [
            f"{mono['implied'][str(k)]['implied_wrong']:.3f}" for k in report["budgets"]
        ]
        lines.append(
            f"| {backend} | {mono['images_with_a_violation']:.3f} | "
            f"{mono['violating_pairs_share']:.4f} | " + " | ".join(wrong) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
