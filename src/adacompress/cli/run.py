"""``adacompress run``: the deployed loop (inference, estimate, retrain) over a
stream of images; resumable, and a rerun retries what failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from adacompress.cli.options import (
    add_dry_run,
    add_settings,
    announce,
    build,
    overrides,
)
from adacompress.runtime.settings import RUNTIME_PRESETS, RunSettings, RuntimeSettings

NAME = "run"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="the deployed inference-estimate-retrain loop (resumable)",
        description=__doc__.split("\n\n")[0],
    )
    add_dry_run(parser)
    add_settings(parser, RunSettings)
    group = parser.add_argument_group("runtime constants (override the preset)")
    add_settings(
        group,
        RuntimeSettings,
        default_from="--preset",
        defaults=RUNTIME_PRESETS.get(RUNTIME_PRESETS.default),
    )


def execute(args: argparse.Namespace) -> int:
    from adacompress.cli.report import plot_or_note, print_run
    from adacompress.runtime.run import plan_run, run
    from adacompress.runtime.run_plot import plot_run

    constants = RUNTIME_PRESETS.get(args.preset, overrides(RuntimeSettings, args))
    settings = build(RunSettings, args, progress=not args.quiet, runtime=constants)
    if settings.images == "-":  # a stream on stdin is counted only as it comes
        if args.dry_run:
            print("run cannot count the calls of images read from stdin; nothing sent")
            return 0
    elif announce(plan_run(settings), NAME, args):
        return 0
    report, records = run(settings)
    if records:
        json_path = Path(settings.json or Path(report["state"]) / "report.json")
        plot = Path(settings.plot or json_path.with_suffix(".png"))
        certificate = report.get("certificate") or {}
        plot_or_note(
            plot_run,
            records,
            plot,
            title=certificate.get("text", ""),
            kept_at_least=certificate.get("kept_at_least"),
        )
    print_run(report)
    if report["stopped"]:
        print(f"adacompress: {report['stopped']}", file=sys.stderr)
        return 3
    return 1 if report["problems"] else 0
