"""README table and plots: the scenery change (day -> night -> day) on every backend.

    python benchmarks/scenery.py [--backends lite0 lite1 lite2] [--presets ...]
        [--actions paper scale-quality] [--seeds 0 1 2 3 4] [--agent TEMPLATE]
        [--night DIR] [--passes 2 4 2] [--set KEY=VALUE ...] [--tag NAME]

Runs ``adacompress experiment scenery`` for each backend, runtime preset and action
set, starting from the shipped day-trained agent of that action set, once per stream
seed (the order in which the images come), and writes
out/scenery/<backend>-<preset>[-<actions>]-s<seed>.json/.png, a summary JSON and a
Markdown table of the means over seeds (traffic and recovery also with their range).
One stream is one draw: with a single seed, traffic moved between 0.50 and 0.67 and
retrains between 1 and 4 on the same agent, so the table averages five.
``--night DIR`` replaces the simulated night by real photos (another collection:
``../shared/data/bsds500/test``); ``--set`` overrides a runtime constant of the
preset (``--set downshift_probe=0``), ``--tag`` names such a variant in the outputs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from _common import SMOKE_OUT, add_settings, add_smoke, limit_splits, settings_changes
from adacompress.core.datasets import imagenet_split
from adacompress.device.zoo import AgentChoice
from adacompress.exchange.settings import CloudSettings
from adacompress.experiments.scenery import scenery
from adacompress.experiments.settings import ScenerySettings
from adacompress.runtime.run_plot import plot_run
from adacompress.runtime.settings import RUNTIME_PRESETS, RuntimeSettings
from basekit.atomic import atomic_write, atomic_write_json
from basekit.settings_cli import grouped
from basekit.threads import configure_threads

TRAIN_DAY = Path("out/train-day")


def training_day(folder: Path, count: int = 300) -> Path:
    """A day of training photos as large as the test split: the first ``count`` of
    the train split, copied into ``folder`` once (the scenery reads a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in imagenet_split("train")[:count]:
        if not (folder / photo.name).exists():
            shutil.copyfile(photo, folder / photo.name)
    return folder


def mean(values: list[Any]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds of the numbers in the table, plus traffic/recovery ranges."""

    def over(*keys: str) -> list[Any]:
        values = []
        for report in reports:
            value: Any = report
            for key in keys:
                value = value[key]
            values.append(value)
        return values

    recovery = over("recovery_steps")
    traffic = over("traffic_ratio")
    summary: dict[str, Any] = {
        "seeds": len(reports),
        "accuracy": {
            k: mean(over("accuracy", k))
            for k in ("overall", "day_before", "night", "day_after")
        },
        "agent_accuracy": {
            k: mean(over("agent_accuracy", k))
            for k in ("day_before", "night_before_retrain", "night_after_retrain")
        },
        "retrains": mean(over("retrains")),
        "retrain_steps": mean(over("retrain_steps")),
        "recovery_steps": mean(recovery),
        "recovery_steps_max": max((r for r in recovery if r is not None), default=None),
        "not_recovered": sum(r is None for r in recovery),
        "traffic_ratio": mean(traffic),
        "traffic_ratio_range": [min(traffic), max(traffic)],
        "estimates": mean(over("estimates")),
        "traffic_by_state": {
            k: mean([r["traffic_by_state"].get(k, 0.0) for r in reports])
            for k in ("inference", "estimate", "retrain")
        },
        "traffic_by_phase": {
            k: mean([r["traffic_by_phase"].get(k) for r in reports])
            for k in ("day_before", "night", "day_after")
        },
    }
    return summary


def row(backend: str, preset: str, actions: str, s: dict[str, Any]) -> str:
    acc, agent = s["accuracy"], s["agent_accuracy"]
    phase = {k: fmt(v) for k, v in s["traffic_by_phase"].items()}
    low, high = s["traffic_ratio_range"]
    recovery = fmt(s["recovery_steps"], 0)
    if s["recovery_steps_max"] is not None:
        recovery += f" (max {s['recovery_steps_max']})"
    if s["not_recovered"]:
        recovery += f", {s['not_recovered']} never"
    return (
        f"| {backend} | {preset} | {actions} | {fmt(acc['overall'])} | "
        f"{fmt(acc['day_before'])} / {fmt(acc['night'])} / {fmt(acc['day_after'])} | "
        f"{fmt(agent['day_before'])} | {fmt(agent['night_before_retrain'])} -> "
        f"{fmt(agent['night_after_retrain'])} | {fmt(s['retrains'], 1)} "
        f"({fmt(s['retrain_steps'], 0)}) | {recovery} | "
        f"**{fmt(s['traffic_ratio'])}** ({low:.2f}–{high:.2f}) | "
        f"{phase['day_before']} / {phase['night']} / {phase['day_after']} | "
        f"{fmt(s['estimates'], 0)} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["lite0", "lite1", "lite2"])
    parser.add_argument("--presets", nargs="+", default=["default", "paper"])
    parser.add_argument("--actions", nargs="+", default=["paper"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--agent",
        default=None,
        help="start from this agent instead of the shipped one; {backend} is "
        "replaced, e.g. out/features/{backend}-pirl.pt",
    )
    parser.add_argument("--night", default=None, help="folder of real night photos")
    parser.add_argument(
        "--day",
        default=None,
        help="folder of day photos (default: the held-out test images); 'train': "
        "the first 300 training photos (copied to out/train-day), to choose a "
        "setting without the test photos",
    )
    parser.add_argument(
        "--passes",
        nargs=3,
        type=int,
        default=[2, 4, 2],
        metavar=("DAY", "NIGHT", "AFTER"),
        help="passes over the day, night and day-after images",
    )
    add_settings(parser)
    parser.add_argument("--tag", default="", help="suffix of the output names")
    parser.add_argument("--out", default="out/scenery")
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        limit_splits()
        args.backends, args.presets, args.seeds = args.backends[:1], ["default"], [0]
        args.passes, args.out = [1, 1, 1], SMOKE_OUT / "scenery"
    changes = settings_changes(args)
    configure_threads()
    if args.day == "train":
        args.day = str(training_day(TRAIN_DAY))
    out = Path(args.out)
    summaries = []
    lines = [
        f"means over {len(args.seeds)} stream seeds ({' '.join(map(str, args.seeds))})",
        "",
        "| backend | preset | actions | accuracy overall | day / night / day "
        "| agent acc day | night before -> after retrain | retrains (steps) "
        "| recovery steps | traffic ratio (range) | traffic day / night / day "
        "| estimates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, preset, actions in (
        (b, p, a) for b in args.backends for a in args.actions for p in args.presets
    ):
        name = f"{backend}-{preset}" + ("" if actions == "paper" else f"-{actions}")
        name += f"-{args.tag}" if args.tag else ""
        constants = RUNTIME_PRESETS.get(preset, grouped(RuntimeSettings, changes))
        reports = []
        for seed in args.seeds:
            agent = args.agent.format(backend=backend) if args.agent else None
            report, records = scenery(
                ScenerySettings(
                    cloud=CloudSettings(backend),
                    choice=AgentChoice(agent, actions),
                    preset=preset,
                    seed=seed,
                    progress=False,
                    runtime=constants,
                    night=args.night,
                    day=args.day,
                    day_passes=args.passes[0],
                    night_passes=args.passes[1],
                    after_passes=args.passes[2],
                    json=str(out / f"{name}-s{seed}.json"),
                )
            )
            plot_run(
                records,
                out / f"{name}-s{seed}.png",
                change_points=report["change_points"],
                caller_accuracy=report["caller_accuracy"],
                title=f"{backend}, preset {preset}: day -> night -> day",
            )
            print(
                f"{name} seed {seed}: accuracy {report['accuracy']['overall']:.3f}, "
                f"retrains {report['retrains']}, recovery {report['recovery_steps']}, "
                f"traffic {report['traffic_ratio']:.3f}",
                flush=True,
            )
            reports.append(report)
        summary = summarize(reports)
        kept = ("accuracy", "retrains", "recovery_steps", "traffic_ratio", "actions")
        summaries.append(
            {
                "backend": backend,
                "preset": preset,
                "actions_set": actions,
                "summary": summary,
                "per_seed": [
                    {"seed": seed, **{k: r[k] for k in kept}}
                    for seed, r in zip(args.seeds, reports, strict=True)
                ],
            }
        )
        lines.append(row(backend, preset + args.tag, actions, summary))
        print(lines[-1], flush=True)
    atomic_write_json(out / "scenery.json", summaries)
    table = "\n".join(lines) + "\n"
    atomic_write(out / "scenery.md", lambda handle: handle.write(table.encode()))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
