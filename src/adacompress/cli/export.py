"""``adacompress export``: write an agent as files a device runs with ONNX Runtime
alone -- two graphs and a card -- for ``compress --agent DIR`` or
``adacompress.load(DIR)`` in an install without torch."""

from __future__ import annotations

import argparse
from typing import Any

from adacompress.cli.compress import add_limit_options, limits_from

NAME = "export"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="write an agent as ONNX graphs and a card",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "agent",
        metavar="AGENT",
        help="a shipped agent's name (lite0, lite1-scale-quality, ...) or an agent "
        "file",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--actions",
        default=None,
        help="with a backend's name: its agent over this action set (paper)",
    )
    add_limit_options(parser)


def execute(args: argparse.Namespace) -> int:
    from adacompress.device.compressor import Compressor
    from adacompress.device.export import export_agent

    compressor = Compressor.load(
        args.agent, actions=args.actions, limits=limits_from(args)
    )
    card = export_agent(compressor, args.out)
    print(
        f"{compressor.source}: {card.features} state, "
        f"{len(card.actions)} actions ({card.action_set}), {card.policy} policy "
        f"-> {args.out}"
    )
    return 0
