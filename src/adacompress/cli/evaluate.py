"""``adacompress evaluate``: an agent against every fixed setting and the per-image
oracle, on the same images and the same cloud answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adacompress.cli.options import add_dry_run, add_settings, announce, build
from adacompress.learning.settings import EvaluateSettings

NAME = "evaluate"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="agent vs every fixed setting vs the per-image oracle",
        description=__doc__.split("\n\n")[0],
    )
    add_dry_run(parser)
    add_settings(parser, EvaluateSettings)


def execute(args: argparse.Namespace) -> int:
    from adacompress.cli.report import plot_or_note, print_evaluation
    from adacompress.learning.evaluate import evaluate, plan_evaluation
    from adacompress.learning.evaluation_plot import plot_evaluation

    settings = build(EvaluateSettings, args, progress=not args.quiet)
    if announce(plan_evaluation(settings), NAME, args):
        return 0
    report = evaluate(settings)
    plot = settings.plot or (
        str(Path(settings.json).with_suffix(".png")) if settings.json else None
    )
    if plot and report["n_images"]:
        plot_or_note(plot_evaluation, report, Path(plot))
    print_evaluation(report)
    return 1 if report["skipped"] else 0
