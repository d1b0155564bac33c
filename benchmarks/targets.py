"""Accuracy targets with downscale-and-quality actions: the README table and plot.

    python benchmarks/targets.py [--backends lite0 lite1 lite2]
        [--targets 0.95 0.97 0.99] [--json out/targets.json]

Per backend: alpha is calibrated for each target by 5-fold cross-validation on the
700 train images (one shared search, :mod:`adacompress.calibrate`), an agent is trained
on all of train with it, and each agent is evaluated on the 300 held-out test images
beside every fixed (scale, quality) pair and the per-image oracle of both action sets.
The shipped scale-quality agents are the 0.99 agents of ``--policy survival
--features confidence-scales``; they are built by ``adacompress ship`` (the
``shipped-scale-quality`` preset). ``--policy q`` trains the alpha-DQN recipe that
shipped before.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import SMOKE_OVERRIDES, add_smoke, limit_splits, smoke_path
from adacompress.core.datasets import imagenet_split
from adacompress.device.actions import get_action_set
from adacompress.device.features import get_extractor
from adacompress.device.zoo import AgentChoice, shipped
from adacompress.exchange.environment import open_env
from adacompress.exchange.settings import CloudSettings
from adacompress.learning.evaluate import best_fixed, evaluate
from adacompress.learning.fit import Online
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.settings import EvaluateSettings, TrainSettings
from adacompress.learning.train import search_for, train
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads

ACTIONS = "scale-quality"
TRAIN_IMAGES = 700  # imagenet-samples' train split, what the CV calibrates on
PRESET = {"q": "alpha-dqn-scale-quality", "survival": "shipped-scale-quality"}
OVERRIDES: dict[str, Any] = {}
"""More training overrides (a smoke run's few steps)."""


def settings_for(
    backend: str, features: str, out: Path, policy: str = "q"
) -> TrainSettings:
    """The policy's preset, learning from every action's answer on each image."""
    return TRAIN_PRESETS.get(
        PRESET[policy],
        {
            "cloud": {"backend": backend},
            "actions": ACTIONS,
            "data": {"split": "train"},
            "out": str(out),
            "answers": {"full_information": True},
            "progress": False,
            "features": features,
            "target_accuracy": None,
            **OVERRIDES,
        },
    )


def calibrations(
    backend: str, features: str, targets: list[float], policy: str = "q"
) -> dict[float, Any]:
    """One cross-validated search on train (alpha, or the survival threshold),
    answered for every target."""
    base = settings_for(backend, features, Path("unused.pt"), policy)
    with open_env(
        base.cloud,
        actions=get_action_set(ACTIONS),
        extractor=get_extractor(base.features),
        top_k=base.top_k,
    ) as env:
        samples, _ = env.prepare(imagenet_split("train"), progress=False)
        search = search_for(Online(env, samples, base.answers.full_information), base)
        found = {t: search.for_target(t) for t in targets}
    for target, c in found.items():
        knob = f"threshold {c.threshold:.4f}" if c.threshold else f"alpha {c.alpha:.2f}"
        print(f"  {backend} target {target}: {knob}", flush=True)
    return found


def run_backend(
    backend: str,
    features: str,
    targets: list[float],
    out: Path,
    policy: str = "q",
) -> dict:
    row: dict[str, Any] = {"agents": {}}
    for target, calibration in calibrations(backend, features, targets, policy).items():
        agent_file = out / f"{backend}-{ACTIONS}-{target}.pt"
        settings = replace(
            settings_for(backend, features, agent_file, policy), target_accuracy=target
        )
        train(settings, calibration)
        report = evaluate(
            EvaluateSettings(
                cloud=CloudSettings(backend),
                choice=AgentChoice(str(agent_file)),
                progress=False,
            )
        )
        key, value = (
            ("threshold", calibration.threshold)
            if calibration.threshold is not None
            else ("alpha", calibration.alpha)
        )
        cv = next(r for r in calibration.table if r[key] == value)
        row["agents"][str(target)] = {
            "alpha": calibration.alpha,
            "threshold": calibration.threshold,
            "cv_accuracy": cv["cv_accuracy"],
            "cv_size_ratio": cv["cv_size_ratio"],
            "accuracy": report["agent"]["accuracy"],
            "size_ratio": report["agent"]["size_ratio"],
            "target_held": report["target_held"],
            "actions": report["agent"]["actions"],
        }
        print(f"  {backend} {target}: {json.dumps(row['agents'][str(target)])}")
    row["fixed"] = report["fixed"]
    row["best_fixed"] = {}
    for target in targets:
        found = best_fixed(report, target)
        row["best_fixed"][str(target)] = (
            {"action": found[0], **found[1]} if found else None
        )
    paper = evaluate(
        EvaluateSettings(
            cloud=CloudSettings(backend),
            choice=AgentChoice(str(shipped(backend, "paper").file)),
            progress=False,
        )
    )
    row["oracle"] = {"paper": paper["oracle"], ACTIONS: report["oracle"]}
    row["n_images"] = report["n_images"]
    return row


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [b for b in report if isinstance(report[b], dict)]
    fig, axes = plt.subplots(1, len(backends), figsize=(5 * len(backends), 4.2))
    for ax, backend in zip(list(getattr(axes, "flat", [axes])), backends, strict=True):
        row = report[backend]
        fixed = row["fixed"].values()
        ax.scatter(
            [r["size_ratio"] for r in fixed],
            [r["accuracy"] for r in fixed],
            s=12,
            c="0.6",
            label="fixed (scale, quality)",
        )
        agents = [row["agents"][str(t)] for t in report["targets"]]
        ax.plot(
            [a["size_ratio"] for a in agents],
            [a["accuracy"] for a in agents],
            "o-",
            c="C0",
            label="agent at target",
        )
        for target in report["targets"]:
            ax.axhline(target, c="C0", lw=0.6, ls=":")
        for name, marker in (("paper", "s"), (ACTIONS, "*")):
            oracle = row["oracle"][name]
            ax.scatter(
                [oracle["size_ratio"]],
                [oracle["accuracy"]],
                marker=marker,
                s=80,
                c="C3" if name == ACTIONS else "C1",
                label=f"oracle ({name})",
            )
        ax.set(
            xscale="log",
            xlabel="upload size / q=75 size (test)",
            ylabel="accuracy (test)",
            title=backend,
            ylim=(0.85, 1.005),
        )
        ax.grid(alpha=0.3)
    axes_list = list(getattr(axes, "flat", [axes]))
    axes_list[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chance_within(
    target: float, n_test: int, n_train: int, tolerance: float = 0.015
) -> float:
    """The chance that a *perfectly calibrated* rule lands within ``tolerance`` of
    ``target``: its test accuracy and the train-CV accuracy it was calibrated on are
    both binomial estimates (normal approximation)."""
    se = math.sqrt(target * (1 - target) * (1 / n_test + 1 / n_train))
    return math.erf(tolerance / (se * math.sqrt(2)))


def table(report: dict[str, Any]) -> str:
    """The README table: per backend and target, the agent beside the best fixed
    pair at that target and the oracles."""
    knob = "threshold" if report.get("policy") == "survival" else "alpha"
    lines = [
        f"| backend | target | {knob} (CV acc, size) | agent test acc | agent size "
        "| best fixed pair at >= target | oracle size: scale-quality / paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in (b for b in report if isinstance(report[b], dict)):
        row = report[backend]
        oracle = row["oracle"]
        for target in report["targets"]:
            agent = row["agents"][str(target)]
            fixed = row["best_fixed"][str(target)]
            fixed_text = "none"
            if fixed:
                fixed_text = (
                    f"{fixed['action']}: {fixed['size_ratio']:.3f} "
                    f"({fixed['accuracy']:.3f})"
                )
            value = agent.get(knob) or agent["alpha"]
            lines.append(
                f"| {backend} | {target} | {value:.{4 if knob == 'threshold' else 1}f} "
                f"({agent['cv_accuracy']:.3f}, {agent['cv_size_ratio']:.3f}) "
                f"| {agent['accuracy']:.3f} | {agent['size_ratio']:.3f} "
                f"| {fixed_text} | {oracle[ACTIONS]['size_ratio']:.3f} / "
                f"{oracle['paper']['size_ratio']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.95, 0.97, 0.99])
    parser.add_argument("--json", type=Path, default=Path("out/targets.json"))
    parser.add_argument("--features", default="confidence")
    parser.add_argument("--policy", choices=sorted(PRESET), default="q")
    add_smoke(parser)
    args = parser.parse_args(argv)
    configure_threads()
    if args.smoke:
        limit_splits()
        OVERRIDES.update(SMOKE_OVERRIDES)
        args.backends, args.targets = args.backends[:1], args.targets[-1:]
        args.json = smoke_path(args.json)
    suffix = "" if args.policy == "q" else f"-{args.policy}"
    out = args.json.parent / f"targets-{args.features}{suffix}"
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "actions_set": ACTIONS,
        "features": args.features,
        "targets": args.targets,
        "policy": args.policy,
    }
    if args.json.is_file():  # keep the other backends of an earlier run alike
        earlier = json.loads(args.json.read_text())
        if all(earlier.get(k) == v for k, v in report.items()):
            report = earlier
    for backend in args.backends:
        report[backend] = run_backend(
            backend, args.features, args.targets, out, args.policy
        )
        atomic_write_json(args.json, report)
    plot(report, args.json.with_suffix(".png"))
    backends = [b for b in report if isinstance(report[b], dict)]
    n_test = report[backends[0]]["n_images"]
    within = [chance_within(t, n_test, TRAIN_IMAGES) for t in args.targets]
    text = table(report) + (
        f"\nA perfectly calibrated rule ({n_test} test, {TRAIN_IMAGES} train images) "
        f"misses +-0.015 at {' / '.join(map(str, args.targets))} with probability "
        f"{' / '.join(f'{1 - w:.2f}' for w in within)}: "
        f"{len(backends) * sum(1 - w for w in within):.2f} misses expected over the "
        f"{len(backends) * len(within)} cells, all inside with probability "
        f"{math.prod(within) ** len(backends):.2f}.\n"
    )
    args.json.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
