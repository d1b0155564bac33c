"""``adacompress train``: train an agent against a cloud (the shipped agents' recipe
by default; ``--preset paper`` for the paper's DQN)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from adacompress.cli.options import add_dry_run, add_settings, announce, overrides
from adacompress.learning.presets import TRAIN_PRESETS
from adacompress.learning.settings import TrainSettings

NAME = "train"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="train an agent against a cloud",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--preset",
        default=TRAIN_PRESETS.default,
        choices=list(TRAIN_PRESETS),
        help="training recipe; every option below overrides it "
        f"(default: {TRAIN_PRESETS.default})",
    )
    add_dry_run(parser)
    add_settings(
        parser,
        TrainSettings,
        default_from="--preset",
        defaults=TRAIN_PRESETS.get(TRAIN_PRESETS.default),
    )


def execute(args: argparse.Namespace) -> int:
    from adacompress.cli.report import print_skipped
    from adacompress.learning.train import plan_training, train

    settings = TRAIN_PRESETS.get(
        args.preset, {**overrides(TrainSettings, args), "progress": not args.quiet}
    )
    if announce(plan_training(settings), NAME, args):
        return 0
    log = train(settings, command=args.argv)
    last = log["history"][-1] if log["history"] else {}
    print(
        f"trained on {log['n_images']} images, {settings.steps} steps: "
        f"reward {last.get('charts/reward', math.nan):.3f}, "
        f"accuracy {last.get('charts/accuracy', math.nan):.3f} "
        f"(last 100 steps) -> {log['agent_file']}"
    )
    calls = log["service_calls"]
    print(f"  service calls: {calls['new']} new, {calls['cached']} cached")
    if log.get("survey", {}).get("stopped"):
        print(f"  survey: {log['survey']['stopped']}")
    print_skipped(log["skipped"])
    return 1 if log["skipped"] else 0
