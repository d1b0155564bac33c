"""``adacompress experiment scenery``: day -> night -> day on the running system, the
paper's Fig. 4 (detection, retraining, recovery)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adacompress.cli.options import add_settings, build
from adacompress.experiments.settings import ScenerySettings

NAME = "experiment"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="experiments on the running system",
        description="Experiments on the running system.",
    )
    experiments = parser.add_subparsers(dest="experiment", required=True)
    scenery = experiments.add_parser(
        "scenery",
        parents=parents,
        help="day -> night -> day: detection, retraining, recovery",
        description=__doc__.split("\n\n")[0],
    )
    add_settings(scenery, ScenerySettings)


def execute(args: argparse.Namespace) -> int:
    from adacompress.cli.report import plot_or_note
    from adacompress.experiments.scenery import scenery
    from adacompress.runtime.run_plot import plot_run

    settings = build(ScenerySettings, args, progress=not args.quiet)
    report, records = scenery(settings)
    plot = settings.plot or (
        str(Path(settings.json).with_suffix(".png")) if settings.json else None
    )
    if plot:
        plot_or_note(
            plot_run,
            records,
            Path(plot),
            change_points=report["change_points"],
            caller_accuracy=report["caller_accuracy"],
            title=f"{settings.cloud.backend}, preset {settings.preset}: "
            "day -> night -> day",
        )
    for warning in report["warnings"]:
        print(f"adacompress: warning: {warning}", file=sys.stderr)
    hidden = ("problems", "caller_accuracy", "warnings")
    print(json.dumps({k: v for k, v in report.items() if k not in hidden}))
    for problem in report["problems"]:
        print(f"  {problem['state']} {problem['path']}: {problem['error']}")
    return 1 if report["problems"] else 0
