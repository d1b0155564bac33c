"""``adacompress ship``: rebuild the agents that ship in the package with the one
recipe that made them (training images only)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adacompress.device.zoo import ZOO

NAME = "ship"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="rebuild the shipped agents",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"agents to rebuild (default: all): {', '.join(ZOO)}",
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help="write them here instead of the package's agents folder",
    )
    parser.add_argument("--cache", default=None, help="answer cache (SQLite)")


def execute(args: argparse.Namespace) -> int:
    from adacompress.learning.ship import ship

    out_dir = Path(args.out_dir) if args.out_dir else None
    for log in ship(args.names, out_dir=out_dir, cache=args.cache):
        calibration = log.get("calibration") or {}
        threshold = calibration.get("threshold")
        knob = (
            f"alpha {calibration.get('alpha', float('nan')):.2f}"
            if threshold is None
            else f"threshold {threshold:.4f}"
        )
        print(
            f"{log['command']}: {knob} "
            f"(reached on CV: {calibration.get('reached')}), {log['n_images']} "
            f"images -> {log['agent_file']}",
            flush=True,
        )
    return 0
