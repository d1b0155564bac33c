"""``pirl`` command line: ``train``, ``eval`` and ``export``.

Options are generated from the settings dataclasses (the string under each field is
its help text). ``main(argv) -> int`` is the one entry point for ``python -m pirl``,
the console script and the tests. Multi-process training:
``torchrun --nproc-per-node 2 -m pirl train ...``. Exit status: 0 done, 2 bad input
(one line), 130 Ctrl-C and 143 SIGTERM (both after saving the checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from basekit import settings_cli
from basekit.atomic import atomic_write_json
from basekit.threads import configure_threads
from pirl.data import DataError
from pirl.evaluate import EvalSettings, evaluate, export_encoder
from pirl.loss import LOSSES
from pirl.resnet import ARCHS
from pirl.tensor_data import DATA_PATHS
from pirl.train import METHODS, Preempted, TrainSettings, train

CHOICES: dict[str, tuple[str, ...]] = {
    "method": METHODS,
    "pretext": ("jigsaw", "rotation"),
    "arch": tuple(ARCHS),
    "loss": LOSSES,
    "device": ("auto", "cpu", "cuda"),
    "data_path": DATA_PATHS,
}
HIDDEN = {"progress"}


def add_settings(parser: argparse.ArgumentParser, cls: type) -> None:
    """This CLI's options for a settings dataclass (see basekit.settings_cli)."""
    settings_cli.add_settings(parser, cls, choices=CHOICES, hidden=HIDDEN)


def pick(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    return settings_cli.pick(cls, namespace, hidden=HIDDEN)


def version() -> str:
    """The installed distribution's version (pirl ships inside it)."""
    try:
        return metadata.version("adacompress")
    except metadata.PackageNotFoundError:
        return "unknown"


def add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--threads`` and ``--quiet``, accepted before and after the subcommand (a
    subcommand's own value wins; it leaves the top-level one alone when absent)."""
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--threads",
        type=int,
        default=default,
        help="torch CPU threads per process (default: cores / local processes)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress bars or progress lines",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pirl",
        description="PIRL: self-supervised image features from unlabelled images.",
    )
    parser.add_argument("--version", action="version", version=f"pirl {version()}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser(
        "train", help="train an encoder on a folder or zip of images"
    )
    add_settings(p_train, TrainSettings)
    p_eval = sub.add_parser(
        "eval", help="kNN and linear-probe accuracy of frozen features"
    )
    add_settings(p_eval, EvalSettings)
    p_export = sub.add_parser("export", help="write a checkpoint's encoder alone")
    for subparser in (p_train, p_eval, p_export):
        add_common(subparser, top=False)
    p_export.add_argument("checkpoint", help="training checkpoint (checkpoint.pt)")
    p_export.add_argument("out", help="where to write the encoder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = args.threads
    if threads is None:  # torchrun: share the cores between the local processes
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        threads = max(1, (os.cpu_count() or 1) // local)
    configure_threads(threads)
    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.command == "train":
            summary = train(
                TrainSettings(**pick(TrainSettings, args), progress=progress)
            )
            if int(os.environ.get("RANK", "0")) != 0:
                return 0  # torchrun: rank 0 reports
            for skipped in summary["skipped"]:
                print(f"skipped {skipped['path']}: {skipped['error']}", file=sys.stderr)
            print(
                f"{summary['method']}: {summary['steps']} steps "
                f"({summary['epochs']:.2f} epochs, {summary['images_seen']} images, "
                f"{summary['images_per_s']:.1f} images/s, {summary['data_path']} path) "
                f"on {summary['n_data']} "
                f"images, loss {summary['last_loss']:.4f} -> {summary['checkpoint']}"
            )
        elif args.command == "eval":
            report = evaluate(
                EvalSettings(**pick(EvalSettings, args), progress=progress),
                log=None if args.quiet else print_progress,
            )
            for skipped in report["skipped"]:
                print(f"skipped {skipped['path']}: {skipped['error']}", file=sys.stderr)
            if args.json:
                atomic_write_json(Path(args.json), report)
            print(json.dumps({k: v for k, v in report.items() if k != "skipped"}))
        elif args.command == "export":
            meta = export_encoder(args.checkpoint, args.out)
            print(f"encoder {meta['arch']} (width {meta['width']}) -> {args.out}")
    except (DataError, ValueError, OSError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"pirl: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pirl: interrupted (checkpoint saved)", file=sys.stderr)
        return 130
    except Preempted as stop:
        print(f"pirl: {stop}", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a terminated job
    return 0


def print_progress(line: str) -> None:
    """A progress line on stderr (kept in logs, unlike a progress bar)."""
    print(f"pirl: {line}", file=sys.stderr, flush=True)


def run_cli() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
