"""``adacompress``: parse the command line and run one command (see the package doc
for the exit codes)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from types import ModuleType

from adacompress import __version__
from adacompress.cli import (
    compress,
    evaluate,
    experiment,
    explain,
    export,
    run,
    serve,
    ship,
    train,
)
from adacompress.cli.termination import EXIT_TERMINATED, Terminated, sigterm_raises

COMMANDS: tuple[ModuleType, ...] = (
    compress,
    run,
    evaluate,
    train,
    ship,
    export,
    explain,
    experiment,
    serve,
)
"""Each module has ``NAME``, ``add_parser(subparsers)`` and ``execute(args)``."""

EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
THREADS_ENV = "ADACOMPRESS_THREADS"


def global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options every command takes, before or after its name."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--threads",
        type=int,
        default=default,
        help=f"model CPU threads (default: ${THREADS_ENV}, else every core)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="no progress output",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adacompress",
        description="Compress each photo as far as a cloud vision service allows, "
        "learned from the service's own answers.",
        epilog="exit status: 0 done; 1 some inputs failed or were skipped; 2 usage "
        "or setup error; 3 service unreachable (rerun to continue); 130 interrupted; "
        "143 terminated (SIGTERM)",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    global_options(common, suppress=True)
    for command in COMMANDS:
        command.add_parser(sub, parents=[common])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = shlex.join(["adacompress", *argv])
    command = next(c for c in COMMANDS if c.NAME == args.command)
    from adacompress.cloud.service import CircuitOpen

    # Pillow's warnings (corrupt EXIF, ...) are not the user's to act on: each
    # input gets at most its one line
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    try:
        from basekit.threads import configure_threads

        # serve runs ONNX Runtime only: torch stays unloaded there
        configure_threads(args.threads, env=THREADS_ENV, torch=args.command != "serve")
        with sigterm_raises():
            return int(command.execute(args))
    except CircuitOpen as err:
        print(f"adacompress: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except Terminated:
        print("adacompress: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("adacompress: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 -- expected errors become one line
        from adacompress.cli.errors import describe

        message = describe(err, args.command)
        if message is None or os.environ.get("ADACOMPRESS_DEBUG"):
            raise
        print(f"adacompress: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def run_cli() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
