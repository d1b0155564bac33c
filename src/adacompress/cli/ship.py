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
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="only rewrite the agents' calibration-side fields (the survival "
        "threshold and its offline guarantee, Learn-then-Test on the out-of-fold "
        "training photos and BSDS500 train+val; the answer feedback), weights "
        "untouched",
    )
    parser.add_argument(
        "--delta",
        type=float,
        default=0.05,
        help="with --recalibrate: 1 - the guarantee's confidence (default 0.05)",
    )
    parser.add_argument(
        "--answer-feedback",
        action="store_true",
        help="only refit the survival agents' answer feedback (what the threshold "
        "control reads in the cloud's answers) on the training photos, weights and "
        "threshold untouched",
    )


def execute(args: argparse.Namespace) -> int:
    from adacompress.learning.ship import ship

    out_dir = Path(args.out_dir) if args.out_dir else None
    if args.recalibrate or args.answer_feedback:
        return _recalibrate(args, out_dir)
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


def _recalibrate(args: argparse.Namespace, out_dir: Path | None) -> int:
    from adacompress.learning.recalibrate import recalibrate

    fields = ["guarantee"] if args.recalibrate else []
    fields += ["answer_feedback"]
    for record in recalibrate(
        args.names, folder=out_dir, delta=args.delta, cache=args.cache, fields=fields
    ):
        found = record.get("guarantee") or {}
        threshold = record.get("threshold")
        knob = "no threshold" if threshold is None else f"threshold {threshold:.4f}"
        said = found.get("statement") or found.get("note")
        feedback = record.get("answer_feedback") or "none (no threshold to steer)"
        print(f"{record['name']}: {knob}; guarantee: {said}", flush=True)
        print(f"  answer feedback: {feedback}", flush=True)
    return 0
