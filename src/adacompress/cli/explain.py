"""``adacompress explain``: where in the picture the agent's choice comes from (an
occlusion map over the image, with the choice and the runner-up in the title)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "explain"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        NAME,
        parents=parents,
        help="heat map of what an agent's choice rests on",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("image", help="the picture")
    parser.add_argument("--out", required=True, help="where to write the PNG")
    parser.add_argument(
        "--agent",
        default="lite0",
        help="a shipped agent's name or an agent file (default: lite0)",
    )
    parser.add_argument(
        "--grid",
        type=int,
        default=8,
        help="patches per side; each is moved by half its size (default: 8)",
    )


def execute(args: argparse.Namespace) -> int:
    from adacompress.device.compressor import Compressor
    from adacompress.device.explain import explain
    from adacompress.device.explain_plot import plot_explanation

    compressor = Compressor.load(args.agent)
    image = compressor.decode(args.image)
    found = explain(compressor, image, grid=args.grid)
    plot_explanation(
        image,
        found.heat,
        Path(args.out),
        title=f"{Path(args.image).name}: sends {found.chosen.key} "
        f"(runner-up {found.runner_up.key})",
        caption=f"agent {Path(compressor.source).name}; preference "
        f"{found.preference:.3f} (score difference, whole image)",
    )
    print(
        f"{args.image}: {found.chosen.key} over {found.runner_up.key} "
        f"(preference {found.preference:.3f}) -> {args.out}"
    )
    return 0
