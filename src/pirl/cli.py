"""``pirl`` command line: ``train``, ``eval`` and ``export``.

Options are generated from the settings dataclasses (the string under each field is
its help text). ``main(argv) -> int`` is the one entry point for ``python -m pirl``,
the console script and the tests. Multi-process training:
``torchrun --nproc-per-node 2 -m pirl train ...``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import sys
import textwrap
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from adacompress.storage import atomic_write_json
from adacompress.threads import configure_threads
from pirl.data import DataError
from pirl.evaluate import EvalSettings, evaluate, export_encoder
from pirl.loss import LOSSES
from pirl.resnet import ARCHS
from pirl.train import METHODS, TrainSettings, train

CHOICES: dict[str, tuple[str, ...]] = {
    "method": METHODS,
    "pretext": ("jigsaw", "rotation"),
    "arch": tuple(ARCHS),
    "loss": LOSSES,
    "device": ("auto", "cpu", "cuda"),
}
HIDDEN = {"progress"}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of a dataclass (its help text)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def add_settings(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--option`` per dataclass field, typed and documented from the class."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in HIDDEN:
            continue
        kind = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{docs.get(f.name, '')} (default: {f.default})"
        if kind is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=f.default,
                help=help_text,
            )
            continue
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        parser.add_argument(
            flag,
            type=kind,
            default=f.default,
            choices=CHOICES.get(f.name),
            help=help_text,
        )


def pick(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - HIDDEN
    return {name: getattr(namespace, name) for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pirl",
        description="PIRL: self-supervised image features from unlabelled images.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads per process (default: cores / local processes)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    add_settings(
        sub.add_parser("train", help="train an encoder on a folder or zip of images"),
        TrainSettings,
    )
    add_settings(
        sub.add_parser("eval", help="kNN and linear-probe accuracy of frozen features"),
        EvalSettings,
    )
    p_export = sub.add_parser("export", help="write a checkpoint's encoder alone")
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
                f"{summary['images_per_s']:.1f} images/s) on {summary['n_data']} "
                f"images, loss {summary['last_loss']:.4f} -> {summary['checkpoint']}"
            )
        elif args.command == "eval":
            report = evaluate(
                EvalSettings(**pick(EvalSettings, args), progress=progress)
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
    return 0


def run_cli() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
