"""``adacompress compress``: write the upload the agent chooses for each image
(no cloud is called), and a manifest saying what was written and why."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from basekit.images import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from adacompress.core.limits import UploadLimits

NAME = "compress"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="write the agent's chosen upload of each image",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or folders (searched recursively)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--agent",
        default="lite0",
        help="a shipped agent's name (lite0, lite1-scale-quality, ...), an agent "
        "file, or a folder from `adacompress export`; a shipped name always means "
        "the shipped agent: give a file or folder as a path, e.g. ./lite0 "
        "(default: lite0)",
    )
    add_limit_options(parser)
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip images with more pixels (default: {DEFAULT_MAX_PIXELS})",
    )


def positive_int(text: str) -> int:
    """An option's value that must be a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """--min-side, --max-bytes, --formats: what the receiving service takes."""
    parser.add_argument(
        "--min-side",
        type=int,
        default=None,
        help="never write an upload with a shorter side below this: a photo already "
        "smaller is skipped with its reason, not enlarged (default: 1)",
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help="never write an upload larger than this (default: no limit)",
    )
    parser.add_argument(
        "--formats",
        default=None,
        metavar="LIST",
        help="formats the receiving service takes, e.g. jpeg,png for Rekognition; "
        "the agent chooses among its actions in these only (default: any; an "
        "exported agent: the limits it was exported for)",
    )


def limits_from(args: argparse.Namespace) -> UploadLimits:
    """The limits of :func:`add_limit_options`."""
    from adacompress.core.limits import UploadLimits

    formats = None
    if args.formats is not None:
        formats = frozenset(f.strip().lower() for f in args.formats.split(",") if f)
    return UploadLimits(args.min_side or 1, args.max_bytes, formats)


def execute(args: argparse.Namespace) -> int:
    from adacompress.cli.report import print_skipped, shown
    from adacompress.device.compressor import Compressor
    from adacompress.device.files import compress_files
    from basekit.progress import Progress

    compressor = Compressor.load(
        args.agent, limits=limits_from(args), max_pixels=args.max_pixels
    )

    bars: list[Progress] = []  # made once the inputs are counted

    def report(done: int, total: int) -> None:
        if not bars:
            bars.append(Progress(total, "compress", enabled=not args.quiet))
        bars[0].update(done - bars[0].count)

    summary = compress_files(
        compressor, args.inputs, Path(args.out), on_progress=report
    )
    for bar in bars:
        bar.close()
    ratio = summary["bytes"] / summary["source_bytes"] if summary["source_bytes"] else 0
    print(
        f"{summary['inputs']} inputs: {summary['written']} written, "
        f"{summary['reused']} already done, {len(summary['skipped'])} skipped; "
        f"uploads {summary['bytes'] / 1e6:.2f} MB = {ratio:.3f} of the sources "
        f"-> {summary['manifest']}"
    )
    if summary["manifest_ignored"]:
        print(
            f"adacompress: warning: {summary['manifest_ignored']} damaged lines of "
            f"{shown(summary['manifest'])} ignored (their inputs are done again)",
            file=sys.stderr,
        )
    print_skipped(summary["skipped"])
    return 1 if summary["skipped"] else 0
